package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Handlers are the callbacks of one Peer. Any may be nil. They run on pion's
// goroutines and must not block or call Peer.Close.
type Handlers struct {
	// OnMessage gets each text frame of the client's "data" channel; text is
	// valid only during the call.
	OnMessage func(p *Peer, text []byte)
	// OnControl gets each frame of the client's "control" channel (SDK ≥
	// 2.12 opens it beside "data"); data is valid only during the call.
	// Without it the channel's frames are dropped and counted.
	OnControl func(p *Peer, data []byte)
	// OnReady is called once when the connection is up and the data
	// channel open.
	OnReady func(p *Peer)
	// OnLost is called at most once, when the connection fails, closes or
	// disconnects without the server having closed it.
	OnLost func(p *Peer, reason string)
	// OnInbound is called once for each mapped track the client sends,
	// when its first packet arrives. The receiver owns reading it (on a
	// goroutine of its own: OnInbound must not block); reads end when the
	// peer closes. Without OnInbound, inbound media is discarded.
	OnInbound func(p *Peer, in *Inbound)
}

// Binding is what Answer binds a new PeerConnection to.
type Binding struct {
	Offer   *Offer
	Mapping []TrackMapping
	// Outputs by name: the session's output tracks (client recvonly).
	Outputs  map[string]*Output
	Handlers Handlers
	// MediaOnly peers have no data channel (a WHEP player): OnReady fires
	// once the connection is up.
	MediaOnly bool
}

// Peer is one client connection. Its methods are safe for concurrent use.
// The caller must call Close.
type Peer struct {
	cfg     Config
	pc      *webrtc.PeerConnection
	h       Handlers
	maxMsg  int
	log     *slog.Logger
	outputs []*Output
	noDC    bool // MediaOnly

	dc        atomic.Pointer[webrtc.DataChannel]
	ctlDC     atomic.Pointer[webrtc.DataChannel] // the client's "control" channel (SDK ≥ 2.12)
	connected atomic.Bool
	dcOpen    atomic.Bool
	readyOnce sync.Once
	lostOnce  sync.Once
	closing   atomic.Bool

	mu     sync.Mutex // guards wg.Add against Close
	closed bool
	wg     sync.WaitGroup

	bwe atomic.Pointer[cc.BandwidthEstimator]

	gateMu sync.Mutex       // serialises SetPaused
	gates  map[string]*gate // by output name (gate.go); the map is written before the answer only

	dropped   atomic.Uint64 // undecodable data-channel frames (binary, other channels, oversized)
	oversized atomic.Uint64 // of which above the advertised max-message-size

	oversizeLog ratelog.Limiter
	rxMark      atomic.Uint64 // SCTP bytes received when the last message arrived
	stalled     atomic.Bool   // InboundStalled reported the channel dead
	discarded   atomic.Uint64 // RTP packets of inbound tracks nobody consumes
	plisSent    atomic.Uint64
	plisRecvd   atomic.Uint64
	bitrate     atomic.Int64
}

// Answer creates a PeerConnection for b.Offer, binds the session's outputs
// to the offer's m-sections by mid (b.Offer.Check(b.Mapping) must have
// passed: the caller validates once), waits for candidate gathering (up to
// GatherTimeout, or until ctx ends) and returns the answer SDP with every
// local candidate in it. It blocks for the gathering time. On error
// nothing is left running.
func (c *Config) Answer(ctx context.Context, b Binding) (*Peer, string, error) {
	cfg := c.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, "", context.Cause(ctx)
	}
	if b.Offer == nil {
		return nil, "", fmt.Errorf("%w: no offer", ErrBadOffer)
	}
	p, err := cfg.newPeer(b)
	if err != nil {
		return nil, "", err
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if err := p.bind(b); err != nil {
		return nil, "", err
	}
	sdp, err := p.answer(ctx)
	if err != nil {
		return nil, "", err
	}
	ok = true
	return p, sdp, nil
}

// newPeer creates the PeerConnection with this configuration's API.
func (cfg Config) newPeer(b Binding) (*Peer, error) {
	bwe := make(chan cc.BandwidthEstimator, 1)
	api, err := cfg.newAPI(bwe)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: cfg.pionICEServers()})
	if err != nil {
		return nil, fmt.Errorf("peer: new peer connection: %w", err)
	}
	p := &Peer{cfg: cfg, pc: pc, h: b.Handlers, maxMsg: b.Offer.MaxMessageSize(), log: cfg.Logger, noDC: b.MediaOnly}
	select {
	case e := <-bwe:
		p.bwe.Store(&e)
		p.bitrate.Store(int64(e.GetTargetBitrate()))
	default:
	}
	return p, nil
}

// bind installs the callbacks, applies the offer and binds the outputs.
func (p *Peer) bind(b Binding) error {
	byMid := map[string]TrackMapping{}
	for _, tm := range b.Mapping {
		byMid[tm.MID] = tm
	}
	pc := p.pc
	pc.OnDataChannel(p.onDataChannel)
	pc.OnConnectionStateChange(p.onState)
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		mid := ""
		for _, t := range pc.GetTransceivers() {
			if t.Receiver() == recv {
				mid = t.Mid()
				break
			}
		}
		tm, found := byMid[mid]
		if !found || tm.Direction != DirSendonly {
			p.log.Warn("inbound track on an unmapped mid; ignoring it", "mid", mid)
			return
		}
		p.inbound(tm, remote)
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.Offer.SDP}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if err := p.bindOutputs(b); err != nil {
		return err
	}
	if e := p.bwe.Load(); e != nil {
		(*e).OnTargetBitrateChange(p.onBitrate)
	}
	return nil
}

// answer creates and applies the local answer and waits for gathering.
func (p *Peer) answer(ctx context.Context) (string, error) {
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("peer: create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("peer: set local description: %w", err)
	}
	t := time.NewTimer(p.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		p.log.Warn("ICE gathering incomplete; answering with the candidates gathered so far", "timeout", p.cfg.GatherTimeout)
	case <-ctx.Done():
	}
	if ctx.Err() != nil { // also when gathering finished at the same time
		return "", context.Cause(ctx)
	}
	// pion advertises its read limit; the client must be told the
	// configured size, which onDataChannel enforces.
	return advertiseMaxMessageSize(p.pc.LocalDescription().SDP, p.cfg.SCTPMaxMessageSize), nil
}

var maxMessageSizeAttr = regexp.MustCompile(`a=max-message-size:\d+`)

// advertiseMaxMessageSize sets the answer's a=max-message-size to n.
func advertiseMaxMessageSize(sdp string, n uint32) string {
	return maxMessageSizeAttr.ReplaceAllString(sdp, fmt.Sprintf("a=max-message-size:%d", n))
}

// bindOutputs attaches each mapped output's track to the transceiver of its
// mid, through PeerConnection.AddTrack. A sender made with
// API.NewRTPSender would not do: it runs on the API's no-op interceptor and
// un-negotiated media engine, not the PeerConnection's (pion copies both per
// connection), so its packets would carry no transport-wide sequence
// numbers and skip the NACK responder, sender reports and the GCC
// estimator. AddTrack picks the first transceiver of the kind that may send
// (offered recvonly or sendrecv, no sender yet), so the transceivers are
// filled in m-line order: an eligible one that is not an output's (an input
// offered sendrecv, an unmapped m-section) holds a placeholder track until
// every output is bound, and is then restored.
func (p *Peer) bindOutputs(b Binding) error {
	byMid := map[string]TrackMapping{}
	left := 0
	for _, tm := range b.Mapping {
		if tm.Direction != DirRecvonly {
			continue
		}
		if b.Outputs[tm.Name] == nil {
			return fmt.Errorf("%w: track_mapping names output %q, which the session does not have", ErrBadOffer, tm.Name)
		}
		byMid[tm.MID] = tm
		left++
	}
	var placeholders []*webrtc.RTPSender
	defer func() {
		for _, s := range placeholders {
			_ = p.pc.RemoveTrack(s)
		}
	}()
	for _, t := range p.pc.GetTransceivers() {
		if left == 0 {
			break
		}
		if t.Sender() != nil || !b.Offer.mayReceive(t.Mid()) {
			continue
		}
		var track webrtc.TrackLocal
		tm, isOutput := byMid[t.Mid()]
		if isOutput {
			track = b.Outputs[tm.Name].track
		} else {
			c := CodecOpus
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				c = CodecVP8
			}
			ph, err := webrtc.NewTrackLocalStaticSample(capability(c), "placeholder", "framewire")
			if err != nil {
				return fmt.Errorf("peer: placeholder track: %w", err)
			}
			track = ph
		}
		sender, err := p.pc.AddTrack(track)
		if err != nil {
			return fmt.Errorf("peer: bind a track to mid %q: %w", t.Mid(), err)
		}
		if t.Sender() != sender {
			_ = p.pc.RemoveTrack(sender)
			return fmt.Errorf("peer: a track meant for mid %q went to another m-section", t.Mid())
		}
		if !isOutput {
			placeholders = append(placeholders, sender)
			continue
		}
		out := b.Outputs[tm.Name]
		p.outputs = append(p.outputs, out)
		if p.gates == nil {
			p.gates = map[string]*gate{}
		}
		p.gates[tm.Name] = &gate{sender: sender, out: out}
		p.goRTCP(sender, out)
		delete(byMid, t.Mid())
		left--
	}
	for mid, tm := range byMid {
		return fmt.Errorf("%w: mid %q (output %q) cannot send: it is not recvonly or sendrecv in the offer", ErrBadOffer, mid, tm.Name)
	}
	return nil
}

// goRTCP reads the sender's RTCP: PLI and FIR ask the output's encoder for
// a keyframe. It also drains the interceptors (NACK responder, TWCC/GCC).
func (p *Peer) goRTCP(sender *webrtc.RTPSender, out *Output) {
	if !p.track() {
		return
	}
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					p.plisRecvd.Add(1)
					out.RequestKeyframe()
				}
			}
		}
	}()
}

// track registers a goroutine with the peer; false once closed.
func (p *Peer) track() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

func (p *Peer) onBitrate(bps int) {
	p.bitrate.Store(int64(bps))
	var video []*Output
	for _, o := range p.outputs {
		if o.kind == KindVideo {
			video = append(video, o)
		}
	}
	if len(video) == 0 {
		return
	}
	share := bps
	if len(p.outputs) > len(video) { // leave room for audio
		share -= 64_000 * (len(p.outputs) - len(video))
	}
	share /= len(video)
	for _, o := range video {
		// A paused viewer does not hold the shared encoder's rate down
		// (gate.go); the second check undoes a rate set while SetPaused
		// paused it and forgot the viewer.
		g := p.gates[o.name]
		if g != nil && g.paused.Load() {
			continue
		}
		o.viewerBitrate(p, share, p.cfg.MinBitrate/len(video))
		if g != nil && g.paused.Load() {
			o.forgetViewer(p)
		}
	}
}

func (p *Peer) onState(s webrtc.PeerConnectionState) {
	p.log.Debug("peer connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		p.connected.Store(true)
		for _, o := range p.outputs {
			o.RequestKeyframe() // a new viewer needs a keyframe first
		}
		p.maybeReady()
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
		p.connected.Store(false)
		p.lost("peer connection " + s.String())
	}
}

func (p *Peer) lost(reason string) {
	if p.closing.Load() {
		return
	}
	p.lostOnce.Do(func() {
		if p.h.OnLost != nil {
			p.h.OnLost(p, reason)
		}
	})
}

func (p *Peer) maybeReady() {
	if p.connected.Load() && (p.dcOpen.Load() || p.noDC) {
		p.readyOnce.Do(func() {
			if p.h.OnReady != nil {
				p.h.OnReady(p)
			}
		})
	}
}

func (p *Peer) onDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() == "control" && p.h.OnControl != nil {
		p.ctlDC.Store(dc)
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if len(m.Data) > int(p.cfg.SCTPMaxMessageSize) {
				p.dropped.Add(1)
				p.oversized.Add(1)
				return
			}
			p.h.OnControl(p, m.Data)
		})
		return
	}
	if dc.Label() != "data" {
		p.log.Warn("client opened a data channel other than \"data\"; its messages are dropped", "label", dc.Label())
		dc.OnMessage(func(webrtc.DataChannelMessage) { p.dropped.Add(1) })
		return
	}
	p.dc.Store(dc)
	dc.OnOpen(func() {
		p.dcOpen.Store(true)
		p.maybeReady()
	})
	dc.OnClose(func() { p.dcOpen.Store(false) })
	dc.OnError(func(err error) {
		if !errors.Is(err, io.ErrShortBuffer) {
			p.log.Debug("data channel error", "err", err)
			return
		}
		// pion closes the channel on a message above its read limit.
		p.dropped.Add(1)
		p.oversized.Add(1)
		p.log.Warn("the client sent a data-channel message above the read limit; its channel is closed and the peer lost", "max", sctpReadLimit, "advertised", p.cfg.SCTPMaxMessageSize)
		p.lost(fmt.Sprintf("the client sent a data-channel message over %d bytes (the advertised limit is %d); its data channel closed", sctpReadLimit, p.cfg.SCTPMaxMessageSize))
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		p.rxMark.Store(p.sctpReceived())
		if len(m.Data) > int(p.cfg.SCTPMaxMessageSize) {
			p.dropped.Add(1)
			p.oversized.Add(1)
			if ok, suppressed := p.oversizeLog.Allow(); ok {
				p.log.Warn("data-channel message above the advertised max-message-size dropped", "bytes", len(m.Data), "max", p.cfg.SCTPMaxMessageSize, "suppressed", suppressed)
			}
			return
		}
		if !m.IsString {
			p.dropped.Add(1)
			return
		}
		if p.h.OnMessage != nil {
			p.h.OnMessage(p, m.Data)
		}
	})
}

// sctpReceived is the bytes the peer's SCTP association received so far.
func (p *Peer) sctpReceived() uint64 {
	if t := p.pc.SCTP(); t != nil {
		return t.Stats().BytesReceived
	}
	return 0
}

// InboundStalled returns ErrInboundTooLarge (wrapped, with the sizes)
// when the client's data channel is dead because it sent a message
// larger than the SCTP receive window: more than a whole deliverable
// message's bytes arrived since the last message and none came out. The
// first report is counted (Stats.OversizedMessages, DroppedMessages) and
// logged. The server can still send to the client. Call it periodically
// (the protocol's liveness check does); nil while the channel is alive.
func (p *Peer) InboundStalled() error {
	pending := int64(p.sctpReceived()) - int64(p.rxMark.Load())
	if pending <= stallBytes {
		return nil
	}
	if p.stalled.CompareAndSwap(false, true) {
		p.dropped.Add(1)
		p.oversized.Add(1)
		p.log.Warn("the client's data channel stalled on a message larger than the receive window", "pending_bytes", pending, "window", sctpReceiveWindow, "advertised", p.cfg.SCTPMaxMessageSize)
	}
	return fmt.Errorf("%w: %d bytes arrived without a message completing; the limit is %d bytes (at most %d are read)", ErrInboundTooLarge, pending, p.cfg.SCTPMaxMessageSize, sctpReadLimit)
}

// MaxMessageSize is the largest message Send accepts: the client's
// a=max-message-size.
func (p *Peer) MaxMessageSize() int { return p.maxMsg }

// Send sends one UTF-8 text frame on the client's "data" channel. It fails
// with ErrMessageTooLarge for a message the client would not accept and
// ErrChannelNotOpen when the channel is not open. It does not block on the
// network.
func (p *Peer) Send(text []byte) error {
	if len(text) > p.maxMsg {
		return fmt.Errorf("%w: %d bytes, client accepts at most %d", ErrMessageTooLarge, len(text), p.maxMsg)
	}
	dc := p.dc.Load()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrChannelNotOpen
	}
	if err := dc.SendText(string(text)); err != nil {
		return fmt.Errorf("peer: send: %w", err)
	}
	return nil
}

// Flush waits until everything sent on the "data" channel has been
// acknowledged by the client (the SCTP stream's buffered amount is zero),
// or until ctx ends. Send, then Flush, then Close delivers a last message
// that closing at once would lose. It returns ErrChannelNotOpen when the
// channel is not open.
func (p *Peer) Flush(ctx context.Context) error {
	dc := p.dc.Load()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrChannelNotOpen
	}
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(0)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	defer dc.OnBufferedAmountLow(func() {}) // pion calls the handler unchecked
	for dc.BufferedAmount() > 0 {
		select {
		case <-low:
		case <-ctx.Done():
			return fmt.Errorf("peer: flush: %d bytes unacknowledged: %w", dc.BufferedAmount(), context.Cause(ctx))
		}
	}
	return nil
}

// Stats is a snapshot of a peer's counters.
type Stats struct {
	Connected       bool
	DroppedMessages uint64 // binary frames, frames on other channels, oversized frames
	// OversizedMessages counts inbound frames above the advertised
	// a=max-message-size (also in DroppedMessages).
	OversizedMessages uint64
	DiscardedRTP      uint64 // RTP packets of inbound tracks nobody consumes (unsupported codec, no receiver)
	PLIsSent          uint64 // keyframe requests sent to the client
	PLIsReceived      uint64 // PLI/FIR received from the client
	TargetBitrate     int    // GCC's latest estimate, bit/s
}

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	return Stats{
		Connected:         p.connected.Load(),
		DroppedMessages:   p.dropped.Load(),
		OversizedMessages: p.oversized.Load(),
		DiscardedRTP:      p.discarded.Load(),
		PLIsSent:          p.plisSent.Load(),
		PLIsReceived:      p.plisRecvd.Load(),
		TargetBitrate:     int(p.bitrate.Load()),
	}
}

// Close closes the PeerConnection and waits for the peer's goroutines. It
// does not touch the session's outputs. It is idempotent and must not be
// called from a Handlers callback.
func (p *Peer) Close() error {
	p.closing.Store(true)
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	var err error
	if !already {
		err = p.pc.Close()
	}
	p.wg.Wait()
	if !already {
		for _, o := range p.outputs {
			o.forgetViewer(p)
		}
	}
	return err
}

// ICECandidate is one remote candidate the client trickles.
type ICECandidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdp_mid"`
	SDPMLineIndex *uint16 `json:"sdp_mline_index"`
}

// AddICECandidate adds a candidate the client trickled after its offer.
// An empty candidate (end of candidates) is accepted and ignored. It does
// not block on the network.
func (p *Peer) AddICECandidate(c ICECandidate) error {
	if c.Candidate == "" {
		return nil
	}
	if err := p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}); err != nil {
		return fmt.Errorf("%w: ice candidate: %v", ErrBadOffer, err)
	}
	return nil
}
