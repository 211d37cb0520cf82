package front_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/registry"
)

// A front needs the shared Redis and the deployment's token issuer; it is
// an http.Handler, and Run (not shown) sweeps abandoned sessions. CORS
// preflights are answered before any routing, on every path.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // connects on first use
	defer rdb.Close()
	issuer, _ := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))
	f, err := front.New(front.Config{Store: registry.New(rdb, ""), Issuer: issuer, Prefix: "/reactor"})
	if err != nil {
		panic(err)
	}
	req := httptest.NewRequest("OPTIONS", "/reactor//sessions/x", nil)
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Methods"))
	// Output: 204 GET, POST, PUT, DELETE, OPTIONS
}
