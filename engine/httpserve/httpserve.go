// Package httpserve is the one hardened HTTP server of every Framewire
// binary: cmd/framewire in local and node mode, cmd/front and the Python
// serve command (through engine/host). It bounds what clients can hold:
//
//   - read, header and idle timeouts, a header cap and a body cap;
//   - a connection cap for the process and a per-client-IP cap, so one
//     client's connections cannot lock the others out;
//   - at the connection cap, a new connection evicts the oldest connection
//     that is not in a handler (idle keep-alive or still sending its
//     request) of the client holding the most, and when none can be
//     evicted it is still served, briefly (Config.OverflowDeadline, one
//     request, Connection: close), for the priority routes only (/health,
//     /healthz, /readyz, /metrics by default): health checks and scrapes
//     stay answerable under a connection flood while every other request
//     on such a connection gets 503; when those places (64, 2 per client)
//     are taken too, a client holding no connection takes the place of
//     the oldest one still sending its request, so a flood from many
//     clients cannot starve a health check;
//   - graceful shutdown: when the context ends, the listener closes and
//     requests in flight finish within Config.ShutdownTimeout.
//
// Usage:
//
//	err := httpserve.Serve(ctx, ln, handler, httpserve.Config{MaxConns: 1024, MaxConnsPerIP: 256, ...})
//
// The command-line flags of these settings are registered once, by
// Flags.Register, for every binary that serves HTTP.
package httpserve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Config is the server's bounds. Zero fields take the defaults named.
type Config struct {
	// MaxConns is the most connections held at once (default 1024).
	MaxConns int
	// MaxConnsPerIP is the most connections one client IP holds at once;
	// 0: no per-client cap. Behind a proxy every client shares its IP:
	// raise it or set 0 there.
	MaxConnsPerIP int
	// ReadHeaderTimeout bounds reading a request's headers (default
	// min(10 s, ReadTimeout)).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (default
	// 15 s); a handler may extend it for a large body
	// (http.ResponseController.SetReadDeadline).
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default
	// 60 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers (default 64 KiB).
	MaxHeaderBytes int
	// MaxBodyBytes caps a request's body: a larger Content-Length gets
	// 413 before the handler runs, a longer chunked body fails its read.
	// 0: no cap here (the handlers bound their bodies).
	MaxBodyBytes int64
	// Priority are the paths served on connections over the cap (default
	// /health, /healthz, /readyz, /metrics).
	Priority []string
	// OverflowDeadline is the whole life of a connection over the cap
	// (default 1 s).
	OverflowDeadline time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 5 s); requests
	// still running then are cut.
	ShutdownTimeout time.Duration
	// AllowHosts are Host names (host or host:port) a server listening on
	// loopback answers besides localhost names and loopback IPs (a local
	// reverse proxy's public name); "*" turns the check off. A server
	// listening beyond loopback answers every Host.
	AllowHosts []string
	// Meter counts the connections; nil: one of the server's own
	// (Server.Stats).
	Meter *Meter
	// Logger gets the server's errors at debug level and its refusals
	// (rate-limited to one line a second) at warn; nil: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 15 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = min(10*time.Second, c.ReadTimeout)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.Priority == nil {
		c.Priority = []string{"/health", "/healthz", "/readyz", "/metrics"}
	}
	if c.OverflowDeadline <= 0 {
		c.OverflowDeadline = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Meter == nil {
		c.Meter = &Meter{}
	}
	return c
}

// Server is a hardened http.Server on one listener. Its methods are safe
// for concurrent use.
type Server struct {
	cfg  Config
	hs   *http.Server
	lim  *limiter
	done chan struct{} // closed when hs.Serve returned
	err  error         // hs.Serve's result, set before done closes
}

// Start serves h on ln with cfg's bounds in a goroutine of its own, which
// Shutdown waits for. The Server owns ln.
func Start(ln net.Listener, h http.Handler, cfg Config) *Server {
	cfg = cfg.withDefaults()
	lim := newLimiter(ln, cfg)
	s := &Server{cfg: cfg, lim: lim, done: make(chan struct{})}
	priority := make(map[string]bool, len(cfg.Priority))
	for _, p := range cfg.Priority {
		priority[p] = true
	}
	s.hs = &http.Server{
		Handler:           s.guard(h, priority, hostCheck(ln, cfg.AllowHosts)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*conn); ok {
				return context.WithValue(ctx, connKey{}, tc)
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if tc, ok := c.(*conn); ok && st == http.StateHijacked {
				tc.hijacked.Store(true)
			}
		},
	}
	go func() {
		defer close(s.done)
		s.err = s.hs.Serve(lim)
	}()
	return s
}

// Serve serves h on ln until ctx ends or serving fails, then shuts down
// gracefully (Shutdown). It owns ln and closes it on every return.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, cfg Config) error {
	s := Start(ln, h, cfg)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return s.Shutdown()
}

// Done is closed when serving stopped, by Shutdown or because the
// listener failed (Shutdown then returns that error).
func (s *Server) Done() <-chan struct{} { return s.done }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.lim.Addr() }

// Shutdown stops accepting, lets requests in flight finish within
// Config.ShutdownTimeout, then closes what is left and waits for the
// serving goroutine. It is idempotent; the error is the shutdown's or the
// serving failure's, nil after a clean stop.
func (s *Server) Shutdown() error {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.cfg.Logger.Warn("requests still running at the shutdown deadline were cut", "timeout", s.cfg.ShutdownTimeout)
		_ = s.hs.Close()
		err = nil
	}
	<-s.done
	if err == nil && !errors.Is(s.err, http.ErrServerClosed) {
		err = s.err
	}
	return err
}

// Stats returns the connection counters (Config.Meter's).
func (s *Server) Stats() Stats { return s.cfg.Meter.Stats() }

type connKey struct{}

// guard marks the connection busy while a handler runs, refuses foreign
// Hosts on a loopback server (hostOK, nil: any), serves only the priority
// paths on connections over the cap, and applies the body cap.
func (s *Server) guard(h http.Handler, priority map[string]bool, hostOK func(string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hostOK != nil && !hostOK(r.Host) {
			refuseHost(w)
			return
		}
		if c, ok := r.Context().Value(connKey{}).(*conn); ok {
			c.busy.Add(1)
			defer c.busy.Add(-1)
			if c.overflow {
				defer c.release()
				w.Header().Set("Connection", "close")
				if !priority[r.URL.Path] {
					w.Header().Set("Retry-After", "1")
					WriteDetail(w, http.StatusServiceUnavailable, "the server is at its connection limit; retry shortly")
					return
				}
			}
		}
		if m := s.cfg.MaxBodyBytes; m > 0 && r.Body != nil && r.Body != http.NoBody {
			if r.ContentLength > m {
				w.Header().Set("Connection", "close")
				WriteDetail(w, http.StatusRequestEntityTooLarge, "request body over the server's limit")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, m)
		}
		h.ServeHTTP(w, r)
	})
}

// WriteDetail writes {"detail": detail} with code: the error body of the
// Reactor API and of every Framewire route.
func WriteDetail(w http.ResponseWriter, code int, detail string) {
	WriteJSON(w, code, map[string]string{"detail": detail})
}

// WriteJSON writes v as JSON with code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Preflight answers a CORS preflight (an OPTIONS request) with 204: the
// methods of the Reactor API, the request headers headers lists plus any
// the browser asks for, cached for maxAge. Headers the caller set before
// (Access-Control-Allow-Origin, …) are kept.
func Preflight(w http.ResponseWriter, r *http.Request, headers string, maxAge time.Duration) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		headers += ", " + req
	}
	h.Set("Access-Control-Allow-Headers", headers)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(maxAge.Seconds())))
	w.WriteHeader(http.StatusNoContent)
}
