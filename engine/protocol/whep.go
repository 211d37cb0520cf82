package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/framewire/framewire/engine/peer"
)

// WHEP (RFC 9725) as an extension beyond the Reactor runtime: a player
// outside the SDK POSTs an SDP offer (application/sdp) to
// /sessions/{sid}/whep and gets 201 with the answer and a Location to
// DELETE when it leaves. Each WHEP player is one connection of the
// session (a fresh id), counted by the cap, bound to the same encoded
// outputs; it has no data channel, so it is lost only when its peer
// fails or closes (no ping timeout). Its offer's video m-sections receive
// the model's first video output, audio ones its first audio output.

// handleWHEP serves POST /sessions/{sid}/whep.
func (s *Server) handleWHEP(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "whep: Content-Type must be application/sdp (the SDP offer as the body)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil || len(body) > 1<<20 {
		writeError(w, http.StatusBadRequest, "whep: the offer could not be read or is larger than 1 MiB")
		return
	}
	offer, err := peer.ParseOffer(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "whep: "+err.Error())
		return
	}
	mapping, err := sess.whepMapping(offer)
	if err != nil {
		writeError(w, http.StatusBadRequest, "whep: "+err.Error())
		return
	}
	cid, err := sess.register(false) // the cap is negotiateWHEP's (503)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "whep: "+err.Error())
		return
	}
	done, err := sess.negotiateWHEP(cid, offer, mapping)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errConnLimit) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, "whep: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.NegotiationTimeout+time.Second)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
	}
	code, ans := sess.answerStatus(cid, true)
	if code != http.StatusOK {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("whep: no answer (%d)", code))
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/sessions/"+sess.id+"/whep/"+strconv.Itoa(cid))
	w.Header().Set("Access-Control-Expose-Headers", "Location")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, ans.(map[string]any)["sdp_answer"].(string))
}

// handleWHEPResource serves DELETE /sessions/{sid}/whep/{cid}: the player
// leaves.
func (s *Server) handleWHEPResource(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodDelete) {
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
	sess.mu.Lock()
	c := sess.conns[cid]
	var p *peer.Peer
	if c != nil {
		p = c.peer
	}
	sess.mu.Unlock()
	if c == nil || !c.whep {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no WHEP connection %d in this session", cid))
		return
	}
	sess.lose(c, p, "WHEP player left (DELETE)")
	w.WriteHeader(http.StatusOK)
}

// whepMapping maps the offer's m-sections onto the model's first video
// and audio outputs.
func (ss *session) whepMapping(offer *peer.Offer) ([]peer.TrackMapping, error) {
	first := map[peer.Kind]string{}
	for _, t := range ss.caps.Tracks {
		k := peer.Kind(t.Kind)
		if t.Direction == string(peer.DirRecvonly) && first[k] == "" {
			first[k] = t.Name
		}
	}
	var out []peer.TrackMapping
	used := map[string]bool{}
	for _, m := range offer.MediaSections() {
		name := first[m.Kind]
		if name == "" || used[name] {
			continue
		}
		used[name] = true
		out = append(out, peer.TrackMapping{MID: m.MID, Name: name, Kind: m.Kind, Direction: peer.DirRecvonly})
	}
	if len(out) == 0 {
		return nil, errors.New("the offer receives none of the model's outputs; want a recvonly video or audio m-section")
	}
	return out, offer.Check(out)
}

// negotiateWHEP is negotiate for a media-only connection; done is closed
// when its answer is ready or failed.
func (ss *session) negotiateWHEP(cid int, offer *peer.Offer, mapping []peer.TrackMapping) (<-chan struct{}, error) {
	ss.negMu.Lock()
	defer ss.negMu.Unlock()
	ss.mu.Lock()
	closed, others := ss.st == stateClosed, len(ss.conns)
	ss.mu.Unlock()
	if closed {
		return nil, errors.New("session has ended")
	}
	if max := ss.srv.cfg.MaxConnections; max > 0 && others >= max {
		return nil, errConnLimit
	}
	prepare := ss.ws.Prepare
	if others > 0 {
		prepare = ss.ws.Join
	}
	outputs, err := prepare(offer, mapping)
	if err != nil {
		return nil, err
	}
	return ss.bindWith(cid, peer.Binding{Offer: offer, Mapping: mapping, Outputs: outputs, MediaOnly: true}, true)
}
