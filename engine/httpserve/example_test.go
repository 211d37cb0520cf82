package httpserve_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/framewire/framewire/engine/httpserve"
)

// A binary registers the shared flags, then serves its handler with the
// bounds they give until its context ends.
func Example() {
	var f httpserve.Flags
	fs := flag.NewFlagSet("mybinary", flag.ContinueOnError)
	f.Register(fs, "127.0.0.1:0")
	if err := fs.Parse([]string{"-max-conns", "64", "-max-conns-per-ip", "8"}); err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- httpserve.Serve(ctx, ln, mux, f.Config(slog.New(slog.DiscardHandler))) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	fmt.Print(resp.StatusCode, " ", string(body))

	stop() // graceful shutdown: requests in flight finish first
	fmt.Println("stopped:", <-served)
	// Output:
	// 200 ok
	// stopped: <nil>
}
