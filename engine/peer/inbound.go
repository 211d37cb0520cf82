package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// Jitter buffer bounds for inbound media: a sample waits for missing
// packets at most this long (or this many packets) before it is dropped.
const (
	jitterMaxLate  = 256
	jitterMaxDelay = 300 * time.Millisecond
	pliMinInterval = 500 * time.Millisecond
)

// Inbound is one media track the client sends (a webcam, a microphone),
// handed to Handlers.OnInbound: the peer owns the RTP side (jitter buffer,
// depacketizer, keyframe requests); whoever receives it reads the
// completed samples and decodes them. ReadSample is not safe for
// concurrent use: one goroutine reads an Inbound; the other methods may be
// called from any goroutine.
type Inbound struct {
	name   string
	kind   Kind
	codec  Codec
	p      *Peer
	remote *webrtc.TrackRemote
	sb     *samplebuilder.SampleBuilder

	lastPLI time.Time   // read side only
	accept  func() bool // SetAccept's filter; nil: every sample
	refused bool        // read side only: accept refused the last sample
	keyWait bool        // read side only: accepted again, dropping until a keyframe
	samples atomic.Uint64
}

func newInbound(p *Peer, tm TrackMapping, remote *webrtc.TrackRemote) (*Inbound, error) {
	in := &Inbound{name: tm.Name, kind: tm.Kind, p: p, remote: remote}
	switch codec := Codec(remote.Codec().MimeType); {
	case tm.Kind == KindVideo && sameCodec(codec, CodecH264):
		in.codec, in.sb = CodecH264, samplebuilder.New(jitterMaxLate, &codecs.H264Packet{}, 90000, samplebuilder.WithMaxTimeDelay(jitterMaxDelay))
	case tm.Kind == KindVideo && sameCodec(codec, CodecVP8):
		in.codec, in.sb = CodecVP8, samplebuilder.New(jitterMaxLate, &codecs.VP8Packet{}, 90000, samplebuilder.WithMaxTimeDelay(jitterMaxDelay))
	case tm.Kind == KindAudio && sameCodec(codec, CodecOpus):
		in.codec, in.sb = CodecOpus, samplebuilder.New(jitterMaxLate, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(jitterMaxDelay))
	default:
		return nil, fmt.Errorf("%w: inbound %s track %q sends %s; want H.264 or VP8 video, Opus audio", ErrNoCodec, tm.Kind, tm.Name, codec)
	}
	return in, nil
}

// Name is the input track's name (from the client's track_mapping).
func (in *Inbound) Name() string { return in.name }

// Kind is the track's media kind.
func (in *Inbound) Kind() Kind { return in.kind }

// Codec is the codec the client sends: CodecH264 or CodecVP8 for video,
// CodecOpus for audio.
func (in *Inbound) Codec() Codec { return in.codec }

// Samples counts the samples ReadSample returned.
func (in *Inbound) Samples() uint64 { return in.samples.Load() }

// SetAccept installs a filter ReadSample asks once per complete sample:
// a sample it refuses is read and discarded (the jitter buffer keeps
// draining), and when it accepts again after refusing, a keyframe is
// requested and video samples are discarded until it arrives (the
// decoder's references are another stream's or stale: what lies between
// would decode to broken pictures). accept runs on the reading goroutine and must not block or
// allocate (it is on the per-frame path). Call SetAccept before handing
// the Inbound to its reader; it is not safe to call while ReadSample runs.
func (in *Inbound) SetAccept(accept func() bool) { in.accept = accept }

// ReadSample blocks until the next complete sample (an H.264 access unit
// in Annex B, a VP8 frame or an Opus packet) that SetAccept's filter, if
// any, accepts, and returns it; the data is
// valid until the next call. For video, a sample with packets lost before
// it also asks the client for a keyframe. It returns an error wrapping
// io.EOF when the connection closes, and context.Cause(ctx) when ctx ends
// first (the read is then abandoned: the Inbound is done).
func (in *Inbound) ReadSample(ctx context.Context) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = in.remote.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		if s := in.sb.Pop(); s != nil {
			if in.accept != nil {
				if !in.accept() {
					in.refused = true
					continue
				}
				if in.refused {
					in.refused = false
					in.keyWait = in.kind == KindVideo
				}
				if in.keyWait {
					if !IsKeyframe(in.codec, s.Data) {
						in.RequestKeyframe() // every 500 ms at most
						continue
					}
					in.keyWait = false
				}
			}
			if s.PrevDroppedPackets > 0 && in.kind == KindVideo {
				in.RequestKeyframe()
			}
			in.samples.Add(1)
			return s.Data, nil
		}
		pkt, _, err := in.remote.ReadRTP()
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, fmt.Errorf("peer: inbound %q: %w (%w)", in.name, io.EOF, err)
		}
		in.sb.Push(pkt)
	}
}

// RequestKeyframe asks the client for a keyframe (an RTCP PLI), at most
// every 500 ms; audio has none and ignores it.
func (in *Inbound) RequestKeyframe() {
	if in.kind != KindVideo {
		return
	}
	if now := time.Now(); now.Sub(in.lastPLI) >= pliMinInterval {
		in.lastPLI = now
		in.p.sendPLI(in.remote.SSRC())
	}
}

func (p *Peer) sendPLI(ssrc webrtc.SSRC) {
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
		if !errors.Is(err, io.ErrClosedPipe) {
			p.log.Debug("keyframe request (PLI) not sent", "ssrc", ssrc, "err", err)
		}
		return
	}
	p.plisSent.Add(1)
}

// inbound hands the remote track of mapping tm to the OnInbound handler, or
// drains it (counted) when there is no handler or its codec is unsupported.
func (p *Peer) inbound(tm TrackMapping, remote *webrtc.TrackRemote) {
	in, err := newInbound(p, tm, remote)
	if err == nil && p.h.OnInbound != nil {
		in.RequestKeyframe() // the first picture needs one
		p.h.OnInbound(p, in)
		return
	}
	if err == nil {
		err = errors.New("nobody consumes it")
	}
	p.log.Warn("inbound track discarded", "track", tm.Name, "err", err)
	if !p.track() {
		return
	}
	go func() {
		defer p.wg.Done()
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
			p.discarded.Add(1)
		}
	}()
}

func sameCodec(a, b Codec) bool { return strings.EqualFold(string(a), string(b)) }

// IsKeyframe reports whether sample is a picture that decodes on its own:
// an H.264 access unit (Annex B) holding an IDR slice, or a VP8 key frame.
// It allocates nothing.
func IsKeyframe(c Codec, sample []byte) bool {
	switch c {
	case CodecVP8:
		return len(sample) > 0 && sample[0]&0x01 == 0
	case CodecH264:
		zeros := 0
		for i, b := range sample {
			switch {
			case b == 0:
				zeros++
				continue
			case b == 1 && zeros >= 2 && i+1 < len(sample) && sample[i+1]&0x1f == 5:
				return true
			}
			zeros = 0
		}
	}
	return false
}
