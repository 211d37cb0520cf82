package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/tracks"
)

// Config configures the media of every session a Wiring starts. The zero
// value works: the H.264 encoder is probed once, device frames are not
// encoded, inbound video decodes on the CPU.
type Config struct {
	// Backend is the encoder for host frames of outputs that negotiated
	// H.264: encode.BackendNVENC or encode.BackendX264. Empty (the
	// default) probes once, in New, with encode.Probe (NVENC first) and
	// keeps the choice for every session. Outputs that negotiated VP8 use
	// encode.BackendVP8.
	Backend encode.Backend
	// VideoBitrate is each video output's initial target in bit/s
	// (default 2.5 Mbit/s); congestion control moves it afterwards.
	VideoBitrate int
	// AudioBitrate is each audio output's Opus target in bit/s (default
	// 48 kbit/s).
	AudioBitrate int
	// DeviceEncoder opens the encoder for device frames
	// (tracks.VideoOut.EmitDevice) of one H.264 video output; it is called
	// each time that output's pipeline starts, and what it returns is
	// closed once the pipeline has stopped. When it is nil, or fails,
	// device frames are dropped and counted (pipeline.VideoStats.
	// DeviceErrors). The engine must also allow device frames
	// (engine.WithDeviceSupport(nil)).
	DeviceEncoder func(track string) (DeviceEncoder, error)
	// H264Decoder, when set, makes the decoder of inbound H.264 tracks
	// (the webcam), e.g. NVDEC in a cuda build; when nil or when it fails
	// (logged), FFmpeg's software decoder is used. The receive loop owns
	// and closes what it returns.
	H264Decoder func() (pipeline.RGBDecoder, error)
	// Logger receives the encoder choice and pipeline failures; default
	// discards.
	Logger *slog.Logger

	// Recording records each session when Recording.Enabled and
	// Recordings (the process's store, owned by the caller, closed after
	// the engine) are both set: the recorded video output's live H.264
	// packets are muxed into HLS fMP4 segments (package record).
	Recording  record.Config
	Recordings *record.Store
}

// DeviceEncoder is an encoder of device frames owned by one pipeline run
// (package gpu's Encoder in a cuda build).
type DeviceEncoder interface {
	pipeline.DeviceEncoder
	// Close frees the encoder; it is called once, after the pipeline
	// stopped using it.
	Close() error
}

// Wiring starts sessions of one engine with their media wired. All methods
// are safe for concurrent use. It owns nothing that needs closing: the
// caller keeps ownership of the engine and closes it after every user of
// the Wiring.
type Wiring struct {
	eng      *engine.Engine
	cfg      Config
	backend  encode.Backend
	log      *slog.Logger
	recTrack string // the recorded video output, "" when recording is off
	recAudio string // the recorded audio output, "" when none

	mu       sync.Mutex
	sessions []*Session   // in start order; ended ones pruned
	ended    SessionStats // the counters of the pruned ones (Totals)
}

// New returns the wiring of e. Unless cfg.Backend is set it probes the
// H.264 encoders once (tens of milliseconds; the choice is logged once) and
// fails with an error wrapping encode.ErrNoBackend when none works.
func New(e *engine.Engine, cfg Config) (*Wiring, error) {
	if e == nil {
		return nil, errors.New("wiring: New(nil); want an engine from engine.New")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.VideoBitrate < 0 || cfg.AudioBitrate < 0 {
		return nil, fmt.Errorf("wiring: negative bitrate in Config (video %d, audio %d); want 0 for the default or a positive bit/s", cfg.VideoBitrate, cfg.AudioBitrate)
	}
	w := &Wiring{eng: e, cfg: cfg, log: cfg.Logger.With("component", "wiring", "model", e.ModelName())}
	if cfg.Recording.Enabled && cfg.Recordings != nil {
		if err := cfg.Recording.Validate(); err != nil {
			return nil, fmt.Errorf("wiring: %w", err)
		}
		rt, err := recordedTrack(e, cfg, peer.KindVideo, cfg.Recording.VideoTrack)
		if err != nil {
			return nil, err
		}
		ra, err := recordedTrack(e, cfg, peer.KindAudio, cfg.Recording.AudioTrack)
		if err != nil {
			return nil, err
		}
		w.recTrack, w.recAudio = rt, ra
	}
	switch cfg.Backend {
	case "":
		b, _, err := encode.Probe(context.Background(), w.log, []encode.Codec{encode.CodecH264})
		if err != nil {
			return nil, fmt.Errorf("wiring: no H.264 encoder for model %q: %w", e.ModelName(), err)
		}
		w.backend = b
	case encode.BackendNVENC, encode.BackendX264:
		w.backend = cfg.Backend
		w.log.Info("video encoder chosen", "backend", cfg.Backend, "probed", false)
	default:
		return nil, fmt.Errorf("wiring: Config.Backend %q; want %q, %q or empty to probe (VP8 is used for clients that offer no H.264)", cfg.Backend, encode.BackendNVENC, encode.BackendX264)
	}
	return w, nil
}

// Engine returns the wired engine.
func (w *Wiring) Engine() *engine.Engine { return w.eng }

// Backend returns the encoder used for host frames of H.264 outputs.
func (w *Wiring) Backend() encode.Backend { return w.backend }

// Start starts an engine session (engine.Engine.StartSession; ctx bounds
// only the start) and returns it wired: outputs are created by Prepare,
// inputs are fed by Receive.
func (w *Wiring) Start(ctx context.Context) (*Session, error) {
	s, err := w.eng.StartSession(ctx)
	if err != nil {
		return nil, err
	}
	ws := &Session{w: w, s: s, started: time.Now(), outputs: map[string]*output{}}
	if err := ws.startRecorder(w.log); err != nil {
		s.Stop("recorder failed to start")
		return nil, fmt.Errorf("wiring: %w", err)
	}
	w.mu.Lock()
	w.prune()
	w.sessions = append(w.sessions, ws)
	w.mu.Unlock()
	return ws, nil
}

// prune drops ended sessions, folding their counters into w.ended; w.mu
// must be held.
func (w *Wiring) prune() {
	keep := w.sessions[:0]
	for _, s := range w.sessions {
		select {
		case <-s.s.Done():
			w.ended = foldCounters(w.ended, s.Stats())
		default:
			keep = append(keep, s)
		}
	}
	clear(w.sessions[len(keep):])
	w.sessions = keep
}

// SessionStats is a snapshot of one running session's media and commands.
type SessionStats struct {
	ID      string
	Started time.Time
	// Engine holds the session's command counters and every track's queue
	// counters (inputs included).
	Engine engine.SessionStats
	// Video and Audio hold one entry per output whose pipeline runs, in
	// the order they first started; Inputs one per inbound track received,
	// in arrival order.
	Video  []pipeline.VideoStats
	Audio  []pipeline.AudioStats
	Inputs []InputStats
	// Recording is the session's recorder, nil when recording is off.
	Recording *record.Stats
}

// foldCounters adds s's counters to the ended sessions' total e (see
// Totals).
func foldCounters(e, s SessionStats) SessionStats {
	ee, se := &e.Engine, s.Engine
	ee.CommandsRun += se.CommandsRun
	ee.CommandsRejected += se.CommandsRejected
	ee.CommandsFailed += se.CommandsFailed
	ee.MediaEvents += se.MediaEvents
	ee.MediaErrors += se.MediaErrors
	ee.Panics += se.Panics
	if ee.Tracks == nil {
		ee.Tracks = map[string]tracks.Stats{}
	}
	for name, t := range se.Tracks {
		ee.Tracks[name] = ee.Tracks[name].AddCounters(t)
	}
	for _, v := range s.Video {
		if i := slices.IndexFunc(e.Video, func(x pipeline.VideoStats) bool { return x.Track == v.Track }); i >= 0 {
			e.Video[i] = e.Video[i].Add(v.Counters())
		} else {
			e.Video = append(e.Video, v.Counters())
		}
	}
	for _, a := range s.Audio {
		if i := slices.IndexFunc(e.Audio, func(x pipeline.AudioStats) bool { return x.Track == a.Track }); i >= 0 {
			e.Audio[i] = e.Audio[i].Add(a.Counters())
		} else {
			e.Audio = append(e.Audio, a.Counters())
		}
	}
	if s.Recording != nil {
		if e.Recording == nil {
			e.Recording = &record.Stats{}
		}
		e.Recording.Segments += s.Recording.Segments
		e.Recording.Dropped += s.Recording.Dropped
	}
	return e
}

// Stats returns a snapshot of every session still running, in start
// order. It reads counters only; call it as often as a scrape or a page
// poll needs.
func (w *Wiring) Stats() []SessionStats {
	running, _ := w.Totals()
	return running
}

// Totals returns Stats and, taken at the same instant, the counters of
// every session that has ended, folded into one SessionStats: engine,
// track, video, audio and recording counters summed by track name (one
// Video or Audio entry per track, in the order first seen); its present
// levels, percentiles, backends and ID are zero. The two added give
// process totals that never decrease when a session ends (a session is in
// exactly one of them). The results are the caller's. Safe for concurrent
// use.
func (w *Wiring) Totals() (running []SessionStats, ended SessionStats) {
	w.mu.Lock()
	w.prune()
	list := append([]*Session(nil), w.sessions...)
	ended = w.ended
	ended.Engine.Tracks = maps.Clone(ended.Engine.Tracks)
	ended.Video = slices.Clone(ended.Video)
	ended.Audio = slices.Clone(ended.Audio)
	if ended.Recording != nil {
		r := *ended.Recording
		ended.Recording = &r
	}
	w.mu.Unlock()
	running = make([]SessionStats, 0, len(list))
	for _, ws := range list {
		running = append(running, ws.Stats())
	}
	return running, ended
}
