package pipeline

import (
	"slices"
	"sync"
	"time"
)

// window keeps the last few hundred per-frame measurements for
// percentiles and the recent bitrate. record does not allocate.
type window struct {
	mu      sync.Mutex
	n       int // samples written in total
	encode  [256]time.Duration
	latency [256]time.Duration
	at      [256]time.Time
	bytes   [256]int
}

func (w *window) record(encode, latency time.Duration, at time.Time, bytes int) {
	w.mu.Lock()
	i := w.n % len(w.encode)
	w.encode[i], w.latency[i], w.at[i], w.bytes[i] = encode, latency, at, bytes
	w.n++
	w.mu.Unlock()
}

// summary returns p50/p99 of encode time and latency and the bitrate
// over the window (bit/s). It allocates (Stats is not per frame).
func (w *window) summary() (e50, e99, l50, l99 time.Duration, bps int) {
	w.mu.Lock()
	k := min(w.n, len(w.encode))
	enc := slices.Clone(w.encode[:k])
	lat := slices.Clone(w.latency[:k])
	var first, last time.Time
	total, firstBytes := 0, 0
	for i := range k {
		total += w.bytes[i]
		if first.IsZero() || w.at[i].Before(first) {
			first, firstBytes = w.at[i], w.bytes[i]
		}
		if w.at[i].After(last) {
			last = w.at[i]
		}
	}
	w.mu.Unlock()
	if k == 0 {
		return
	}
	slices.Sort(enc)
	slices.Sort(lat)
	pct := func(s []time.Duration, p int) time.Duration { return s[min(len(s)-1, len(s)*p/100)] }
	e50, e99, l50, l99 = pct(enc, 50), pct(enc, 99), pct(lat, 50), pct(lat, 99)
	if span := last.Sub(first); k > 1 && span > 0 {
		// The first sample's bytes left before the span starts.
		bps = int(float64(total-firstBytes) * 8 / span.Seconds())
	}
	return
}

// Percentiles are the 50th and 99th percentiles of a duration.
type Percentiles struct{ P50, P99 time.Duration }

// StageTimes is how long after Emit a video frame reached each point on
// its way to the wire, as p50/p99 over the last 256 frames sent, so that
// the time between two stages is where latency goes: Dequeued→Paced is
// the pacer, Paced→Converted the colour conversion, Converted→Encoded the
// encoder, Handed→Wire pion's packetizer, interceptors and socket write.
// It is measured for every frame (no sampling, no allocation).
type StageTimes struct {
	// Dequeued: the pipeline took the frame from the track's queue.
	Dequeued Percentiles
	// Paced: the frame's pacer slot came.
	Paced Percentiles
	// Converted: RGB → YUV done (device frames: when their encode began).
	Converted Percentiles
	// Encoded: the access unit came out of the encoder.
	Encoded Percentiles
	// Handed: the access unit was handed to the sink (pion).
	Handed Percentiles
	// Wire: its last RTP packet passed the interceptors and was written to
	// the socket, when the sink reports it (peer.Output's WireTime); with
	// other sinks or a simulated clock, when WriteSample returned.
	Wire Percentiles
}

// The stages of StageTimes, in order.
const (
	stageDequeued = iota
	stagePaced
	stageConverted
	stageEncoded
	stageHanded
	stageWire
	nStages
)

// stageWindow keeps the last 256 frames' stage times. record does not
// allocate.
type stageWindow struct {
	mu sync.Mutex
	n  int
	d  [nStages][256]time.Duration
}

func (w *stageWindow) record(s *[nStages]time.Duration) {
	w.mu.Lock()
	i := w.n % len(w.d[0])
	for k := range s {
		w.d[k][i] = s[k]
	}
	w.n++
	w.mu.Unlock()
}

// summary returns the percentiles per stage. It allocates.
func (w *stageWindow) summary() StageTimes {
	var p [nStages]Percentiles
	w.mu.Lock()
	k := min(w.n, len(w.d[0]))
	all := make([][]time.Duration, nStages)
	for s := range all {
		all[s] = slices.Clone(w.d[s][:k])
	}
	w.mu.Unlock()
	if k == 0 {
		return StageTimes{}
	}
	for s, d := range all {
		slices.Sort(d)
		p[s] = Percentiles{P50: d[min(k-1, k*50/100)], P99: d[min(k-1, k*99/100)]}
	}
	return StageTimes{Dequeued: p[stageDequeued], Paced: p[stagePaced], Converted: p[stageConverted],
		Encoded: p[stageEncoded], Handed: p[stageHanded], Wire: p[stageWire]}
}
