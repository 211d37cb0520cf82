package node_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/wiring"
)

// A node whose Health check fails (a GPU poisoned by a sticky fault) is
// not ready: /readyz answers 503 with the reason, so the orchestrator
// drains and replaces it. Before Health, a poisoned node kept answering
// "ready" and taking sessions it could not serve.
func TestReadyzFailsWhileUnhealthy(t *testing.T) {
	eng, err := engine.New(enginetest.GreyModel(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	w, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	if err != nil {
		t.Fatal(err)
	}
	rdb := registrytest.Start(t).Client(t)
	issuer, err := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))
	if err != nil {
		t.Fatal(err)
	}
	var fault atomic.Pointer[error]
	n, err := node.New(w, node.Config{ID: "n", Addr: "http://127.0.0.1:9", Store: registry.New(rdb, ""), Issuer: issuer,
		Health: func() error {
			if p := fault.Load(); p != nil {
				return *p
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if n.Ready() || rec.Code != 503 || !strings.Contains(rec.Body.String(), "not registered") {
		t.Errorf("before Run registered it: Ready %v, /readyz %d %s; want not ready", n.Ready(), rec.Code, rec.Body)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	enginetest.Eventually(t, 10*time.Second, "ready once registered", n.Ready)
	poisoned := errors.New("gpu: the device's CUDA context is poisoned by a sticky fault: an illegal memory access")
	fault.Store(&poisoned)
	rec = httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "illegal memory access") {
		t.Errorf("/readyz while unhealthy: %d %s, want 503 with the reason", rec.Code, rec.Body)
	}
	if n.Ready() {
		t.Error("Ready() while unhealthy")
	}
}
