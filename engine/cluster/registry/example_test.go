package registry_test

import (
	"fmt"

	"github.com/framewire/framewire/engine/cluster/registry"
)

// The states the SDK reads: it stops polling on a terminal one, and reads
// capabilities only from a session bound to a node.
func Example() {
	for _, s := range []string{registry.StatePending, registry.StateWaiting, registry.StateSuspended, registry.StateClosed, registry.StateInactive} {
		fmt.Printf("%-9s terminal=%v bound=%v\n", s, registry.Terminal(s), registry.Bound(s))
	}
	// Output:
	// PENDING   terminal=false bound=false
	// WAITING   terminal=false bound=true
	// SUSPENDED terminal=false bound=true
	// CLOSED    terminal=true bound=false
	// INACTIVE  terminal=true bound=false
}
