package node_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
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
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never reached: the health check answers first
	defer rdb.Close()
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
	if !n.Ready() {
		t.Fatal("not ready while healthy")
	}
	poisoned := errors.New("gpu: the device's CUDA context is poisoned by a sticky fault: an illegal memory access")
	fault.Store(&poisoned)
	rec := httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "illegal memory access") {
		t.Errorf("/readyz while unhealthy: %d %s, want 503 with the reason", rec.Code, rec.Body)
	}
	if n.Ready() {
		t.Error("Ready() while unhealthy")
	}
}
