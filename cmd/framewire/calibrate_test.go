package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/httpserve/httpservetest"
)

// Issue 23: `framewire -mode node -calibrate` registers with the capacity
// its start-up encode derived (>= 1, in /metrics beside the bound it
// measured); an explicit -capacity wins over it.
func TestNodeCalibratedCapacity(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int // 0: the calibrated figure
	}{
		{[]string{"-calibrate", "-calibrate-time", "500ms"}, 0},
		{[]string{"-calibrate", "-calibrate-time", "300ms", "-capacity", "3"}, 3},
	} {
		addr, registered := startRegisteredNode(t, tc.args...)
		_, body, _ := httpservetest.Get(t, "127.0.0.3", addr, "/metrics")
		capacity := httpservetest.Metric(body, "framewire_node_capacity")
		calibrated := httpservetest.Metric(body, "framewire_node_calibration_capacity")
		bound := httpservetest.Metric(body, "framewire_node_calibration_bound_sessions")
		t.Logf("%q: registered with capacity %d; calibrated %v from a bound of %.1f sessions' worth of demo-size encodes", tc.args, registered, calibrated, bound)
		want := tc.want
		if want == 0 {
			want = int(calibrated)
		}
		if want < 1 || registered != want || capacity != float64(want) || calibrated < 1 || bound <= 0 {
			t.Errorf("%q: registered %d, /metrics capacity %v, calibrated %v, bound %v; want %d (>= 1) everywhere and a positive bound",
				tc.args, registered, capacity, calibrated, bound, want)
		}
	}
}

// startRegisteredNode runs `framewire -mode node` with args in this
// process against a real Redis, waits until it has registered, and returns
// its address and the capacity it registered with.
func startRegisteredNode(t *testing.T, args ...string) (string, int) {
	t.Helper()
	rd := registrytest.Start(t)
	store := registry.New(rd.Client(t), "")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("calibrate-test-secret-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags(append([]string{"-mode", "node", "-redis", rd.Addr, "-jwt-secret-file", secretFile, "-drain-timeout", "1s"}, args...))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveNode(ctx, ln, o, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serveNode: %v", err)
		}
	})
	var nodes []registry.Node
	enginetest.Eventually(t, 15*time.Second, "the node registered", func() bool {
		nodes, err = store.Nodes(context.Background())
		return err == nil && len(nodes) == 1
	})
	return ln.Addr().String(), nodes[0].Capacity
}
