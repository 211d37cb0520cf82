package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The node's behaviour with Redis, fronts and peers is tested in package
// front (checklist_test.go, flow_test.go) and on processes in cmd/front;
// here every example must leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
