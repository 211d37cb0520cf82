// Command framewire serves a Framewire model over the Reactor local-mode
// protocol, so the published @reactor-team/js-sdk (with local: true)
// connects to it unmodified. Without flags it serves the built-in demo model
// "framewire-demo" on 127.0.0.1:8080, reachable from this host only; to
// listen on every interface use -addr :8080 and list the origins of the
// pages that may use it with -allow-origin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/gpu"
)

// options are the command-line settings.
type options struct {
	addr        string
	loopback    bool
	ifaces      string
	publicIPs   string
	stun        string
	turn        string
	turnUser    string
	turnPass    string
	orphanGrace time.Duration
	pingTimeout time.Duration
	maxUpload   int64
	logLevel    string

	allowOrigins   string
	publicURL      string
	trustForwarded bool
	maxConns       int
	readTimeout    time.Duration
	idleTimeout    time.Duration
	uploadMemory   int64
	mode           string      // "local" (default) or "node"
	node           nodeOptions // -mode node
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("framewire", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "HTTP listen address; loopback only by default, :8080 listens on every interface")
	fs.BoolVar(&o.loopback, "loopback", true, "offer loopback ICE candidates (browser on the same host)")
	fs.StringVar(&o.ifaces, "interfaces", "", "comma-separated network interfaces for host candidates (default all)")
	fs.StringVar(&o.publicIPs, "public-ip", "", "comma-separated public IPs announced as host candidates (1:1 NAT)")
	fs.StringVar(&o.stun, "stun", "", "comma-separated STUN URLs (stun:host:port), also handed to the client")
	fs.StringVar(&o.turn, "turn", "", "comma-separated TURN URLs, also handed to the client")
	fs.StringVar(&o.turnUser, "turn-user", "", "TURN username")
	fs.StringVar(&o.turnPass, "turn-password", "", "TURN password")
	fs.DurationVar(&o.orphanGrace, "orphan-grace", 60*time.Second, "keep a session without a client this long for reconnect()")
	fs.DurationVar(&o.pingTimeout, "ping-timeout", 20*time.Second, "a client silent on the data channel this long is treated as lost")
	fs.Int64Var(&o.maxUpload, "max-upload", 100<<20, "largest upload in bytes")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.allowOrigins, "allow-origin", "", "comma-separated browser origins (https://app.example.com) allowed to use the server, * for any; default: the server's own page and localhost origins")
	fs.StringVar(&o.publicURL, "public-url", "", "base URL browsers reach the server at, for upload URLs (default: the listener's address)")
	fs.BoolVar(&o.trustForwarded, "trust-forwarded-headers", false, "build upload URLs from X-Forwarded-Proto/-Host (only behind a proxy that sets them)")
	fs.IntVar(&o.maxConns, "max-conns", 1024, "most HTTP connections served at once; more wait to be accepted")
	fs.DurationVar(&o.readTimeout, "read-timeout", 15*time.Second, "time to read a request (upload bodies get a deadline from their size instead)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 60*time.Second, "keep-alive connections idle this long are closed")
	fs.Int64Var(&o.uploadMemory, "upload-memory", 256<<20, "upload bytes held in memory by all sessions together")
	fs.StringVar(&o.mode, "mode", "local", "local: one replaceable session, no auth (the SDK's local mode); node: a production engine node behind fronts (cmd/front)")
	nodeFlags(fs, &o.node)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.mode != "local" && o.mode != "node" {
		return o, fmt.Errorf("-mode %q: want local or node", o.mode)
	}
	return o, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o options) serverConfig(log *slog.Logger) protocol.Config {
	pc := peer.Config{
		Loopback:   o.loopback,
		Interfaces: split(o.ifaces),
		PublicIPs:  split(o.publicIPs),
		Logger:     log,
	}
	if s := split(o.stun); len(s) > 0 {
		pc.ICEServers = append(pc.ICEServers, peer.ICEServer{URLs: s})
	}
	if t := split(o.turn); len(t) > 0 {
		pc.ICEServers = append(pc.ICEServers, peer.ICEServer{URLs: t, Username: o.turnUser, Credential: o.turnPass})
	}
	return protocol.Config{
		Peer:                  pc,
		OrphanGrace:           o.orphanGrace,
		PingTimeout:           o.pingTimeout,
		MaxUploadSize:         o.maxUpload,
		UploadMemory:          o.uploadMemory,
		AllowedOrigins:        split(o.allowOrigins),
		PublicURL:             o.publicURL,
		TrustForwardedHeaders: o.trustForwarded,
		Logger:                log,
	}
}

// httpServer bounds what a client can hold: headers and bodies have a read
// deadline (upload bodies replace it with one from their size), idle
// keep-alive connections are closed, headers are at most 64 KiB. The
// connection cap is on the listener (serve).
func (o options) httpServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, o.readTimeout),
		ReadTimeout:       o.readTimeout,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "framewire: -log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		log.Error("framewire", "err", fmt.Errorf("listen on %s: %w", o.addr, err))
		os.Exit(1)
	}
	if o.mode == "node" {
		if err := serveNode(ctx, ln, o, log); err != nil {
			log.Error("framewire", "err", err)
			os.Exit(1)
		}
		return
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		log.Warn("listening beyond loopback: any host that reaches this address can use the model (browsers only from allowed origins)", "addr", ln.Addr().String())
	}
	fmt.Printf("framewire: serving model framewire-demo on http://localhost:%s/ (Reactor SDK: new Reactor({modelName: \"framewire-demo\", local: true}))\n", port)
	if err := serve(ctx, ln, o, log); err != nil {
		log.Error("framewire", "err", err)
		os.Exit(1)
	}
}

// deviceSetup is how the engine reaches a GPU (gpu_cuda.go) or why it
// does not (gpu_nocuda.go).
type deviceSetup struct {
	option  engine.Option                                    // engine.WithDeviceSupport, or nil for the default
	encoder func(track string) (wiring.DeviceEncoder, error) // nil: device frames are not encoded
	decoder func() (pipeline.RGBDecoder, error)              // nil: inbound H.264 decodes on the CPU
	close   func() error
	device  *gpu.Device // the open device, nil when none
}

// loadDemo loads the demo model once and wires its media on dev (device
// encoders, and NVDEC for the webcam, in a cuda build), with FFmpeg's log
// routed to log (encode.Probe keeps its own rejected backends' FFmpeg
// lines in their reasons). The caller closes the engine.
func loadDemo(log *slog.Logger, dev deviceSetup, opts ...engine.Option) (*engine.Engine, *wiring.Wiring, error) {
	encode.RouteFFmpegLog(log)
	eng, err := engine.New(demoModel(), append([]engine.Option{engine.WithLogger(log), dev.option}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	wired, err := wiring.New(eng, wiring.Config{DeviceEncoder: dev.encoder, H264Decoder: dev.decoder, Logger: log})
	if err != nil {
		_ = eng.Close()
		return nil, nil, err
	}
	return eng, wired, nil
}

// health reports the open device's sticky fault (gpu.Device.Fault): nil
// when it is usable or when there is no device.
func (d deviceSetup) health() error {
	if d.device == nil {
		return nil
	}
	return d.device.Fault()
}

// gauges are the device's metrics collectors (none without a device).
func (d deviceSetup) gauges() []prometheus.Collector {
	if d.device == nil {
		return nil
	}
	return []prometheus.Collector{metrics.DeviceFaultGauge(d.health)}
}

// closeLogged closes the device, logging a failure.
func (d deviceSetup) closeLogged(log *slog.Logger) {
	if err := d.close(); err != nil {
		log.Warn("close the CUDA device", "err", err)
	}
}

// serve runs the protocol server for the demo model on ln until ctx ends:
// the model is declared with package engine, loaded once by engine.New,
// wired by wiring.New and served by protocol.NewServer like any model
// would be. It owns
// ln and closes it on every return, an early error included.
func serve(ctx context.Context, ln net.Listener, o options, log *slog.Logger) error {
	defer ln.Close() // after hs.Serve this is a second, harmless Close
	dev := openDevice(log)
	defer dev.closeLogged(log)
	eng, wired, err := loadDemo(log, dev)
	if err != nil {
		return err
	}
	defer eng.Close()
	srv, err := protocol.NewServer(wired, o.serverConfig(log))
	if err != nil {
		return err
	}
	defer srv.Close()
	prom, err := metrics.Handler(wired, srv, dev.gauges()...)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		if err := dev.health(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", prom)
	mux.Handle("/", srv)
	mountPage(mux, wired, srv, log) // page.go: the demo page at / and GET /framewire/stats
	hs := o.httpServer(mux, log)
	errc := make(chan error, 1)
	// netutil.LimitListener (golang.org/x/net, kept by the Go team) caps
	// the connections served at once: held connections cannot take every
	// file descriptor; more wait in the kernel's accept queue.
	go func() { errc <- hs.Serve(netutil.LimitListener(ln, max(o.maxConns, 1))) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
