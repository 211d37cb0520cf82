package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/protocol"
)

// ServeHTTP routes the node's requests:
//
//	POST   /node/sessions                       start a session (front → node)
//	DELETE /node/sessions/{sid}                  end it
//	*      /sessions/{sid}/transport/webrtc/...  the session's signalling
//	POST   /sessions/{sid}/uploads               an upload slot
//	PUT    /sessions/{sid}/uploads/{id}          its bytes (presigned by a front)
//	GET    /clips, /clips/chunks/{id}/{name}     the recordings (clips.go)
//	GET    /healthz, /readyz
//
// Every route but the last ones and the upload PUT needs a bearer token
// of the session's account.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browsers reach nodes only through fronts, which answer CORS; this
	// keeps a node's answers readable when a page talks to it directly.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/healthz":
		fmt.Fprintln(w, "ok")
	case r.URL.Path == "/readyz":
		n.readyz(w, r)
	case len(parts) == 2 && parts[0] == "node" && parts[1] == "sessions" && r.Method == http.MethodPost:
		n.handleStart(w, r)
	case len(parts) == 3 && parts[0] == "node" && parts[1] == "sessions" && r.Method == http.MethodDelete:
		n.handleEnd(w, r, parts[2])
	case len(parts) == 4 && parts[0] == "sessions" && parts[2] == "uploads" && r.Method == http.MethodPut:
		n.handlePut(w, r, parts[1], parts[3])
	case len(parts) >= 3 && parts[0] == "sessions" && (parts[2] == "transport" || parts[2] == "uploads"):
		n.handleSession(w, r, parts[1])
	case parts[0] == "clips" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		n.handleClips(w, r) // clips.go
	default:
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	}
}

func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	if err := n.unhealthy(); err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "unhealthy: "+err.Error())
		return
	}
	n.mu.Lock()
	registered, draining := n.registered, n.draining
	n.mu.Unlock()
	switch {
	case !registered:
		writeDetail(w, http.StatusServiceUnavailable, "not registered yet")
		return
	case draining:
		writeDetail(w, http.StatusServiceUnavailable, "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := n.cfg.Store.Ping(ctx); err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "redis: "+err.Error())
		return
	}
	fmt.Fprintln(w, "ready")
}

// StartReply is the answer of POST /node/sessions.
type StartReply struct {
	SessionID string `json:"session_id"`
	// NodeSessionID is the engine session's id (engine.Session.ID), which
	// the engine's own log lines carry.
	NodeSessionID string              `json:"node_session_id"`
	Capabilities  engine.Capabilities `json:"capabilities"`
}

// handleStart starts session {"session_id"} for the account of a front's
// placement token (auth.Issuer.MintForNode; client tokens are refused),
// refusing with 503 when the node is draining or full.
func (n *Node) handleStart(w http.ResponseWriter, r *http.Request) {
	claims, err := n.cfg.Issuer.VerifyForNode(auth.BearerToken(r))
	if err != nil {
		writeDetail(w, http.StatusUnauthorized, err.Error())
		return
	}
	var req struct {
		SessionID string `json:"session_id"`
		// ClipBase is the front's public base for clip URLs when it has
		// a path prefix (protocol.StartOptions.ClipBase).
		ClipBase string `json:"clip_base"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.SessionID == "" {
		writeDetail(w, http.StatusBadRequest, "want {\"session_id\": string}")
		return
	}
	h, code, err := n.admit(req.SessionID, claims.Account)
	if err != nil {
		n.refused.Add(1)
		writeDetail(w, code, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	// The recording id is the front's session id (a UUID), so the SDK's
	// session id names its clips.
	_, err = n.srv.Start(ctx, protocol.StartOptions{ID: h.fsid, RecordingID: h.fsid, ClipBase: req.ClipBase})
	cancel()
	if err != nil {
		n.mu.Lock()
		delete(n.sessions, h.fsid)
		n.mu.Unlock()
		n.refused.Add(1)
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, engine.ErrTooManySessions), errors.Is(err, protocol.ErrFull), errors.Is(err, protocol.ErrServerClosed):
			code = http.StatusServiceUnavailable
		case errors.Is(err, protocol.ErrSessionExists):
			code = http.StatusConflict
		}
		writeDetail(w, code, "start: "+err.Error())
		return
	}
	var engineID string
	for _, si := range n.srv.Sessions() {
		if si.ID == h.fsid {
			engineID = si.EngineID
		}
	}
	slog := n.log.With("session", h.fsid)
	until := h.started.Add(n.cfg.MaxDuration + time.Minute)
	if err := n.cfg.Store.Commit(r.Context(), n.cfg.ID, h.fsid, until); err != nil {
		slog.Warn("slot not committed", "err", err)
	}
	n.noteRecording(r.Context(), h.fsid, h.account) // clips.go
	n.mu.Lock()
	h.running = true
	n.mu.Unlock()
	n.started.Add(1)
	slog.Info("session placed", "node_session", engineID, "account", h.account)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(StartReply{SessionID: h.fsid, NodeSessionID: engineID, Capabilities: n.w.Engine().Capabilities()})
}

// admit books session fsid, or says why not: draining, unhealthy, or an
// id already here. Capacity is the protocol server's to enforce.
func (n *Node) admit(fsid, account string) (*hosted, int, error) {
	if err := n.unhealthy(); err != nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("node is unhealthy: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.draining:
		return nil, http.StatusServiceUnavailable, errors.New("node is draining")
	case n.sessions[fsid] != nil:
		return nil, http.StatusConflict, fmt.Errorf("session %s already runs here", fsid)
	}
	h := &hosted{fsid: fsid, account: account, started: time.Now()}
	n.sessions[fsid] = h
	return h, 0, nil
}

// owned returns session fsid when the request's token belongs to its
// account; otherwise it answers 401 (bad token) or 404 and returns nil.
func (n *Node) owned(w http.ResponseWriter, r *http.Request, fsid string) *hosted {
	claims, err := n.cfg.Issuer.VerifySigned(auth.BearerToken(r))
	if err != nil {
		writeDetail(w, http.StatusUnauthorized, err.Error())
		return nil
	}
	n.mu.Lock()
	h := n.sessions[fsid]
	n.mu.Unlock()
	if h == nil || !h.running || h.account != claims.Account {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", fsid))
		return nil
	}
	return h
}

func (n *Node) handleEnd(w http.ResponseWriter, r *http.Request, fsid string) {
	h := n.owned(w, r, fsid)
	if h == nil {
		return
	}
	if !n.finish(r.Context(), h, "deleted by the client") {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", fsid))
		return
	}
	writeDetail(w, http.StatusOK, "closed")
}

// handleSession hands a transport or upload-slot request of a session its
// token's account owns to the protocol server, unchanged.
func (n *Node) handleSession(w http.ResponseWriter, r *http.Request, fsid string) {
	if n.owned(w, r, fsid) == nil {
		return
	}
	n.srv.ServeHTTP(w, r)
}

// handlePut stores an upload's bytes when the URL carries a valid,
// unexpired signature of a front (auth.Issuer.SignUpload).
func (n *Node) handlePut(w http.ResponseWriter, r *http.Request, fsid, id string) {
	if err := n.cfg.Issuer.CheckUpload(r.URL.Query(), fsid, id); err != nil {
		writeDetail(w, http.StatusForbidden, err.Error())
		return
	}
	n.mu.Lock()
	h := n.sessions[fsid]
	n.mu.Unlock()
	if h == nil || !h.running {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", fsid))
		return
	}
	n.srv.ServeHTTP(w, r)
}

// writeDetail writes the shared {"detail": …} error body.
var writeDetail = httpserve.WriteDetail
