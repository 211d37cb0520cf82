// Package front is production mode's coordinator API: the HTTP routes the
// Reactor JS SDK 2.9.0 calls with local false (POST /sessions, polls of
// GET /sessions/{sid}, DELETE, the transport and upload routes), the token
// route app backends call (/tokens), placement of sessions on engine nodes
// and the garbage collection of sessions the SDK leaves without DELETE.
//
// A Front is stateless: sessions, the queue and the node registry live in
// Redis (package registry), so any number of replicas answer for any
// session. Media never passes through it: transport routes are reverse
// proxied (net/http/httputil) to the node that owns the session, which
// answers with its own ICE candidates. A session whose node died is
// re-placed on another node when the client's reconnect() asks for it
// (same session id; the model state restarts). Lifecycle: New, serve it
// as an http.Handler, and run Run (the janitor) until shutdown.
package front

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/httpserve"
)

// Config configures a Front. Store and Issuer are required.
type Config struct {
	Store  *registry.Store
	Issuer *auth.Issuer
	// Keys are the API keys /tokens accepts; nil disables the route.
	Keys *auth.Keys
	// Cluster is reported as "cluster" (default "framewire"); a bound
	// session reports Cluster/node.
	Cluster string
	// ServerVersion is reported as server_info.server_version (default 0.1.0).
	ServerVersion string
	// Prefix is a path prefix the front is mounted under ("/reactor");
	// requests without it get 404.
	Prefix string
	// PublicURL is the base URL of presigned upload URLs and, behind a
	// Prefix, of clip URLs (default: the request's scheme and host, plus
	// Prefix; clipReady's URL, which a node sends, is then Prefix's path
	// only: set PublicURL for absolute ones, clips.go).
	PublicURL string
	// Models are accepted even while no node of theirs is live (their
	// sessions queue); others must have a live node (else 404).
	Models []string
	// PlacementDeadline: a session not placed this long after its POST is
	// CLOSED, before the SDK's 20th poll (~142 s). Default 130 s.
	PlacementDeadline time.Duration
	// PollGap: a pending session with no poll for this long (never polled
	// included) was abandoned and is closed. Default 30 s.
	PollGap time.Duration
	// SessionTTL is the least a bound session's record lives. A node
	// commits its slot until the session's maximum duration (its
	// -max-duration) and the record lives until then plus a minute when
	// that is longer; SessionTTL alone bounds the record of a session
	// whose node committed nothing. Default 30 min.
	SessionTTL time.Duration
	// EndedTTL is how long the record of a session the front ended
	// (CLOSED) stays readable; then every route answers 404. A pending
	// record lives its placement deadline plus EndedTTL. Default 1 min.
	EndedTTL time.Duration
	// ReconnectWindow is how long a session whose node died stays
	// INACTIVE and can be re-placed on another node by the client's
	// reconnect() (a new model session under the same session id); then
	// its record expires. Default 30 s, the hosted reconnect window.
	ReconnectWindow time.Duration
	// MaxPerAccount bounds each account's live sessions, queued ones
	// included (0: no bound); over it POST /sessions gets 429.
	MaxPerAccount int
	// ProxyTimeout bounds a node's answer to a forwarded request. Default 5 s.
	ProxyTimeout time.Duration
	// UploadTTL is how long a presigned upload URL is valid. Default 15 min.
	UploadTTL time.Duration
	// Janitor is the period of Run's sweep. Default 1 s.
	Janitor time.Duration
	// Logger receives front events, each with its session id; default discards.
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Store == nil || c.Issuer == nil {
		return errors.New("front: Config needs Store and Issuer")
	}
	if c.Prefix != "" && (!strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/")) {
		return fmt.Errorf("front: Prefix %q: want /name without a trailing slash", c.Prefix)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PlacementDeadline, 130*time.Second)
	def(&c.PollGap, 30*time.Second)
	def(&c.SessionTTL, 30*time.Minute)
	def(&c.EndedTTL, time.Minute)
	def(&c.ReconnectWindow, 30*time.Second)
	def(&c.ProxyTimeout, 5*time.Second)
	def(&c.UploadTTL, 15*time.Minute)
	def(&c.Janitor, time.Second)
	if c.Cluster == "" {
		c.Cluster = "framewire"
	}
	if c.ServerVersion == "" {
		c.ServerVersion = "0.1.0"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Front serves the coordinator API. It is an http.Handler, safe for
// concurrent use; it holds no session state.
type Front struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	proxy  *httputil.ReverseProxy
	client *http.Client // front → node calls (start, end)
	stats  counters
}

type counters struct {
	created, placed, placeFailed, refused, unauthorized atomic.Uint64
	closedDeadline, closedAbandoned, reaped, deleted    atomic.Uint64
	replaced                                            atomic.Uint64
	queueNanos, queueCount                              atomic.Uint64
}

// Stats is a snapshot of a front's counters.
type Stats struct {
	Created         uint64  // sessions created
	Placed          uint64  // sessions bound to a node
	PlaceFailed     uint64  // node start calls that failed (the session stays queued)
	Refused         uint64  // POST /sessions refused: unknown model, quota, bad body
	Unauthorized    uint64  // requests with a missing, bad or expired token (401)
	ClosedDeadline  uint64  // sessions CLOSED because no node freed in time
	ClosedAbandoned uint64  // pending sessions CLOSED because the client stopped polling
	Reaped          uint64  // sessions made INACTIVE because their node died
	Deleted         uint64  // sessions ended by DELETE
	Replaced        uint64  // sessions whose node died, re-placed on another by reconnect()
	QueueSeconds    float64 // total time from POST to placement
}

// Stats returns the front's counters.
func (f *Front) Stats() Stats {
	return Stats{
		Created: f.stats.created.Load(), Placed: f.stats.placed.Load(), PlaceFailed: f.stats.placeFailed.Load(),
		Refused: f.stats.refused.Load(), Unauthorized: f.stats.unauthorized.Load(),
		ClosedDeadline: f.stats.closedDeadline.Load(), ClosedAbandoned: f.stats.closedAbandoned.Load(),
		Reaped: f.stats.reaped.Load(), Deleted: f.stats.deleted.Load(), Replaced: f.stats.replaced.Load(),
		QueueSeconds: time.Duration(f.stats.queueNanos.Load()).Seconds(),
	}
}

// New returns a front.
func New(cfg Config) (*Front, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	f := &Front{cfg: cfg, log: cfg.Logger.With("component", "front")}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
		ResponseHeaderTimeout: cfg.ProxyTimeout,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       time.Minute,
	}
	f.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	f.proxy = &httputil.ReverseProxy{Rewrite: f.rewrite, Transport: tr, ModifyResponse: f.modifyResponse, ErrorHandler: f.proxyError}
	m := http.NewServeMux()
	if cfg.Keys != nil {
		m.Handle("/tokens", cfg.Issuer.Handler(cfg.Keys))
	}
	m.HandleFunc("POST /sessions", f.handleCreate)
	m.HandleFunc("GET /sessions/{sid}", f.handleGet)
	m.HandleFunc("DELETE /sessions/{sid}", f.handleDelete)
	m.HandleFunc("/sessions/{sid}/transport/webrtc/{rest...}", f.handleTransport)
	m.HandleFunc("POST /sessions/{sid}/uploads", f.handleTransport)
	m.HandleFunc("PUT /uploads/{sid}/{id}", f.handlePut)
	m.HandleFunc("GET /clips", f.handleClips) // clips.go
	m.HandleFunc("GET /clips/chunks/{sid}/{name}", f.handleClipChunk)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	m.HandleFunc("GET /readyz", f.handleReady)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	f.mux = m
	return f, nil
}

var slashes = regexp.MustCompile(`//+`)

// ServeHTTP answers CORS on every path (preflights before routing),
// strips the prefix, collapses repeated slashes (an apiUrl with a
// trailing slash yields //sessions: routed, never redirected) and routes.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		httpserve.Preflight(w, r, "Authorization, Content-Type, Reactor-API-Version, Reactor-API-Accept-Version, Reactor-WebRTC-Version, Reactor-API-Key, X-API-Key", 2*time.Hour)
		return
	}
	p := slashes.ReplaceAllString(r.URL.Path, "/")
	if f.cfg.Prefix != "" {
		rest, ok := strings.CutPrefix(p, f.cfg.Prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			writeDetail(w, http.StatusNotFound, "no route "+r.URL.Path)
			return
		}
		p = rest
	}
	if p != r.URL.Path {
		r = r.Clone(r.Context())
		r.URL.Path, r.URL.RawPath = p, ""
	}
	f.mux.ServeHTTP(w, r)
}

func (f *Front) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := f.cfg.Store.Ping(ctx); err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "redis: "+err.Error())
		return
	}
	fmt.Fprintln(w, "ready")
}

// newID returns a random UUID (version 4): URL-safe, like hosted ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// The shared response writers: JSON, and {"detail": …} errors.
var (
	writeJSON   = httpserve.WriteJSON
	writeDetail = httpserve.WriteDetail
)

// checkVersion accepts a missing header or major version 1; an older major
// gets 426, a newer 501.
func checkVersion(w http.ResponseWriter, r *http.Request, header string) bool {
	v := strings.TrimSpace(r.Header.Get(header))
	if v == "" {
		return true
	}
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	switch {
	case err != nil:
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("%s %q is not a version", header, v))
	case major < 1:
		writeDetail(w, http.StatusUpgradeRequired, fmt.Sprintf("%s %s is too old; this front speaks 1", header, v))
	case major > 1:
		writeDetail(w, http.StatusNotImplemented, fmt.Sprintf("%s %s is newer than this front's 1", header, v))
	default:
		return true
	}
	return false
}

func (f *Front) knownModel(ctx context.Context, model string) (bool, error) {
	if slices.Contains(f.cfg.Models, model) {
		return true, nil
	}
	return f.cfg.Store.HasModel(ctx, model)
}
