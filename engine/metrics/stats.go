package metrics

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/wiring"
)

// TrackStats is one output track in the stats document. Durations are
// milliseconds, rates bit/s.
type TrackStats struct {
	Track      string `json:"track"`
	Backend    string `json:"backend"`
	Emitted    uint64 `json:"emitted"`
	Dropped    uint64 `json:"dropped"` // by the track's full queue
	Skipped    uint64 `json:"skipped"` // overtaken by a newer frame before their slot
	QueueDepth int    `json:"queue_depth"`
	Encoded    uint64 `json:"encoded"`
	Sent       uint64 `json:"sent"`
	Keyframes  uint64 `json:"keyframes"`
	// DeviceEncoded counts pictures encoded from device memory (no host
	// copy of the picture).
	DeviceEncoded uint64  `json:"device_encoded"`
	Errors        uint64  `json:"errors"`
	EncodeP50     float64 `json:"encode_p50_ms"`
	EncodeP99     float64 `json:"encode_p99_ms"`
	LatencyP50    float64 `json:"latency_p50_ms"`
	LatencyP99    float64 `json:"latency_p99_ms"`
	Bitrate       int     `json:"bitrate"`
	TargetBitrate int     `json:"target_bitrate"`
	// Stages (video) are the p50/p99 times from Emit to each pipeline
	// stage, in pipeline order; Trimmed (audio) the samples dropped to
	// keep latency at the playout target.
	Stages  []StageStats `json:"stages,omitempty"`
	Trimmed uint64       `json:"trimmed,omitempty"`
}

// StageStats is one pipeline stage's time since Emit, in milliseconds.
type StageStats struct {
	Stage string  `json:"stage"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

// SessionStats is one running session in the stats document: every
// session of the engine is listed, each with its own detail.
type SessionStats struct {
	// ID is the session's protocol id (the front's id on a production
	// node), or the engine session's id when no protocol server serves it;
	// EngineID is the engine session's (engine.Session.ID).
	ID       string    `json:"id"`
	EngineID string    `json:"engine_id"`
	Started  time.Time `json:"started"`
	// State is the protocol state (waiting, streaming, orphaned); ""
	// when no protocol server serves the session.
	State string `json:"state,omitempty"`
	// Commands run, rejected and failed in this session.
	Commands         uint64 `json:"commands"`
	CommandsRejected uint64 `json:"commands_rejected"`
	CommandsFailed   uint64 `json:"commands_failed"`
	// UploadBytes is the upload data the session holds in memory.
	UploadBytes int64               `json:"upload_bytes"`
	Tracks      []TrackStats        `json:"tracks"`
	Inputs      []wiring.InputStats `json:"inputs"`
	// Recording is present when the session records.
	Recording *record.Stats `json:"recording,omitempty"`
}

// ServerStats holds the engine-wide totals and the protocol state.
type ServerStats struct {
	// State is the one session's state, "ready" when none runs, "serving"
	// with several (States counts them); "" when no protocol server is
	// given.
	State            string         `json:"state"`
	States           map[string]int `json:"states,omitempty"`
	UploadMemory     int64          `json:"upload_memory"` // upload bytes held, every session together
	Sessions         uint64         `json:"sessions"`
	Commands         uint64         `json:"commands"`
	CommandsRejected uint64         `json:"commands_rejected"`
	CommandsFailed   uint64         `json:"commands_failed"`
	DroppedMessages  uint64         `json:"dropped_messages"`
	RefusedSends     uint64         `json:"refused_sends"`
}

// Stats is the stats document: what GET /framewire/stats returns.
type Stats struct {
	Time     time.Time      `json:"time"`
	Model    string         `json:"model"`
	Server   ServerStats    `json:"server"`
	Sessions []SessionStats `json:"sessions"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Snapshot builds the stats document of the engine w wires and of srv
// (which may be nil). It reads counters only.
func Snapshot(w *wiring.Wiring, srv *protocol.Server) Stats {
	es := w.Engine().Stats()
	doc := Stats{Time: time.Now(), Model: w.Engine().ModelName(), Sessions: []SessionStats{}, Server: ServerStats{
		Sessions: es.SessionsStarted, Commands: es.CommandsRun, CommandsRejected: es.CommandsRejected,
		CommandsFailed: es.CommandsFailed, RefusedSends: es.SendsRefused,
	}}
	served := map[string]protocol.SessionInfo{} // by engine id
	if srv != nil {
		st := srv.Stats()
		doc.Server.State, doc.Server.States, doc.Server.DroppedMessages = st.State, st.States, st.DroppedMessages
		doc.Server.UploadMemory = st.UploadMemory
		for _, si := range srv.Sessions() {
			served[si.EngineID] = si
		}
	}
	for _, s := range w.Stats() {
		ss := sessionDoc(s)
		if si, ok := served[s.ID]; ok {
			ss.ID, ss.State, ss.UploadBytes = si.ID, si.State, si.UploadBytes
		}
		doc.Sessions = append(doc.Sessions, ss)
	}
	return doc
}

func sessionDoc(s wiring.SessionStats) SessionStats {
	ss := SessionStats{ID: s.ID, EngineID: s.ID, Started: s.Started, Tracks: []TrackStats{}, Inputs: s.Inputs, Recording: s.Recording,
		Commands: s.Engine.CommandsRun, CommandsRejected: s.Engine.CommandsRejected, CommandsFailed: s.Engine.CommandsFailed}
	if ss.Inputs == nil {
		ss.Inputs = []wiring.InputStats{}
	}
	for _, v := range s.Video {
		ss.Tracks = append(ss.Tracks, TrackStats{
			Track: v.Track, Backend: v.Backend,
			Emitted: v.Emitted, Dropped: v.Dropped, Skipped: v.Skipped, QueueDepth: v.QueueDepth,
			Encoded: v.Encoded, Sent: v.Sent, Keyframes: v.Keyframes, DeviceEncoded: v.DeviceEncoded,
			Errors:    v.EncodeErrors + v.SinkErrors + v.DeviceErrors,
			EncodeP50: ms(v.EncodeP50), EncodeP99: ms(v.EncodeP99),
			LatencyP50: ms(v.LatencyP50), LatencyP99: ms(v.LatencyP99),
			Bitrate: v.Bitrate, TargetBitrate: v.TargetBitrate, Stages: stageDoc(v.Stages),
		})
	}
	for _, au := range s.Audio {
		ss.Tracks = append(ss.Tracks, TrackStats{
			Track: au.Track, Backend: "libopus", Emitted: au.Emitted, Dropped: au.Dropped + au.Overflow,
			QueueDepth: au.QueueDepth, Encoded: au.Frames, Sent: au.Frames, Errors: au.SinkErrors,
			EncodeP50: ms(au.EncodeP50), EncodeP99: ms(au.EncodeP99),
			LatencyP50: ms(au.LatencyP50), LatencyP99: ms(au.LatencyP99), Bitrate: au.Bitrate, Trimmed: au.Trimmed,
		})
	}
	return ss
}

func stageDoc(s pipeline.StageTimes) []StageStats {
	out := make([]StageStats, 0, 6)
	for _, st := range metricStages(s) {
		out = append(out, StageStats{Stage: st.name, P50: ms(st.p.P50), P99: ms(st.p.P99)})
	}
	return out
}

// StatsHandler serves Snapshot as JSON (GET; no caching; readable from any
// origin, like the protocol routes). log may be nil.
func StatsHandler(w *wiring.Wiring, srv *protocol.Server, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Header().Set("Access-Control-Allow-Origin", "*")
		if err := json.NewEncoder(rw).Encode(Snapshot(w, srv)); err != nil {
			log.Debug("stats response", "err", err)
		}
	})
}
