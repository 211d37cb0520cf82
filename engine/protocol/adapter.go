package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// Media configures the media pipelines an Adapter runs for each session's
// output tracks. The zero value works: the H.264 encoder is probed once,
// device frames are not encoded.
type Media struct {
	// Backend is the encoder for host frames of outputs that negotiated
	// H.264: encode.BackendNVENC or encode.BackendX264. Empty (the
	// default) probes once, in FromEngine, with encode.Probe (NVENC first)
	// and keeps the choice for every session. Outputs that negotiated VP8
	// use encode.BackendVP8.
	Backend encode.Backend
	// VideoBitrate is each video output's initial target in bit/s
	// (default 2.5 Mbit/s); congestion control moves it afterwards.
	VideoBitrate int
	// AudioBitrate is each audio output's Opus target in bit/s (default
	// 48 kbit/s).
	AudioBitrate int
	// DeviceEncoder opens the encoder for device frames
	// (tracks.VideoOut.EmitDevice) of one H.264 video output; it is called
	// each time that output's pipeline starts. The adapter closes what it
	// returns once the pipeline has stopped. When it is nil, or fails,
	// device frames are dropped and counted (pipeline.VideoStats.
	// DeviceErrors). The engine must also allow device frames
	// (engine.WithDeviceSupport(nil)).
	DeviceEncoder func(track string) (DeviceEncoder, error)
	// Logger receives the encoder choice and pipeline failures; default
	// discards.
	Logger *slog.Logger
}

// DeviceEncoder is an encoder of device frames the adapter owns for one
// pipeline run: package gpu's Encoder, wrapped (see cmd/framewire).
type DeviceEncoder interface {
	pipeline.DeviceEncoder
	// Close frees the encoder; it is called once, after the pipeline
	// stopped using it.
	Close() error
}

// Adapter serves an engine.Engine over the protocol: it implements Engine,
// so NewServer(adapter, cfg) serves any model declared with package engine.
// Each output track the client negotiates runs a pipeline.Video or
// pipeline.Audio, as a goroutine of the model session (engine.Session.Go),
// writing into the peer's Output; inbound tracks are delivered to the
// session's input tracks; commands go through the engine's validation.
// All methods are safe for concurrent use.
type Adapter struct {
	eng     *engine.Engine
	media   Media
	backend encode.Backend
	caps    Capabilities
	log     *slog.Logger

	mu       sync.Mutex
	sessions []*adaptedSession // in start order; ended ones pruned
}

// FromEngine returns the protocol view of e. Unless m.Backend is set it
// probes the H.264 encoders once (tens of milliseconds; the choice is
// logged once) and fails with an error wrapping encode.ErrNoBackend when
// none works. The caller keeps ownership of e and closes it after the
// Server that uses the adapter.
func FromEngine(e *engine.Engine, m Media) (*Adapter, error) {
	if e == nil {
		return nil, errors.New("protocol: FromEngine(nil); want an engine from engine.New")
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.VideoBitrate < 0 || m.AudioBitrate < 0 {
		return nil, fmt.Errorf("protocol: negative bitrate in Media (video %d, audio %d); want 0 for the default or a positive bit/s", m.VideoBitrate, m.AudioBitrate)
	}
	a := &Adapter{eng: e, media: m, log: m.Logger.With("component", "adapter", "model", e.ModelName())}
	switch m.Backend {
	case "":
		b, _, err := encode.Probe(context.Background(), a.log, []encode.Codec{encode.CodecH264})
		if err != nil {
			return nil, fmt.Errorf("protocol: no H.264 encoder for model %q: %w", e.ModelName(), err)
		}
		a.backend = b
	case encode.BackendNVENC, encode.BackendX264:
		a.backend = m.Backend
		a.log.Info("video encoder chosen", "backend", m.Backend, "probed", false)
	default:
		return nil, fmt.Errorf("protocol: Media.Backend %q; want %q, %q or empty to probe (VP8 is used for clients that offer no H.264)", m.Backend, encode.BackendNVENC, encode.BackendX264)
	}
	caps, err := convertCapabilities(e.Capabilities())
	if err != nil {
		return nil, err
	}
	a.caps = caps
	return a, nil
}

func convertCapabilities(c engine.Capabilities) (Capabilities, error) {
	out := Capabilities{ProtocolVersion: c.ProtocolVersion, Tracks: []TrackCap{}, Commands: []CommandCap{}, EmissionFPS: c.EmissionFPS}
	for _, t := range c.Tracks {
		out.Tracks = append(out.Tracks, TrackCap{Name: t.Name, Kind: peer.Kind(t.Kind), Direction: peer.Direction(t.Direction)})
	}
	for _, cc := range c.Commands {
		schema, err := json.Marshal(cc.Schema)
		if err != nil {
			return Capabilities{}, fmt.Errorf("protocol: command %q: schema does not marshal: %w", cc.Name, err)
		}
		out.Commands = append(out.Commands, CommandCap{Name: cc.Name, Description: cc.Description, Schema: schema})
	}
	return out, nil
}

// Engine returns the adapted engine.
func (a *Adapter) Engine() *engine.Engine { return a.eng }

// Backend returns the encoder used for host frames of H.264 outputs.
func (a *Adapter) Backend() encode.Backend { return a.backend }

// ModelName implements Engine.
func (a *Adapter) ModelName() string { return a.eng.ModelName() }

// Capabilities implements Engine: the engine's document in the wire types.
func (a *Adapter) Capabilities() Capabilities {
	c := a.caps
	c.Tracks = append([]TrackCap(nil), c.Tracks...)
	c.Commands = append([]CommandCap(nil), c.Commands...)
	return c
}

// StartSession implements Engine: it starts an engine session.
func (a *Adapter) StartSession(ctx context.Context) (Session, error) {
	s, err := a.eng.StartSession(ctx)
	if err != nil {
		return nil, err
	}
	as := &adaptedSession{a: a, s: s, started: time.Now(), outputs: map[string]*outputRun{}}
	a.mu.Lock()
	a.prune()
	a.sessions = append(a.sessions, as)
	a.mu.Unlock()
	return as, nil
}

// prune drops ended sessions; a.mu must be held.
func (a *Adapter) prune() {
	keep := a.sessions[:0]
	for _, s := range a.sessions {
		select {
		case <-s.s.Done():
		default:
			keep = append(keep, s)
		}
	}
	clear(a.sessions[len(keep):])
	a.sessions = keep
}

// SessionStats is a snapshot of one running session as the adapter serves
// it.
type SessionStats struct {
	ID      string
	Started time.Time
	// Engine holds the session's command counters and every track's queue
	// counters (inputs included).
	Engine engine.SessionStats
	// Video and Audio hold one entry per output whose pipeline runs, in
	// the order they started.
	Video []pipeline.VideoStats
	Audio []pipeline.AudioStats
}

// Stats returns a snapshot of every session still running, in start order
// (with the Server, at most one). It reads counters only; call it as often
// as a scrape or a page poll needs.
func (a *Adapter) Stats() []SessionStats {
	a.mu.Lock()
	a.prune()
	list := append([]*adaptedSession(nil), a.sessions...)
	a.mu.Unlock()
	out := make([]SessionStats, 0, len(list))
	for _, as := range list {
		st := SessionStats{ID: as.s.ID(), Started: as.started, Engine: as.s.Stats()}
		as.mu.Lock()
		runs := make([]*outputRun, 0, len(as.outputs))
		for _, name := range as.order {
			if r := as.outputs[name]; r != nil {
				runs = append(runs, r)
			}
		}
		as.mu.Unlock()
		for _, r := range runs {
			if r.video != nil {
				st.Video = append(st.Video, r.video.Stats())
			}
			if r.audio != nil {
				st.Audio = append(st.Audio, r.audio.Stats())
			}
		}
		out = append(out, st)
	}
	return out
}

// adaptedSession is an engine.Session as the protocol drives it.
type adaptedSession struct {
	a       *Adapter
	s       *engine.Session
	started time.Time

	startMu sync.Mutex // serialises StartOutput, held while a previous run stops

	mu      sync.Mutex // guards outputs and order; held only briefly
	outputs map[string]*outputRun
	order   []string // output names in first-start order
}

// outputRun is one run of an output's pipeline.
type outputRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	video  *pipeline.Video
	audio  *pipeline.Audio
}

func (as *adaptedSession) ID() string            { return as.s.ID() }
func (as *adaptedSession) Done() <-chan struct{} { return as.s.Done() }

// Stop ends the engine session and waits for it (pipelines included).
func (as *adaptedSession) Stop() { as.s.Stop("the protocol session ended") }

// SetSender installs the data channel as the model's Send.
func (as *adaptedSession) SetSender(send func(v any) error) { as.s.SetSender(send) }

// Dispatch validates the command against the model's schema and queues it
// for the session's command goroutine.
func (as *adaptedSession) Dispatch(name string, args json.RawMessage, uploads map[string]Upload) error {
	var ups map[string]engine.Upload
	if len(uploads) > 0 {
		ups = make(map[string]engine.Upload, len(uploads))
		for k, u := range uploads {
			ups[k] = engine.Upload{ID: u.ID, Name: u.Name, MimeType: u.MimeType, Size: u.Size, Data: u.Data}
		}
	}
	return as.s.Dispatch(name, args, ups)
}

func (as *adaptedSession) VideoInput(name string) peer.VideoInput {
	if in, err := as.s.VideoIn(name); err == nil && in != nil {
		return in
	}
	return nil
}

func (as *adaptedSession) AudioInput(name string) peer.AudioInput {
	if in, err := as.s.AudioIn(name); err == nil && in != nil {
		return in
	}
	return nil
}

// StartOutput runs output name's pipeline into out under the session. When
// the output already runs (a reconnect whose offer dropped its codec), the
// previous pipeline is stopped first and the new one starts with out's
// codec.
func (as *adaptedSession) StartOutput(name string, out *peer.Output) (peer.Control, error) {
	t, err := as.s.Track(name)
	if err != nil {
		return nil, err
	}
	a := as.a
	log := a.log.With("session", as.s.ID(), "track", name)
	run := &outputRun{done: make(chan struct{})}
	var (
		ctl   peer.Control
		runFn func(ctx context.Context) error
		dev   DeviceEncoder
	)
	switch tr := t.(type) {
	case *tracks.VideoOut:
		if out.Kind() != peer.KindVideo {
			return nil, fmt.Errorf("output %q is video; the peer output is %s", name, out.Kind())
		}
		cfg := pipeline.VideoConfig{Backend: a.backend, Bitrate: a.media.VideoBitrate, Logger: a.media.Logger}
		if out.Codec() == peer.CodecVP8 {
			cfg.Backend = encode.BackendVP8
		} else if a.media.DeviceEncoder != nil {
			d, err := a.media.DeviceEncoder(name)
			if err != nil {
				log.Warn("no device encoder for this output; device frames will be dropped", "err", err)
			} else if d != nil {
				dev, cfg.Device = d, d
			}
		}
		v, err := pipeline.NewVideo(tr, out, cfg)
		if err != nil {
			closeDevice(dev, log)
			return nil, err
		}
		run.video, ctl, runFn = v, v, v.Run
	case *tracks.AudioOut:
		if out.Kind() != peer.KindAudio {
			return nil, fmt.Errorf("output %q is audio; the peer output is %s", name, out.Kind())
		}
		au, err := pipeline.NewAudio(tr, out, pipeline.AudioConfig{Bitrate: a.media.AudioBitrate, Logger: a.media.Logger})
		if err != nil {
			return nil, err
		}
		run.audio, ctl, runFn = au, audioControl{}, au.Run
	default:
		return nil, fmt.Errorf("track %q is an input (%s); only outputs have pipelines", name, t.Spec().Kind)
	}

	// Stopping the previous run waits for its pipeline (and device
	// encoder) to finish: under startMu, not mu, so Stats does not wait.
	as.startMu.Lock()
	defer as.startMu.Unlock()
	as.mu.Lock()
	old := as.outputs[name]
	as.mu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
		log.Info("output pipeline restarted", "codec", out.Codec())
	}
	rctx, cancel := context.WithCancel(as.s.Context())
	run.cancel = cancel
	err = as.s.Go(func(ctx context.Context) error {
		defer close(run.done)
		defer cancel()
		defer closeDevice(dev, log)
		err := runFn(rctx)
		if err == nil || rctx.Err() != nil {
			return nil // the track closed, the session ended, or a restart
		}
		log.Error("output pipeline failed; ending the session", "err", err)
		return fmt.Errorf("output %q: %w", name, err)
	})
	if err != nil {
		cancel()
		closeDevice(dev, log)
		as.mu.Lock()
		delete(as.outputs, name)
		as.mu.Unlock()
		return nil, err
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if old == nil {
		as.order = append(as.order, name)
	}
	as.outputs[name] = run
	return ctl, nil
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
