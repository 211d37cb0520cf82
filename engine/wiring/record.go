package wiring

import (
	"fmt"
	"log/slog"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/record"
)

// recordedTrack returns the output of kind a recording taps: the named
// one (cfg's video_track or audio_track), else the model's first output
// of that kind ("" when recording is off or the model has none).
func recordedTrack(e *engine.Engine, cfg Config, kind peer.Kind, named string) (string, error) {
	if !cfg.Recording.Enabled || cfg.Recordings == nil {
		return "", nil
	}
	for _, t := range e.Capabilities().Tracks {
		if t.Kind != string(kind) || t.Direction != string(peer.DirRecvonly) {
			continue
		}
		if named == "" || named == t.Name {
			return t.Name, nil
		}
	}
	if named != "" {
		return "", fmt.Errorf("wiring: recording names %s output %q, which model %q does not have", kind, named, e.ModelName())
	}
	return "", nil
}

// recordAudioTap returns the audio tap for output name, nil when it is
// not the recorded audio output.
func (ws *Session) recordAudioTap(name string) *record.AudioTap {
	if ws.rec == nil || name != ws.w.recAudio {
		return nil
	}
	return ws.rec.AudioTap()
}

// startRecorder gives ws its recorder when recording is on, running it on
// a goroutine the session owns (it finishes the recording when the
// session ends). A model without a video output gets a disabled one, so
// clip requests are refused with the runtime's reason.
func (ws *Session) startRecorder(log *slog.Logger) error {
	cfg := ws.w.cfg
	if !cfg.Recording.Enabled || cfg.Recordings == nil {
		return nil
	}
	rec, err := cfg.Recordings.NewRecorder("", cfg.Recording, log.With("session", ws.s.ID()))
	if err != nil {
		return err
	}
	if ws.w.recTrack == "" {
		rec.Disable(fmt.Errorf("model %q has no video output to record", ws.w.eng.ModelName()))
	}
	ws.rec = rec
	if err := ws.s.Go(rec.Run); err != nil {
		_ = rec.Close()
		return err
	}
	return nil
}

// recordTap returns the tap for output name's pipeline in codec, nil when
// that output is not recorded. A VP8 output cannot be muxed as H.264: the
// recording is disabled for the session, with the reason logged.
func (ws *Session) recordTap(name string, codec peer.Codec, rate float64) *record.VideoTap {
	if ws.rec == nil || name != ws.w.recTrack {
		return nil
	}
	if codec != peer.CodecH264 {
		ws.rec.Disable(fmt.Errorf("output %q streams %s; the recording muxes the live H.264 packets and has no second encoder yet", name, codec))
		return nil
	}
	ws.recMu.Lock()
	defer ws.recMu.Unlock()
	if ws.tap == nil {
		ws.tap = ws.rec.VideoTap(rate)
	}
	return ws.tap
}

// Recorder returns the session's recorder, nil when recording is off.
// Clip requests go to it (record.Recorder.Snap, Recording); a nil
// Recorder refuses them with record.ErrDisabled.
func (ws *Session) Recorder() *record.Recorder { return ws.rec }

// Recordings returns the store of every session's recordings, nil when
// the wiring records nothing (Config.Recordings).
func (w *Wiring) Recordings() *record.Store { return w.cfg.Recordings }

// RecordingConfig returns the recording settings sessions start with.
func (w *Wiring) RecordingConfig() record.Config {
	if w.cfg.Recordings == nil {
		return record.Config{}
	}
	return w.cfg.Recording.WithDefaults()
}
