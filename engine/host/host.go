// Package host serves one model the way the framewire command does: the
// Reactor local-mode protocol (one replaceable session, no auth) or a
// production engine node (many sessions, registered in Redis, reached
// through fronts), with the command's flags, hardened HTTP settings, the
// CUDA device when the build and the host have one, /health, /metrics and,
// for a model whose tracks fit it, the demo page.
//
// cmd/framewire serves its built-in demo model with it and the C ABI
// (cmd/libframewire, and so the Python package) serves Python models with
// it, so every way of serving a model takes the same flags and behaves
// alike:
//
//	o, err := host.Parse("mymodel", os.Args[1:])
//	...
//	err = host.Run(ctx, myModel, o, logger) // until ctx ends
//
// Run blocks until ctx is done (then shuts the server down gracefully) or
// serving fails; it is safe to run several on different addresses, each
// with its own model.
package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/gpu"
)

// Run listens on o.Addr and serves m in o.Mode until ctx ends, printing
// one line to out (nil: os.Stdout) that says where and how to connect.
// It raises GOMAXPROCS for many sessions' encodes (UseEncoderProcs) and
// puts the process under SCHED_BATCH (UseBatchScheduling).
// It owns the listener and everything it starts; on return nothing of it
// is left running.
func Run(ctx context.Context, m engine.Model, o Options, log *slog.Logger, out io.Writer) error {
	if out == nil {
		out = os.Stdout
	}
	procs := UseEncoderProcs()
	policy, err := UseBatchScheduling()
	if log != nil {
		log.Info("scheduler", "gomaxprocs", procs, "cores", runtime.NumCPU(), "policy", policy)
		if err != nil {
			log.Warn("kept the default scheduling policy", "err", err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	if o.Mode == "node" {
		return ServeNode(ctx, ln, m, o, log, out)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		log.Warn("listening beyond loopback: any host that reaches this address can use the model (browsers only from allowed origins)", "addr", ln.Addr().String())
	}
	fmt.Fprintf(out, "framewire: serving model %s on http://localhost:%s/ (Reactor SDK: new Reactor({modelName: %q, local: true}))\n", m.Name, port, m.Name)
	return Serve(ctx, ln, m, o, log)
}

// deviceSetup is how the engine reaches a GPU (device_cuda.go) or why it
// does not (device_nocuda.go).
type deviceSetup struct {
	option  engine.Option                                    // engine.WithDeviceSupport, or nil for the default
	encoder func(track string) (wiring.DeviceEncoder, error) // nil: device frames are not encoded
	decoder func() (pipeline.RGBDecoder, error)              // nil: inbound H.264 decodes on the CPU
	close   func() error
	device  *gpu.Device // the open device, nil when none
}

// load loads m once and wires its media on dev (device encoders, and
// NVDEC for video inputs, in a cuda build), with FFmpeg's log routed to
// log (encode.Probe keeps its own rejected backends' FFmpeg lines in
// their reasons). The caller closes the engine.
func load(m engine.Model, log *slog.Logger, dev deviceSetup, opts ...engine.Option) (*engine.Engine, *wiring.Wiring, error) {
	return loadRecording(m, log, dev, nil, opts...)
}

// loadRecording is load whose sessions record when the model's config
// file turns recording on (its `recording:` block) and recs is not nil.
func loadRecording(m engine.Model, log *slog.Logger, dev deviceSetup, recs *record.Store, opts ...engine.Option) (*engine.Engine, *wiring.Wiring, error) {
	encode.RouteFFmpegLog(log)
	eng, err := engine.New(m, append([]engine.Option{engine.WithLogger(log), dev.option}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	wc := wiring.Config{DeviceEncoder: dev.encoder, H264Decoder: dev.decoder, Logger: log}
	if err := recordingConfig(eng, recs, &wc, log); err != nil {
		_ = eng.Close()
		return nil, nil, err
	}
	wired, err := wiring.New(eng, wc)
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

// Serve runs the local-mode protocol server for m on ln until ctx ends:
// the model is loaded once by engine.New, wired by wiring.New and served
// by protocol.NewServer, with /health, /metrics, GET /framewire/stats and
// the demo page. It owns ln and closes it on every return, an early error
// included.
func Serve(ctx context.Context, ln net.Listener, m engine.Model, o Options, log *slog.Logger) error {
	defer ln.Close() // after hs.Serve this is a second, harmless Close
	dev := openDevice(log)
	defer dev.closeLogged(log)
	recs, err := o.Recordings.open(log) // record.go
	if err != nil {
		return err
	}
	defer recs.Close() // after the engine: sessions finish their recordings first
	eng, wired, err := loadRecording(m, log, dev, recs)
	if err != nil {
		return err
	}
	defer eng.Close()
	srv, err := protocol.NewServer(wired, o.ServerConfig(log))
	if err != nil {
		return err
	}
	defer srv.Close()
	meter := &httpserve.Meter{}
	prom, err := metrics.Handler(wired, srv, append(dev.gauges(), meter.Collectors()...)...)
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
	MountPage(mux, wired, srv, log) // the demo page at / and GET /framewire/stats
	// httpserve holds the timeouts, header and body caps and the
	// connection caps (process and per client) that keep /health and
	// /metrics answerable under a connection flood.
	cfg := o.Flags.Config(log)
	cfg.Meter = meter
	cfg.AllowURLHosts(o.PublicURL)
	return httpserve.Serve(ctx, ln, mux, cfg)
}
