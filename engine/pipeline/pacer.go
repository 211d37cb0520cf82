package pipeline

import "time"

// pacer decides when each video frame leaves. It is pure: it reads no
// clock and starts no timer.
//
// Fixed rate (rate > 0): frames leave at most once per 1/rate; a frame
// that arrives after its slot leaves at once and the cadence restarts from
// it (no catch-up burst).
//
// Automatic (rate == 0): the pacer measures the model's push interval
// (time between the capture of consecutive batches, smoothed; a single
// long gap is a stall, not a new rate, until it repeats) and spreads
// the N frames of each batch evenly over it: frame i of a batch captured at
// c is due at c + i·interval/N, and never less than interval/N after the
// previous frame, so frames delayed by a stall are not bursted. A single
// frame (N = 1) leaves at once.
type pacer struct {
	step      time.Duration // fixed cadence; 0 in automatic mode
	interval  time.Duration // automatic: measured push interval, 0 until measured
	lastBatch time.Time     // capture time of the latest batch's first frame
	last      time.Time     // slot of the previous frame
	slow      int           // consecutive push gaps far above interval
	started   bool
}

const (
	defaultFrameInterval = time.Second / 30
	maxPushInterval      = time.Second // longer gaps are pauses, not a rate
)

func newPacer(rate float64) pacer {
	p := pacer{}
	if rate > 0 {
		p.step = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// schedule returns when the frame captured at capture, index batch of n,
// should leave, given the current time now, and the expected gap to the
// next frame (the frame's duration on the wire).
func (p *pacer) schedule(now, capture time.Time, batch, n int) (slot time.Time, gap time.Duration) {
	if n < 1 {
		n = 1
	}
	if p.step > 0 {
		slot = now
		if p.started && p.last.Add(p.step).After(now) {
			slot = p.last.Add(p.step)
		}
		p.last, p.started = slot, true
		return slot, p.step
	}
	if batch == 0 {
		if !p.lastBatch.IsZero() {
			d := capture.Sub(p.lastBatch)
			switch {
			case d <= 0 || d > maxPushInterval:
				// Same instant, or a pause: not a rate.
			case p.interval == 0:
				p.interval = d
			case d > 2*p.interval:
				// A stall is not a new rate unless it persists.
				if p.slow++; p.slow >= 3 {
					p.interval, p.slow = d, 0
				}
			default:
				p.interval += (d - p.interval) / 4
				p.slow = 0
			}
		}
		p.lastBatch = capture
	}
	interval := p.interval
	if interval == 0 {
		interval = defaultFrameInterval * time.Duration(n)
	}
	gap = interval / time.Duration(n)
	slot = now
	if batch > 0 {
		if due := capture.Add(gap * time.Duration(batch)); due.After(slot) {
			slot = due
		}
		if p.started {
			if earliest := p.last.Add(gap); earliest.After(slot) {
				slot = earliest
			}
		}
	}
	p.last, p.started = slot, true
	return slot, gap
}
