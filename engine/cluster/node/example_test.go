package node_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/wiring"
)

// A node loads the model once and serves up to Capacity sessions of it;
// Run (not shown: it needs Redis) registers it, which makes it ready, and
// drains it at the end.
func ExampleNew() {
	eng, _ := engine.New(enginetest.GreyModel(64, 48), engine.WithMaxSessions(8))
	defer eng.Close()
	w, _ := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	issuer, _ := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))
	n, err := node.New(w, node.Config{ID: "node-1", Addr: "http://10.0.0.7:8080", Capacity: 8, Store: registry.New(rdb, ""), Issuer: issuer})
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest("POST", "/node/sessions", nil)) // no token
	fmt.Println(rec.Code, n.Stats().Capacity, n.Ready())
	// Output: 401 8 false
}
