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
// session's CPU: blocks of 30 frames alternate between a live encoder
// alone (off) and a live encoder whose packets also go through the tap
// and the recorder, whose queue is drained before the block's CPU time
// is read (on; the recorder muxes the video and encodes the AAC track,
// silent here). It reports on/off-cpu, the ratio of the two (1.03 is the
// issue's ceiling), and on/off-bytes with idr-bitrate-%, what the IDRs
// forced at segment boundaries add to the live bitrate (synthetic
// gradient pictures: the ratio depends on the content); the process's CPU
// time is read, so run it on an idle machine with -benchtime of a few
// hundred frames (make bench: 300x, 10 s of video, two boundaries). The
// tap's allocations are TestTapAllocs' (0 per frame).
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
	off, on := newFeeder(b, w, h), newFeeder(b, w, h)
	tap := rec.VideoTap(30)
	var cpuOff, cpuOn time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(block, b.N-i)
		t0 := cpuTime(b)
		for range n {
			off.frame()
		}
		t1 := cpuTime(b)
		on.feed(tap, n)
		for len(rec.full) > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		t2 := cpuTime(b)
		cpuOff += t1 - t0
		cpuOn += t2 - t1
		i += n
	}
	b.StopTimer()
	_ = rec.Close()
	<-done
	if cpuOff > 0 {
		b.ReportMetric(float64(cpuOn)/float64(cpuOff), "on/off-cpu")
	}
	if off.bytes > 0 {
		// The live encoder runs keyint=infinite: the IDR forced at every
		// segment boundary (4 s) is what recording costs the live bitrate.
		b.ReportMetric(float64(on.bytes)/float64(off.bytes), "on/off-bytes")
		b.ReportMetric(100*(float64(on.bytes)/float64(off.bytes)-1), "idr-bitrate-%")
	}
	b.ReportMetric(float64(rec.Dropped()), "dropped")
}
