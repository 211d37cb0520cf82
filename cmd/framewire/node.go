package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/auth"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/node"
	"github.com/framewire/framewire/engine/registry"
	"github.com/framewire/framewire/engine/wiring"
)

// nodeOptions are the settings of -mode node (production mode: many
// sessions, registered in Redis, reached through fronts).
type nodeOptions struct {
	id, advertise, redis, secretFile string
	capacity, perGPU                 int
	maxDuration, drain               time.Duration
	heartbeat, ttl, reconnect        time.Duration
}

func nodeFlags(fs *flag.FlagSet, o *nodeOptions) {
	fs.StringVar(&o.id, "node-id", "", "node id in the registry (default: hostname:port)")
	fs.StringVar(&o.advertise, "advertise", "", "base URL fronts reach this node at (default http://127.0.0.1:<port>)")
	fs.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (host:port)")
	fs.StringVar(&o.secretFile, "jwt-secret-file", "", "file holding the JWT secret shared with the fronts (default: $FRAMEWIRE_JWT_SECRET)")
	fs.IntVar(&o.capacity, "capacity", 4, "concurrent sessions this node serves")
	fs.IntVar(&o.perGPU, "sessions-per-gpu", 0, "with a CUDA device: at most this many sessions per GPU (0: -capacity alone)")
	fs.DurationVar(&o.maxDuration, "max-duration", 20*time.Minute, "a session ends this long after it started")
	fs.DurationVar(&o.drain, "drain-timeout", 30*time.Second, "on SIGTERM, running sessions end within this bound")
	fs.DurationVar(&o.heartbeat, "heartbeat", time.Second, "registration refresh period")
	fs.DurationVar(&o.ttl, "ttl", 3*time.Second, "registration lifetime without a heartbeat")
	fs.DurationVar(&o.reconnect, "reconnect-window", 30*time.Second, "a session without a client is kept this long for reconnect()")
}

// serveNode runs the demo model as a production-mode engine node on ln
// until ctx ends, then drains.
func serveNode(ctx context.Context, ln net.Listener, o options, log *slog.Logger) error {
	defer ln.Close()
	no := o.node
	secret, err := auth.LoadSecret(no.secretFile, "FRAMEWIRE_JWT_SECRET")
	if err != nil {
		return err
	}
	issuer, err := auth.NewIssuer(secret)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if no.advertise == "" {
		no.advertise = "http://127.0.0.1:" + port
	}
	if no.id == "" {
		no.id = "node-" + port
	}
	log = log.With("node", no.id)
	dev := openDevice(log)
	defer dev.closeLogged(log)
	capacity := no.capacity
	if dev.device != nil && no.perGPU > 0 {
		capacity = min(capacity, no.perGPU) // one device per node process
	}
	eng, wired, err := loadDemo(log, dev, engine.WithMaxSessions(capacity))
	if err != nil {
		return err
	}
	defer eng.Close()
	rdb := redis.NewClient(&redis.Options{Addr: no.redis})
	defer rdb.Close()
	pcfg := o.serverConfig(log)
	pcfg.OrphanGrace = no.reconnect
	n, err := node.New(wired, node.Config{
		ID: no.id, Addr: no.advertise, Capacity: capacity, MaxDuration: no.maxDuration, DrainTimeout: no.drain,
		Heartbeat: no.heartbeat, TTL: no.ttl, Protocol: pcfg, Store: registry.New(rdb, ""), Issuer: issuer, Logger: log,
		Health: dev.health,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	reg := nodeRegistry(wired, n)
	reg.MustRegister(dev.gauges()...)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", n)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("framewire: engine node %s serving model framewire-demo on %s (capacity %d, redis %s)\n", no.id, no.advertise, capacity, no.redis)
	runErr := n.Run(ctx) // returns after the drain
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return runErr
}

// nodeRegistry exposes the engine's collector and the node's counters.
func nodeRegistry(w *wiring.Wiring, n *node.Node) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector(w, nil))
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
