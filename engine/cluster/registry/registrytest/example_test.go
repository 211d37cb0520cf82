package registrytest_test

import (
	"testing"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
)

// In a test: a real redis-server on a free port, stopped when the test
// ends, and a Store on it.
func Example() {
	_ = func(t *testing.T) {
		store := registry.New(registrytest.Start(t).Client(t), "")
		_ = store
	}
}
