package peer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// Control is how transport feedback reaches an output's running encoder.
// Implementations must be safe for concurrent use: RTCP readers of several
// peers may call them at once.
type Control interface {
	RequestKeyframe()
	SetBitrate(bps int)
}

// Output is a session's local track for one model output. It is created
// once per session (with the codec chosen from the first offer) and is bound
// to every Peer the session gets, so a reconnect reuses it and the running
// encoder. It implements the encode pipeline's Sink. All methods are safe
// for concurrent use.
type Output struct {
	name  string
	kind  Kind
	codec Codec
	track *wiredTrack
	ctl   atomic.Pointer[controlBox]
	fan   fanout // shared decisions of the viewers (fanout.go)

	// WriteSample's packetization, under mu: H.264 by the engine's own
	// allocation-free packetizer, VP8 and Opus by pion's.
	mu    sync.Mutex
	clock rtpClock
	h264  *h264Packetizer
	pz    rtp.Packetizer
	write func(*rtp.Packet) error // track.WriteRTP, bound once

	auKey   atomic.Bool  // the access unit being written is a keyframe
	auSeq   atomic.Int32 // RTP sequence number of its first packet; -1 until a viewer saw it
	wire    atomic.Int64 // UnixNano of the latest packet's socket write
	capture atomic.Int64 // UnixNano of the capture of the sample being written; 0 for none
}

type controlBox struct{ Control }

// NewOutput creates the local track for output name of the given kind,
// sending codec. Until a Peer binds it, written samples go nowhere (their
// packets have no binding to be written to).
func NewOutput(name string, kind Kind, codec Codec) (*Output, error) {
	if kind == KindVideo && codec != CodecH264 && codec != CodecVP8 || kind == KindAudio && codec != CodecOpus {
		return nil, fmt.Errorf("%w: %s track %q cannot send %s", ErrNoCodec, kind, name, codec)
	}
	capab := capability(codec)
	tr, err := webrtc.NewTrackLocalStaticRTP(capab, name, "framewire")
	if err != nil {
		return nil, fmt.Errorf("peer: track %q: %w", name, err)
	}
	o := &Output{name: name, kind: kind, codec: codec, clock: rtpClock{rate: float64(capab.ClockRate)}}
	o.auSeq.Store(-1)
	o.track = &wiredTrack{TrackLocalStaticRTP: tr, out: o}
	o.write = tr.WriteRTP
	// Random first sequence number and timestamp (RFC 3550 5.1), as
	// pion's sample track starts; each binding gets its own SSRC and
	// payload type from pion.
	seq, ts := uint16(rand.Uint32()), rand.Uint32()
	switch codec {
	case CodecH264:
		o.h264 = newH264Packetizer(seq, ts)
	case CodecVP8:
		o.pz = rtp.NewPacketizerWithOptions(rtpPayloadMax+12, &codecs.VP8Payloader{EnablePictureID: true},
			rtp.NewFixedSequencer(seq), capab.ClockRate, rtp.WithTimestamp(ts))
	default:
		o.pz = rtp.NewPacketizerWithOptions(rtpPayloadMax+12, &codecs.OpusPayloader{},
			rtp.NewFixedSequencer(seq), capab.ClockRate, rtp.WithTimestamp(ts))
	}
	return o, nil
}

// WireTime reports when the latest RTP packet this output wrote passed
// every interceptor (NACK, TWCC, congestion control) and was written to
// the socket, for any bound peer; zero before the first. Packetizing and
// writing are synchronous in WriteSample, so right after WriteSample
// returns it is when that sample's last packet left. It implements the
// pipeline's per-stage timing hook.
func (o *Output) WireTime() time.Time {
	ns := o.wire.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// wiredTrack is the output's pion track. Its Bind hands pion's RTP track
// a write stream that notes when each packet came back from the
// interceptor chain and the SRTP socket write.
type wiredTrack struct {
	*webrtc.TrackLocalStaticRTP
	out *Output
}

// Bind implements webrtc.TrackLocal.
func (t *wiredTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return t.TrackLocalStaticRTP.Bind(wiredContext{ctx, t.out})
}

type wiredContext struct {
	webrtc.TrackLocalContext
	out *Output
}

// WriteStream returns pion's write stream for this binding, wrapped to
// time each packet and, on video, to add the low-latency header
// extensions the answer negotiated (see newAPI).
func (c wiredContext) WriteStream() webrtc.TrackLocalWriter {
	w := &wiredWriter{TrackLocalWriter: c.TrackLocalContext.WriteStream(), out: c.out, gated: c.out.kind == KindVideo}
	if c.out.kind == KindVideo {
		for _, e := range c.HeaderExtensions() {
			switch e.URI {
			case playoutDelayURI:
				w.playoutID = uint8(e.ID)
			case absCaptureTimeURI:
				w.captureID = uint8(e.ID)
			}
		}
	}
	return w
}

// wiredWriter is one binding's write stream. It is used by the goroutine
// writing the output's samples only.
type wiredWriter struct {
	webrtc.TrackLocalWriter
	out       *Output
	playoutID uint8  // negotiated id of playout-delay, 0 when not
	captureID uint8  // negotiated id of abs-capture-time, 0 when not
	lastTS    uint32 // RTP timestamp of the previous packet
	started   bool
	capBuf    [8]byte // abs-capture-time payload, reused
	// gated: a video viewer that joined mid-stream gets nothing until a
	// keyframe's first packet, so its first access unit decodes (the
	// join asks the encoder for one).
	gated bool
}

// playoutNow is the playout-delay payload min = max = 0: render each frame
// as soon as it is decoded, with no smoothing buffer.
var playoutNow = []byte{0, 0, 0}

// WriteRTP adds the header extensions (playout-delay on every packet,
// abs-capture-time on each frame's first), writes the packet through the
// interceptors and the socket, and notes when that returned.
//
// pion writes one packet header to every viewer's binding in turn, so the
// extensions this viewer (and its interceptors: TWCC) set are taken off
// again afterwards: another viewer may have negotiated other ids. No
// allocation happens here per packet once the header's extension slice
// has grown (the first viewer's write), so each further viewer costs none.
func (w *wiredWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	// pion hands every binding the same packet, sequence number included:
	// the first binding to see an access unit's packet marks its start.
	seq := int32(h.SequenceNumber)
	start := w.out.auSeq.CompareAndSwap(-1, seq) || w.out.auSeq.Load() == seq
	opening := false
	if w.gated {
		if !start || !w.out.auKey.Load() {
			return len(payload), nil // withheld: not this viewer's first access unit
		}
		w.gated, opening = false, true
	}
	ext, n0 := h.Extension, len(h.Extensions)
	defer func() { h.Extension, h.Extensions = ext, h.Extensions[:n0] }()
	if w.playoutID != 0 {
		_ = h.SetExtension(w.playoutID, playoutNow)
	}
	first := !w.started || h.Timestamp != w.lastTS
	w.started, w.lastTS = true, h.Timestamp
	if c := w.out.capture.Load(); w.captureID != 0 && first && c != 0 {
		_ = h.SetExtension(w.captureID, appendAbsCaptureTime(w.capBuf[:0], time.Unix(0, c)))
	}
	n, err := w.TrackLocalWriter.WriteRTP(h, payload)
	if opening && n == 0 {
		// pion binds an answerer's tracks before DTLS is up and drops
		// (0, nil) what is written until SRTP runs: the viewer did not get
		// this keyframe; wait for the next (connecting asks for one).
		w.gated = true
	}
	w.out.wire.Store(time.Now().UnixNano())
	return n, err
}

// absCaptureTime is the 8-byte abs-capture-time payload: the capture time
// as a 64-bit NTP timestamp (UQ32.32 seconds since 1900), without the
// optional clock offset.
func absCaptureTime(t time.Time) []byte {
	return appendAbsCaptureTime(make([]byte, 0, 8), t)
}

// appendAbsCaptureTime appends the abs-capture-time payload of t to b.
func appendAbsCaptureTime(b []byte, t time.Time) []byte {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return binary.BigEndian.AppendUint64(b, secs<<32|frac)
}

// Name is the output track's name.
func (o *Output) Name() string { return o.name }

// Kind is the output's media kind.
func (o *Output) Kind() Kind { return o.kind }

// Codec is the codec the output sends.
func (o *Output) Codec() Codec { return o.codec }

// SetControl installs the running encoder's control (nil removes it).
func (o *Output) SetControl(c Control) {
	if c == nil {
		o.ctl.Store(nil)
		return
	}
	o.ctl.Store(&controlBox{c})
}

// RequestKeyframe asks the output's encoder for a keyframe, if one runs,
// through the fan-out's throttle (fanout.go): requests of many viewers
// within KeyframeInterval coalesce into one.
func (o *Output) RequestKeyframe() {
	o.fan.requestKeyframe(time.Now(), o.forwardKeyframe)
}

func (o *Output) forwardKeyframe() {
	if b := o.ctl.Load(); b != nil {
		b.RequestKeyframe()
	}
}

// viewerBitrate records viewer p's estimate share (floor: the peer's
// minimum) and sets the encoder to the fan-out policy's target.
func (o *Output) viewerBitrate(p *Peer, bps, floor int) {
	o.setBitrate(o.fan.setRate(p, bps, floor))
}

// forgetViewer drops p's estimate; the encoder follows the viewers left.
func (o *Output) forgetViewer(p *Peer) {
	if t := o.fan.forget(p); t > 0 {
		o.setBitrate(t)
	}
}

func (o *Output) setBitrate(bps int) {
	if b := o.ctl.Load(); b != nil && bps > 0 {
		b.SetBitrate(bps)
	}
}

// WriteSample hands one encoded access unit (or Opus frame) to every bound
// peer. data is only read during the call. It implements pipeline.Sink.
//
// Packetizing and writing are synchronous: when it returns, every packet
// has passed the interceptors (NACK history, TWCC, congestion control)
// and SRTP and was written to each peer's socket. Concurrent calls are
// serialized. An H.264 access unit costs no allocation of the engine's
// (h264Packetizer); what pion's interceptors allocate per packet is
// theirs (BenchmarkOutputWriteSample reports the whole path).
func (o *Output) WriteSample(data []byte, duration time.Duration, capture time.Time, key bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fan.flushHeld(time.Now(), o.forwardKeyframe)
	o.auKey.Store(key)
	o.auSeq.Store(-1)
	if capture.IsZero() {
		o.capture.Store(0)
	} else {
		o.capture.Store(capture.UnixNano())
	}
	var err error
	ticks := o.clock.ticks(duration.Seconds())
	if o.h264 != nil {
		err = o.h264.packetize(data, ticks, o.write)
	} else {
		for _, p := range o.pz.Packetize(data, ticks) {
			if e := o.write(p); e != nil && err == nil {
				err = e
			}
		}
	}
	if err != nil {
		return fmt.Errorf("peer: write %s sample: %w", o.name, err)
	}
	return nil
}
