package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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

// session is the server side of one model session: a set of client
// connections (viewers, connections.go), each one peer, all bound to the
// session's outputs, which are encoded once. SDK 2.9.0's id-less routes
// are connection LegacyConnectionID. Its goroutines (the monitor, each
// negotiation) run under the engine session's errgroup, like the
// pipelines and receive loops the wiring adds: the engine session owns
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

	mu       sync.Mutex // guards the fields below; never held while calling the model or the network
	st       state
	since    time.Time // entered Waiting/Orphaned, or last (re)negotiation
	conns    map[int]*conn
	minted   map[int]bool // ids POST /connections handed out; never reused
	earlyICE map[int][]peer.ICECandidate
	iceFor   map[int]iceChoice // an offer's ice_servers, until bind takes them
	iceOrder []int             // earlyICE's ids, oldest first
	gen      uint64            // bumped by every offer
	reason   string            // why the session ends, for the client's sessionEnded
	stopped  bool              // ended by stop_session (the journal's reason)
	cause    error             // why the engine session ended, for the journal

	claims map[string]*inputClaim // input track → who feeds it (connections.go)

	clientLog ratelog.Limiter // log lines the client can cause at will
	lost      chan lostPeer
	uploads   *uploadStore
}

type lostPeer struct {
	c *conn
	p *peer.Peer
}

func (s *Server) newSession(ws *wiring.Session, id string) *session {
	if id == "" {
		id = ws.ID()
	}
	sess := &session{
		srv: s, id: id, started: time.Now(), ws: ws, es: ws.Engine(), caps: s.caps,
		st: stateWaiting, since: time.Now(),
		conns: map[int]*conn{}, minted: map[int]bool{}, earlyICE: map[int][]peer.ICECandidate{}, iceFor: map[int]iceChoice{},
		lost:    make(chan lostPeer, 16),
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
// returned (the monitor closes the peers on the way). It is idempotent and
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

// cleanup tells every client why the session ended, closes their peers
// and the uploads and forgets the session. It runs once, on the monitor as
// the session ends. No disconnected hook fires for these connections.
func (ss *session) cleanup(fallback string) {
	ss.es.Attach(nil)
	ss.mu.Lock()
	from := ss.st
	ss.st = stateClosed
	stopped, cause := ss.stopped, ss.cause
	var peers []*peer.Peer
	for _, c := range ss.conns {
		if c.peer != nil {
			peers = append(peers, c.peer)
		}
	}
	ss.conns = map[int]*conn{}
	ss.gen++
	reason := ss.reason
	ss.mu.Unlock()
	if reason == "" {
		reason = fallback
	}
	ss.log.Info("session ending", "reason", reason, "connections", len(peers))
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() { // each viewer's flush waits on its own network
			defer wg.Done()
			ss.sayGoodbye(p, reason)
			ss.closePeer(p)
		}()
	}
	wg.Wait()
	ss.uploads.clear()
	ss.srv.remove(ss)
	ss.journalEnd(from, stopped, reason, cause)
}

// markStopped notes that stop_session ends the session.
func (ss *session) markStopped() {
	ss.mu.Lock()
	ss.stopped = true
	ss.mu.Unlock()
}

// journalEnd journals how the session ended: stop_session or a timeout
// (then cleanup_complete), or an eviction (the model failed).
func (ss *session) journalEnd(from state, stopped bool, reason string, cause error) {
	j := ss.srv.journal
	var end string
	switch {
	case stopped || strings.HasPrefix(reason, "replaced") || reason == "server closing":
		end = "stopped"
		j.transition("stop_session", from.String(), "closing", map[string]any{"reason": end})
	case strings.HasPrefix(reason, "no client for"):
		end = "timed_out"
		j.transition("timeout", from.String(), "closing", map[string]any{"reason": end})
	default:
		if cause != nil && !errors.Is(cause, engine.ErrStopped) {
			j.transition("eviction", from.String(), "terminated", map[string]any{"reason": "error", "error": cause.Error()})
			return
		}
		end = "stopped"
		j.transition("stop_session", from.String(), "closing", map[string]any{"reason": end, "close_reason": reason})
	}
	j.transition("cleanup_complete", "closing", "ready", map[string]any{"reason": end})
}

// allPeers returns every connection's peer.
func (ss *session) allPeers() []*peer.Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []*peer.Peer
	for _, c := range ss.conns {
		if c.peer != nil {
			out = append(out, c.peer)
		}
	}
	return out
}

// connCount counts the connections negotiating or held.
func (ss *session) connCount() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.conns)
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

// monitor owns the session's timers: liveness of each connected peer, the
// connect deadline of each offer, the orphan grace period and lost peers.
// When the session ends (ctx), for whatever reason, it cleans up.
func (ss *session) monitor(ctx context.Context) error {
	cfg := ss.srv.cfg
	tick := min(cfg.PingTimeout, cfg.OrphanGrace) / 4
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			ss.mu.Lock()
			ss.cause = context.Cause(ctx)
			ss.mu.Unlock()
			ss.cleanup(fmt.Sprint(context.Cause(ctx)))
			return nil
		case l := <-ss.lost:
			ss.lose(l.c, l.p, "peer connection lost")
		case now := <-t.C:
			ss.check(now)
		}
	}
}

// check applies, at now, each connection's ping timeout and connect
// deadline, and the session's orphan grace period.
func (ss *session) check(now time.Time) {
	cfg := ss.srv.cfg
	type probe struct {
		c      *conn
		p      *peer.Peer
		ready  bool
		expiry bool
	}
	var probes []probe
	ss.mu.Lock()
	st, since := ss.st, ss.since
	negotiating := false
	for _, c := range ss.conns {
		negotiating = negotiating || c.negotiating
		probes = append(probes, probe{c: c, p: c.peer, ready: c.ready, expiry: !c.ready && now.Sub(c.offered) > cfg.ConnectTimeout})
	}
	ss.mu.Unlock()
	for _, pr := range probes {
		switch {
		case pr.ready && pr.p != nil && pr.p.InboundStalled() != nil:
			ss.tooLarge(pr.c, pr.p)
		case pr.ready && !pr.c.whep && now.Sub(time.Unix(0, pr.c.lastSeen.Load())) > cfg.PingTimeout:
			ss.lose(pr.c, pr.p, fmt.Sprintf("no data-channel message for %s", cfg.PingTimeout))
		case pr.expiry:
			ss.lose(pr.c, pr.p, fmt.Sprintf("not connected %s after its offer", cfg.ConnectTimeout))
		}
	}
	if (st == stateWaiting || st == stateOrphaned) && !negotiating && now.Sub(since) > cfg.OrphanGrace {
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
// direction stalled), waits briefly for the error to leave, and drops the
// connection: the client may reconnect.
func (ss *session) tooLarge(c *conn, p *peer.Peer) {
	err := p.InboundStalled()
	msg := "a data-channel message was larger than this server receives; the channel cannot carry anything more: " + err.Error()
	if sendErr := ss.sendRuntime(p, "error", map[string]string{"code": "MESSAGE_TOO_LARGE", "message": msg}); sendErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), endedFlushWait)
		_ = p.Flush(ctx)
		cancel()
	}
	ss.lose(c, p, err.Error())
}

// lose drops connection c if p is still its peer (p nil: c has none yet):
// its peer closes, the model hears of it when it had been told of the
// connection, and the session is orphaned when no connection is left open.
func (ss *session) lose(c *conn, p *peer.Peer, reason string) {
	ss.mu.Lock()
	if ss.conns[c.id] != c || c.peer != p || ss.st == stateClosed {
		ss.mu.Unlock()
		return
	}
	delete(ss.conns, c.id)
	ss.releaseLocked(c)
	announced := c.announced
	c.ready, c.announced = false, false
	live := ss.liveLocked()
	orphaned := false
	if ss.readyLocked() == 0 && ss.st == stateStreaming {
		ss.st = stateOrphaned
		ss.since = time.Now()
		orphaned = true
	}
	from := ss.st
	ss.mu.Unlock()
	ss.log.Info("connection lost", "connection", c.id, "reason", reason, "open", live, "orphaned", orphaned)
	if p != nil {
		ss.closePeer(p)
	}
	if announced {
		to := stateStreaming
		if live == 0 {
			to = stateOrphaned
			from = stateStreaming
		}
		ss.srv.journal.transition("connection_closed", from.String(), to.String(), map[string]any{"conn_id": c.id})
		ss.es.ClientDisconnected(c.id, live)
	}
}

// liveLocked counts the connections the model was told of; ss.mu held.
func (ss *session) liveLocked() int {
	n := 0
	for _, c := range ss.conns {
		if c.announced {
			n++
		}
	}
	return n
}

// readyLocked counts the connections whose peer is up now; ss.mu held.
func (ss *session) readyLocked() int {
	n := 0
	for _, c := range ss.conns {
		if c.ready {
			n++
		}
	}
	return n
}

// negotiate takes an offer on connection cid: validate it against the
// capabilities, ensure the session's outputs (the wiring starts or
// restarts pipelines without waiting; with other viewers bound a running
// output is never restarted), then bind a new peer for cid and build the
// answer in the background. Other connections are untouched. Errors are
// the client's fault (400) except errConnLimit (503).
func (ss *session) negotiate(cid int, offer *peer.Offer, mapping []peer.TrackMapping) error {
	return ss.negotiateWith(cid, offer, mapping, nil, false)
}

// negotiateWith is negotiate; with iceSet, servers replace the configured
// STUN/TURN servers for this offer's peer.
func (ss *session) negotiateWith(cid int, offer *peer.Offer, mapping []peer.TrackMapping, servers []peer.ICEServer, iceSet bool) error {
	if err := ss.validate(offer, mapping); err != nil {
		return err
	}
	ss.negMu.Lock()
	defer ss.negMu.Unlock()
	ss.mu.Lock()
	closed := ss.st == stateClosed
	_, known := ss.conns[cid]
	others := len(ss.conns)
	if known {
		others--
	}
	ss.mu.Unlock()
	if closed {
		return errors.New("session has ended")
	}
	if max := ss.srv.cfg.MaxConnections; !known && max > 0 && others >= max {
		return errConnLimit
	}
	prepare := ss.ws.Prepare
	if others > 0 {
		prepare = ss.ws.Join
	}
	outputs, err := prepare(offer, mapping)
	if err != nil {
		return err
	}
	ss.mu.Lock()
	ss.iceFor[cid] = iceChoice{servers, iceSet}
	ss.mu.Unlock()
	return ss.bind(cid, peer.Binding{Offer: offer, Mapping: mapping, Outputs: outputs})
}

// iceChoice is an offer's ice_servers (set: present in the request).
type iceChoice struct {
	servers []peer.ICEServer
	set     bool
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

func (ss *session) handlers(c *conn) peer.Handlers {
	return peer.Handlers{
		OnMessage: func(p *peer.Peer, text []byte) { ss.onMessage(c, p, text) },
		OnControl: func(p *peer.Peer, data []byte) { ss.onControl(c, p, data) },
		OnReady:   func(p *peer.Peer) { ss.onReady(c, p) },
		OnInbound: func(p *peer.Peer, in *peer.Inbound) { ss.receive(c, p, in) },
		OnLost: func(p *peer.Peer, reason string) {
			select {
			case ss.lost <- lostPeer{c, p}:
			default:
				// the monitor's liveness check finds it
			}
		},
	}
}

// bind replaces connection cid's peer with a new one for b, answering on
// a goroutine of the session (gathering takes up to the gather timeout).
// A live connection's re-offer takes over silently: no hooks, no journal.
func (ss *session) bind(cid int, b peer.Binding) error {
	_, err := ss.bindWith(cid, b, false)
	return err
}

// bindWith is bind; whep marks a media-only WHEP connection. The channel
// is closed once the answer is ready or failed.
func (ss *session) bindWith(cid int, b peer.Binding, whep bool) (<-chan struct{}, error) {
	ss.mu.Lock()
	if ss.st == stateClosed {
		ss.mu.Unlock()
		return nil, errors.New("session has ended")
	}
	c := ss.conns[cid]
	if c == nil {
		c = &conn{id: cid, whep: whep}
		ss.conns[cid] = c
		c.ice = ss.earlyICE[cid]
		delete(ss.earlyICE, cid)
	}
	ss.gen++
	gen := ss.gen
	c.gen = gen
	old := c.peer
	c.peer = nil
	c.answer, c.negErr, c.negotiating, c.taken = "", nil, true, false
	c.ready = false
	c.offered = time.Now()
	ice := ss.iceFor[cid]
	delete(ss.iceFor, cid)
	c.iceServers, c.iceSet = ice.servers, ice.set
	done := make(chan struct{})
	c.answered = done
	if ss.st == stateStreaming && ss.readyLocked() == 0 {
		ss.st = stateOrphaned
	}
	ss.since = time.Now()
	ss.mu.Unlock()
	b.Handlers = ss.handlers(c)
	err := ss.es.Go(func(ctx context.Context) error {
		defer close(done)
		if old != nil {
			ss.closePeer(old)
		}
		ss.answerOffer(ctx, c, gen, b)
		return nil
	})
	if err != nil {
		return nil, errors.New("session has ended")
	}
	return done, nil
}

// answerOffer builds the answer of connection c's offer generation gen
// and publishes it, unless a newer offer or the session's end overtook
// it. Candidates the client trickled meanwhile are applied.
func (ss *session) answerOffer(ctx context.Context, c *conn, gen uint64, b peer.Binding) {
	ctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.NegotiationTimeout)
	defer cancel()
	pcfg := ss.srv.cfg.Peer
	ss.mu.Lock()
	if c.iceSet {
		pcfg.ICEServers = c.iceServers
	}
	ss.mu.Unlock()
	p, answer, err := pcfg.Answer(ctx, b)
	ss.mu.Lock()
	if c.gen != gen || ss.conns[c.id] != c || ss.st == stateClosed {
		ss.mu.Unlock()
		if p != nil {
			ss.closePeer(p)
		}
		return
	}
	c.negotiating = false
	if ss.st != stateStreaming {
		ss.since = time.Now() // the grace period counts from the answer
	}
	if err != nil {
		c.negErr = err
		ss.mu.Unlock()
		ss.log.Warn("negotiation failed", "connection", c.id, "err", err)
		return
	}
	c.peer, c.answer = p, answer
	ice := c.ice
	c.ice = nil
	st := ss.st.String()
	ss.mu.Unlock()
	for _, cand := range ice {
		if err := p.AddICECandidate(cand); err != nil {
			ss.log.Debug("early ICE candidate refused", "connection", c.id, "err", err)
		}
	}
	ss.srv.journal.transition("connection_answered", st, st, map[string]any{"conn_id": c.id, "answer": map[string]string{"type": "answer", "sdp": answer}})
}

// answerStatus is the GET sdp_params reply for connection cid's latest
// offer. take hands the answer out once (the connection routes); the
// legacy route answers it until the next offer.
func (ss *session) answerStatus(cid int, take bool) (int, any) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := ss.conns[cid]
	switch {
	case c == nil:
	case c.answer != "" && !c.taken:
		c.taken = take
		if take {
			return http.StatusOK, map[string]any{"sdp_answer": c.answer, "connection_id": cid}
		}
		return http.StatusOK, map[string]string{"sdp_answer": c.answer}
	case c.negotiating || c.taken:
		return http.StatusAccepted, nil
	case c.negErr != nil:
		return http.StatusInternalServerError, map[string]string{"detail": "negotiation failed: " + c.negErr.Error()}
	}
	return http.StatusNotFound, map[string]string{"detail": "no SDP offer is pending for this connection; POST one first"}
}

// onReady counts connection c open once its peer p is connected and its
// data channel open, so a message sent from the model's connected hook
// reaches it.
func (ss *session) onReady(c *conn, p *peer.Peer) {
	ss.mu.Lock()
	if c.peer != p || ss.conns[c.id] != c || ss.st == stateClosed {
		ss.mu.Unlock()
		return
	}
	c.lastSeen.Store(time.Now().UnixNano())
	c.ready = true
	from := ss.st
	ss.st = stateStreaming
	first := !c.announced
	c.announced = true
	live := ss.liveLocked()
	ss.mu.Unlock()
	ss.log.Info("client connected", "connection", c.id, "open", live)
	if first {
		ss.srv.journal.transition("connection_opened", from.String(), stateStreaming.String(), map[string]any{"conn_id": c.id})
		ss.es.ClientConnected(c.id, live)
	}
}

// receive hands an inbound track of connection c to the wiring, gated per
// sample so that only the connection holding the input track feeds it
// (connections.go: publisher arbitration, contract §2.7).
func (ss *session) receive(c *conn, p *peer.Peer, in *peer.Inbound) {
	in.SetAccept(ss.inputGate(c, in.Name()))
	ss.ws.Receive(in)
}

// closePeer closes p and keeps its dropped-message and keyframe-request
// counts in the server's totals.
func (ss *session) closePeer(p *peer.Peer) {
	_ = p.Close()
	st := p.Stats()
	ss.srv.stats.peerDropped.Add(st.DroppedMessages)
	ss.srv.stats.peerOversized.Add(st.OversizedMessages)
	ss.srv.stats.peerPLIsReceived.Add(st.PLIsReceived)
	ss.srv.stats.peerPLIsSent.Add(st.PLIsSent)
}

// currentPeer returns the legacy connection's peer, else any
// connection's, nil when none (tests, stats).
func (ss *session) currentPeer() *peer.Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c := ss.conns[LegacyConnectionID]; c != nil && c.peer != nil {
		return c.peer
	}
	for _, c := range ss.conns {
		if c.peer != nil {
			return c.peer
		}
	}
	return nil
}

// peers returns the peers of the open connections, or of connection id
// alone when id > 0.
func (ss *session) peers(id int) []*peer.Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []*peer.Peer
	for _, c := range ss.conns {
		if c.peer != nil && c.ready && (id <= 0 || c.id == id) {
			out = append(out, c.peer)
		}
	}
	return out
}

func applicationEnvelope(msg json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(struct {
		Scope string          `json:"scope"`
		Data  json.RawMessage `json:"data"`
	}{"application", msg})
	if err != nil {
		return nil, fmt.Errorf("protocol: send: %w", err)
	}
	return b, nil
}

// Send implements engine.Transport: msg becomes the data of one
// application envelope on every open connection's data channel. It
// succeeds when at least one connection took it; a connection that
// refuses it does not stop the others.
func (ss *session) Send(msg json.RawMessage) error {
	return ss.SendTo(0, msg)
}

// SendTo implements engine.ClientTransport: Send to connection client
// only (0: every connection).
func (ss *session) SendTo(client int, msg json.RawMessage) error {
	b, err := applicationEnvelope(msg)
	if err != nil {
		return err
	}
	var first error
	sent := false
	for _, p := range ss.peers(client) {
		err := p.Send(b)
		if err == nil {
			sent = true
			continue
		}
		if errors.Is(err, peer.ErrChannelNotOpen) {
			err = fmt.Errorf("%w: %w", engine.ErrNoTransport, err)
		}
		if first == nil {
			first = err
		}
	}
	switch {
	case sent:
		return nil
	case first != nil:
		return first
	}
	return engine.ErrNoTransport
}

// CommandRejected implements engine.Transport: every open connection gets
// a runtime "error" message (the 2.9.0 SDK only forwards it to
// runtimeMessage listeners).
func (ss *session) CommandRejected(name string, err error) {
	ss.CommandRejectedTo(0, name, err)
}

// CommandFailed implements engine.ClientTransport: the journal's error
// event names the failed command's sender.
func (ss *session) CommandFailed(client int, name string, err error) {
	st := ss.currentState().String()
	detail := map[string]any{"message": ratelog.Truncate(fmt.Sprintf("command %s: %v", name, err), 1024)}
	if client != 0 {
		detail["conn_id"] = client
	}
	ss.srv.journal.transition("error", st, st, detail)
}

// CommandRejectedTo implements engine.ClientTransport: the rejection goes
// to the sending connection only.
func (ss *session) CommandRejectedTo(client int, name string, err error) {
	for _, p := range ss.peers(client) {
		if err := ss.sendRuntime(p, "error", map[string]string{"code": "COMMAND_REJECTED", "command": ratelog.Truncate(name, 64), "message": ratelog.Truncate(err.Error(), 1024)}); err != nil {
			if ok, suppressed := ss.clientLog.Allow(); ok {
				ss.log.Debug("rejection not sent to the client", "command", ratelog.Truncate(name, 64), "err", err, "suppressed", suppressed)
			}
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
