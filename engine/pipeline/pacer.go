package pipeline

import "time"

// pacer decides when each video frame leaves. It is pure: it reads no
// clock and starts no timer.
//
// Fixed rate (rate > 0): a frame that arrives on rate leaves at once. On
// rate means its capture (emit) time is at least 1/rate − tolerance after
// the previous frame's, and sending it now keeps the output at the rate:
// the pacer keeps how far sending has run ahead of 1/rate per frame
// (ahead; a late frame lowers it, down to two intervals below zero, so
// that on-rate frames after a late one may leave as soon as they arrive;
// it decays by 1/32 a frame)
// and sends a frame only while ahead stays within the tolerance. So an
// on-rate producer's frames, jitter of up to ± tolerance/2 included, and
// a frame our own pipeline sent late gain no latency: no fixed-phase slot
// is waited for. A frame that arrives early (a burst, a batch, a backlog)
// is smoothed: it leaves 1/rate after the previous one. A faster producer
// is held evenly to the rate (within 1/90 of it); a stall causes no
// catch-up burst. The tolerance is 1/(3·rate).
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
	tol       time.Duration // fixed: how early an on-rate frame may be
	lastCap   time.Time     // fixed: capture time of the previous frame
	ahead     time.Duration // fixed: sending ahead of the rate, ≥ −step
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
		p.tol = p.step / 3
	}
	return p
}

// fixed schedules a frame of a fixed-rate track.
func (p *pacer) fixed(now, capture time.Time) (slot time.Time, gap time.Duration) {
	if !p.started {
		p.last, p.lastCap, p.started = now, capture, true
		return now, p.step
	}
	// The earliest slot that keeps ahead within the tolerance.
	slot = later(now, p.last.Add(p.step+p.ahead-p.tol))
	if capture.Sub(p.lastCap) < p.step-p.tol {
		slot = later(slot, p.last.Add(p.step)) // early: smooth it
	}
	p.ahead = max(p.ahead+p.step-slot.Sub(p.last), -2*p.step)
	p.ahead -= p.ahead / 32
	p.last, p.lastCap = slot, capture
	return slot, p.step
}

// swapped records that the frame sent in the last slot was a newer one,
// captured at capture, that overtook the scheduled frame in the queue.
func (p *pacer) swapped(capture time.Time) { p.lastCap = capture }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// schedule returns when the frame captured at capture, index batch of n,
// should leave, given the current time now, and the expected gap to the
// next frame (the frame's duration on the wire).
func (p *pacer) schedule(now, capture time.Time, batch, n int) (slot time.Time, gap time.Duration) {
	if n < 1 {
		n = 1
	}
	if p.step > 0 {
		return p.fixed(now, capture)
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
