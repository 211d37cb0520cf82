package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/tracks"
)

// Session is one engine session with its media wired. Its outputs are
// created once, with the codec of the first offer that maps them, and are
// bound to every peer the session gets, so a reconnect reuses the running
// encoder. All methods are safe for concurrent use and none waits for a
// pipeline: a restart hands the wait to the new run's goroutine.
type Session struct {
	w       *Wiring
	s       *engine.Session
	started time.Time

	prepMu sync.Mutex // serialises Prepare; Stats and Receive never take it

	mu      sync.Mutex // guards the fields below; held only briefly, never across a call out
	outputs map[string]*output
	order   []string // output names in first-start order
	inputs  []*input // in arrival order

	rec   *record.Recorder // nil when recording is off; set by Start
	recMu sync.Mutex       // guards tap
	tap   *record.VideoTap // the recorded output's tap, kept across restarts
}

// output is one output track's peer output and its current pipeline run.
type output struct {
	out *peer.Output
	run *outputRun
}

// outputRun is one run of an output's pipeline.
type outputRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the run's goroutine returned
	video  *pipeline.Video
	audio  *pipeline.Audio
	dev    DeviceEncoder
}

// Engine returns the engine session: commands, Send, tracks, Stop.
func (ws *Session) Engine() *engine.Session { return ws.s }

// ID returns the session's id.
func (ws *Session) ID() string { return ws.s.ID() }

// Done is closed when the session has ended and every goroutine it owns
// (pipelines and receive loops included) has returned.
func (ws *Session) Done() <-chan struct{} { return ws.s.Done() }

// Prepare makes sure every output the mapping names (direction recvonly)
// has a peer output whose codec the offer supports: the first offer
// creates it and starts its pipeline; a later offer that drops the codec
// gets a new output, and the output's pipeline restarts with the offered
// codec once the previous run has stopped (on the new run's goroutine: the
// call does not wait). It returns every output of the session by name, for
// peer.Binding.Outputs. offer must have passed Check against mapping.
// Once the session is ending it returns engine.ErrSessionEnded.
func (ws *Session) Prepare(offer *peer.Offer, mapping []peer.TrackMapping) (map[string]*peer.Output, error) {
	return ws.prepare(offer, mapping, true)
}

// ErrCodecInUse is returned by Join when an offer cannot receive the codec
// a running output sends to other viewers.
var ErrCodecInUse = errors.New("wiring: the output already runs in a codec this offer does not accept")

// Join is Prepare for a viewer joining viewers already bound: a running
// output is never restarted in another codec (that would cut the others'
// streams); an offer that cannot receive its codec fails with
// ErrCodecInUse. Outputs not running yet are started as Prepare does.
func (ws *Session) Join(offer *peer.Offer, mapping []peer.TrackMapping) (map[string]*peer.Output, error) {
	return ws.prepare(offer, mapping, false)
}

func (ws *Session) prepare(offer *peer.Offer, mapping []peer.TrackMapping, restart bool) (map[string]*peer.Output, error) {
	ws.prepMu.Lock()
	defer ws.prepMu.Unlock()
	if ws.s.ShouldStop() {
		return nil, engine.ErrSessionEnded
	}
	for _, tm := range mapping {
		if tm.Direction != peer.DirRecvonly {
			continue
		}
		ws.mu.Lock()
		prev := ws.outputs[tm.Name]
		ws.mu.Unlock()
		if prev != nil && offer.Supports(tm.MID, prev.out.Codec()) {
			continue
		}
		if prev != nil && !restart {
			return nil, fmt.Errorf("%w: output %q sends %s", ErrCodecInUse, tm.Name, prev.out.Codec())
		}
		codec, err := offer.ChooseCodec(tm.MID)
		if err != nil {
			return nil, err
		}
		if err := ws.startOutput(tm, codec, prev); err != nil {
			return nil, fmt.Errorf("starting output %q: %w", tm.Name, err)
		}
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	outs := make(map[string]*peer.Output, len(ws.outputs))
	for n, o := range ws.outputs {
		outs[n] = o.out
	}
	return outs, nil
}

// startOutput builds output tm's peer output and pipeline in codec and
// starts the run under the session; ws.prepMu is held, ws.mu is not (the
// device encoder factory is the caller's code).
func (ws *Session) startOutput(tm peer.TrackMapping, codec peer.Codec, prev *output) error {
	log := ws.w.log.With("session", ws.s.ID(), "track", tm.Name)
	out, err := peer.NewOutput(tm.Name, tm.Kind, codec)
	if err != nil {
		return err
	}
	t, err := ws.s.Track(tm.Name)
	if err != nil {
		return err
	}
	run, ctl, err := ws.newRun(t, out, log)
	if err != nil {
		return err
	}
	var old *outputRun
	if prev != nil {
		old = prev.run
		log.Info("offer drops the output's codec; restarting its pipeline", "from", prev.out.Codec(), "to", codec)
	}
	rctx, cancel := context.WithCancel(context.Background())
	run.cancel = cancel
	err = ws.s.Go(func(ctx context.Context) error {
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		return ws.runOutput(rctx, tm.Name, run, old, log)
	})
	if err != nil {
		cancel()
		closeDevice(run.dev, log)
		return err
	}
	out.SetControl(ctl)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if prev == nil {
		ws.order = append(ws.order, tm.Name)
	}
	ws.outputs[tm.Name] = &output{out: out, run: run}
	return nil
}

// newRun builds (without starting) the pipeline of track t into out.
func (ws *Session) newRun(t tracks.Track, out *peer.Output, log *slog.Logger) (*outputRun, peer.Control, error) {
	cfg := ws.w.cfg
	run := &outputRun{done: make(chan struct{})}
	switch tr := t.(type) {
	case *tracks.VideoOut:
		if out.Kind() != peer.KindVideo {
			return nil, nil, fmt.Errorf("output %q is video; the peer output is %s", t.Name(), out.Kind())
		}
		vc := pipeline.VideoConfig{Backend: ws.w.backend, Bitrate: cfg.VideoBitrate, Logger: cfg.Logger}
		if tap := ws.recordTap(t.Name(), out.Codec(), tr.Rate()); tap != nil {
			vc.Tap = tap
		}
		if out.Codec() == peer.CodecVP8 {
			vc.Backend = encode.BackendVP8
		} else if cfg.DeviceEncoder != nil {
			d, err := cfg.DeviceEncoder(t.Name())
			if err != nil {
				log.Warn("no device encoder for this output; device frames will be dropped", "err", err)
			} else if d != nil {
				run.dev, vc.Device = d, d
			}
		}
		v, err := pipeline.NewVideo(tr, out, vc)
		if err != nil {
			closeDevice(run.dev, log)
			return nil, nil, err
		}
		run.video = v
		return run, v, nil
	case *tracks.AudioOut:
		if out.Kind() != peer.KindAudio {
			return nil, nil, fmt.Errorf("output %q is audio; the peer output is %s", t.Name(), out.Kind())
		}
		ac := pipeline.AudioConfig{Bitrate: cfg.AudioBitrate, Logger: cfg.Logger}
		if tap := ws.recordAudioTap(t.Name()); tap != nil {
			ac.Tap = tap
		}
		a, err := pipeline.NewAudio(tr, out, ac)
		if err != nil {
			return nil, nil, err
		}
		run.audio = a
		return run, audioControl{}, nil
	}
	return nil, nil, fmt.Errorf("track %q is an input (%s); only outputs have pipelines", t.Name(), t.Spec().Kind)
}

// runOutput waits for the previous run of the output (a restart), then
// runs the pipeline until ctx ends or the track closes. A pipeline failure
// ends the session.
func (ws *Session) runOutput(ctx context.Context, name string, run, old *outputRun, log *slog.Logger) error {
	defer close(run.done)
	defer run.cancel()
	defer closeDevice(run.dev, log)
	if old != nil {
		old.cancel()
		select {
		case <-old.done:
		case <-ctx.Done():
			return nil
		}
	}
	var err error
	if run.video != nil {
		err = run.video.Run(ctx)
	} else {
		err = run.audio.Run(ctx)
	}
	if err == nil || ctx.Err() != nil {
		return nil // the track closed, the session ended, or a restart
	}
	log.Error("output pipeline failed; ending the session", "err", err)
	return fmt.Errorf("output %q: %w", name, err)
}

func closeDevice(d DeviceEncoder, log *slog.Logger) {
	if d == nil {
		return
	}
	if err := d.Close(); err != nil {
		log.Warn("device encoder close", "err", err)
	}
}

// audioControl is the Control of an audio output: Opus runs at a fixed
// bitrate and has no keyframes.
type audioControl struct{}

func (audioControl) RequestKeyframe() {}
func (audioControl) SetBitrate(int)   {}

// Stats returns a snapshot of the session's counters.
func (ws *Session) Stats() SessionStats {
	st := SessionStats{ID: ws.s.ID(), Started: ws.started, Engine: ws.s.Stats()}
	ws.mu.Lock()
	runs := make([]*outputRun, 0, len(ws.order))
	for _, name := range ws.order {
		if o := ws.outputs[name]; o != nil {
			runs = append(runs, o.run)
		}
	}
	inputs := append([]*input(nil), ws.inputs...)
	ws.mu.Unlock()
	for _, r := range runs {
		if r.video != nil {
			st.Video = append(st.Video, r.video.Stats())
		}
		if r.audio != nil {
			st.Audio = append(st.Audio, r.audio.Stats())
		}
	}
	for _, in := range inputs {
		st.Inputs = append(st.Inputs, in.stats())
	}
	if ws.rec != nil {
		rs := ws.rec.Stats()
		st.Recording = &rs
	}
	return st
}
