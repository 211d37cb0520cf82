package main

// Prometheus metrics at GET /metrics. A custom Collector reads the
// adapter's per-session snapshot (protocol.Adapter.Stats) and the server's
// counters (protocol.Server.Stats) at scrape time: nothing is counted per
// frame for Prometheus. Pipeline counters belong to the running session
// and restart with the next one (Prometheus treats that as a counter
// reset).

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framewire/framewire/engine/protocol"
)

// statsSource is what the collector reads; *protocol.Adapter and
// *protocol.Server provide it.
type statsSource interface {
	Stats() []protocol.SessionStats
}

type serverStatsSource interface {
	Stats() protocol.Stats
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("framewire_"+name, help, labels, nil)
}

var (
	mSessions        = desc("sessions_started_total", "Sessions started by start_session.")
	mSessionState    = desc("session_state", "1 for the state of the current session (ready when none).", "state")
	mCommands        = desc("commands_total", "Application commands from clients by outcome: accepted by the model, rejected (unknown, bad arguments), dropped (queue full).", "outcome")
	mDroppedMessages = desc("dropped_messages_total", "Malformed or unknown data-channel messages.")
	mRefusedSends    = desc("refused_sends_total", "Model messages not sent (too large, no client).")
	mLiveSessions    = desc("live_sessions", "Model sessions running.")

	mModelCommands = desc("model_commands_total", "Commands of the current session by result: run, failed (error or panic in the handler), rejected (before the handler).", "result")
	mPanics        = desc("model_panics_total", "Panics contained in model code of the current session.")
	mTrackEvents   = desc("track_frames_total", "Frames (or audio chunks) of the current session's tracks: emitted by the model or delivered by the client, dropped, rejected.", "track", "event")

	mVideoFrames   = desc("video_frames_total", "Video pipeline frames of the current session: encoded, sent, keyframes, skipped.", "track", "event")
	mVideoErrors   = desc("video_errors_total", "Video pipeline errors of the current session.", "track", "kind")
	mQueueDepth    = desc("video_queue_depth", "Frames waiting in the output track's queue.", "track")
	mEncodeSeconds = desc("video_encode_seconds", "Encode time (conversion included) over the last 256 frames.", "track", "quantile")
	mLatency       = desc("video_latency_seconds", "Emit-to-wire latency over the last 256 frames.", "track", "quantile")
	mBitrate       = desc("video_bitrate_bps", "Measured output bitrate over the last 256 frames.", "track")
	mTarget        = desc("video_target_bitrate_bps", "Encoder target bitrate (congestion control).", "track")
	mBackend       = desc("video_encoder_info", "1 for the encoder backend of each video output.", "track", "backend")

	mAudioFrames   = desc("audio_frames_total", "20 ms Opus frames of the current session: sent, silent (generated), underruns.", "track", "event")
	mAudioOverflow = desc("audio_overflow_samples_total", "Audio samples dropped beyond the buffer bound.", "track")
	mAudioBuffered = desc("audio_buffered_seconds", "Audio queued for sending.", "track")
	mAudioLatency  = desc("audio_latency_seconds", "Emit-to-wire latency of model audio over the last 256 frames.", "track", "quantile")
)

// collector is a prometheus.Collector over the engine's snapshots.
type collector struct {
	sessions statsSource
	server   serverStatsSource
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mSessions, mSessionState, mCommands, mDroppedMessages, mRefusedSends, mLiveSessions,
		mModelCommands, mPanics, mTrackEvents, mVideoFrames, mVideoErrors, mQueueDepth, mEncodeSeconds, mLatency,
		mBitrate, mTarget, mBackend, mAudioFrames, mAudioOverflow, mAudioBuffered, mAudioLatency} {
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
	st := c.server.Stats()
	counter(mSessions, st.Sessions)
	gauge(mSessionState, 1, st.State)
	counter(mCommands, st.Commands, "accepted")
	counter(mCommands, st.CommandsRejected, "rejected")
	counter(mCommands, st.CommandsDropped, "dropped")
	counter(mDroppedMessages, st.DroppedMessages)
	counter(mRefusedSends, st.RefusedSends)

	list := c.sessions.Stats()
	gauge(mLiveSessions, float64(len(list)))
	if len(list) == 0 {
		return
	}
	// The server runs one session at a time; report the newest, so that
	// each series has one value.
	s := list[len(list)-1]
	e := s.Engine
	counter(mModelCommands, e.CommandsRun, "run")
	counter(mModelCommands, e.CommandsFailed, "failed")
	counter(mModelCommands, e.CommandsRejected, "rejected")
	counter(mPanics, e.Panics)
	for name, t := range e.Tracks {
		counter(mTrackEvents, t.Emitted, name, "emitted")
		counter(mTrackEvents, t.Delivered, name, "delivered")
		counter(mTrackEvents, t.Dropped, name, "dropped")
		counter(mTrackEvents, t.Rejected, name, "rejected")
	}
	for _, v := range s.Video {
		counter(mVideoFrames, v.Encoded, v.Track, "encoded")
		counter(mVideoFrames, v.Sent, v.Track, "sent")
		counter(mVideoFrames, v.Keyframes, v.Track, "keyframe")
		counter(mVideoFrames, v.Skipped, v.Track, "skipped")
		counter(mVideoErrors, v.EncodeErrors, v.Track, "encode")
		counter(mVideoErrors, v.SinkErrors, v.Track, "sink")
		counter(mVideoErrors, v.DeviceErrors, v.Track, "device")
		gauge(mQueueDepth, float64(v.QueueDepth), v.Track)
		gauge(mEncodeSeconds, v.EncodeP50.Seconds(), v.Track, "0.5")
		gauge(mEncodeSeconds, v.EncodeP99.Seconds(), v.Track, "0.99")
		gauge(mLatency, v.LatencyP50.Seconds(), v.Track, "0.5")
		gauge(mLatency, v.LatencyP99.Seconds(), v.Track, "0.99")
		gauge(mBitrate, float64(v.Bitrate), v.Track)
		gauge(mTarget, float64(v.TargetBitrate), v.Track)
		if v.Backend != "" {
			gauge(mBackend, 1, v.Track, v.Backend)
		}
	}
	for _, a := range s.Audio {
		counter(mAudioFrames, a.Frames, a.Track, "sent")
		counter(mAudioFrames, a.Silent, a.Track, "silent")
		counter(mAudioFrames, a.Underruns, a.Track, "underrun")
		counter(mAudioOverflow, a.Overflow, a.Track)
		gauge(mAudioBuffered, a.Buffered.Seconds(), a.Track)
		gauge(mAudioLatency, a.LatencyP50.Seconds(), a.Track, "0.5")
		gauge(mAudioLatency, a.LatencyP99.Seconds(), a.Track, "0.99")
	}
}

// metricsHandler serves the engine's metrics with the Go runtime's and the
// process's.
func metricsHandler(sessions statsSource, server serverStatsSource) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collector{sessions: sessions, server: server},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}
