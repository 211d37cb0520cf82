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
	if err := st.CreateSession(ctx, x, time.Minute, 0); err != nil {
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

// TestCreateQuotaAtomic: 30 simultaneous creates of one account with a
// quota of 2 store exactly 2 sessions (the count and the create are one
// script); ended sessions leave the account's set at the next create,
// quota or not, and the set expires with its records.
func TestCreateQuotaAtomic(t *testing.T) {
	rdb := registrytest.Start(t).Client(t)
	st := registry.New(rdb, "t:")
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, over := 0, 0
	for i := range 30 {
		wg.Go(func() {
			x := registry.Session{ID: fmt.Sprint("q", i), Account: "acme", Model: "m", Created: now, Deadline: now.Add(time.Minute)}
			err := st.CreateSession(ctx, x, time.Minute, 2)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, registry.ErrOverQuota):
				over++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if created != 2 || over != 28 {
		t.Fatalf("created %d, over quota %d; want 2 and 28", created, over)
	}
	if keys, _ := st.Keys(ctx, "sess:*"); len(keys) != 2 {
		t.Fatalf("records: %v", keys)
	}
	// Without a quota, ended sessions are forgotten too.
	ids, _ := rdb.SMembers(ctx, "t:acct:acme").Result()
	for _, id := range ids {
		if ok, err := st.End(ctx, registry.Session{ID: id, Model: "m"}, registry.StateClosed, "test", time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	x := registry.Session{ID: "after", Account: "acme", Model: "m", Created: now, Deadline: now.Add(time.Minute)}
	if err := st.CreateSession(ctx, x, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if ids, _ := rdb.SMembers(ctx, "t:acct:acme").Result(); len(ids) != 1 || ids[0] != "after" {
		t.Errorf("account set after its sessions ended: %v, want [after]", ids)
	}
	if ttl := rdb.PTTL(ctx, "t:acct:acme").Val(); ttl <= time.Minute || ttl > 2*time.Minute+time.Second {
		t.Errorf("account set TTL %s, want its record's (deadline + 1 min)", ttl)
	}
}

// TestLifetimes: a bound session's record lives as long as the slot its
// node committed (the node's maximum duration) plus a minute, at least the
// front's TTL; the account set lives as long. Rebind moves a session whose
// node was lost, only from the state it was read in, within the quota.
func TestLifetimes(t *testing.T) {
	rdb := registrytest.Start(t).Client(t)
	st := registry.New(rdb, "t:")
	ctx := context.Background()
	now := time.Now()
	for _, n := range []registry.Node{{ID: "a", Addr: "http://a", Model: "m", Capacity: 3}, {ID: "b", Addr: "http://b", Model: "m", Capacity: 3}} {
		if err := st.Register(ctx, n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	x := registry.Session{ID: "long", Account: "acme", Model: "m", Created: now, Deadline: now.Add(time.Minute)}
	if err := st.CreateSession(ctx, x, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Reserve(ctx, "m", x.ID, time.Minute, "b"); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, "a", x.ID, now.Add(2*time.Hour)); err != nil { // a node of -max-duration 2h
		t.Fatal(err)
	}
	if ok, err := st.Bind(ctx, x, "a", "http://a", `{"tracks":[]}`, 30*time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, k := range []string{"t:sess:long", "t:acct:acme"} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl < 2*time.Hour || ttl > 2*time.Hour+time.Minute+time.Second {
			t.Errorf("%s TTL %s, want the committed slot's 2 h plus a minute", k, ttl)
		}
	}
	y := registry.Session{ID: "short", Account: "acme", Model: "m", Created: now, Deadline: now.Add(time.Minute)}
	if err := st.CreateSession(ctx, y, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Bind(ctx, y, "a", "http://a", `{}`, 30*time.Minute); !ok || err != nil { // nothing committed
		t.Fatal(ok, err)
	}
	if ttl := rdb.PTTL(ctx, "t:sess:short").Val(); ttl < 29*time.Minute || ttl > 30*time.Minute {
		t.Errorf("uncommitted session's TTL %s, want the front's 30 min", ttl)
	}

	// Node a dies: its sessions become INACTIVE; "long" is re-placed on b.
	if _, err := st.ReapNode(ctx, "a", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	lost, _ := st.Session(ctx, "long")
	if lost.State != registry.StateInactive || lost.Node != "a" {
		t.Fatalf("after the reap: %+v", lost)
	}
	if err := st.Rebind(ctx, lost, "b", "http://b", lost.Caps, time.Minute, 1); !errors.Is(err, registry.ErrOverQuota) {
		t.Errorf("Rebind over the quota (short is live): %v, want ErrOverQuota", err)
	}
	if err := st.Rebind(ctx, lost, "b", "http://b", lost.Caps, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Session(ctx, "long")
	if got.State != registry.StateWaiting || got.Node != "b" || got.NodeAddr != "http://b" || got.Reason != "" {
		t.Errorf("re-placed: %+v", got)
	}
	if err := st.Rebind(ctx, lost, "b", "http://b", lost.Caps, time.Minute, 0); !errors.Is(err, registry.ErrMoved) {
		t.Errorf("second Rebind from the stale state: %v, want ErrMoved", err)
	}
	if ok, _ := rdb.SIsMember(ctx, "t:acct:acme", "long").Result(); !ok {
		t.Error("re-placed session not back in its account's set")
	}
}

// TestQueueOrder: sessions queue in the order they were created even when
// their creation times are the same millisecond (two fronts, or one fast
// one): a queue scored by time broke such ties by id, so a later session
// could be placed first.
func TestQueueOrder(t *testing.T) {
	st := registry.New(registrytest.Start(t).Client(t), "t:")
	ctx := context.Background()
	now := time.Now()
	var want []string
	for i := range 50 {
		id := fmt.Sprintf("s%02d", 50-i) // later sessions have smaller ids
		want = append(want, id)
		x := registry.Session{ID: id, Account: "acme", Model: "m", Created: now, Deadline: now.Add(time.Minute)}
		if err := st.CreateSession(ctx, x, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Queue(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("queue %v, want the creation order %v", got, want)
	}
}
