package wiring

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
)

// input is one inbound track's receive loop, for Stats.
type input struct {
	name    string
	codec   peer.Codec
	decoder atomic.Pointer[string]

	samples, pictures, errors, fallbacks atomic.Uint64
}

// InputStats is a snapshot of one inbound track's receive loop.
type InputStats struct {
	Name    string
	Codec   string // the client's codec (video/H264, video/VP8, audio/opus)
	Decoder string // "nvdec", "cpu" ("" before the decoder opened)
	// Samples counts depacketized samples read from the peer; Pictures the
	// decoded pictures (or Opus frames) delivered to the input track;
	// Errors the samples that did not decode (each asks for a keyframe);
	// Fallbacks the switches from a failing hardware decoder to the CPU.
	Samples, Pictures, Errors, Fallbacks uint64
}

func (in *input) stats() InputStats {
	st := InputStats{Name: in.name, Codec: string(in.codec), Samples: in.samples.Load(), Pictures: in.pictures.Load(), Errors: in.errors.Load(), Fallbacks: in.fallbacks.Load()}
	if d := in.decoder.Load(); d != nil {
		st.Decoder = *d
	}
	return st
}

func (in *input) setDecoder(name string) { in.decoder.Store(&name) }

// Receive decodes the inbound track in into the session's input track of
// the same name, on a goroutine the session owns, until the peer closes or
// the session ends. It is the peer.Handlers.OnInbound of the session's
// peers: it does not block.
func (ws *Session) Receive(in *peer.Inbound) {
	rec := &input{name: in.Name(), codec: in.Codec()}
	err := ws.s.Go(func(ctx context.Context) error {
		ws.mu.Lock()
		ws.inputs = append(ws.inputs, rec)
		ws.mu.Unlock()
		ws.receive(ctx, in, rec)
		return nil // a track that cannot be decoded does not end the session
	})
	if err != nil {
		ws.w.log.Debug("inbound track after the session ended", "session", ws.s.ID(), "track", in.Name())
	}
}

// receive opens the decoder once the first sample arrives (a connection
// whose samples the input gate refuses, another holding the track, holds
// no decoder: no NVDEC session for each viewer with a webcam) and decodes
// until in ends.
func (ws *Session) receive(ctx context.Context, in *peer.Inbound, rec *input) {
	log := ws.w.log.With("session", ws.s.ID(), "track", in.Name())
	data, err := in.ReadSample(ctx)
	if err != nil {
		return
	}
	var (
		write func(data []byte, at time.Time) (pictures uint64, err error)
		close func() error
	)
	if in.Kind() == peer.KindVideo {
		write, close, err = ws.videoReceiver(in, rec)
	} else {
		write, close, err = ws.audioReceiver(in, rec)
	}
	if err != nil {
		log.Warn("inbound track not decoded", "err", err)
		drain(ctx, in)
		return
	}
	defer func() {
		if err := close(); err != nil {
			log.Warn("inbound decoder close", "err", err)
		}
	}()
	for ; err == nil; data, err = in.ReadSample(ctx) {
		rec.samples.Add(1)
		n, werr := write(data, time.Now())
		rec.pictures.Add(n)
		if werr != nil {
			if rec.errors.Add(1)&63 == 1 { // the 1st, 65th, … failure: not one line per frame
				log.Debug("inbound sample did not decode", "err", werr, "errors", rec.errors.Load())
			}
			in.RequestKeyframe()
		}
	}
}

// drain reads and discards in until it ends, so the peer's buffers do not
// fill.
func drain(ctx context.Context, in *peer.Inbound) {
	for {
		if _, err := in.ReadSample(ctx); err != nil {
			return
		}
	}
}

// videoReceiver opens the decoder of an inbound video track: the
// configured H.264 decoder (NVDEC) when there is one and it opens, else
// FFmpeg's software decoder.
func (ws *Session) videoReceiver(in *peer.Inbound, rec *input) (func([]byte, time.Time) (uint64, error), func() error, error) {
	track, err := ws.s.VideoIn(in.Name())
	if err != nil {
		return nil, nil, err
	}
	var rx *pipeline.VideoReceiver
	if in.Codec() == peer.CodecH264 && ws.w.cfg.H264Decoder != nil {
		dec, derr := ws.w.cfg.H264Decoder()
		if derr == nil {
			rx, err = pipeline.NewVideoReceiverFrom(dec, track)
			rec.setDecoder("nvdec")
		} else {
			ws.w.log.Warn("hardware H.264 decoder unavailable; decoding on the CPU", "track", in.Name(), "err", derr)
		}
	}
	if rx == nil && err == nil {
		rx, err = pipeline.NewVideoReceiver(encode.Codec(in.Codec()), track)
		rec.setDecoder("cpu")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("video decoder: %w", err)
	}
	rx.Logger = ws.w.log.With("session", ws.s.ID(), "track", in.Name())
	write := func(au []byte, at time.Time) (uint64, error) {
		before := rx.Frames
		err := rx.WriteAccessUnit(au, at)
		if rx.Fallbacks != rec.fallbacks.Load() {
			rec.fallbacks.Store(rx.Fallbacks)
			rec.setDecoder("cpu")
		}
		return rx.Frames - before, err
	}
	return write, rx.Close, nil
}

// audioReceiver opens the Opus decoder of an inbound audio track.
func (ws *Session) audioReceiver(in *peer.Inbound, rec *input) (func([]byte, time.Time) (uint64, error), func() error, error) {
	track, err := ws.s.AudioIn(in.Name())
	if err != nil {
		return nil, nil, err
	}
	rx, err := pipeline.NewAudioReceiver(track)
	if err != nil {
		return nil, nil, fmt.Errorf("opus decoder: %w", err)
	}
	rec.setDecoder("cpu")
	write := func(pkt []byte, at time.Time) (uint64, error) {
		if err := rx.WritePacket(pkt, at); err != nil {
			return 0, err
		}
		return 1, nil
	}
	return write, func() error { return nil }, nil
}
