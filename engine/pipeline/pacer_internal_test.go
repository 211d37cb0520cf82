package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPacerFixedRate(t *testing.T) {
	p := newPacer(25) // 40 ms
	// Three frames queued at once leave 40 ms apart.
	for i, want := range []int{0, 40, 80} {
		slot, gap := p.schedule(t0, t0, 0, 1)
		if slot != t0.Add(ms(want)) || gap != ms(40) {
			t.Fatalf("frame %d: slot +%v gap %v, want +%dms 40ms", i, slot.Sub(t0), gap, want)
		}
	}
	// A stall: the next frame arrives at +500 ms. It leaves at once, and
	// the one queued behind it 40 ms later: no burst to catch up.
	if slot, _ := p.schedule(t0.Add(ms(500)), t0.Add(ms(500)), 0, 1); slot != t0.Add(ms(500)) {
		t.Fatalf("after stall: +%v", slot.Sub(t0))
	}
	if slot, _ := p.schedule(t0.Add(ms(501)), t0.Add(ms(450)), 0, 1); slot != t0.Add(ms(540)) {
		t.Fatalf("after stall, second frame: +%v, want +540ms", slot.Sub(t0))
	}
}

func TestPacerAutoSpreadsBatches(t *testing.T) {
	p := newPacer(0)
	// The model pushes a batch of 4 every 100 ms.
	var slots []time.Duration
	for b := range 5 {
		c := t0.Add(ms(100 * b))
		now := c
		for i := range 4 {
			slot, gap := p.schedule(now, c, i, 4)
			if b >= 2 && gap != ms(25) {
				t.Fatalf("batch %d frame %d: gap %v, want 25ms (100 ms / 4)", b, i, gap)
			}
			slots = append(slots, slot.Sub(t0))
			now = slot // the pipeline sleeps until the slot
		}
	}
	// From the second batch on the interval is measured: 25 ms spacing.
	for i := 5; i < len(slots); i++ {
		if d := slots[i] - slots[i-1]; d != ms(25) {
			t.Fatalf("slots %v: gap %d is %v, want 25ms", slots, i, d)
		}
	}
	// A stall inside a batch: frame 1 is dequeued 60 ms late. Frames 2
	// and 3 stay 25 ms apart after it instead of bursting.
	c := t0.Add(ms(500))
	p.schedule(c, c, 0, 4)
	s1, _ := p.schedule(c.Add(ms(85)), c, 1, 4)
	s2, _ := p.schedule(s1, c, 2, 4)
	s3, _ := p.schedule(s2, c, 3, 4)
	if s1 != c.Add(ms(85)) || s2.Sub(s1) != ms(25) || s3.Sub(s2) != ms(25) {
		t.Fatalf("after stall: +%v +%v +%v", s1.Sub(c), s2.Sub(c), s3.Sub(c))
	}
	// Single frames leave at once whatever the interval.
	q := newPacer(0)
	for i := range 3 {
		now := t0.Add(ms(7 * i))
		if slot, _ := q.schedule(now, now, 0, 1); slot != now {
			t.Fatalf("single frame %d delayed to +%v", i, slot.Sub(now))
		}
	}
	// A pause longer than a second is not taken as the push rate.
	r := newPacer(0)
	r.schedule(t0, t0, 0, 1)
	r.schedule(t0.Add(ms(50)), t0.Add(ms(50)), 0, 1)
	_, gap := r.schedule(t0.Add(ms(5050)), t0.Add(ms(5050)), 0, 1)
	if gap != ms(50) {
		t.Fatalf("interval after a 5 s pause: %v, want 50ms", gap)
	}
}

// frameAt is one frame given to a fixed-rate pacer: its capture time and
// when the pipeline dequeued it.
type frameAt struct{ capture, now time.Time }

// runFixed schedules frames in order the way the pipeline does (a frame is
// dequeued no earlier than the previous one's slot) and returns the slots.
func runFixed(rate float64, frames []frameAt) []time.Time {
	p := newPacer(rate)
	slots := make([]time.Time, len(frames))
	var prev time.Time
	for i, f := range frames {
		now := later(f.now, prev)
		slots[i], _ = p.schedule(now, f.capture, 0, 1)
		prev = slots[i]
	}
	return slots
}

// maxInWindow is the most slots that fall in any window of length w.
func maxInWindow(slots []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range slots {
		for slots[i].Sub(slots[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// An on-rate producer's frames leave the moment they are dequeued, even
// when the dequeue itself jitters (a slow encode of the previous frame,
// scheduling): no frame waits for a fixed-phase slot. The old pacer held
// every frame dequeued earlier in its interval than the previous one
// until the previous slot + 1/rate.
func TestPacerOnRateAddsNothing(t *testing.T) {
	const step = time.Second / 30
	rng := rand.New(rand.NewPCG(1, 2))
	var frames []frameAt
	for k := range 300 {
		c := t0.Add(time.Duration(k) * step)
		frames = append(frames, frameAt{c, c.Add(time.Duration(rng.IntN(8000)) * time.Microsecond)})
	}
	for i, s := range runFixed(30, frames) {
		if s != frames[i].now {
			t.Fatalf("frame %d dequeued at +%v waits until +%v", i, frames[i].now.Sub(t0), s.Sub(t0))
		}
	}
}

// A jittery producer (30 fps, each emit up to ±5 ms off its tick) is sent
// on arrival too, and the output never exceeds the rate: at most 31
// frames in any second, at most 16 in any 16 intervals less 1/90 s.
func TestPacerJitteryProducer(t *testing.T) {
	const step = time.Second / 30
	rng := rand.New(rand.NewPCG(3, 4))
	var frames []frameAt
	for k := range 900 {
		c := t0.Add(time.Duration(k)*step + time.Duration(rng.IntN(10001)-5000)*time.Microsecond)
		frames = append(frames, frameAt{c, c})
	}
	slots := runFixed(30, frames)
	for i, s := range slots {
		if s != frames[i].now {
			t.Fatalf("frame %d (jitter %v) delayed by %v", i, frames[i].capture.Sub(t0.Add(time.Duration(i)*step)), s.Sub(frames[i].now))
		}
	}
	if n := maxInWindow(slots, time.Second); n > 31 {
		t.Fatalf("%d frames in one second at Rate(30)", n)
	}
}

// A producer faster than the rate (45 fps, every frame kept: a
// back-pressure track) is held evenly to the rate: within 1/90 of it
// over any five seconds (152 frames at Rate(30)), at most 31 in any one
// second, never two frames closer than 1/rate − tolerance, and after the
// first second none closer than 1/rate less 1/90 of it.
func TestPacerFastProducerIsCapped(t *testing.T) {
	var frames []frameAt
	for k := range 900 {
		c := t0.Add(time.Duration(k) * time.Second / 45)
		frames = append(frames, frameAt{c, c})
	}
	slots := runFixed(30, frames)
	if n := maxInWindow(slots, 5*time.Second); n > 152 {
		t.Fatalf("%d frames in five seconds at Rate(30)", n)
	}
	if n := maxInWindow(slots, time.Second); n > 31 {
		t.Fatalf("%d frames in one second at Rate(30)", n)
	}
	for i := 1; i < len(slots); i++ {
		d := slots[i].Sub(slots[i-1])
		if d < time.Second/30-time.Second/90 || i > 30 && d < time.Second/30-time.Second/30/90 {
			t.Fatalf("frames %d and %d leave %v apart", i-1, i, d)
		}
	}
}

// Bursts and batches (three frames emitted at once every 100 ms) are
// smoothed to exactly 1/rate apart; the first of each burst, on rate,
// leaves at once.
func TestPacerBurstyProducer(t *testing.T) {
	const step = time.Second / 30
	var frames []frameAt
	for b := range 30 {
		c := t0.Add(time.Duration(b) * 100 * time.Millisecond)
		for range 3 {
			frames = append(frames, frameAt{c, c})
		}
	}
	slots := runFixed(30, frames)
	for i, s := range slots {
		want := frames[i].now.Add(time.Duration(i%3) * step)
		if d := s.Sub(want); d < 0 || d > time.Millisecond {
			t.Fatalf("frame %d of burst %d leaves at +%v, want +%v", i%3, i/3, s.Sub(t0), want.Sub(t0))
		}
	}
}

// A producer late once (a frame emitted 25 ms after its tick, the next
// on its tick; and later a frame 50 ms late, the next emitted right after
// it, the one after that on its tick): the frames right after a late one
// are smoothed to 1/rate apart, the next on-tick frame leaves as soon as
// it is dequeued, and from the one after on, frames leave on arrival
// again: a late frame does not shift the cadence for good.
func TestPacerLateFrameRecovers(t *testing.T) {
	const step = time.Second / 30
	var frames []frameAt
	for k := range 120 {
		c := t0.Add(time.Duration(k) * step)
		switch k {
		case 30:
			c = c.Add(25 * time.Millisecond)
		case 60:
			c = c.Add(50 * time.Millisecond)
		case 61:
			c = frames[60].capture.Add(time.Millisecond)
		}
		frames = append(frames, frameAt{c, c})
	}
	slots := runFixed(30, frames)
	want := map[int]time.Duration{31: 25 * time.Millisecond, 61: step - time.Millisecond, 62: 50 * time.Millisecond}
	var prev time.Time
	for i, s := range slots {
		w := want[i]
		if i == 63 { // dequeued when frame 62 left
			w = prev.Sub(frames[i].now)
		}
		if d := s.Sub(frames[i].now) - w; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("frame %d waits %v, want %v", i, s.Sub(frames[i].now), w)
		}
		prev = s
	}
}
