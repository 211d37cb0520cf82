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
