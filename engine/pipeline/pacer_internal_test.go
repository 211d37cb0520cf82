package pipeline

import (
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
