// Package metrics exposes a running engine to monitoring: a Prometheus
// collector (Collector, Handler) and the JSON stats document the demo page
// polls (Snapshot, StatsHandler). Both read counters the engine, the
// wiring and the protocol server keep anyway, at scrape time: nothing is
// counted per frame for them. Counters are process totals by track: the
// running sessions' summed with what the ended ones counted
// (wiring.Wiring.Totals), so none decreases when a session ends; levels,
// bitrates and percentiles describe the sessions running now (bitrates
// summed, percentiles the worst session's). No series carries a session id, so the
// label sets stay bounded by the model's tracks whatever the number of
// sessions; per-session detail is in the JSON stats (Snapshot). The
// engine-wide totals never reset.
//
// This is the only package of the engine that imports the Prometheus
// client; a program that does not serve metrics does not link it.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("framewire_"+name, help, labels, nil)
}

var (
	mSessions        = desc("sessions_started_total", "Model sessions started.")
	mSessionState    = desc("session_state", "Protocol sessions by state (waiting, streaming, orphaned); ready is 1 when none runs.", "state")
	mCommands        = desc("commands_total", "Commands from clients, all sessions, by outcome: run (the handler returned nil), failed (error or panic in the handler), rejected (dropped before the handler: unknown, bad arguments, queue full, upload missing).", "outcome")
	mDroppedMessages = desc("dropped_messages_total", "Malformed or unknown data-channel messages.")
	mOversized       = desc("oversized_messages_total", "Client data-channel messages over the size limit (also in dropped_messages_total); one too large to receive at all loses its peer.")
	mRefusedSends    = desc("refused_sends_total", "Model messages not sent (too large, no client).")
	mLiveSessions    = desc("live_sessions", "Model sessions running.")
	mKeyframeReqs    = desc("keyframe_requests_total", "Keyframe requests of every session's peers: received from the client (PLI/FIR, for the outputs), sent to it (PLI, for its webcam).", "direction")
	mPeerTarget      = desc("peer_target_bitrate_bps", "The running sessions' congestion-control estimates (GCC), summed over their peers.")

	mPanics      = desc("model_panics_total", "Panics contained in model code, all sessions.")
	mTrackEvents = desc("track_frames_total", "Frames (or audio chunks) of every session's tracks: emitted by the model or delivered by the client, dropped, rejected.", "track", "event")

	mVideoFrames   = desc("video_frames_total", "Video pipeline frames, all sessions: encoded, sent, keyframes, skipped, device_encoded (from device memory, no host copy).", "track", "event")
	mVideoErrors   = desc("video_errors_total", "Video pipeline errors, all sessions.", "track", "kind")
	mQueueDepth    = desc("video_queue_depth", "Frames waiting in the output track's queues, all sessions.", "track")
	mEncodeSeconds = desc("video_encode_seconds", "Encode time (conversion included) over the last 256 frames; the worst session's.", "track", "quantile")
	mStage         = desc("video_stage_seconds", "Time from Emit to each pipeline stage (dequeued, paced, converted, encoded, handed to pion, written to the socket) over the last 256 frames (the worst session's): the difference between two stages is where latency goes.", "track", "stage", "quantile")
	mLatency       = desc("video_latency_seconds", "Emit-to-wire latency over the last 256 frames; the worst session's.", "track", "quantile")
	mBitrate       = desc("video_bitrate_bps", "Measured output bitrate over the last 256 frames, all sessions.", "track")
	mTarget        = desc("video_target_bitrate_bps", "Encoder target bitrate (congestion control), all sessions.", "track")
	mBackend       = desc("video_encoder_info", "1 for each encoder backend in use by a video output.", "track", "backend")
	mRecDropped    = desc("recording_dropped_total", "Access units the recorders dropped (full queue: a slow disk), with those skipped until the next keyframe.")
	mRecMedia      = desc("recording_media_seconds", "Media time the running sessions have recorded, summed.")

	mAudioFrames   = desc("audio_frames_total", "20 ms Opus frames, all sessions: sent, silent (generated), underruns.", "track", "event")
	mAudioTrimmed  = desc("audio_trimmed_samples_total", "Model audio samples dropped to bring latency back to the playout target (stale at start, after a stall, or drifting).", "track")
	mAudioOverflow = desc("audio_overflow_samples_total", "Audio samples dropped beyond the buffer bound.", "track")
	mAudioBuffered = desc("audio_buffered_seconds", "Audio queued for sending; the most of any session.", "track")
	mAudioLatency  = desc("audio_latency_seconds", "Emit-to-wire latency of model audio over the last 256 frames; the worst session's.", "track", "quantile")
)

// collector is a prometheus.Collector over the engine's snapshots.
type collector struct {
	w   *wiring.Wiring
	srv *protocol.Server // nil when the engine is not served by package protocol
}

// Collector returns a prometheus.Collector of the engine w wires and of
// srv's protocol counters (srv may be nil). Register it with any registry;
// it is safe for concurrent scrapes.
func Collector(w *wiring.Wiring, srv *protocol.Server) prometheus.Collector {
	return collector{w: w, srv: srv}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mSessions, mSessionState, mCommands, mDroppedMessages, mOversized, mRefusedSends, mLiveSessions, mKeyframeReqs, mPeerTarget,
		mPanics, mTrackEvents, mVideoFrames, mVideoErrors, mQueueDepth, mEncodeSeconds, mLatency,
		mBitrate, mTarget, mBackend, mRecDropped, mRecMedia, mAudioFrames, mAudioOverflow, mStage, mAudioTrimmed, mAudioBuffered, mAudioLatency} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	es := c.w.Engine().Stats()
	counter(mSessions, es.SessionsStarted)
	gauge(mLiveSessions, float64(es.SessionsRunning))
	counter(mCommands, es.CommandsRun, "run")
	counter(mCommands, es.CommandsFailed, "failed")
	counter(mCommands, es.CommandsRejected, "rejected")
	counter(mRefusedSends, es.SendsRefused)
	if c.srv != nil {
		st := c.srv.Stats()
		if len(st.States) == 0 {
			gauge(mSessionState, 1, "ready")
		}
		for state, n := range st.States {
			gauge(mSessionState, float64(n), state)
		}
		counter(mDroppedMessages, st.DroppedMessages)
		counter(mOversized, st.OversizedMessages)
		counter(mKeyframeReqs, st.KeyframeRequestsReceived, "received")
		counter(mKeyframeReqs, st.KeyframeRequestsSent, "sent")
		gauge(mPeerTarget, float64(st.Peer.TargetBitrate))
	}
	running, ended := c.w.Totals()
	a := aggregate(append([]wiring.SessionStats{ended}, running...))
	counter(mPanics, a.panics)
	for _, name := range a.trackOrder {
		t := a.tracks[name]
		counter(mTrackEvents, t.Emitted, name, "emitted")
		counter(mTrackEvents, t.Delivered, name, "delivered")
		counter(mTrackEvents, t.Dropped, name, "dropped")
		counter(mTrackEvents, t.Rejected, name, "rejected")
	}
	for _, v := range a.video {
		counter(mVideoFrames, v.Encoded, v.Track, "encoded")
		counter(mVideoFrames, v.Sent, v.Track, "sent")
		counter(mVideoFrames, v.Keyframes, v.Track, "keyframe")
		counter(mVideoFrames, v.Skipped, v.Track, "skipped")
		counter(mVideoFrames, v.DeviceEncoded, v.Track, "device_encoded")
		counter(mVideoErrors, v.EncodeErrors, v.Track, "encode")
		counter(mVideoErrors, v.SinkErrors, v.Track, "sink")
		counter(mVideoErrors, v.DeviceErrors, v.Track, "device")
		gauge(mQueueDepth, float64(v.QueueDepth), v.Track)
		gauge(mEncodeSeconds, v.EncodeP50.Seconds(), v.Track, "0.5")
		gauge(mEncodeSeconds, v.EncodeP99.Seconds(), v.Track, "0.99")
		gauge(mLatency, v.LatencyP50.Seconds(), v.Track, "0.5")
		gauge(mLatency, v.LatencyP99.Seconds(), v.Track, "0.99")
		for _, st := range metricStages(v.Stages) {
			gauge(mStage, st.p.P50.Seconds(), v.Track, st.name, "0.5")
			gauge(mStage, st.p.P99.Seconds(), v.Track, st.name, "0.99")
		}
		gauge(mBitrate, float64(v.Bitrate), v.Track)
		gauge(mTarget, float64(v.TargetBitrate), v.Track)
	}
	for _, b := range a.backends {
		gauge(mBackend, 1, b[0], b[1])
	}
	if a.recording {
		counter(mRecDropped, a.recDropped)
		gauge(mRecMedia, a.recMedia.Seconds())
	}
	for _, au := range a.audio {
		counter(mAudioFrames, au.Frames, au.Track, "sent")
		counter(mAudioFrames, au.Silent, au.Track, "silent")
		counter(mAudioFrames, au.Underruns, au.Track, "underrun")
		counter(mAudioOverflow, au.Overflow, au.Track)
		counter(mAudioTrimmed, au.Trimmed, au.Track)
		gauge(mAudioBuffered, au.Buffered.Seconds(), au.Track)
		gauge(mAudioLatency, au.LatencyP50.Seconds(), au.Track, "0.5")
		gauge(mAudioLatency, au.LatencyP99.Seconds(), au.Track, "0.99")
	}
}

// Handler serves, in the Prometheus text format, the engine's metrics
// (Collector) with the Go runtime's, the process's and extra collectors
// (DeviceFaultGauge where a GPU is open), from a registry of its own.
func Handler(w *wiring.Wiring, srv *protocol.Server, extra ...prometheus.Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{
		Collector(w, srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, extra...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

type namedStage struct {
	name string
	p    pipeline.Percentiles
}

// metricStages lists the stages in pipeline order with their label.
func metricStages(s pipeline.StageTimes) [6]namedStage {
	return [6]namedStage{{"dequeued", s.Dequeued}, {"paced", s.Paced}, {"converted", s.Converted},
		{"encoded", s.Encoded}, {"handed", s.Handed}, {"wire", s.Wire}}
}
