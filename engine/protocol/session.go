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

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/wiring"
)

// state is a server-side session state, as the SDK polls it.
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

// session is the server side of one model session. Its goroutines (the
// monitor, each negotiation) run under the engine session's errgroup, like
// the pipelines and receive loops the wiring adds: the engine session owns
// them all. It is the engine session's Transport.
//
// Lock order: negMu before mu; neither is held while waiting for a
// pipeline, the network or the model.
type session struct {
	srv     *Server
	id      string // the id on the routes: the caller's (StartOptions.ID) or the engine session's
	started time.Time
	ws      *wiring.Session
	es      *engine.Session
	caps    engine.Capabilities
	log     *slog.Logger

	negMu sync.Mutex // serialises offers (validate → ensure outputs → bind); never held while waiting

	mu          sync.Mutex // guards the fields below; never held while calling the model or the network
	st          state
	since       time.Time // entered Waiting/Orphaned, or last (re)negotiation
	peer        *peer.Peer
	gen         uint64 // bumped by every offer
	negotiating bool
	answer      string
	negErr      error
	reason      string // why the session ends, for the client's sessionEnded

	clientLog ratelog.Limiter // log lines the client can cause at will
	lastSeen  atomic.Int64    // unix nanos of the last data-channel message
	lost      chan *peer.Peer
	uploads   *uploadStore
}

func (s *Server) newSession(ws *wiring.Session, id string) *session {
	if id == "" {
		id = ws.ID()
	}
	sess := &session{
		srv: s, id: id, started: time.Now(), ws: ws, es: ws.Engine(), caps: s.caps,
		st: stateWaiting, since: time.Now(),
		lost:    make(chan *peer.Peer, 4),
		uploads: newUploadStore(s.cfg, s.upMem),
	}
	sess.log = s.log.With("session", sess.id)
	sess.es.Attach(sess)
	return sess
}

// start launches the monitor under the engine session. When the session
// already ended it cleans up at once.
func (ss *session) start() {
	if err := ss.es.Go(ss.monitor); err != nil {
		ss.cleanup("model session ended")
	}
}

func (ss *session) currentState() state {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.st
}

// end stops the session with reason and waits until every goroutine of it
// returned (the monitor closes the peer on the way). It is idempotent and
// must not run on a goroutine the session owns or in a pion callback.
func (ss *session) end(reason string) {
	ss.mu.Lock()
	if ss.reason == "" {
		ss.reason = reason
	}
	ss.mu.Unlock()
	ss.es.RequestStop(reason)
	<-ss.es.Done()
}

// cleanup tells the client why the session ended, closes its peer and
// uploads and forgets the session. It runs once, on the monitor as the
// session ends.
func (ss *session) cleanup(fallback string) {
	ss.es.Attach(nil)
	ss.mu.Lock()
	ss.st = stateClosed
	p := ss.peer
	ss.peer = nil
	ss.gen++
	reason := ss.reason
	ss.mu.Unlock()
	if reason == "" {
		reason = fallback
	}
	ss.log.Info("session ending", "reason", reason)
	if p != nil {
		ss.sayGoodbye(p, reason)
		ss.closePeer(p)
	}
	ss.uploads.clear()
	ss.srv.remove(ss)
}

// endedFlushWait bounds how long a session that ends waits for its client
// to acknowledge sessionEnded before it closes the peer.
const endedFlushWait = 2 * time.Second

// sayGoodbye sends the client sessionEnded and waits (at most
// endedFlushWait) until the client acknowledged it: closing the peer at
// once would usually lose it.
func (ss *session) sayGoodbye(p *peer.Peer, reason string) {
	err := ss.sendRuntime(p, "sessionEnded", map[string]string{"reason": reason})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), endedFlushWait)
		err = p.Flush(ctx)
		cancel()
	}
	if err != nil {
		ss.log.Debug("sessionEnded may not have reached the client", "err", err)
	}
}

// monitor owns the session's timers: liveness of the connected peer, the
// orphan grace period and lost peers. When the session ends (ctx), for
// whatever reason, it cleans up.
func (ss *session) monitor(ctx context.Context) error {
	cfg := ss.srv.cfg
	tick := min(cfg.PingTimeout, cfg.OrphanGrace) / 4
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			ss.cleanup(fmt.Sprint(context.Cause(ctx)))
			return nil
		case p := <-ss.lost:
			ss.orphan(p, "peer connection lost")
		case now := <-t.C:
			ss.check(now)
		}
	}
}

// check applies the ping timeout and the orphan grace period at now.
func (ss *session) check(now time.Time) {
	cfg := ss.srv.cfg
	ss.mu.Lock()
	st, since, p, negotiating := ss.st, ss.since, ss.peer, ss.negotiating
	ss.mu.Unlock()
	switch {
	case st == stateStreaming && p != nil && p.InboundStalled() != nil:
		ss.tooLarge(p)
	case st == stateStreaming && now.Sub(time.Unix(0, ss.lastSeen.Load())) > cfg.PingTimeout:
		ss.orphan(p, fmt.Sprintf("no data-channel message for %s", cfg.PingTimeout))
	case (st == stateWaiting || st == stateOrphaned) && !negotiating && now.Sub(since) > cfg.OrphanGrace:
		// A client whose offer is being answered is not gone: the grace
		// period counts from the answer (NegotiationTimeout bounds it).
		reason := fmt.Sprintf("no client for %s", cfg.OrphanGrace)
		ss.mu.Lock()
		if ss.reason == "" {
			ss.reason = reason
		}
		ss.mu.Unlock()
		ss.es.RequestStop(reason)
	}
}

// tooLarge tells the client its data channel died of a message over the
// size limit (the server can still send on it: only the client's
// direction stalled), waits briefly for the error to leave, and orphans
// the peer: the client may reconnect.
func (ss *session) tooLarge(p *peer.Peer) {
	err := p.InboundStalled()
	msg := "a data-channel message was larger than this server receives; the channel cannot carry anything more: " + err.Error()
	if sendErr := ss.sendRuntime(p, "error", map[string]string{"code": "MESSAGE_TOO_LARGE", "message": msg}); sendErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), endedFlushWait)
		_ = p.Flush(ctx)
		cancel()
	}
	ss.orphan(p, err.Error())
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
	ss.closePeer(p)
}

// negotiate takes an offer: validate it against the capabilities, ensure
// the session's outputs (the wiring starts or restarts pipelines without
// waiting), then bind a new peer and build the answer in the background.
// Errors are the client's fault (400).
func (ss *session) negotiate(offer *peer.Offer, mapping []peer.TrackMapping) error {
	if err := ss.validate(offer, mapping); err != nil {
		return err
	}
	ss.negMu.Lock()
	defer ss.negMu.Unlock()
	if ss.currentState() == stateClosed {
		return errors.New("session has ended")
	}
	outputs, err := ss.ws.Prepare(offer, mapping)
	if err != nil {
		return err
	}
	return ss.bind(peer.Binding{Offer: offer, Mapping: mapping, Outputs: outputs, Handlers: ss.handlers()})
}

// validate checks the mapping against the model's tracks and the offer
// (once: peer.Config.Answer relies on it).
func (ss *session) validate(offer *peer.Offer, mapping []peer.TrackMapping) error {
	if !offer.HasDataChannel() {
		return errors.New("the offer has no data channel (m=application) section; the client must create the \"data\" channel before offering")
	}
	caps := map[string]engine.TrackCap{}
	for _, t := range ss.caps.Tracks {
		caps[t.Name] = t
	}
	for i, tm := range mapping {
		c, ok := caps[tm.Name]
		if !ok {
			return fmt.Errorf("track_mapping[%d] names track %q, which the model does not declare", i, tm.Name)
		}
		if string(tm.Kind) != c.Kind || string(tm.Direction) != c.Direction {
			return fmt.Errorf("track_mapping[%d] %q is %s/%s; the model declares %s/%s", i, tm.Name, tm.Kind, tm.Direction, c.Kind, c.Direction)
		}
	}
	return offer.Check(mapping)
}

func (ss *session) handlers() peer.Handlers {
	return peer.Handlers{
		OnMessage: ss.onMessage,
		OnReady:   ss.onReady,
		OnInbound: func(_ *peer.Peer, in *peer.Inbound) { ss.ws.Receive(in) },
		OnLost: func(p *peer.Peer, reason string) {
			select {
			case ss.lost <- p:
			default:
			}
		},
	}
}

// bind replaces the session's peer with a new one for b, answering on a
// goroutine of the session (gathering takes up to the gather timeout).
func (ss *session) bind(b peer.Binding) error {
	ss.mu.Lock()
	if ss.st == stateClosed {
		ss.mu.Unlock()
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
	ss.mu.Unlock()
	err := ss.es.Go(func(ctx context.Context) error {
		if old != nil {
			ss.closePeer(old)
		}
		ss.answerOffer(ctx, gen, b)
		return nil
	})
	if err != nil {
		return errors.New("session has ended")
	}
	return nil
}

// answerOffer builds the answer of offer generation gen and publishes it,
// unless a newer offer or the session's end overtook it.
func (ss *session) answerOffer(ctx context.Context, gen uint64, b peer.Binding) {
	ctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.NegotiationTimeout)
	defer cancel()
	pcfg := ss.srv.cfg.Peer
	p, answer, err := pcfg.Answer(ctx, b)
	ss.mu.Lock()
	if ss.gen != gen || ss.st == stateClosed {
		ss.mu.Unlock()
		if p != nil {
			ss.closePeer(p)
		}
		return
	}
	ss.negotiating = false
	ss.since = time.Now() // the grace period counts from the answer
	if err != nil {
		ss.negErr = err
		ss.mu.Unlock()
		ss.log.Warn("negotiation failed", "err", err)
		return
	}
	ss.peer, ss.answer = p, answer
	ss.mu.Unlock()
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

// closePeer closes p and keeps its dropped-message count in the server's
// totals.
func (ss *session) closePeer(p *peer.Peer) {
	_ = p.Close()
	st := p.Stats()
	ss.srv.stats.peerDropped.Add(st.DroppedMessages)
	ss.srv.stats.peerOversized.Add(st.OversizedMessages)
}

// currentPeer returns the session's peer, nil when none.
func (ss *session) currentPeer() *peer.Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.peer
}

// Send implements engine.Transport: msg becomes the data of one
// application envelope on the current peer's data channel.
func (ss *session) Send(msg json.RawMessage) error {
	b, err := json.Marshal(struct {
		Scope string          `json:"scope"`
		Data  json.RawMessage `json:"data"`
	}{"application", msg})
	if err != nil {
		return fmt.Errorf("protocol: send: %w", err)
	}
	p := ss.currentPeer()
	if p == nil {
		return engine.ErrNoTransport
	}
	if err := p.Send(b); err != nil {
		if errors.Is(err, peer.ErrChannelNotOpen) {
			return fmt.Errorf("%w: %w", engine.ErrNoTransport, err)
		}
		return err
	}
	return nil
}

// CommandRejected implements engine.Transport: the client gets a runtime
// "error" message (the 2.9.0 SDK only forwards it to runtimeMessage
// listeners).
func (ss *session) CommandRejected(name string, err error) {
	p := ss.currentPeer()
	if p == nil {
		return
	}
	if err := ss.sendRuntime(p, "error", map[string]string{"code": "COMMAND_REJECTED", "command": ratelog.Truncate(name, 64), "message": ratelog.Truncate(err.Error(), 1024)}); err != nil {
		if ok, suppressed := ss.clientLog.Allow(); ok {
			ss.log.Debug("rejection not sent to the client", "command", ratelog.Truncate(name, 64), "err", err, "suppressed", suppressed)
		}
	}
}

// Upload implements engine.Transport: it waits, at most the configured
// UploadWait, for the upload's bytes.
func (ss *session) Upload(ctx context.Context, id string) (engine.Upload, error) {
	ctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.UploadWait)
	defer cancel()
	return ss.uploads.wait(ctx, id)
}
