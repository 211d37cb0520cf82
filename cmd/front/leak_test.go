package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the package must leave no goroutine running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
