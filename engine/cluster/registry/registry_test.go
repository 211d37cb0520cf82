package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReserveAtomic: 40 concurrent reservations against three nodes with
// 3, 2 and 0 free slots (one draining) get exactly 5 slots, none beyond a
// node's capacity; leases lapse; a dead node's sessions become INACTIVE.
func TestReserveAtomic(t *testing.T) {
	st := registry.New(registrytest.Start(t).Client(t), "t:")
	ctx := context.Background()
	for _, n := range []registry.Node{{ID: "a", Addr: "http://a", Model: "m", Capacity: 3}, {ID: "b", Addr: "http://b", Model: "m", Capacity: 2},
		{ID: "c", Addr: "http://c", Model: "m", Capacity: 9, Draining: true}, {ID: "d", Addr: "http://d", Model: "other", Capacity: 9}} {
		if err := st.Register(ctx, n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			id, _, err := st.Reserve(ctx, "m", fmt.Sprint("s", i), 500*time.Millisecond)
			if errors.Is(err, registry.ErrNoCapacity) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[id]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if got["a"] != 3 || got["b"] != 2 || len(got) != 2 {
		t.Fatalf("reservations per node: %v, want a:3 b:2", got)
	}
	// Commit one; the other leases lapse.
	if err := st.Commit(ctx, "a", "s-kept", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the lease length: what is measured is its lapse
	nodes, err := st.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if (n.ID == "a" && n.Used != 1) || (n.ID == "b" && n.Used != 0) {
			t.Errorf("after the leases lapsed: %+v", n)
		}
	}
	// A node that stops heartbeating: its sessions become INACTIVE.
	x := registry.Session{ID: "s-kept", Account: "acme", Model: "m", Created: time.Now(), Deadline: time.Now().Add(time.Minute)}
	if err := st.CreateSession(ctx, x, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Bind(ctx, x, "a", "http://a", "{}", time.Minute); !ok || err != nil {
		t.Fatalf("Bind: %v %v", ok, err)
	}
	if ok, _ := st.End(ctx, registry.Session{ID: x.ID, Node: "b"}, registry.StateClosed, "stale node", time.Minute); ok {
		t.Fatal("node b ended a session bound to node a")
	}
	if err := st.Register(ctx, registry.Node{ID: "a", Addr: "http://a", Model: "m", Capacity: 3}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the TTL
	ended, err := st.ReapDeadNodes(ctx, time.Minute)
	if err != nil || len(ended) != 1 {
		t.Fatalf("reaped %v, %v", ended, err)
	}
	if got, _ := st.Session(ctx, "s-kept"); got.State != registry.StateInactive {
		t.Errorf("session of the dead node: %s", got.State)
	}
	if ok, _ := st.Bind(ctx, x, "b", "http://b", "{}", time.Minute); ok {
		t.Error("an ended session was bound again")
	}
}
