package peer

import (
	"strings"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
)

// Jitter buffer bounds for inbound media: a sample waits for missing
// packets at most this long (or this many packets) before it is dropped.
const (
	jitterMaxLate  = 256
	jitterMaxDelay = 300 * time.Millisecond
	pliMinInterval = 500 * time.Millisecond
)

// receive starts the goroutine that depacketizes, decodes and delivers one
// inbound track until the PeerConnection closes.
func (p *Peer) receive(tm TrackMapping, remote *webrtc.TrackRemote, vin VideoInput, ain AudioInput) {
	if !p.track() {
		return
	}
	go func() {
		defer p.wg.Done()
		mime := strings.ToLower(remote.Codec().MimeType)
		switch {
		case tm.Kind == KindVideo && vin != nil && (mime == strings.ToLower(webrtc.MimeTypeH264) || mime == strings.ToLower(webrtc.MimeTypeVP8)):
			p.receiveVideo(tm, remote, vin, mime)
		case tm.Kind == KindAudio && ain != nil && mime == strings.ToLower(webrtc.MimeTypeOpus):
			p.receiveAudio(tm, remote, ain)
		default:
			p.log.Warn("inbound track has no consumer or an unsupported codec; discarding it", "track", tm.Name, "codec", mime)
			for {
				if _, _, err := remote.ReadRTP(); err != nil {
					return
				}
			}
		}
	}()
}

// requestKeyframe sends a PLI for the remote track, at most every 500 ms.
func (p *Peer) requestKeyframe(ssrc webrtc.SSRC, last *time.Time) {
	if now := time.Now(); now.Sub(*last) >= pliMinInterval {
		*last = now
		if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
			p.log.Debug("keyframe request (PLI) not sent", "ssrc", ssrc, "err", err)
		} else {
			p.plisSent.Add(1)
		}
	}
}

func (p *Peer) receiveVideo(tm TrackMapping, remote *webrtc.TrackRemote, in VideoInput, mime string) {
	codec := encode.CodecH264
	var dep rtp.Depacketizer = &codecs.H264Packet{}
	if mime == strings.ToLower(webrtc.MimeTypeVP8) {
		codec, dep = encode.CodecVP8, &codecs.VP8Packet{}
	}
	rx, err := p.videoReceiver(tm, codec, in)
	if err != nil {
		p.log.Error("inbound video decoder", "track", tm.Name, "err", err)
		return
	}
	defer rx.Close()
	sb := samplebuilder.New(jitterMaxLate, dep, 90000, samplebuilder.WithMaxTimeDelay(jitterMaxDelay))
	var lastPLI time.Time
	p.requestKeyframe(remote.SSRC(), &lastPLI)
	depacketize(remote, sb, func(s *media.Sample) {
		if s.PrevDroppedPackets > 0 {
			p.requestKeyframe(remote.SSRC(), &lastPLI)
		}
		before := rx.Frames
		if err := rx.WriteAccessUnit(s.Data, time.Now()); err != nil {
			p.log.Debug("inbound video decode", "track", tm.Name, "err", err)
			p.requestKeyframe(remote.SSRC(), &lastPLI)
		}
		p.inFrames.Add(rx.Frames - before)
	})
}

// depacketize reads remote's RTP through the jitter buffer sb and calls fn
// with each completed sample until the track ends (the PeerConnection
// closed).
func depacketize(remote *webrtc.TrackRemote, sb *samplebuilder.SampleBuilder, fn func(*media.Sample)) {
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			fn(s)
		}
	}
}

func (p *Peer) receiveAudio(tm TrackMapping, remote *webrtc.TrackRemote, in AudioInput) {
	rx, err := pipeline.NewAudioReceiver(in)
	if err != nil {
		p.log.Error("inbound opus decoder", "track", tm.Name, "err", err)
		return
	}
	sb := samplebuilder.New(jitterMaxLate, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(jitterMaxDelay))
	depacketize(remote, sb, func(s *media.Sample) {
		if err := rx.WritePacket(s.Data, time.Now()); err != nil {
			p.log.Debug("inbound opus decode", "track", tm.Name, "err", err)
			return
		}
		p.inAudio.Add(1)
	})
}

// videoReceiver makes the inbound decoder: the configured H.264 decoder
// (NVDEC) when there is one and it opens, else FFmpeg's software decoder.
func (p *Peer) videoReceiver(tm TrackMapping, codec encode.Codec, in VideoInput) (*pipeline.VideoReceiver, error) {
	if codec == encode.CodecH264 && p.cfg.H264Decoder != nil {
		dec, err := p.cfg.H264Decoder()
		if err == nil {
			return pipeline.NewVideoReceiverFrom(dec, in)
		}
		p.log.Warn("hardware H.264 decoder unavailable; decoding on the CPU", "track", tm.Name, "err", err)
	}
	return pipeline.NewVideoReceiver(codec, in)
}
