package metrics

import (
	"slices"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// sessionsTotal is the running sessions' stats folded by track, so that
// every series has one value and no label names a session: counters and
// bitrates are summed, percentiles and buffer levels are the worst
// session's.
type sessionsTotal struct {
	panics     uint64
	tracks     map[string]tracks.Stats
	trackOrder []string
	video      []pipeline.VideoStats
	audio      []pipeline.AudioStats
	backends   [][2]string // (track, backend) pairs in use
	// recording is set when a session records: recDropped and recMedia
	// sum their recorders' drops and media time.
	recording  bool
	recDropped uint64
	recMedia   time.Duration
}

func aggregate(list []wiring.SessionStats) sessionsTotal {
	a := sessionsTotal{tracks: map[string]tracks.Stats{}}
	videoAt, audioAt := map[string]int{}, map[string]int{}
	for _, s := range list {
		a.panics += s.Engine.Panics
		for name, t := range s.Engine.Tracks {
			sum, seen := a.tracks[name]
			if !seen {
				a.trackOrder = append(a.trackOrder, name)
			}
			sum.Emitted += t.Emitted
			sum.Delivered += t.Delivered
			sum.Dropped += t.Dropped
			sum.Rejected += t.Rejected
			a.tracks[name] = sum
		}
		for _, v := range s.Video {
			if v.Backend != "" && !slices.Contains(a.backends, [2]string{v.Track, v.Backend}) {
				a.backends = append(a.backends, [2]string{v.Track, v.Backend})
			}
			i, ok := videoAt[v.Track]
			if !ok {
				videoAt[v.Track] = len(a.video)
				a.video = append(a.video, v)
				continue
			}
			a.video[i] = addVideo(a.video[i], v)
		}
		if r := s.Recording; r != nil {
			a.recording = true
			a.recDropped += r.Dropped
			a.recMedia += r.Media
		}
		for _, au := range s.Audio {
			i, ok := audioAt[au.Track]
			if !ok {
				audioAt[au.Track] = len(a.audio)
				a.audio = append(a.audio, au)
				continue
			}
			a.audio[i] = addAudio(a.audio[i], au)
		}
	}
	slices.Sort(a.trackOrder)
	return a
}

func addVideo(a, b pipeline.VideoStats) pipeline.VideoStats {
	a.Emitted += b.Emitted
	a.Dropped += b.Dropped
	a.QueueDepth += b.QueueDepth
	a.Encoded += b.Encoded
	a.Sent += b.Sent
	a.Keyframes += b.Keyframes
	a.Skipped += b.Skipped
	a.DeviceEncoded += b.DeviceEncoded
	a.EncodeErrors += b.EncodeErrors
	a.SinkErrors += b.SinkErrors
	a.DeviceErrors += b.DeviceErrors
	a.Bitrate += b.Bitrate
	a.TargetBitrate += b.TargetBitrate
	a.EncodeP50, a.EncodeP99 = max(a.EncodeP50, b.EncodeP50), max(a.EncodeP99, b.EncodeP99)
	a.LatencyP50, a.LatencyP99 = max(a.LatencyP50, b.LatencyP50), max(a.LatencyP99, b.LatencyP99)
	as, bs := metricStages(a.Stages), metricStages(b.Stages)
	worst := func(x, y pipeline.Percentiles) pipeline.Percentiles {
		return pipeline.Percentiles{P50: max(x.P50, y.P50), P99: max(x.P99, y.P99)}
	}
	a.Stages.Dequeued = worst(as[0].p, bs[0].p)
	a.Stages.Paced = worst(as[1].p, bs[1].p)
	a.Stages.Converted = worst(as[2].p, bs[2].p)
	a.Stages.Encoded = worst(as[3].p, bs[3].p)
	a.Stages.Handed = worst(as[4].p, bs[4].p)
	a.Stages.Wire = worst(as[5].p, bs[5].p)
	return a
}

func addAudio(a, b pipeline.AudioStats) pipeline.AudioStats {
	a.Frames += b.Frames
	a.Silent += b.Silent
	a.Underruns += b.Underruns
	a.Overflow += b.Overflow
	a.Trimmed += b.Trimmed
	a.Buffered = max(a.Buffered, b.Buffered)
	a.LatencyP50, a.LatencyP99 = max(a.LatencyP50, b.LatencyP50), max(a.LatencyP99, b.LatencyP99)
	return a
}
