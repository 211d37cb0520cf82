package bench

import (
	"testing"

	"github.com/framewire/framewire/encode"
)

type pairFunc func(testing.TB) (ours, base func(), allocs func() float64, closeAll func())

// runPair runs b.N steps of ours interleaved with b.N of the baseline and
// reports both, their ratio and our allocations per frame (measured
// separately, after the timed loop, across all goroutines).
func runPair(b *testing.B, open pairFunc) {
	ours, base, allocs, closeAll := open(b)
	defer closeAll()
	b.ReportAllocs()
	var s side
	b.ResetTimer()
	s.run(b.N, ours, base)
	b.StopTimer()
	s.report(b, allocs())
}

var resolutions = []struct {
	name string
	w, h int
}{{"720p", 1280, 720}, {"1080p", 1920, 1080}}

// BenchmarkEncode measures emit→encoded packet: Emit into a real output
// track, the pipeline goroutine (pacer, swscale, encoder) and the sink.
func BenchmarkEncode(b *testing.B) {
	for _, bk := range []encode.Backend{encode.BackendX264, encode.BackendVP8, encode.BackendNVENC} {
		for _, r := range resolutions {
			b.Run("codec="+string(bk)+"/res="+r.name, func(b *testing.B) {
				if bk == encode.BackendNVENC {
					e, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: bk, Width: 64, Height: 64})
					if err != nil {
						b.Skipf("h264_nvenc does not open here: %v", err)
					}
					e.Close()
				}
				runPair(b, func(tb testing.TB) (func(), func(), func() float64, func()) {
					return encodePair(tb, bk, r.w, r.h)
				})
			})
		}
	}
}

// BenchmarkConvert measures RGB24 → I420.
func BenchmarkConvert(b *testing.B) {
	for _, r := range resolutions {
		b.Run("res="+r.name, func(b *testing.B) {
			runPair(b, func(tb testing.TB) (func(), func(), func() float64, func()) { return convertPair(tb, r.w, r.h) })
		})
	}
}

// BenchmarkDecodeToLatest measures H.264 access unit → RGB in the input
// track's latest buffer.
func BenchmarkDecodeToLatest(b *testing.B) {
	for _, r := range resolutions {
		b.Run("codec=h264/res="+r.name, func(b *testing.B) {
			runPair(b, func(tb testing.TB) (func(), func(), func() float64, func()) { return decodePair(tb, r.w, r.h) })
		})
	}
}

// BenchmarkOpus measures one 20 ms frame out (libopus) and in (pion/opus
// vs FFmpeg's decoder).
func BenchmarkOpus(b *testing.B) {
	b.Run("dir=out", func(b *testing.B) { runPair(b, opusOutPair) })
	b.Run("dir=in", func(b *testing.B) { runPair(b, opusInPair) })
}

// BenchmarkX264Threads compares one slice per frame (1 thread) with
// sliced threads (2 threads, 2 slices) at 720p, frame by frame
// interleaved: ours = 2 threads, baseline = 1 thread, so x-baseline > 1
// means sliced threads win.
func BenchmarkX264Threads(b *testing.B) {
	const w, h = 1280, 720
	one, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer one.Close()
	two, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h, Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer two.Close()
	pics := scenes(w, h, 8)
	out := make([]byte, 1<<22)
	i, j := 0, 0
	enc := func(e *encode.VideoEncoder, k *int) func() {
		return func() {
			if _, _, err := e.Encode(encode.Image{Pix: pics[*k%8], Width: w, Height: h}, int64(*k*3000), out); err != nil {
				panic(err)
			}
			*k++
		}
	}
	var s side
	b.ResetTimer()
	s.run(b.N, enc(two, &i), enc(one, &j))
	b.StopTimer()
	s.report(b, 0)
}
