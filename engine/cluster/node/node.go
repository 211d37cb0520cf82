// Package node is a production-mode engine node: one loaded model (one
// engine, one wiring) serving many concurrent sessions, each with its own
// runner, tracks, pipelines and peer, up to a configured capacity.
//
// A Node is one protocol.Server in node mode (protocol.Config.MaxSessions
// = Capacity: up to Capacity sessions keyed by the fronts' ids, the next
// refused with 503), so the WebRTC signalling, data channel, uploads and
// liveness of each session are exactly those of local mode, and the
// server's budgets (upload memory) are the process's. Around it the node
// adds its placement route and its registry bookkeeping: fronts (package
// front) place sessions on a node through its internal route POST
// /node/sessions, forward the SDK's transport and upload routes to it
// unchanged (the session's id is the front's), and end sessions with
// DELETE /node/sessions/{sid}. The node registers itself in Redis
// (package registry) with a heartbeat, keeps its slots there, and marks
// its sessions CLOSED when they end for any reason.
//
// Lifecycle: New, then Run until its context ends (Run drains: no new
// sessions, running ones end within Config.DrainTimeout, the node leaves
// the registry). The HTTP handler is the Node itself.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

// Config configures a Node. ID, Addr, Store and Issuer are required.
type Config struct {
	// ID names the node in the registry; unique in the deployment.
	ID string
	// Addr is the base URL fronts reach the node at (http://host:port).
	Addr string
	// Capacity bounds the sessions running at once (default 1). The
	// engine should be built with engine.WithMaxSessions of the same
	// value (or more) so the model's own bound agrees.
	Capacity int
	// MaxDuration ends a session this long after it started (default 20 min).
	MaxDuration time.Duration
	// DrainTimeout bounds how long running sessions may go on once Run's
	// context ends (default 30 s); then they are ended.
	DrainTimeout time.Duration
	// Heartbeat is how often the node refreshes its registration (default
	// 1 s); TTL is how long the registration lives without one (default 3 s).
	Heartbeat, TTL time.Duration
	// Protocol configures the node's protocol server (its MaxSessions is
	// set to Capacity, and RegisterLimit on: POST …/connections answers
	// 429 once a session holds its MaxConnections); its OrphanGrace is the
	// reconnect window (default here 30 s, the hosted window) and also
	// closes a bound session that never receives an offer. Its budgets
	// (UploadMemory) hold for every session of the node together.
	Protocol protocol.Config
	// Store is the shared state; Issuer verifies tokens.
	Store  *registry.Store
	Issuer *auth.Issuer
	// Logger receives node events; every session's lines carry its id.
	Logger *slog.Logger
	// Health, when set, reports why the node can no longer serve (nil
	// while it can): a GPU whose CUDA context a sticky fault poisoned
	// (gpu.Device.Fault). While it fails, /readyz answers 503 with the
	// reason, new sessions are refused and the registration says draining,
	// so placement stops and the node is replaced; running sessions go on
	// as far as they can.
	Health func() error
	// EndedTTL is how long Redis keeps the record of a session this node
	// ended (so that a late reconnect or GET reads why), and of those a
	// predecessor under the same id left behind. Default 1 min; a front's
	// -ended-ttl should match it.
	EndedTTL time.Duration
}

func (c *Config) defaults() error {
	if c.ID == "" || c.Addr == "" || c.Store == nil || c.Issuer == nil {
		return errors.New("node: Config needs ID, Addr, Store and Issuer")
	}
	if c.Capacity <= 0 {
		c.Capacity = 1
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 20 * time.Minute
	}
	if c.EndedTTL <= 0 {
		c.EndedTTL = time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.TTL <= c.Heartbeat {
		c.TTL = 3 * c.Heartbeat
	}
	if c.Protocol.OrphanGrace <= 0 {
		c.Protocol.OrphanGrace = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Node serves many sessions of one wired engine. Its methods are safe for
// concurrent use. It is an http.Handler.
type Node struct {
	cfg   Config
	w     *wiring.Wiring
	srv   *protocol.Server // every session's: the table, admission, routes
	log   *slog.Logger
	model string

	mu         sync.Mutex // guards the fields below
	sessions   map[string]*hosted
	draining   bool
	registered bool // Run's first registration succeeded

	started, refused, ended atomic.Uint64
}

// hosted is the node's bookkeeping of one session of its server: the
// front's id (the session's id on the server too), its owner, when it
// started and the state last written to Redis.
type hosted struct {
	fsid, account string
	running       bool // false while the server starts it
	started       time.Time
	state         string // last state written to Redis
}

// New returns a node serving the engine w wires. The caller keeps
// ownership of w and its engine and closes them after Run returned.
func New(w *wiring.Wiring, cfg Config) (*Node, error) {
	if w == nil {
		return nil, errors.New("node: New(nil wiring)")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, w: w, model: w.Engine().ModelName(), sessions: map[string]*hosted{}}
	n.log = cfg.Logger.With("component", "node", "node", cfg.ID)
	pcfg := cfg.Protocol
	pcfg.MaxSessions = cfg.Capacity
	pcfg.RegisterLimit = true // the front relays 429 at the per-session cap (contract item 38)
	pcfg.Logger = n.log
	srv, err := protocol.NewServer(w, pcfg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.srv = srv
	return n, nil
}

// Server returns the node's protocol server, for metrics and stats
// (metrics.Collector, metrics.StatsHandler). The node owns it: Drain
// closes it.
func (n *Node) Server() *protocol.Server { return n.srv }

// Stats is a snapshot of a node's counters.
type Stats struct {
	Running, Capacity       int
	Started, Refused, Ended uint64
	Draining                bool
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Stats{Running: len(n.sessions), Capacity: n.cfg.Capacity, Draining: n.draining,
		Started: n.started.Load(), Refused: n.refused.Load(), Ended: n.ended.Load()}
}

// Ready reports whether the node takes new sessions: Run has registered
// it, it is not draining and Config.Health reports nothing.
func (n *Node) Ready() bool {
	n.mu.Lock()
	ok := n.registered && !n.draining
	n.mu.Unlock()
	return ok && n.unhealthy() == nil
}

// unhealthy reports Config.Health's reason, nil when healthy or unset.
func (n *Node) unhealthy() error {
	if n.cfg.Health == nil {
		return nil
	}
	return n.cfg.Health()
}

func (n *Node) registration(draining bool) registry.Node {
	return registry.Node{ID: n.cfg.ID, Addr: n.cfg.Addr, Model: n.model, Capacity: n.cfg.Capacity, Draining: draining}
}

// Run registers the node and keeps it registered, ends sessions that
// outlive MaxDuration and records ends and state changes in Redis, until
// ctx ends; then it drains (see Drain) and returns. A ctx that ends before
// the node registered is a clean stop (nil), not a failure.
func (n *Node) Run(ctx context.Context) error {
	// A predecessor under the same id (a restart) left sessions this
	// process does not host: they end as INACTIVE.
	if lost, err := n.cfg.Store.ReapNode(ctx, n.cfg.ID, n.cfg.EndedTTL); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("node: clean up a predecessor: %w", err)
	} else if len(lost) > 0 {
		n.log.Info("sessions of a predecessor under this id ended", "sessions", len(lost))
	}
	if err := n.cfg.Store.Register(ctx, n.registration(false), n.cfg.TTL); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("node: register: %w", err)
	}
	n.mu.Lock()
	n.registered = true
	n.mu.Unlock()
	n.log.Info("node registered", "addr", n.cfg.Addr, "model", n.model, "capacity", n.cfg.Capacity)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return n.Drain(context.WithoutCancel(ctx))
		case <-t.C:
			n.tick(ctx)
		}
	}
}

// tick refreshes the registration and sweeps the sessions.
func (n *Node) tick(ctx context.Context) {
	n.mu.Lock()
	draining := n.draining
	n.mu.Unlock()
	if err := n.cfg.Store.Register(ctx, n.registration(draining || n.unhealthy() != nil), n.cfg.TTL); err != nil {
		n.log.Warn("heartbeat failed", "err", err)
	}
	n.sweep(ctx)
}

// sweep finishes sessions that ended on their own, ends those past
// MaxDuration and mirrors state changes into Redis.
func (n *Node) sweep(ctx context.Context) {
	now := time.Now()
	for _, h := range n.list() {
		st := n.srv.SessionState(h.fsid)
		switch {
		case st == "":
			n.finish(ctx, h, "session ended")
		case now.Sub(h.started) > n.cfg.MaxDuration:
			n.finish(ctx, h, fmt.Sprintf("maximum duration %s reached", n.cfg.MaxDuration))
		default:
			if s := wireState(st); s != h.state {
				h.state = s // only sweep writes it
				if _, err := n.cfg.Store.SetState(ctx, h.fsid, n.cfg.ID, s); err != nil {
					n.log.Warn("state not recorded", "session", h.fsid, "err", err)
				}
			}
		}
	}
}

func wireState(st string) string {
	switch st {
	case "streaming":
		return registry.StateActive
	case "orphaned":
		return registry.StateSuspended
	}
	return registry.StateWaiting
}

// list returns the started sessions.
func (n *Node) list() []*hosted {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*hosted, 0, len(n.sessions))
	for _, h := range n.sessions {
		if h.running {
			out = append(out, h)
		}
	}
	return out
}

// finish ends session h (waiting for it), frees its slot and marks it
// CLOSED in Redis. Only the caller that removes h from the map does it.
func (n *Node) finish(ctx context.Context, h *hosted, reason string) bool {
	n.mu.Lock()
	if n.sessions[h.fsid] != h {
		n.mu.Unlock()
		return false
	}
	delete(n.sessions, h.fsid)
	n.mu.Unlock()
	n.srv.End(h.fsid, reason)
	n.ended.Add(1)
	st := registry.Session{ID: h.fsid, Node: n.cfg.ID} // only if bound here
	if _, err := n.cfg.Store.End(ctx, st, registry.StateClosed, reason, n.cfg.EndedTTL); err != nil {
		n.log.Warn("end not recorded", "session", h.fsid, "err", err)
	}
	if err := n.cfg.Store.Release(ctx, n.cfg.ID, h.fsid); err != nil {
		n.log.Warn("slot not released", "session", h.fsid, "err", err)
	}
	n.log.Info("session finished", "session", h.fsid, "reason", reason)
	return true
}

// Drain is what Run does when its context ends; call it directly only
// for a Node whose Run is not running. It stops taking sessions (the
// registration says draining at once, so fronts stop placing here), lets
// running sessions go on until they end or DrainTimeout passes (or ctx
// ends), ends the rest, closes the protocol server and leaves the
// registry.
func (n *Node) Drain(ctx context.Context) error {
	n.mu.Lock()
	n.draining = true
	n.mu.Unlock()
	n.log.Info("draining", "running", len(n.list()), "bound", n.cfg.DrainTimeout)
	if err := n.cfg.Store.Register(ctx, n.registration(true), n.cfg.TTL); err != nil {
		n.log.Warn("draining not recorded", "err", err)
	}
	deadline := time.NewTimer(n.cfg.DrainTimeout)
	defer deadline.Stop()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
wait:
	for len(n.list()) > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-t.C:
			n.sweep(ctx)
			if err := n.cfg.Store.Register(ctx, n.registration(true), n.cfg.TTL); err != nil {
				n.log.Warn("heartbeat failed", "err", err)
			}
		}
	}
	for _, h := range n.list() {
		n.finish(ctx, h, "engine node shutting down")
	}
	_ = n.srv.Close() // nothing runs any more; later starts are refused
	n.log.Info("drained")
	return n.cfg.Store.Deregister(ctx, n.cfg.ID)
}
