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
	// sizes): a process serves one Server (local mode, or a production node
	// of any capacity), so this is the process's upload budget. A PUT that
	// would exceed it is answered 507. Default 256 MB.
	UploadMemory int64
	// MaxConnections caps the connections (viewers) of one session that
	// are negotiating or held: an offer for a new connection id past it is
	// refused with 503; a re-offer on a known id is always admitted.
	// Default 64; negative: no cap.
	MaxConnections int
	// RegisterLimit makes POST …/connections answer 429 {"detail":
	// "Connection limit reached"} while the session already holds
	// MaxConnections connections (negotiating or held), as the hosted
	// coordinator does at registration. A production node sets it (its
	// front relays the answer: only the node sees connections come and
	// go). Off (local mode, as RT3): registering never counts toward the
	// cap and the offer past it gets 503.
	RegisterLimit bool
	// ConnectTimeout closes a connection that is not connected this long
	// after its offer, freeing its slot. Default 30 s.
	ConnectTimeout time.Duration
	// MaxSessions is the admission policy. 0 (the default) is local mode:
	// one session at a time, and a start ends the running session and
	// replaces it (the Reactor SDK's local-mode semantics). N > 0 is node
	// mode: up to N sessions run at once, each reached by its own id, and
	// a start beyond them is refused with ErrFull (503 on POST
	// /start_session) while the running ones go on.
	MaxSessions int
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
	if c.MaxConnections == 0 {
		c.MaxConnections = 64
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
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

// Server serves the Reactor protocol for one engine, through its Wiring:
// a table of sessions keyed by id, admitted by Config.MaxSessions (local
// mode: one session, replaced by a new start_session; node mode: up to N,
// the next refused). It is an http.Handler; CORS is answered on every
// path. Its methods are safe for concurrent use. The caller must call
// Close, and closes the engine after it.
type Server struct {
	cfg  Config
	w    *wiring.Wiring
	caps engine.Capabilities
	log  *slog.Logger
	mux  *http.ServeMux

	startMu  sync.Mutex // local mode: serialises starts, so the newest start wins
	mu       sync.Mutex // guards the fields below
	sessions map[string]*session
	reserved map[string]bool // node mode: ids of admitted starts not installed yet
	pending  int             // node mode: admitted starts without a chosen id
	closed   bool

	journal  *journal      // the /events journal (events.go)
	done     chan struct{} // closed by Close: ends /events streams
	doneOnce sync.Once

	stats counters
	upMem *memBudget // upload bytes of every session together

	testHookStarted func() // tests: runs after the engine started a session, before it is installed
}

type counters struct {
	droppedMessages   atomic.Uint64
	capabilityReplies atomic.Uint64
	peerDropped       atomic.Uint64 // DroppedMessages of peers already closed
	peerOversized     atomic.Uint64 // OversizedMessages of peers already closed
	peerPLIsReceived  atomic.Uint64 // PLIsReceived of peers already closed
	peerPLIsSent      atomic.Uint64 // PLIsSent of peers already closed
}

// Stats is a snapshot of the server's counters, over every session.
// Commands and sessions are counted once, by the engine
// (engine.Engine.Stats).
type Stats struct {
	// DroppedMessages counts data-channel messages dropped: malformed or
	// unknown envelopes, and (from every peer the server had) binary
	// frames and frames on channels other than "data".
	DroppedMessages   uint64
	CapabilityReplies uint64 // modelCapabilities sent
	// OversizedMessages counts client messages over the data channel's
	// size limit, from every peer the server had (also in
	// DroppedMessages). Each is logged; one too large to receive at all
	// loses the peer, and its client is told (MESSAGE_TOO_LARGE) when the
	// channel can still carry it.
	OversizedMessages uint64
	// KeyframeRequestsReceived and KeyframeRequestsSent count the
	// keyframe requests (PLI/FIR) every peer the server had received from
	// its client and sent to it: totals that never decrease, where Peer
	// covers only the peers connected now.
	KeyframeRequestsReceived, KeyframeRequestsSent uint64
	// State is the state of the one session when exactly one runs (as in
	// local mode), "ready" when none runs, "serving" with several (States
	// counts them by state).
	State string
	// States counts the running sessions by state (waiting, streaming,
	// orphaned).
	States map[string]int
	// UploadMemory is the upload bytes held in memory now, every session
	// together (bounded by Config.UploadMemory).
	UploadMemory int64
	// Peer totals the connected peers of every session: keyframe requests
	// both ways, GCC's estimates (summed), discarded RTP. With one session
	// it is that session's peer.
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
	if cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("protocol: MaxSessions %d; want 0 (local mode: one replaceable session) or a positive limit", cfg.MaxSessions)
	}
	s := &Server{cfg: cfg, w: w, caps: caps, log: cfg.Logger.With("component", "protocol"), upMem: &memBudget{limit: cfg.UploadMemory},
		sessions: map[string]*session{}, reserved: map[string]bool{}, journal: newJournal(), done: make(chan struct{})}
	s.journal.transition("initialization_success", "created", "ready", nil)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/events", s.handleEvents)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/connections", s.handleRegister)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/connections/{cid}/sdp_params", s.handleConnSDP)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/connections/{cid}/ice_candidates", s.handleConnICE)
	s.mux.HandleFunc("/sessions/{sid}/whep", s.handleWHEP)
	s.mux.HandleFunc("/sessions/{sid}/whep/{cid}", s.handleWHEPResource)
	s.mux.HandleFunc("/start_session", s.handleStart)
	s.mux.HandleFunc("/stop_session", s.handleStop)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/ice_servers", s.handleICEServers)
	s.mux.HandleFunc("/sessions/{sid}/transport/webrtc/sdp_params", s.handleSDP)
	s.mux.HandleFunc("/sessions/{sid}/uploads", s.handleCreateUpload)
	s.mux.HandleFunc("/sessions/{sid}/uploads/{id}", s.handlePutSessionUpload)
	s.mux.HandleFunc("/uploads/{id}", s.handlePutUpload)
	s.registerClipRoutes() // clips.go
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
		return httpserve.IsLoopbackName(u.Hostname())
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
	if httpserve.IsLoopbackName(u.Hostname()) {
		return true
	}
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return !ok || !a.IP.IsLoopback()
}

// Close ends every session and waits for them: every goroutine of a
// session belongs to the engine session, so when Close returns none is
// left. Later starts are refused (ErrServerClosed; 503 over HTTP). It is
// idempotent. It does not stop an http.Server using s.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	list := s.takeAll()
	s.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
	endAll(list, "server closing")
	return nil
}

// takeAll removes every session from the table and returns them; s.mu
// must be held.
func (s *Server) takeAll() []*session {
	list := make([]*session, 0, len(s.sessions))
	for id, ss := range s.sessions {
		list = append(list, ss)
		delete(s.sessions, id)
	}
	return list
}

// endAll ends the sessions at once and waits for each (a session's end
// waits up to endedFlushWait for its client's goodbye).
func endAll(list []*session, reason string) {
	var wg sync.WaitGroup
	for _, ss := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss.end(reason)
		}()
	}
	wg.Wait()
}

// SessionInfo describes one running session.
type SessionInfo struct {
	ID       string    // the session's id on the protocol routes
	EngineID string    // the engine session's id (engine.Session.ID; wiring stats)
	State    string    // waiting, streaming or orphaned
	Started  time.Time // when the start was answered
	// UploadBytes is the upload data the session holds in memory.
	UploadBytes int64
	Peer        peer.Stats // its connections' peers, summed (Connected: any is)
	// Connections counts the connections negotiating or held.
	Connections int
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		DroppedMessages:   s.stats.droppedMessages.Load(),
		CapabilityReplies: s.stats.capabilityReplies.Load(),
		State:             "ready",
		States:            map[string]int{},
		UploadMemory:      s.upMem.inUse(),
	}
	st.DroppedMessages += s.stats.peerDropped.Load()
	list := s.Sessions()
	for _, si := range list {
		st.States[si.State]++
		st.Peer = addPeerStats(st.Peer, si.Peer)
	}
	st.DroppedMessages += st.Peer.DroppedMessages
	st.OversizedMessages = s.stats.peerOversized.Load() + st.Peer.OversizedMessages
	st.KeyframeRequestsReceived = s.stats.peerPLIsReceived.Load() + st.Peer.PLIsReceived
	st.KeyframeRequestsSent = s.stats.peerPLIsSent.Load() + st.Peer.PLIsSent
	switch len(list) {
	case 0:
	case 1:
		st.State = list[0].State
	default:
		st.State = "serving"
	}
	return st
}

// addPeerStats sums two peers' counters (Connected: either is).
func addPeerStats(a, b peer.Stats) peer.Stats {
	a.Connected = a.Connected || b.Connected
	a.PLIsReceived += b.PLIsReceived
	a.PLIsSent += b.PLIsSent
	a.TargetBitrate += b.TargetBitrate
	a.DroppedMessages += b.DroppedMessages
	a.OversizedMessages += b.OversizedMessages
	a.DiscardedRTP += b.DiscardedRTP
	return a
}

// Sessions lists the running sessions (in no particular order).
func (s *Server) Sessions() []SessionInfo {
	out := make([]SessionInfo, 0, s.cfg.MaxSessions+1)
	for _, ss := range s.list() {
		si := SessionInfo{ID: ss.id, EngineID: ss.ws.ID(), State: ss.currentState().String(), Started: ss.started, UploadBytes: ss.uploads.held()}
		if si.State == stateClosed.String() {
			continue
		}
		for _, p := range ss.allPeers() {
			si.Peer = addPeerStats(si.Peer, p.Stats())
		}
		si.Connections = ss.connCount()
		out = append(out, si)
	}
	return out
}

// list returns the sessions in the table.
func (s *Server) list() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
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

// session returns the session sid, else writes the error: 400 when none
// runs, 404 for an unknown id.
func (s *Server) session(w http.ResponseWriter, sid string) *session {
	s.mu.Lock()
	ss, n := s.sessions[sid], len(s.sessions)
	s.mu.Unlock()
	if n == 0 {
		writeError(w, http.StatusBadRequest, "no session is running; POST /start_session first")
		return nil
	}
	if ss == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", ratelog.Truncate(sid, 64)))
		return nil
	}
	return ss
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	var req struct {
		ExtraArgs map[string]any `json:"extra_args"`
		SessionID string         `json:"session_id"` // the recording id (clips.go)
	}
	var raw json.RawMessage
	if code, err := readJSON(w, r, 1<<20, &raw, true); err != nil {
		writeError(w, code, "start_session: "+err.Error())
		return
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req); err != nil {
			writeError(w, http.StatusBadRequest, "start_session: body is not the expected JSON: "+err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var params map[string]any
	_ = json.Unmarshal(raw, &params) // readJSON decoded it already
	sess, err := s.start(ctx, StartOptions{RecordingID: req.SessionID, params: params})
	switch {
	case errors.Is(err, ErrServerClosed):
		writeError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	case errors.Is(err, ErrFull):
		writeError(w, http.StatusServiceUnavailable, "start_session: "+err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "start_session: model could not start a session: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"session_id":         sess.id,
		"state":              stateWaiting.String(),
		"cluster":            "local",
		"model":              map[string]string{"name": s.w.Engine().ModelName()},
		"server_info":        map[string]string{"server_version": s.cfg.ServerVersion},
		"selected_transport": map[string]string{"protocol": "webrtc", "version": "1.0"},
		"capabilities":       sess.caps,
		"recording":          s.recordingDescriptor(), // clips.go
	})
}

var (
	// ErrServerClosed is returned by Start once Close has begun.
	ErrServerClosed = errors.New("protocol: server closed")
	// ErrFull is returned by Start when Config.MaxSessions sessions run
	// (node mode); the running sessions are not disturbed.
	ErrFull = errors.New("protocol: server is full")
	// ErrSessionExists is returned by Start for an id that is in use.
	ErrSessionExists = errors.New("protocol: session id in use")
)

// StartOptions configures one session started by Server.Start.
type StartOptions struct {
	// ID is the session's id on every route (/sessions/{id}/...): a
	// production node uses the id its front chose, so requests reach the
	// session unchanged. Empty: the engine session's id, as
	// POST /start_session does.
	ID string
	// RecordingID, when a lowercase UUID, names the session's recording
	// (the start body's session_id, clips.go); otherwise the recording
	// keeps its minted id.
	RecordingID string
	// ClipBase, when set, is what the session's clipReady playlist URLs
	// start with instead of the server's (Config.PublicURL): a node
	// behind a front with a path prefix is given the front's public base,
	// since a path-only URL would lose the prefix in the SDK (clips.go).
	ClipBase string

	params map[string]any // the start body, for the journal
}

// Start starts a session as POST /start_session does, through the same
// admission (Config.MaxSessions) and start path, and returns its id; the
// transport and upload routes then serve it. ctx bounds the start. It
// fails with ErrServerClosed, ErrFull, ErrSessionExists or the engine's
// error (engine.ErrTooManySessions when the engine is full). It blocks
// while the model starts the session (and, in local mode, while the
// session it replaces ends).
func (s *Server) Start(ctx context.Context, o StartOptions) (string, error) {
	ss, err := s.start(ctx, o)
	if err != nil {
		return "", err
	}
	return ss.id, nil
}

// start admits a session, starts it in the engine and installs it: the
// one start path. In local mode it first ends the running session.
func (s *Server) start(ctx context.Context, o StartOptions) (*session, error) {
	id := o.ID
	if s.cfg.MaxSessions == 0 {
		// Starts run one at a time, so concurrent ones behave like
		// sequential ones: each replaces the previous session and the
		// newest stays.
		s.startMu.Lock()
		defer s.startMu.Unlock()
	}
	old, err := s.admit(id)
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		s.log.Info("start_session replaces the previous session", "old", o.id)
		o.end("replaced by a new session")
	}
	ws, err := s.w.Start(ctx)
	if err != nil {
		s.unreserve(id)
		return nil, err
	}
	if s.testHookStarted != nil {
		s.testHookStarted()
	}
	s.adoptRecordingID(ws, o.RecordingID, o.ClipBase) // clips.go
	sess := s.newSession(ws, id)
	sess.journalRecording() // clips.go
	s.mu.Lock()
	s.unreserveLocked(id)
	if s.closed {
		s.mu.Unlock()
		sess.end("server closing")
		return nil, ErrServerClosed
	}
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	params := o.params
	if params == nil {
		params = map[string]any{}
	}
	s.journal.transition("start_session", "ready", stateWaiting.String(), map[string]any{"params": params})
	sess.start()
	s.log.Info("session started", "session", sess.id)
	return sess, nil
}

// admit applies the admission policy to a start of session id ("": the
// engine's id). Local mode takes the running sessions out of the table
// (the caller ends them); node mode reserves a place or refuses.
func (s *Server) admit(id string) (replaced []*session, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrServerClosed
	case s.cfg.MaxSessions == 0:
		return s.takeAll(), nil
	case id != "" && (s.sessions[id] != nil || s.reserved[id]):
		return nil, fmt.Errorf("%w: %q", ErrSessionExists, id)
	}
	if n := len(s.sessions) + len(s.reserved) + s.pending; n >= s.cfg.MaxSessions {
		return nil, fmt.Errorf("%w: %d of %d sessions run or are starting; retry later or on another server", ErrFull, n, s.cfg.MaxSessions)
	}
	if id != "" {
		s.reserved[id] = true
	} else {
		s.pending++
	}
	return nil, nil
}

func (s *Server) unreserve(id string) {
	s.mu.Lock()
	s.unreserveLocked(id)
	s.mu.Unlock()
}

// unreserveLocked gives back the place admit reserved; s.mu must be held.
func (s *Server) unreserveLocked(id string) {
	switch {
	case s.cfg.MaxSessions == 0:
	case id != "":
		delete(s.reserved, id)
	default:
		s.pending--
	}
}

// End ends session id with reason and waits until every goroutine of it
// returned; false when no such session runs. It must not be called from
// model code of that session.
func (s *Server) End(id, reason string) bool {
	s.mu.Lock()
	ss := s.sessions[id]
	delete(s.sessions, id)
	s.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.end(reason)
	return true
}

// SessionState returns session id's state: "waiting" (no client
// connected yet), "streaming", "orphaned" (client lost, reconnect window
// open) or "" when it does not run (never started, or ended: stopped,
// orphan grace over, model returned).
func (s *Server) SessionState(id string) string {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return ""
	}
	if st := ss.currentState(); st != stateClosed {
		return st.String()
	}
	return ""
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	var list []*session
	s.mu.Lock()
	if s.cfg.MaxSessions == 0 {
		list = s.takeAll()
	}
	s.mu.Unlock()
	if s.cfg.MaxSessions > 0 {
		writeError(w, http.StatusBadRequest, "stop_session: this server runs several sessions; end one through its own route (DELETE of the session)")
		return
	}
	if len(list) == 0 {
		writeError(w, http.StatusConflict, "no session is running")
		return
	}
	for _, ss := range list {
		ss.markStopped()
	}
	endAll(list, "stop_session")
	writeJSON(w, http.StatusOK, map[string]string{"session_id": list[0].id, "state": "closed"})
}

// currentSession returns the one session of a local-mode server, nil
// when none runs (for tests).
func (s *Server) currentSession() *session {
	for _, ss := range s.list() {
		return ss
	}
	return nil
}

// remove takes sess out of the table if it is still there.
func (s *Server) remove(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
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
		code, body := sess.answerStatus(LegacyConnectionID, false)
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
	if err := sess.negotiate(LegacyConnectionID, offer, req.TrackMapping); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errConnLimit) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, "sdp_params: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "pending"})
}
