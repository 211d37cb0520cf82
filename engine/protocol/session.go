package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine/peer"
)

// state is a server-side session state (§5.1 of the wire contract).
type state int

const (
	stateWaiting   state = iota // started, no peer connected yet
	stateStreaming              // a peer is connected
	stateOrphaned               // the peer was lost; waiting for a reconnect
	stateClosed                 // ended
)

func (s state) String() string {
	switch s {
	case stateWaiting:
		return "waiting"
	case stateStreaming:
		return "streaming"
	case stateOrphaned:
		return "orphaned"
	}
	return "closed"
}

// ErrNoClient is returned by the model's Send while no client is connected.
var ErrNoClient = errors.New("protocol: no client connected")

// session is the server side of one model session.
type session struct {
	srv  *Server
	id   string
	es   Session
	caps Capabilities
	log  *slog.Logger

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc

	negMu   sync.Mutex              // serialises negotiate; held while the model starts outputs
	outputs map[string]*peer.Output // guarded by negMu

	mu          sync.Mutex // guards the fields below; never held while calling the model or the network
	st          state
	since       time.Time // entered Waiting/Orphaned, or last (re)negotiation
	peer        *peer.Peer
	gen         uint64 // bumped by every offer
	negotiating bool
	answer      string
	negErr      error

	lastSeen atomic.Int64 // unix nanos of the last data-channel message
	lost     chan *peer.Peer
	cmds     chan command
	uploads  *uploadStore
	endOnce  sync.Once
}

type command struct {
	name    string
	args    json.RawMessage
	uploads map[string]fileRef
}

type fileRef struct {
	UploadID string `json:"upload_id"`
	Name     string `json:"name"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
}

func (s *Server) newSession(es Session) *session {
	sess := &session{
		srv: s, id: es.ID(), es: es, caps: s.eng.Capabilities(),
		st: stateWaiting, since: time.Now(),
		outputs: map[string]*peer.Output{},
		lost:    make(chan *peer.Peer, 4),
		cmds:    make(chan command, s.cfg.CommandQueue),
		uploads: newUploadStore(s.cfg.MaxUploadSize, s.cfg.UploadQuota),
	}
	if sess.caps.Commands == nil {
		sess.caps.Commands = []CommandCap{}
	}
	sess.log = s.log.With("session", sess.id)
	sess.ctx, sess.cancel = context.WithCancel(s.ctx)
	es.SetSender(sess.sendApplication)
	return sess
}

// start launches the session's goroutines. The caller has added 2 to
// srv.wg under srv.mu while the server was not closed, so that Close's
// Wait cannot begin before the Add.
func (ss *session) start() {
	go ss.monitor()
	go ss.runCommands()
}

func (ss *session) currentState() state {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.st
}

// end closes the session: the peer, the uploads, the model session. It is
// idempotent and may run on any goroutine except a pion callback.
func (ss *session) end(reason string) {
	ss.endOnce.Do(func() {
		ss.log.Info("session ending", "reason", reason)
		ss.mu.Lock()
		ss.st = stateClosed
		p := ss.peer
		ss.peer = nil
		ss.gen++
		ss.mu.Unlock()
		if p != nil {
			ss.sendRuntime(p, "sessionEnded", map[string]string{"reason": reason})
			_ = p.Close()
		}
		ss.cancel()
		ss.es.Stop()
		ss.uploads.clear()
		ss.srv.removeIfCurrent(ss)
	})
}

// monitor owns the session's timers: liveness of the connected peer, the
// orphan grace period, lost peers, and the model session ending by itself.
func (ss *session) monitor() {
	defer ss.srv.wg.Done()
	cfg := ss.srv.cfg
	tick := min(cfg.PingTimeout, cfg.OrphanGrace) / 4
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-ss.es.Done():
			ss.end("model session ended")
			return
		case p := <-ss.lost:
			ss.orphan(p, "peer connection lost")
		case now := <-t.C:
			ss.mu.Lock()
			st, since, p := ss.st, ss.since, ss.peer
			ss.mu.Unlock()
			switch {
			case st == stateStreaming && now.Sub(time.Unix(0, ss.lastSeen.Load())) > cfg.PingTimeout:
				ss.orphan(p, fmt.Sprintf("no data-channel message for %s", cfg.PingTimeout))
			case (st == stateWaiting || st == stateOrphaned) && now.Sub(since) > cfg.OrphanGrace:
				ss.end(fmt.Sprintf("no client for %s", cfg.OrphanGrace))
				return
			}
		}
	}
}

// orphan closes peer p if it is still the session's peer and starts the
// grace period.
func (ss *session) orphan(p *peer.Peer, reason string) {
	ss.mu.Lock()
	if p == nil || ss.peer != p || ss.st == stateClosed {
		ss.mu.Unlock()
		return
	}
	ss.peer = nil
	ss.answer = ""
	ss.st = stateOrphaned
	ss.since = time.Now()
	ss.mu.Unlock()
	ss.log.Info("peer lost; session orphaned", "reason", reason, "grace", ss.srv.cfg.OrphanGrace)
	_ = p.Close()
}

// negotiate validates an offer against the capabilities, prepares the
// session's outputs, closes the previous peer and builds the answer in the
// background. Errors are the client's fault (400).
func (ss *session) negotiate(offer *peer.Offer, mapping []peer.TrackMapping) error {
	if !offer.HasDataChannel() {
		return errors.New("the offer has no data channel (m=application) section; the client must create the \"data\" channel before offering")
	}
	caps := map[string]TrackCap{}
	for _, t := range ss.caps.Tracks {
		caps[t.Name] = t
	}
	for i, tm := range mapping {
		c, ok := caps[tm.Name]
		if !ok {
			return fmt.Errorf("track_mapping[%d] names track %q, which the model does not declare", i, tm.Name)
		}
		if c.Kind != tm.Kind || c.Direction != tm.Direction {
			return fmt.Errorf("track_mapping[%d] %q is %s/%s; the model declares %s/%s", i, tm.Name, tm.Kind, tm.Direction, c.Kind, c.Direction)
		}
	}
	if err := offer.Check(mapping); err != nil {
		return err
	}
	// Outputs are created once per session, with the codec of the first
	// offer, and started under the model session; a later offer that drops
	// that codec gets a new output and a restarted pipeline. Starting one
	// calls into the model (and may wait for a previous pipeline to stop),
	// so it runs under negMu, not mu, which pion's callbacks take.
	ss.negMu.Lock()
	defer ss.negMu.Unlock()
	if ss.currentState() == stateClosed {
		return errors.New("session has ended")
	}
	for _, tm := range mapping {
		if tm.Direction != peer.DirRecvonly {
			continue
		}
		prev := ss.outputs[tm.Name]
		if prev != nil && offer.Supports(tm.MID, prev.Codec()) {
			continue
		}
		codec, err := offer.ChooseCodec(tm.MID)
		if err != nil {
			return err
		}
		if prev != nil {
			// A reconnect whose offer drops the codec the output streams
			// in: restart the output's pipeline with the offered one.
			ss.log.Info("offer drops the output's codec; restarting its pipeline", "track", tm.Name, "from", prev.Codec(), "to", codec)
		}
		out, err := peer.NewOutput(tm.Name, tm.Kind, codec)
		if err != nil {
			return err
		}
		ctl, err := ss.es.StartOutput(tm.Name, out)
		if err != nil {
			return fmt.Errorf("starting output %q: %v", tm.Name, err)
		}
		out.SetControl(ctl)
		ss.outputs[tm.Name] = out
	}
	b := peer.Binding{
		Offer: offer, Mapping: mapping,
		Outputs:     map[string]*peer.Output{},
		VideoInputs: map[string]peer.VideoInput{},
		AudioInputs: map[string]peer.AudioInput{},
		Handlers: peer.Handlers{
			OnMessage: ss.onMessage,
			OnReady:   ss.onReady,
			OnLost: func(p *peer.Peer, reason string) {
				select {
				case ss.lost <- p:
				default:
				}
			},
		},
	}
	for n, o := range ss.outputs {
		b.Outputs[n] = o
	}
	for _, tm := range mapping {
		if tm.Direction == peer.DirSendonly {
			if tm.Kind == peer.KindVideo {
				if in := ss.es.VideoInput(tm.Name); in != nil {
					b.VideoInputs[tm.Name] = in
				}
			} else if in := ss.es.AudioInput(tm.Name); in != nil {
				b.AudioInputs[tm.Name] = in
			}
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.st == stateClosed {
		return errors.New("session has ended")
	}
	ss.gen++
	gen := ss.gen
	old := ss.peer
	ss.peer = nil
	ss.answer, ss.negErr, ss.negotiating = "", nil, true
	if ss.st == stateStreaming {
		ss.st = stateOrphaned
	}
	ss.since = time.Now()
	ss.srv.wg.Add(1)
	go func() {
		defer ss.srv.wg.Done()
		if old != nil {
			_ = old.Close()
		}
		ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.NegotiationTimeout)
		defer cancel()
		pcfg := ss.srv.cfg.Peer
		p, answer, err := pcfg.Answer(ctx, b)
		ss.mu.Lock()
		if ss.gen != gen || ss.st == stateClosed {
			ss.mu.Unlock()
			if p != nil {
				_ = p.Close()
			}
			return
		}
		ss.negotiating = false
		if err != nil {
			ss.negErr = err
			ss.mu.Unlock()
			ss.log.Warn("negotiation failed", "err", err)
			return
		}
		ss.peer, ss.answer = p, answer
		ss.mu.Unlock()
	}()
	return nil
}

// answerStatus is the GET sdp_params reply for the latest offer.
func (ss *session) answerStatus() (int, any) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.answer != "":
		return http.StatusOK, map[string]string{"sdp_answer": ss.answer}
	case ss.negotiating:
		return http.StatusAccepted, nil
	case ss.negErr != nil:
		return http.StatusInternalServerError, map[string]string{"detail": "negotiation failed: " + ss.negErr.Error()}
	}
	return http.StatusNotFound, map[string]string{"detail": "no SDP offer is pending for this session; POST one first"}
}

func (ss *session) onReady(p *peer.Peer) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.peer != p || ss.st == stateClosed {
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	ss.st = stateStreaming
	ss.log.Info("client connected")
}

// currentPeer returns the session's peer, nil when none.
func (ss *session) currentPeer() *peer.Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.peer
}
