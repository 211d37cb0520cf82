package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/engine/peer"
)

// Several connections (viewers) on one session: the contract's
// …/transport/webrtc/connections routes. Every connection is bound to
// the session's outputs, encoded once (engine/peer's fan-out policy);
// SDK 2.9.0's id-less sdp_params routes are connection
// LegacyConnectionID.

// LegacyConnectionID is the connection the id-less sdp_params routes (SDK
// 2.9.0) offer on. POST …/connections never mints it.
const LegacyConnectionID = 1001

const (
	minConnID = 1001 // lowest id an offer may name
	maxConnID = 9999
	mintFrom  = 1002 // lowest id POST …/connections mints
	mintTries = 100

	earlyICEConns = 128 // connections with candidates buffered before their offer
	earlyICEEach  = 256 // candidates buffered per connection
)

// errConnLimit refuses a new connection past Config.MaxConnections (503
// at the offer; 429 at registration with Config.RegisterLimit).
var errConnLimit = errors.New("Connection limit reached")

// conn is one client connection of a session. Its fields are guarded by
// the session's mu, except lastSeen.
type conn struct {
	id          int
	peer        *peer.Peer
	gen         uint64 // the offer generation peer answers
	negotiating bool
	answer      string
	taken       bool // the answer was handed out (connection routes)
	negErr      error
	offered     time.Time
	ready       bool // the peer is connected and its data channel open
	announced   bool // the model and the journal were told it opened
	ice         []peer.ICECandidate
	iceServers  []peer.ICEServer // this connection's STUN/TURN servers, when iceSet
	iceSet      bool
	whep        bool          // a WHEP player: media only, no ping timeout (whep.go)
	answered    chan struct{} // closed when the latest offer's answer is ready or failed
	lastSeen    atomic.Int64  // unix nanos of the last data-channel message
}

// controlMsg is a v0 frame of the "control" channel (SDK ≥ 2.12):
// {"type":"notification","event":"resume_track","data":{"name":"main_video"}}.
type controlMsg struct {
	Type  string `json:"type"`
	Event string `json:"event"`
	Data  struct {
		Name string `json:"name"`
	} `json:"data"`
}

// onControl takes a frame of connection c's "control" channel (SDK ≥
// 2.12). Every frame counts as a ping. pause_track and resume_track are
// this connection's gates on one output track (peer.Peer.SetPaused):
// every connection streams at once, a resume of a running track (or a
// pause of a paused one) is a no-op, and a resumed video track starts
// with a keyframe. A request without a name, or naming no output of this
// connection, is answered on the control channel with
// {"type":"notification","event":"error","data":{"request":…,"name":…,
// "message":…}} (the contract gives no error shape; this one keeps the
// channel's envelope) and changes nothing.
//
// publish_track and unpublish_track claim and release an input track
// (contract §2.7; the frames are Framewire's choice, in the same
// envelope): a claim is granted first-come-first-served with
// {"type":"notification","event":"publish_granted","data":{"name":…}}
// and takes the track from a connection holding it implicitly (by
// delivering frames without a claim); while another connection's granted
// claim holds it, the request is refused with the error above plus
// "code":"publish_refused" and "holder" (that connection's id). A claim
// is released by unpublish_track (no reply; a no-op from a connection
// not holding it) or when the holder drops. A request without a name or
// naming no input track gets the error reply. Other messages (v1
// protobuf frames) are not acted on.
func (ss *session) onControl(c *conn, p *peer.Peer, data []byte) {
	ss.mu.Lock()
	current := c.peer == p && ss.conns[c.id] == c
	ss.mu.Unlock()
	if !current {
		return
	}
	c.lastSeen.Store(time.Now().UnixNano())
	var m controlMsg
	if json.Unmarshal(data, &m) != nil || m.Type != "notification" {
		return
	}
	var (
		err    error
		code   string
		holder int
	)
	var granted map[string]any
	switch m.Event {
	case "pause_track", "resume_track":
		if m.Data.Name == "" {
			err = fmt.Errorf("%s needs data.name, the output track to %s", m.Event, strings.TrimSuffix(m.Event, "_track"))
		} else {
			err = p.SetPaused(m.Data.Name, m.Event == "pause_track")
		}
	case "publish_track", "unpublish_track":
		granted, code, holder, err = ss.publish(c, m.Event, m.Data.Name)
	default:
		return
	}
	if err == nil {
		ss.log.Debug("control", "connection", c.id, "event", m.Event, "track", m.Data.Name)
		if granted != nil {
			ss.sendControl(c, p, granted, nil)
		}
		return
	}
	d := map[string]any{"request": m.Event, "name": ratelog.Truncate(m.Data.Name, 64), "message": ratelog.Truncate(err.Error(), 300)}
	if code != "" {
		d["code"], d["holder"] = code, holder
	}
	ss.sendControl(c, p, map[string]any{"type": "notification", "event": "error", "data": d}, err)
}

// sendControl sends msg on connection c's control channel (peer p); a
// failure is logged, rate-limited (err: what msg answers).
func (ss *session) sendControl(c *conn, p *peer.Peer, msg map[string]any, err error) {
	reply, _ := json.Marshal(msg)
	if serr := p.SendControl(reply); serr != nil {
		if ok, suppressed := ss.clientLog.Allow(); ok {
			ss.log.Debug("control reply not sent", "connection", c.id, "err", err, "send", serr, "suppressed", suppressed)
		}
	}
}

// register mints a connection id (POST …/connections): random in
// 1002–9999, never one this session handed out before. With limit it
// refuses with errConnLimit while the session holds MaxConnections
// connections (Config.RegisterLimit).
func (ss *session) register(limit bool) (int, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.st == stateClosed {
		return 0, errors.New("No session running")
	}
	if max := ss.srv.cfg.MaxConnections; limit && max > 0 && len(ss.conns) >= max {
		return 0, errConnLimit
	}
	for range mintTries {
		id := mintFrom + rand.IntN(maxConnID-mintFrom+1)
		if !ss.minted[id] && ss.conns[id] == nil {
			ss.minted[id] = true
			return id, nil
		}
	}
	return 0, errors.New("No connection ids left")
}

// trackMap is the register answer's track_map: the model's point of view
// (out: model output).
func (ss *session) trackMap() map[string]any {
	m := map[string]any{}
	for _, t := range ss.caps.Tracks {
		dir := "in"
		if t.Direction == string(peer.DirRecvonly) {
			dir = "out"
		}
		m[t.Name] = map[string]any{"kind": t.Kind, "direction": dir, "rate": 0.0}
	}
	return m
}

// addICE applies trickled candidates to connection cid's peer, or
// buffers them until its offer is answered (bounded: the oldest
// connection's buffer is evicted, candidates past earlyICEEach dropped).
func (ss *session) addICE(cid int, cands []peer.ICECandidate) {
	ss.mu.Lock()
	c := ss.conns[cid]
	var p *peer.Peer
	switch {
	case c != nil && c.peer != nil:
		p = c.peer
	case c != nil:
		c.ice = append(c.ice, cands[:min(len(cands), max(0, earlyICEEach-len(c.ice)))]...)
	default:
		if _, ok := ss.earlyICE[cid]; !ok {
			if len(ss.iceOrder) >= earlyICEConns {
				delete(ss.earlyICE, ss.iceOrder[0])
				ss.iceOrder = ss.iceOrder[1:]
			}
			ss.iceOrder = append(ss.iceOrder, cid)
		}
		buf := ss.earlyICE[cid]
		ss.earlyICE[cid] = append(buf, cands[:min(len(cands), max(0, earlyICEEach-len(buf)))]...)
	}
	ss.mu.Unlock()
	if p == nil {
		return
	}
	for _, cand := range cands {
		if err := p.AddICECandidate(cand); err != nil {
			if ok, suppressed := ss.clientLog.Allow(); ok {
				ss.log.Debug("ICE candidate refused", "connection", cid, "err", err, "suppressed", suppressed)
			}
		}
	}
}

// inputClaim is who feeds one input track (contract §2.7). holder is
// read without the lock on the per-frame path and written under ss.mu.
type inputClaim struct {
	holder  atomic.Pointer[conn]
	granted bool // guarded by ss.mu: holder asked with publish_track
	// released is the connection that last unpublished the track (under
	// ss.mu): it holds it again only by a new publish_track, never
	// implicitly, so its frames still in flight after the unpublish do
	// not take the track straight back.
	released *conn
}

// claimLocked returns input track name's claim, nil when the session has
// no input of that name. ss.mu is held.
func (ss *session) claimLocked(name string) *inputClaim {
	if cl := ss.claims[name]; cl != nil {
		return cl
	}
	for _, t := range ss.caps.Tracks {
		if t.Name == name && t.Direction != string(peer.DirRecvonly) {
			if ss.claims == nil {
				ss.claims = map[string]*inputClaim{}
			}
			cl := &inputClaim{}
			ss.claims[name] = cl
			return cl
		}
	}
	return nil
}

// inputNames lists the session's input tracks, for error messages.
func (ss *session) inputNames() string {
	var names []string
	for _, t := range ss.caps.Tracks {
		if t.Direction != string(peer.DirRecvonly) {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// inputGate returns the per-sample filter of connection c's inbound track
// name (peer.Inbound.SetAccept): a sample passes when c holds the track;
// while nobody holds it, c's sample takes it implicitly (held until c
// drops or unpublishes). The filter runs on the inbound's reading
// goroutine only; it takes ss.mu only while the track is free and does
// not allocate.
func (ss *session) inputGate(c *conn, name string) func() bool {
	ss.mu.Lock()
	cl := ss.claimLocked(name)
	ss.mu.Unlock()
	if cl == nil {
		return func() bool { return false }
	}
	refusing := false // read side only: logs each change once
	return func() bool {
		h := cl.holder.Load()
		if h == nil {
			ss.mu.Lock()
			if cl.holder.Load() == nil && ss.conns[c.id] == c && cl.released != c {
				cl.holder.Store(c)
				cl.granted = false
			}
			h = cl.holder.Load()
			ss.mu.Unlock()
		}
		ok := h == c
		if ok == refusing {
			refusing = !ok
			if refusing {
				ss.log.Info("inbound track discarded: another connection holds it", "connection", c.id, "track", name)
			} else {
				ss.log.Info("inbound track feeds the model", "connection", c.id, "track", name)
			}
		}
		return ok
	}
}

// releaseLocked frees every input track connection c holds (c dropped).
// ss.mu is held.
func (ss *session) releaseLocked(c *conn) {
	for _, cl := range ss.claims {
		if cl.holder.Load() == c {
			cl.holder.Store(nil)
			cl.granted = false
		}
		if cl.released == c {
			cl.released = nil
		}
	}
}

// publish serves publish_track and unpublish_track of connection c on
// input track name. It returns the reply to send (nil: none) and an
// error to answer with; code is the error's code ("publish_refused").
func (ss *session) publish(c *conn, event, name string) (reply map[string]any, code string, holder int, err error) {
	if name == "" {
		return nil, "", 0, fmt.Errorf("%s needs data.name, the input track to %s", event, strings.TrimSuffix(event, "_track"))
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	cl := ss.claimLocked(name)
	if cl == nil {
		return nil, "", 0, fmt.Errorf("%q is not an input track of this session (inputs: %s)", name, ss.inputNames())
	}
	h := cl.holder.Load()
	if event == "unpublish_track" {
		if h == c {
			cl.holder.Store(nil)
			cl.granted = false
			cl.released = c
		}
		return nil, "", 0, nil // a connection not holding it: a no-op
	}
	if h != nil && h != c && cl.granted {
		return nil, "publish_refused", h.id, fmt.Errorf("input track %q is held by connection %d", name, h.id)
	}
	cl.holder.Store(c)
	cl.granted = true
	if cl.released == c {
		cl.released = nil
	}
	if h != nil && h != c {
		ss.log.Info("input track taken by a granted claim", "track", name, "connection", c.id, "from", h.id)
	}
	return map[string]any{"type": "notification", "event": "publish_granted", "data": map[string]any{"name": name}}, "", 0, nil
}

// parseConnID reads the {cid} path value: 422 when not an integer, 400
// outside 1001–9999.
func parseConnID(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.PathValue("cid")
	cid, err := strconv.Atoi(raw)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{"loc": []string{"path", "cid"}, "msg": "connection id must be an integer", "input": ratelog.Truncate(raw, 32)}}})
		return 0, false
	}
	if cid < minConnID || cid > maxConnID {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("connection id %d is outside %d–%d", cid, minConnID, maxConnID))
		return 0, false
	}
	return cid, true
}

// handleRegister serves POST …/connections.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) || !checkVersion(w, r, "Reactor-WebRTC-Version") {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	discardBody(w, r) // any body is ignored
	id, err := sess.register(s.cfg.RegisterLimit)
	switch {
	case err != nil && sess.currentState() == stateClosed:
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, errConnLimit):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"connection_id": id, "track_map": sess.trackMap()})
	}
}

type connSDPRequest struct {
	SDPOffer     string              `json:"sdp_offer"`
	TrackMapping []peer.TrackMapping `json:"track_mapping"`
	// ICEServers, when present (even empty), replace the configured
	// STUN/TURN servers for this connection (fresh TURN credentials per
	// offer); absent or null: the configured ones.
	ICEServers *[]iceServerJSON `json:"ice_servers"`
}

// peerICEServers converts the request's ice_servers.
func (r connSDPRequest) peerICEServers() ([]peer.ICEServer, error) {
	out := make([]peer.ICEServer, 0, len(*r.ICEServers))
	for i, is := range *r.ICEServers {
		if len(is.URIs) == 0 {
			return nil, fmt.Errorf("ice_servers[%d] has no uris", i)
		}
		out = append(out, peer.ICEServer{URLs: is.URIs, Username: is.Credentials["username"], Credential: is.Credentials["password"]})
	}
	return out, nil
}

// handleConnSDP serves POST/PUT/GET …/connections/{cid}/sdp_params.
func (s *Server) handleConnSDP(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost, http.MethodPut) || !checkVersion(w, r, "Reactor-WebRTC-Version") {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	cid, ok := parseConnID(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodGet {
		code, body := sess.answerStatus(cid, true)
		if body == nil {
			w.WriteHeader(code)
			return
		}
		writeJSON(w, code, body)
		return
	}
	var req connSDPRequest
	if code, err := readJSON(w, r, 1<<20, &req, false); err != nil {
		writeError(w, code, "sdp_params: "+err.Error())
		return
	}
	if req.SDPOffer == "" {
		writeError(w, http.StatusUnprocessableEntity, "sdp_params: sdp_offer is required (the client's complete SDP offer)")
		return
	}
	for i, tm := range req.TrackMapping {
		if tm.Direction != peer.DirRecvonly && tm.Direction != peer.DirSendonly {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sdp_params: track_mapping[%d].direction %q; want recvonly or sendonly", i, ratelog.Truncate(string(tm.Direction), 32)))
			return
		}
	}
	offer, err := peer.ParseOffer(req.SDPOffer)
	if err != nil {
		writeError(w, http.StatusBadRequest, "sdp_params: "+err.Error())
		return
	}
	var servers []peer.ICEServer
	if req.ICEServers != nil {
		if servers, err = req.peerICEServers(); err != nil {
			writeError(w, http.StatusBadRequest, "sdp_params: "+err.Error())
			return
		}
	}
	if err := sess.negotiateWith(cid, offer, req.TrackMapping, servers, req.ICEServers != nil); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errConnLimit) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"connection_id": cid})
}

// handleConnICE serves POST …/connections/{cid}/ice_candidates.
func (s *Server) handleConnICE(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) || !checkVersion(w, r, "Reactor-WebRTC-Version") {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	cid, ok := parseConnID(w, r)
	if !ok {
		return
	}
	var req struct {
		Candidates []peer.ICECandidate `json:"candidates"`
		IsFinal    bool                `json:"is_final"`
	}
	if code, err := readJSON(w, r, 1<<20, &req, true); err != nil {
		writeJSON(w, code, map[string]string{"detail": "ice_candidates: " + err.Error()})
		return
	}
	if len(req.Candidates) > 0 {
		sess.addICE(cid, req.Candidates)
	}
	w.WriteHeader(http.StatusAccepted)
}
