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
// channel's envelope) and changes nothing. Other messages (publish_track,
// v1 protobuf frames) are not acted on.
func (ss *session) onControl(c *conn, p *peer.Peer, data []byte) {
	ss.mu.Lock()
	current := c.peer == p && ss.conns[c.id] == c
	ss.mu.Unlock()
	if !current {
		return
	}
	c.lastSeen.Store(time.Now().UnixNano())
	var m controlMsg
	if json.Unmarshal(data, &m) != nil || m.Type != "notification" || (m.Event != "pause_track" && m.Event != "resume_track") {
		return
	}
	var err error
	if m.Data.Name == "" {
		err = fmt.Errorf("%s needs data.name, the output track to %s", m.Event, strings.TrimSuffix(m.Event, "_track"))
	} else {
		err = p.SetPaused(m.Data.Name, m.Event == "pause_track")
	}
	if err == nil {
		ss.log.Debug("control", "connection", c.id, "event", m.Event, "track", m.Data.Name)
		return
	}
	reply, _ := json.Marshal(map[string]any{"type": "notification", "event": "error", "data": map[string]any{
		"request": m.Event, "name": ratelog.Truncate(m.Data.Name, 64), "message": ratelog.Truncate(err.Error(), 300)}})
	if serr := p.SendControl(reply); serr != nil {
		if ok, suppressed := ss.clientLog.Allow(); ok {
			ss.log.Debug("control error reply not sent", "connection", c.id, "err", err, "send", serr, "suppressed", suppressed)
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

// claimInput reports whether connection c may feed input track name: the
// first connection to deliver frames on it holds it until it drops
// (contract §2.7; a granted publish_track claim is not implemented yet).
func (ss *session) claimInput(c *conn, name string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.claims == nil {
		ss.claims = map[string]*conn{}
	}
	holder := ss.claims[name]
	if holder == nil || holder == c || ss.conns[holder.id] != holder {
		ss.claims[name] = c
		return true
	}
	return false
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
