package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/wiring"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	// ServerVersion is reported as server_info.server_version.
	ServerVersion string
	// Peer configures the WebRTC peers (ICE, STUN/TURN, bitrates).
	Peer peer.Config
	// OrphanGrace is how long a session without a connected peer (never
	// connected, or lost) is kept for a reconnect. Default 60 s.
	OrphanGrace time.Duration
	// PingTimeout: a connected peer that sends no data-channel message for
	// this long is treated as lost. Default 20 s.
	PingTimeout time.Duration
	// NegotiationTimeout bounds building an answer. Default 5 s.
	NegotiationTimeout time.Duration
	// MaxUploadSize is the largest single upload. Default 100 MB.
	MaxUploadSize int64
	// UploadQuota bounds the bytes of all uploads of one session. Default 512 MB.
	UploadQuota int64
	// UploadWait bounds how long a command waits for an upload whose PUT is
	// still in flight. Default 10 s.
	UploadWait time.Duration
	// UploadMemory bounds the bytes of upload data held in memory by the
	// whole server, every session together (received bytes, not announced
	// sizes). A PUT that would exceed it is answered 507. Default 256 MB.
	UploadMemory int64
	// UploadMinRate and UploadGrace give every upload body a deadline of
	// UploadGrace + size/UploadMinRate. Defaults 64 KiB/s and 10 s.
	UploadMinRate int64
	UploadGrace   time.Duration
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// that may call the server; "*" admits any. Nil admits the server's
	// own origin (the demo page) and http(s) origins on localhost,
	// 127.0.0.1 and [::1] (development servers). Requests without an
	// Origin header (not from a browser) are always served. Only allowed
	// origins get CORS and Private Network Access answers.
	AllowedOrigins []string
	// PublicURL is the base URL browsers reach the server at
	// ("https://fw.example.com"); upload URLs are built from it. Empty:
	// the address of the listener the request came in on (or, with
	// TrustForwardedHeaders, X-Forwarded-Proto and X-Forwarded-Host).
	PublicURL string
	// TrustForwardedHeaders makes upload URLs follow X-Forwarded-Proto and
	// X-Forwarded-Host: set it only behind a proxy that sets them.
	TrustForwardedHeaders bool
	// Logger receives session-level events; default discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ServerVersion == "" {
		c.ServerVersion = "0.1.0"
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = 60 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.NegotiationTimeout <= 0 {
		c.NegotiationTimeout = 5 * time.Second
	}
	if c.MaxUploadSize <= 0 {
		c.MaxUploadSize = 100 << 20
	}
	if c.UploadQuota <= 0 {
		c.UploadQuota = 512 << 20
	}
	if c.UploadMemory <= 0 {
		c.UploadMemory = 256 << 20
	}
	if c.UploadMinRate <= 0 {
		c.UploadMinRate = 64 << 10
	}
	if c.UploadGrace <= 0 {
		c.UploadGrace = 10 * time.Second
	}
	if c.UploadWait <= 0 {
		c.UploadWait = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Peer.Logger == nil {
		c.Peer.Logger = c.Logger
	}
	return c
}

// Server serves the Reactor local-mode protocol for one engine, through
// its Wiring: at most one live session at a time, replaced by a new
// start_session. It is an http.Handler; CORS is answered on every path.
// Its methods are safe for concurrent use. The caller must call Close, and
// closes the engine after it.
type Server struct {
	cfg  Config
	w    *wiring.Wiring
	caps engine.Capabilities
	log  *slog.Logger
	mux  *http.ServeMux

	startMu sync.Mutex // serialises start_session: the newest start wins
	mu      sync.Mutex // guards cur and closed
	cur     *session
	closed  bool

	stats counters
	upMem *memBudget // upload bytes of every session together

	testHookStarted func() // tests: runs after the engine started a session, before it is installed
}

type counters struct {
	droppedMessages   atomic.Uint64
	capabilityReplies atomic.Uint64
	peerDropped       atomic.Uint64 // DroppedMessages of peers already closed
}

// Stats is a snapshot of the server's counters. Commands and sessions are
// counted once, by the engine (engine.Engine.Stats).
type Stats struct {
	// DroppedMessages counts data-channel messages dropped: malformed or
	// unknown envelopes, and (from every peer the server had) binary
	// frames and frames on channels other than "data".
	DroppedMessages   uint64
	CapabilityReplies uint64 // modelCapabilities sent
	State             string // state of the current session, or "ready"
	// UploadMemory is the upload bytes held in memory now, every session
	// together (bounded by Config.UploadMemory).
	UploadMemory int64
	// Peer is the current session's connected peer (zero when none):
	// keyframe requests both ways, GCC's estimate, discarded RTP.
	Peer peer.Stats
}

// NewServer returns a server for the engine w wires.
func NewServer(w *wiring.Wiring, cfg Config) (*Server, error) {
	if w == nil {
		return nil, errors.New("protocol: NewServer(nil); want a wiring from wiring.New")
	}
	cfg = cfg.withDefaults()
	if err := cfg.Peer.Validate(); err != nil {
		return nil, err
	}
	caps := w.Engine().Capabilities()
	if err := checkCapabilities(caps); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, w: w, caps: caps, log: cfg.Logger.With("component", "protocol"), upMem: &memBudget{limit: cfg.UploadMemory}}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/start_session", s.handleStart)
	s.mux.HandleFunc("/stop_session", s.handleStop)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/ice_servers", s.handleICEServers)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/sdp_params", s.handleSDP)
	s.mux.HandleFunc("/sessions/{sid}/uploads", s.handleCreateUpload)
	s.mux.HandleFunc("/uploads/{id}", s.handlePutUpload)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

func checkCapabilities(c engine.Capabilities) error {
	if c.ProtocolVersion == "" {
		return errors.New("protocol: capabilities need a protocol_version")
	}
	if len(c.Tracks) == 0 {
		return errors.New("protocol: capabilities declare no tracks")
	}
	for _, t := range c.Tracks {
		if t.Name == "" || (t.Kind != string(peer.KindVideo) && t.Kind != string(peer.KindAudio)) || (t.Direction != string(peer.DirRecvonly) && t.Direction != string(peer.DirSendonly)) {
			return fmt.Errorf("protocol: capability track %+v: want a name, kind video|audio, direction recvonly|sendonly", t)
		}
	}
	return nil
}

// ServeHTTP refuses browsers on origins that are not allowed (403),
// answers CORS preflights on every path before routing, adds
// Access-Control-Allow-Origin to every response and routes the request.
// Upload targets (/uploads/{id}) take any origin: the 128-bit id in the
// URL is the capability.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin == "" || s.originAllowed(origin, r)
	switch {
	case origin == "":
		h.Set("Access-Control-Allow-Origin", "*")
	case allowed || strings.HasPrefix(r.URL.Path, "/uploads/"):
		h.Set("Access-Control-Allow-Origin", origin)
	default:
		writeError(w, http.StatusForbidden, fmt.Sprintf("origin %s is not allowed to use this server; allow it with the server's allowed-origins setting (framewire -allow-origin)", ratelog.Truncate(origin, 200)))
		return
	}
	if r.Method == http.MethodOptions {
		if allowed && strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") {
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		httpserve.Preflight(w, r, "Authorization, Content-Type, Reactor-API-Version, Reactor-API-Accept-Version, Reactor-WebRTC-Version", 10*time.Minute)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// originAllowed applies Config.AllowedOrigins to a request's Origin. The
// server's own origin (the demo page it serves) is always allowed.
func (s *Server) originAllowed(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // includes "null" (sandboxed frames, file: pages)
	}
	if ownOrigin(u, r) {
		return true
	}
	if s.cfg.AllowedOrigins == nil {
		return isLoopbackName(u.Hostname())
	}
	for _, a := range s.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	return false
}

// ownOrigin reports whether origin u is the page's own server: the
// browser reached this server under the origin's host. A server listening
// on loopback reached under a name that is not a loopback one is a DNS
// rebinding attack (evil.example resolving to 127.0.0.1), not its page.
func ownOrigin(u *url.URL, r *http.Request) bool {
	if !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	if isLoopbackName(u.Hostname()) {
		return true
	}
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return !ok || !a.IP.IsLoopback()
}

// isLoopbackName: localhost (and *.localhost), 127.0.0.0/8 or ::1.
func isLoopbackName(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close ends the current session and waits for it: every goroutine of a
// session belongs to the engine session, so when Close returns none is
// left. Later start_session calls are answered 503. It is idempotent. It
// does not stop an http.Server using s.
func (s *Server) Close() error {
	s.mu.Lock()
	cur := s.cur
	s.cur = nil
	s.closed = true
	s.mu.Unlock()
	if cur != nil {
		cur.end("server closing")
	}
	return nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		DroppedMessages:   s.stats.droppedMessages.Load(),
		CapabilityReplies: s.stats.capabilityReplies.Load(),
		State:             "ready",
		UploadMemory:      s.upMem.inUse(),
	}
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	st.DroppedMessages += s.stats.peerDropped.Load()
	if cur != nil {
		st.State = cur.currentState().String()
		if p := cur.currentPeer(); p != nil {
			st.Peer = p.Stats()
			st.DroppedMessages += st.Peer.DroppedMessages
		}
	}
	return st
}

// The shared response writers: writeJSON writes v with status code,
// writeError writes {"detail": detail}.
var (
	writeJSON  = httpserve.WriteJSON
	writeError = httpserve.WriteDetail
)

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", ")+", OPTIONS")
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; want %s", r.Method, r.URL.Path, strings.Join(methods, " or ")))
	return false
}

// checkVersion accepts a missing header or major version 1 of header.
// An older major is answered 426, a newer 501.
func checkVersion(w http.ResponseWriter, r *http.Request, header string) bool {
	v := strings.TrimSpace(r.Header.Get(header))
	if v == "" {
		return true
	}
	majorText, _, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(majorText)
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %q is not a version; want 1 or 1.x", header, v))
		return false
	case major < 1:
		writeError(w, http.StatusUpgradeRequired, fmt.Sprintf("%s %s is too old; this server speaks 1", header, v))
		return false
	case major > 1:
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("%s %s is newer than this server's 1", header, v))
		return false
	}
	return true
}

// maxDrain is how much of an oversized body the server reads and discards
// so that the client, still sending, sees the error reply rather than a
// reset connection. Beyond it the connection is closed after the reply.
const maxDrain = 64 << 20

// readJSON decodes the body (at most limit bytes) of a request that must
// be application/json into v. An empty body is allowed when emptyOK. The
// error says what was wrong; code is the status to answer.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, emptyOK bool) (code int, err error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q; want application/json", ratelog.Truncate(r.Header.Get("Content-Type"), 100))
	}
	if r.ContentLength > limit {
		discardBody(w, r)
		return http.StatusBadRequest, fmt.Errorf("body of %d bytes is larger than %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("reading body: %v", err)
	}
	if int64(len(body)) > limit {
		discardBody(w, r)
		return http.StatusBadRequest, fmt.Errorf("body larger than %d bytes", limit)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return 0, nil
		}
		return http.StatusBadRequest, errors.New("empty body; want a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("body is not the expected JSON: %v", err)
	}
	return 0, nil
}

// discardBody makes an oversized body end cleanly. A client waiting for
// 100-continue whose body was not read yet is answered before it sends
// (net/http then sends no 100 and closes); otherwise up to maxDrain bytes
// are read and dropped (under the route's read deadline), so a client
// still writing reads the reply instead of a reset; a longer body closes
// the connection after the reply.
func discardBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxDrain || strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.Header().Set("Connection", "close")
		return
	}
	n, _ := io.CopyN(io.Discard, r.Body, maxDrain)
	if n == maxDrain {
		w.Header().Set("Connection", "close")
	}
}

// session returns the current session if its id is sid, else writes the
// error: 400 when none runs, 404 for another id.
func (s *Server) session(w http.ResponseWriter, sid string) *session {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur == nil {
		writeError(w, http.StatusBadRequest, "no session is running; POST /start_session first")
		return nil
	}
	if cur.id != sid {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", sid))
		return nil
	}
	return cur
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	var req struct {
		ExtraArgs map[string]any `json:"extra_args"`
	}
	if code, err := readJSON(w, r, 1<<20, &req, true); err != nil {
		writeError(w, code, "start_session: "+err.Error())
		return
	}
	// Starts run one at a time, so concurrent ones behave like sequential
	// ones: each replaces the previous session and the newest stays.
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	old := s.cur
	s.cur = nil
	s.mu.Unlock()
	if old != nil {
		s.log.Info("start_session replaces the previous session", "old", old.id)
		old.end("replaced by a new session")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	ws, err := s.w.Start(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "start_session: model could not start a session: "+err.Error())
		return
	}
	if s.testHookStarted != nil {
		s.testHookStarted()
	}
	sess := s.newSession(ws)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sess.end("server closing")
		writeError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	s.cur = sess
	s.mu.Unlock()
	sess.start()
	s.log.Info("session started", "session", sess.id)
	writeJSON(w, http.StatusOK, map[string]any{
		"session_id":         sess.id,
		"state":              stateWaiting.String(),
		"cluster":            "local",
		"model":              map[string]string{"name": s.w.Engine().ModelName()},
		"server_info":        map[string]string{"server_version": s.cfg.ServerVersion},
		"selected_transport": map[string]string{"protocol": "webrtc", "version": "1.0"},
		"capabilities":       sess.caps,
	})
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	s.mu.Lock()
	cur := s.cur
	s.cur = nil
	s.mu.Unlock()
	if cur == nil {
		writeError(w, http.StatusConflict, "no session is running")
		return
	}
	cur.end("stop_session")
	writeJSON(w, http.StatusOK, map[string]string{"session_id": cur.id, "state": "closed"})
}

// currentSession returns the current session, nil when none.
func (s *Server) currentSession() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// removeIfCurrent clears cur when it is sess.
func (s *Server) removeIfCurrent(sess *session) {
	s.mu.Lock()
	if s.cur == sess {
		s.cur = nil
	}
	s.mu.Unlock()
}

type iceServerJSON struct {
	URIs        []string          `json:"uris"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

func (s *Server) handleICEServers(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet) || !checkVersion(w, r, "Reactor-WebRTC-Version") {
		return
	}
	if s.session(w, r.PathValue("sid")) == nil {
		return
	}
	out := make([]iceServerJSON, 0, len(s.cfg.Peer.ICEServers))
	for _, is := range s.cfg.Peer.ICEServers {
		e := iceServerJSON{URIs: is.URLs}
		if is.Username != "" || is.Credential != "" {
			e.Credentials = map[string]string{"username": is.Username, "password": is.Credential}
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ice_servers": out})
}

type sdpRequest struct {
	SDPOffer     string              `json:"sdp_offer"`
	ClientInfo   map[string]any      `json:"client_info"`
	TrackMapping []peer.TrackMapping `json:"track_mapping"`
}

func (s *Server) handleSDP(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost, http.MethodPut) || !checkVersion(w, r, "Reactor-WebRTC-Version") {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	if r.Method == http.MethodGet {
		code, body := sess.answerStatus()
		if body == nil {
			w.WriteHeader(code)
			return
		}
		writeJSON(w, code, body)
		return
	}
	var req sdpRequest
	if code, err := readJSON(w, r, 1<<20, &req, false); err != nil {
		writeError(w, code, "sdp_params: "+err.Error())
		return
	}
	if req.SDPOffer == "" {
		writeError(w, http.StatusBadRequest, "sdp_params: sdp_offer is required (the client's complete SDP offer)")
		return
	}
	if req.TrackMapping == nil {
		writeError(w, http.StatusBadRequest, "sdp_params: track_mapping is required: one {mid, name, kind, direction} per capability track")
		return
	}
	if len(req.TrackMapping) == 0 {
		writeError(w, http.StatusBadRequest, "sdp_params: track_mapping is empty; want one {mid, name, kind, direction} per capability track")
		return
	}
	offer, err := peer.ParseOffer(req.SDPOffer)
	if err != nil {
		writeError(w, http.StatusBadRequest, "sdp_params: "+err.Error())
		return
	}
	if err := sess.negotiate(offer, req.TrackMapping); err != nil {
		writeError(w, http.StatusBadRequest, "sdp_params: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "pending"})
}
