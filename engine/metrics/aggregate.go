package metrics

import (
	"slices"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// sessionsTotal is the sessions' stats folded by track, so that every
// series has one value and no label names a session: counters and bitrates
// are summed, percentiles and buffer levels are the worst session's. The
// collector folds the ended sessions' counters (wiring.Wiring.Totals) in
// first, so counters are process totals.
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
			a.tracks[name] = sum.AddCounters(t)
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
			a.video[i] = a.video[i].Add(v)
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
			a.audio[i] = a.audio[i].Add(au)
		}
	}
	slices.Sort(a.trackOrder)
	return a
}
