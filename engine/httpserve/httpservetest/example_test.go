package httpservetest_test

import (
	"testing"
	"time"

	"github.com/framewire/framewire/engine/httpserve/httpservetest"
)

// In a test: client 127.0.0.2 holds 1,100 idle keep-alive connections
// while client 127.0.0.3 must still be answered within a second.
func Example() {
	_ = func(t *testing.T, addr string) {
		httpservetest.RaiseFDLimit(t, 8192)
		flood := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 1100, httpservetest.KeepAlive, "/")
		code, _, took := httpservetest.Get(t, "127.0.0.3", addr, "/healthz")
		if code != 200 || took > time.Second {
			t.Errorf("another client: %d after %v", code, took)
		}
		t.Logf("the flooding client holds %d connections", flood.Alive(200*time.Millisecond))
	}
}
