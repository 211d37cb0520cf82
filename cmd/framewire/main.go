// Command framewire serves a Framewire model over the Reactor local-mode
// protocol, so the published @reactor-team/js-sdk (with local: true)
// connects to it unmodified. Without flags it serves the built-in demo model
// "framewire-demo" on 127.0.0.1:8080, reachable from this host only; to
// listen on every interface use -addr :8080 and list the origins of the
// pages that may use it with -allow-origin. With -mode node it is a
// production engine node behind fronts (cmd/front). Serving itself is
// package engine/host, shared with Python models (cmd/libframewire).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/framewire/framewire/engine/host"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "framewire:", err)
		os.Exit(2)
	}
	level, err := o.Level()
	if err != nil {
		fmt.Fprintln(os.Stderr, "framewire:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := host.Run(ctx, demoModel(), o, log, os.Stdout); err != nil {
		log.Error("framewire", "err", err)
		os.Exit(1)
	}
}

// The tests' names for the shared serving code.
type options = host.Options

// parseFlags parses the command line; a node's -calibrate encodes the demo
// model's output size unless -calibrate-size says otherwise.
func parseFlags(args []string) (options, error) {
	o, err := host.Parse("framewire", args)
	o.Node.ModelWidth, o.Node.ModelHeight = demoW, demoH
	return o, err
}

// serve serves the demo model in local mode on ln until ctx ends.
func serve(ctx context.Context, ln net.Listener, o options, log *slog.Logger) error {
	return host.Serve(ctx, ln, demoModel(), o, log)
}

// serveNode serves the demo model as a production engine node on ln.
func serveNode(ctx context.Context, ln net.Listener, o options, log *slog.Logger) error {
	return host.ServeNode(ctx, ln, demoModel(), o, log, os.Stdout)
}
