// Command front serves Framewire's production-mode coordinator API (the
// Reactor SDK's `new Reactor({modelName, apiUrl})` with `connect(jwt)`):
// tokens, sessions, placement on engine nodes and the reverse proxy of the
// transport routes, with all state in Redis. Run any number of replicas
// behind one address. Engine nodes are `framewire -mode node`.
//
//	FRAMEWIRE_API_KEYS=acme:<key> FRAMEWIRE_JWT_SECRET=<32+ bytes> front -addr :8090 -redis 127.0.0.1:6379
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/httpserve"
)

// options are the command-line settings.
type options struct {
	httpserve.Flags // -addr, -max-conns, -read-timeout, … as cmd/framewire's

	redis, keysFile, secretFile, prefix, publicURL, cluster, models string
	deadline, pollGap, drain, janitor                               time.Duration
	drainDelay, sessionTTL, endedTTL, reconnectWindow               time.Duration
	maxPerAccount                                                   int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("front", flag.ContinueOnError)
	o.Flags.Register(fs, ":8090")
	fs.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (host:port)")
	fs.StringVar(&o.keysFile, "keys-file", "", "file of account:api-key lines (default: $FRAMEWIRE_API_KEYS)")
	fs.StringVar(&o.secretFile, "jwt-secret-file", "", "file holding the JWT signing secret shared with the nodes (default: $FRAMEWIRE_JWT_SECRET)")
	fs.StringVar(&o.prefix, "prefix", "", "path prefix the API is served under (e.g. /reactor)")
	fs.StringVar(&o.publicURL, "public-url", "", "base URL of presigned upload URLs (default: the request's host)")
	fs.StringVar(&o.cluster, "cluster", "framewire", "name reported as the sessions' cluster")
	fs.StringVar(&o.models, "models", "", "comma-separated models accepted (queued) even while none of their nodes is live")
	fs.DurationVar(&o.deadline, "placement-deadline", 130*time.Second, "a session not placed this long after creation is CLOSED")
	fs.DurationVar(&o.pollGap, "poll-gap", 30*time.Second, "a queued session not polled this long is abandoned")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "on SIGTERM, time to finish requests in flight")
	fs.DurationVar(&o.drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, /readyz answers 503 this long, every other route still served, before the listener closes (so load balancers stop sending first)")
	fs.DurationVar(&o.sessionTTL, "session-ttl", 30*time.Minute, "least lifetime of a bound session's record; a node's committed slot (its -max-duration plus a minute) extends it")
	fs.DurationVar(&o.endedTTL, "ended-ttl", time.Minute, "an ended session's record is kept this long (polls read CLOSED), then routes answer 404")
	fs.DurationVar(&o.reconnectWindow, "reconnect-window", 30*time.Second, "a session whose node died stays INACTIVE this long, re-placed on another node by the client's reconnect()")
	fs.DurationVar(&o.janitor, "janitor", time.Second, "period of the sweep: dead nodes' sessions, abandoned and expired queued sessions, queue placement")
	fs.IntVar(&o.maxPerAccount, "max-per-account", 0, "live sessions per account, queued included (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: every setting is a flag (-addr, -redis, …)", fs.Arg(0))
	}
	return o, o.Flags.Check()
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "front:", err)
		}
		os.Exit(2)
	}
	level, _ := o.Level() // checked by parseFlags
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("front", "err", err)
		os.Exit(1)
	}
}

// split is a comma-separated flag value's items.
var split = httpserve.List

// run serves the front until ctx ends, then stops taking requests
// (/readyz turns 503 first) and finishes those in flight.
func run(ctx context.Context, o options, log *slog.Logger) error {
	keys, err := auth.LoadKeys(o.keysFile, "FRAMEWIRE_API_KEYS")
	if err != nil {
		return err
	}
	secret, err := auth.LoadSecret(o.secretFile, "FRAMEWIRE_JWT_SECRET")
	if err != nil {
		return err
	}
	issuer, err := auth.NewIssuer(secret)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.redis})
	defer rdb.Close()
	f, err := front.New(front.Config{
		Store: registry.New(rdb, ""), Issuer: issuer, Keys: keys, Cluster: o.cluster,
		Prefix: o.prefix, PublicURL: o.publicURL, Models: split(o.models),
		PlacementDeadline: o.deadline, PollGap: o.pollGap, MaxPerAccount: o.maxPerAccount, Janitor: o.janitor, Logger: log,
		SessionTTL: o.sessionTTL, EndedTTL: o.endedTTL, ReconnectWindow: o.reconnectWindow,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	var draining atomic.Bool
	cfg := o.Flags.Config(log)
	cfg.Meter = &httpserve.Meter{}
	cfg.AllowURLHosts(o.publicURL)
	reg := registryOf(f)
	reg.MustRegister(cfg.Meter.Collectors()...)
	h := handler(f, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), &draining)
	cfg.ShutdownTimeout = o.drain
	// Served even over the connection cap, under the prefix too.
	cfg.Priority = []string{"/healthz", "/readyz", "/metrics", o.prefix + "/healthz", o.prefix + "/readyz"}
	hs := httpserve.Start(ln, h, cfg)
	log.Info("front serving", "addr", ln.Addr().String(), "redis", o.redis)
	jctx, jcancel := context.WithCancel(context.Background())
	jdone := make(chan error, 1)
	go func() { jdone <- f.Run(jctx) }()
	select {
	case <-hs.Done():
	case <-ctx.Done():
		drainReady(hs, &draining, o, log)
	}
	err = hs.Shutdown()
	jcancel()
	<-jdone
	return err
}

// drainReady is the first step of a drain: /readyz answers 503 for
// -drain-delay while every other route is still served, so load
// balancers take the front out before its listener closes; the caller's
// hs.Shutdown then closes the listener and lets the requests in flight
// finish within -drain (httpserve.Config.ShutdownTimeout).
func drainReady(hs *httpserve.Server, draining *atomic.Bool, o options, log *slog.Logger) {
	draining.Store(true)
	log.Info("draining: /readyz answers 503", "delay", o.drainDelay.String(), "bound", o.drain.String())
	t := time.NewTimer(o.drainDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-hs.Done():
	}
}

// handler serves /metrics, answers /readyz 503 once draining is set, and
// hands everything else to the front unchanged: no http.ServeMux in
// between, which would redirect the "//sessions" of an apiUrl with a
// trailing slash instead of letting the front route it.
func handler(f *front.Front, metrics http.Handler, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
			metrics.ServeHTTP(w, r)
		case r.URL.Path == "/readyz" && draining.Load():
			w.Header().Set("Access-Control-Allow-Origin", "*")
			http.Error(w, "draining", http.StatusServiceUnavailable)
		default:
			f.ServeHTTP(w, r)
		}
	})
}

// registryOf exposes the front's counters to Prometheus.
func registryOf(f *front.Front) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, v func(front.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "framewire_front_" + name, Help: help},
			func() float64 { return v(f.Stats()) }))
	}
	counter("sessions_created_total", "Sessions created (POST /sessions).", func(s front.Stats) float64 { return float64(s.Created) })
	counter("placements_total", "Sessions bound to an engine node.", func(s front.Stats) float64 { return float64(s.Placed) })
	counter("placement_failures_total", "Node start calls that failed.", func(s front.Stats) float64 { return float64(s.PlaceFailed) })
	counter("refusals_total", "POST /sessions refused (unknown model, quota, bad body).", func(s front.Stats) float64 { return float64(s.Refused) })
	counter("unauthorized_total", "Requests answered 401.", func(s front.Stats) float64 { return float64(s.Unauthorized) })
	counter("closed_deadline_total", "Sessions CLOSED at the placement deadline.", func(s front.Stats) float64 { return float64(s.ClosedDeadline) })
	counter("closed_abandoned_total", "Queued sessions CLOSED for want of polls.", func(s front.Stats) float64 { return float64(s.ClosedAbandoned) })
	counter("reaped_total", "Sessions made INACTIVE because their node died.", func(s front.Stats) float64 { return float64(s.Reaped) })
	counter("deleted_total", "Sessions ended by DELETE.", func(s front.Stats) float64 { return float64(s.Deleted) })
	counter("queue_seconds_total", "Total queue time of placed sessions (divide by placements_total).", func(s front.Stats) float64 { return s.QueueSeconds })
	return reg
}
