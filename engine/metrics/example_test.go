package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

// A program linking the engine serves its metrics beside the protocol
// routes: Handler for Prometheus (or Collector with its own registry),
// StatsHandler for the JSON document.
func ExampleHandler() {
	eng, err := engine.New(engine.Model{Name: "my-model", New: func(engine.Config) (engine.Runner, error) {
		return engine.RunFunc(func(ctx context.Context, _ *engine.Session) error { <-ctx.Done(); return nil }), nil
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	wired, _ := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	srv, _ := protocol.NewServer(wired, protocol.Config{})
	defer srv.Close()
	prom, err := metrics.Handler(wired, srv)
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	prom.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "framewire_sessions_started_total") || strings.HasPrefix(line, "framewire_live_sessions") {
			fmt.Println(line)
		}
	}
	// Output:
	// framewire_live_sessions 0
	// framewire_sessions_started_total 0
}
