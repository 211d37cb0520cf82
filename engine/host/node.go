package host

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/wiring"
)

// NodeOptions are the settings of -mode node (production mode: many
// sessions, registered in Redis, reached through fronts).
type NodeOptions struct {
	ID, Advertise, Redis, SecretFile string
	Capacity, PerGPU                 int
	MaxDuration, Drain               time.Duration
	Heartbeat, TTL, Reconnect        time.Duration
	EndedTTL                         time.Duration

	// Calibrate (-calibrate) measures the libx264 bound at start
	// (Calibrate, for CalibrateTime at CalibrateSize) and, unless Capacity
	// is given, serves CalibrationEfficiency × bound sessions.
	Calibrate     bool
	CalibrateSize string        // WxH; "" is ModelWidth×ModelHeight, else 1280x720
	CalibrateTime time.Duration // how long the encoders run
	// ModelWidth and ModelHeight are the model's output picture size, set
	// by a binary that knows it (cmd/framewire: its demo's); not a flag.
	ModelWidth, ModelHeight int
}

// DefaultCapacity is the sessions a node serves when neither -capacity
// nor -calibrate says.
const DefaultCapacity = 4

func (o *NodeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.ID, "node-id", "", "node id in the registry (default: hostname:port)")
	fs.StringVar(&o.Advertise, "advertise", "", "base URL fronts reach this node at (default http://127.0.0.1:<port>)")
	fs.StringVar(&o.Redis, "redis", "127.0.0.1:6379", "Redis address (host:port)")
	fs.StringVar(&o.SecretFile, "jwt-secret-file", "", "file holding the JWT secret shared with the fronts (default: $FRAMEWIRE_JWT_SECRET)")
	fs.IntVar(&o.Capacity, "capacity", 0, "concurrent sessions this node serves (0: the -calibrate figure with -calibrate, else 4)")
	fs.BoolVar(&o.Calibrate, "calibrate", false, "at start, encode for -calibrate-time to measure this host's libx264 bound and derive the capacity from it (unless -capacity is given); logged and in /metrics")
	fs.StringVar(&o.CalibrateSize, "calibrate-size", "", "with -calibrate: picture size WxH to encode (default: the model's output size when the binary knows it, else 1280x720)")
	fs.DurationVar(&o.CalibrateTime, "calibrate-time", 2*time.Second, "with -calibrate: how long the encoders run")
	fs.IntVar(&o.PerGPU, "sessions-per-gpu", 0, "with a CUDA device: at most this many sessions per GPU (0: -capacity alone)")
	fs.DurationVar(&o.MaxDuration, "max-duration", 20*time.Minute, "a session ends this long after it started")
	fs.DurationVar(&o.Drain, "drain-timeout", 30*time.Second, "on SIGTERM, running sessions end within this bound")
	fs.DurationVar(&o.Heartbeat, "heartbeat", time.Second, "registration refresh period")
	fs.DurationVar(&o.TTL, "ttl", 3*time.Second, "registration lifetime without a heartbeat")
	fs.DurationVar(&o.Reconnect, "reconnect-window", 30*time.Second, "a session without a client is kept this long for reconnect()")
	fs.DurationVar(&o.EndedTTL, "ended-ttl", time.Minute, "the record of a session this node ended is kept this long in Redis (as the fronts' -ended-ttl)")
}

// ServeNode runs m as a production-mode engine node on ln until ctx ends,
// then drains (running sessions end within o.Node.Drain). It prints one
// line to out saying where it serves. The HTTP server is local mode's
// (httpserve: timeouts, header and body caps, connection caps). It owns ln.
func ServeNode(ctx context.Context, ln net.Listener, m engine.Model, o Options, log *slog.Logger, out io.Writer) error {
	defer ln.Close()
	no := o.Node
	secret, err := auth.LoadSecret(no.SecretFile, "FRAMEWIRE_JWT_SECRET")
	if err != nil {
		return err
	}
	issuer, err := auth.NewIssuer(secret)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if no.Advertise == "" {
		no.Advertise = "http://127.0.0.1:" + port
	}
	if no.ID == "" {
		no.ID = "node-" + port
	}
	log = log.With("node", no.ID)
	dev := openDevice(log)
	defer dev.closeLogged(log)
	capacity, cal, err := no.capacity(ctx, log)
	if err != nil {
		return err
	}
	if dev.device != nil && no.PerGPU > 0 {
		capacity = min(capacity, no.PerGPU) // one device per node process
	}
	recs, err := o.Recordings.open(log) // record.go: sessions record when the model's config says so
	if err != nil {
		return err
	}
	defer recs.Close() // after the engine: sessions finish their recordings first
	eng, wired, err := loadRecording(m, log, dev, recs, engine.WithMaxSessions(capacity))
	if err != nil {
		return err
	}
	defer eng.Close()
	rdb := redis.NewClient(&redis.Options{Addr: no.Redis})
	defer rdb.Close()
	pcfg := o.ServerConfig(log)
	pcfg.OrphanGrace = no.Reconnect
	n, err := node.New(wired, node.Config{
		ID: no.ID, Addr: no.Advertise, Capacity: capacity, MaxDuration: no.MaxDuration, DrainTimeout: no.Drain, EndedTTL: no.EndedTTL,
		Heartbeat: no.Heartbeat, TTL: no.TTL, Protocol: pcfg, Store: registry.New(rdb, ""), Issuer: issuer, Logger: log,
		Health: dev.health,
	})
	if err != nil {
		return err
	}
	cfg := o.Flags.Config(log)
	cfg.Meter = &httpserve.Meter{}
	cfg.AllowURLHosts(no.Advertise)
	hs := httpserve.Start(ln, nodeRoutes(wired, n, dev, cal, cfg.Meter, log), cfg)
	fmt.Fprintf(out, "framewire: engine node %s serving model %s on %s (capacity %d, redis %s)\n", no.ID, m.Name, no.Advertise, capacity, no.Redis)
	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	runc := make(chan error, 1)
	go func() { runc <- n.Run(nodeCtx) }() // returns after the drain
	var runErr error
	select {
	case runErr = <-runc:
	case <-hs.Done(): // the listener failed: drain, then report it
		stopNode()
		<-runc
		return hs.Shutdown()
	}
	if err := hs.Shutdown(); err != nil {
		return err
	}
	return runErr
}

// nodeRoutes is the node's HTTP API: /metrics (the engine's, the node's,
// the device's, the calibration's and the HTTP server's counters),
// /framewire/stats (every session, by the fronts' ids) and the node's
// routes.
func nodeRoutes(wired *wiring.Wiring, n *node.Node, dev deviceSetup, cal *Calibration, meter *httpserve.Meter, log *slog.Logger) http.Handler {
	reg := nodeRegistry(wired, n)
	reg.MustRegister(dev.gauges()...)
	if cal != nil {
		reg.MustRegister(cal.gauges()...)
	}
	reg.MustRegister(meter.Collectors()...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /framewire/stats", metrics.StatsHandler(wired, n.Server(), log))
	mux.Handle("/", n)
	return mux
}

// capacity is the sessions the node serves: -capacity when given, else
// with -calibrate the calibrated figure (cal, also returned when
// -capacity wins), else DefaultCapacity.
func (no NodeOptions) capacity(ctx context.Context, log *slog.Logger) (n int, cal *Calibration, err error) {
	if no.Calibrate {
		size := no.CalibrateSize
		if size == "" {
			size = "1280x720"
			if no.ModelWidth > 0 && no.ModelHeight > 0 {
				size = fmt.Sprintf("%dx%d", no.ModelWidth, no.ModelHeight)
			}
		}
		w, h, err := parseSize(size)
		if err != nil {
			return 0, nil, fmt.Errorf("-calibrate-size: %w", err)
		}
		c, err := Calibrate(ctx, w, h, 30, no.CalibrateTime)
		if err != nil {
			return 0, nil, err
		}
		cal = &c
		log.Info("calibrated", "size", size, "workers", c.Workers, "encoders", c.Encoders, "frames", c.Frames,
			"convert_ms", float64(c.Convert.Microseconds())/1000, "encode_ms", float64(c.Encode.Microseconds())/1000,
			"bound_sessions", math.Round(c.Bound*10)/10, "efficiency", CalibrationEfficiency, "capacity", c.Capacity,
			"capacity_flag", no.Capacity)
	}
	switch {
	case no.Capacity < 0:
		return 0, nil, fmt.Errorf("-capacity %d: want at least 1 (0: the default)", no.Capacity)
	case no.Capacity > 0:
		return no.Capacity, cal, nil
	case cal != nil:
		return cal.Capacity, cal, nil
	}
	return DefaultCapacity, nil, nil
}

// gauges expose the calibration in /metrics.
func (c *Calibration) gauges() []prometheus.Collector {
	g := func(name, help string, v float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framewire_node_calibration_" + name, Help: help}, func() float64 { return v })
	}
	return []prometheus.Collector{
		g("bound_sessions", "30 fps sessions' worth of bare libx264 encodes this host sustained at start (-calibrate).", c.Bound),
		g("capacity", "Sessions the calibration derived (efficiency × bound); the node serves it unless -capacity is given.", float64(c.Capacity)),
		g("encode_seconds", "Mean libx264 encode time per picture at start, conversion excluded.", c.Encode.Seconds()),
		g("convert_seconds", "Mean RGB to I420 conversion time per picture at start.", c.Convert.Seconds()),
	}
}

// nodeRegistry exposes the engine's collector over every session of the
// node's protocol server and the node's counters.
func nodeRegistry(w *wiring.Wiring, n *node.Node) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector(w, n.Server()))
	gauge := func(name, help string, v func(node.Stats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framewire_node_" + name, Help: help}, func() float64 { return v(n.Stats()) }))
	}
	counter := func(name, help string, v func(node.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "framewire_node_" + name, Help: help}, func() float64 { return v(n.Stats()) }))
	}
	gauge("sessions", "Sessions running on the node.", func(s node.Stats) float64 { return float64(s.Running) })
	gauge("capacity", "Sessions the node admits at once.", func(s node.Stats) float64 { return float64(s.Capacity) })
	gauge("draining", "1 while the node drains.", func(s node.Stats) float64 {
		if s.Draining {
			return 1
		}
		return 0
	})
	counter("placements_total", "Sessions placed here.", func(s node.Stats) float64 { return float64(s.Started) })
	counter("refusals_total", "Placements refused (full, draining, start failed).", func(s node.Stats) float64 { return float64(s.Refused) })
	counter("sessions_ended_total", "Sessions ended here.", func(s node.Stats) float64 { return float64(s.Ended) })
	return reg
}
