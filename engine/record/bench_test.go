package record

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecording720p30 measures what recording adds to a 720p30
// session's CPU, in three arms that take turns by blocks of 30 frames: a
// live encoder alone (off); a live encoder asked for an IDR at the same
// segment boundaries as a recording would (idr: the forced keyframes'
// encode cost alone); and a live encoder whose packets also go through
// the tap and the recorder, whose queue is drained before the block's CPU
// time is read (on: the IDRs plus the mux and the AAC track, silent here).
// It reports on/off-cpu (the whole cost), idr-cpu (idr/off: the forced
// IDRs) and mux-cpu (on/idr: mux + AAC + the tap, what the 3 %
// ceiling is about), and on/off-bytes with idr-bitrate-%, what the IDRs
// add to the live bitrate (synthetic stripes whose P-frames are nearly
// empty, so the ratio grows with every boundary and says little: see
// BenchmarkForcedIDRBitrate for real footage), and rec-cpu-%, the tap and recorder's CPU measured
// alone on the same frames (replayCPU) as a share of the off arm's. The
// process's CPU time is read, so run it on an idle
// machine with -benchtime of a few hundred frames (make bench: 300x, 10 s
// of video, two boundaries). The tap's allocations are TestTapAllocs' (0
// per frame).
func BenchmarkRecording720p30(b *testing.B) {
	const w, h, block = 1280, 720, 30
	s, err := OpenStore(StoreConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec, err := s.NewRecorder("", Config{Enabled: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	off, idr, on := newFeeder(b, w, h), newFeeder(b, w, h), newFeeder(b, w, h)
	every := 30 * rec.ChunkSeconds() // frames per segment
	tap := rec.VideoTap(30)
	b.ResetTimer()
	arms := []func(n int){
		func(n int) { // off
			for range n {
				off.frame()
			}
		},
		func(n int) { // idr
			for range n {
				idr.frame()
				if idr.n%every == 0 { // the frame after the boundary is an IDR, as the tap asks
					idr.enc.RequestKeyframe()
				}
			}
		},
		func(n int) { // on
			on.feed(tap, n)
			flush(b, rec) // the recorder's work counts in its block
		},
	}
	var cpu [3]time.Duration // off, idr, on
	b.ResetTimer()
	for i, blk := 0, 0; i < b.N; blk++ {
		n := min(block, b.N-i)
		for k := range arms { // each block starts with another arm: no arm always follows the same one
			a := (blk + k) % len(arms)
			t0 := cpuTime(b)
			arms[a](n)
			cpu[a] += cpuTime(b) - t0
		}
		i += n
	}
	cpuOff, cpuIDR, cpuOn := cpu[0], cpu[1], cpu[2]
	b.StopTimer()
	_ = rec.Close()
	<-done
	if cpuOff > 0 && cpuIDR > 0 {
		b.ReportMetric(float64(cpuOn)/float64(cpuOff), "on/off-cpu")
		b.ReportMetric(float64(cpuIDR)/float64(cpuOff), "idr-cpu")
		b.ReportMetric(float64(cpuOn)/float64(cpuIDR), "mux-cpu")
	}
	if off.bytes > 0 {
		// The live encoder runs keyint=infinite: the IDR forced at every
		// segment boundary (4 s) is what recording costs the live bitrate.
		b.ReportMetric(float64(on.bytes)/float64(off.bytes), "on/off-bytes")
		b.ReportMetric(100*(float64(on.bytes)/float64(off.bytes)-1), "idr-bitrate-%")
		b.ReportMetric(float64(idr.bytes)/float64(on.bytes), "idr/on-bytes")
	}
	b.ReportMetric(float64(rec.Dropped()), "dropped")
	if cpuOff > 0 {
		b.ReportMetric(100*float64(replayCPU(b, s, b.N))/float64(cpuOff), "rec-cpu-%")
	}
}

// flush wakes r's Run (which otherwise muxes every drainEvery) and waits
// until it has muxed every queued access unit (all back in free).
func flush(b testing.TB, r *Recorder) {
	select {
	case r.kick <- struct{}{}:
	default:
	}
	eventually(b, 10*time.Second, "the recorder muxed its queue", func() bool { return len(r.free) == queueLen })
}

// replayCPU is the CPU the tap and a recorder spend on frames access
// units of 720p30 (encoded beforehand, IDRs at the boundaries as the tap
// asks, untimed), fed three times over and divided by three: what
// recording costs beyond the live encode, measured alone, so that its
// share of the off arm's CPU (rec-cpu-%) is read with far less noise
// than the difference of two loaded arms.
func replayCPU(b *testing.B, s *Store, frames int) time.Duration {
	f := newFeeder(b, 1280, 720)
	type au struct {
		data []byte
		key  bool
	}
	aus := make([]au, 0, frames)
	for range frames {
		data, key := f.frame()
		aus = append(aus, au{append([]byte(nil), data...), key})
		if f.n%120 == 0 {
			f.enc.RequestKeyframe()
		}
	}
	rec, err := s.NewRecorder("", Config{Enabled: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	tap := rec.VideoTap(30)
	const rounds = 3
	t0 := cpuTime(b)
	for range rounds {
		for _, a := range aus {
			tap.Packet(a.data, a.key, 1280, 720, time.Second/30)
			for len(rec.full) > queueLen/2 { // paces the producer: no drop
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	flush(b, rec) // the recorder's work counts
	cpu := cpuTime(b) - t0
	_ = rec.Close()
	<-done
	if rec.Dropped() != 0 {
		b.Fatalf("replay dropped %d", rec.Dropped())
	}
	return cpu / rounds
}
