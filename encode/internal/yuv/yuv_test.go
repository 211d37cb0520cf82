package yuv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// levelNames names the levels, by their value.
var levelNames = [...]string{levelGo: "go", levelAVX2: "avx2", levelAVX512: "avx512"}

// TestKernelMatchesGo: the AVX2 and AVX-512 kernels and the Go path give
// identical bytes, for widths with and without a tail of fewer than 32 or
// 16 columns, a padded source stride and padded plane strides, on random
// pictures and the extremes (black, white, saturated colours).
func TestKernelMatchesGo(t *testing.T) {
	if best == levelGo {
		t.Skip("no AVX2 on this machine")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bt709 := range []bool{true, false} {
		k := For(bt709)
		for _, size := range [][2]int{{16, 2}, {18, 4}, {32, 2}, {34, 6}, {48, 2}, {62, 10}, {64, 4}, {96, 2}, {1280, 8}} {
			w, h := size[0], size[1]
			stride := 3*w + 7
			src := make([]byte, stride*h)
			for i := range src {
				src[i] = byte(rng.IntN(256))
			}
			// Row 0: the extremes, pixel by pixel.
			ext := [][3]byte{{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {0, 255, 255}, {255, 0, 255}}
			for x := range w {
				copy(src[3*x:], ext[x%len(ext)][:])
			}
			convert := func(level int) [3][]byte {
				ys, cs := w+5, w/2+3
				y, u, v := make([]byte, ys*h), make([]byte, cs*h/2), make([]byte, cs*h/2)
				k.convert(src, stride, w, h, y, ys, u, cs, v, cs, level)
				return [3][]byte{y, u, v}
			}
			want := convert(levelGo)
			for l := levelAVX2; l <= best; l++ {
				t.Run(fmt.Sprintf("bt709=%v/%dx%d/%s", bt709, w, h, levelNames[l]), func(t *testing.T) {
					got := convert(l)
					for p := range got {
						if !bytes.Equal(got[p], want[p]) {
							i := 0
							for got[p][i] == want[p][i] {
								i++
							}
							t.Fatalf("plane %d: %s and Go differ first at byte %d: %d against %d", p, levelNames[l], i, got[p][i], want[p][i])
						}
					}
				})
			}
		}
	}
}

// TestLimits: black, white and the primaries land on their limited-range
// values (BT.709: white 235/128/128, black 16/128/128, blue's U 240, red's
// V 240), within one step.
func TestLimits(t *testing.T) {
	k := For(true)
	for _, c := range []struct {
		rgb     [3]byte
		y, u, v int
	}{{[3]byte{0, 0, 0}, 16, 128, 128}, {[3]byte{255, 255, 255}, 235, 128, 128}, {[3]byte{0, 0, 255}, 32, 240, 118}, {[3]byte{255, 0, 0}, 63, 102, 240}} {
		const w, h = 32, 2
		src := bytes.Repeat(c.rgb[:], w*h)
		y, u, v := make([]byte, w*h), make([]byte, w/2), make([]byte, w/2)
		k.Convert(src, 3*w, w, h, y, w, u, w/2, v, w/2)
		for _, s := range []struct {
			name      string
			got, want int
		}{{"Y", int(y[w+w-1]), c.y}, {"U", int(u[w/2-1]), c.u}, {"V", int(v[0]), c.v}} {
			if d := s.got - s.want; d < -1 || d > 1 {
				t.Errorf("RGB %v: %s %d, want %d", c.rgb, s.name, s.got, s.want)
			}
		}
	}
}

// BenchmarkConvert720p is one 1280×720 picture, with each kernel the
// machine runs and in Go alone.
func BenchmarkConvert720p(b *testing.B) {
	const w, h = 1280, 720
	src := make([]byte, 3*w*h)
	for i := range src {
		src[i] = byte(i * 7 / 5)
	}
	y, u, v := make([]byte, w*h), make([]byte, w*h/4), make([]byte, w*h/4)
	k := For(true)
	for l := levelGo; l <= best; l++ {
		b.Run("kernel="+levelNames[l], func(b *testing.B) {
			for b.Loop() {
				k.convert(src, 3*w, w, h, y, w, u, w/2, v, w/2, l)
			}
		})
	}
}

// BenchmarkConvertCold converts a 640×360 and a 1280×720 picture whose
// source and planes are out of the caches, as a node's are: between two
// conversions of a session, the other sessions' encodes and conversions
// run (64 MB written, outside the timer, evicts them). The kernels'
// prefetch of the next row pair is for this case: on the development
// VM, 640×360 takes 0.10 ms with AVX2 and 0.07–0.08 with AVX-512, against
// 0.15–0.17 and 0.12–0.14 prefetching 768 bytes ahead.
func BenchmarkConvertCold(b *testing.B) {
	if !hasAVX2 {
		b.Skip("no AVX2")
	}
	evict := make([]byte, 256<<20)
	off := 0
	for _, sz := range [][2]int{{640, 360}, {1280, 720}} {
		w, h := sz[0], sz[1]
		src := make([]byte, 3*w*h)
		for i := range src {
			src[i] = byte(i * 7 / 5)
		}
		y, u, v := make([]byte, w*h), make([]byte, w*h/4), make([]byte, w*h/4)
		k := For(true)
		for l := levelAVX2; l <= best; l++ {
			b.Run(fmt.Sprintf("%dx%d/kernel=%s", w, h, levelNames[l]), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					for i := 0; i < 64<<20; i += 64 {
						evict[(off+i)%len(evict)]++
					}
					off += 64 << 20
					b.StartTimer()
					k.convert(src, 3*w, w, h, y, w, u, w/2, v, w/2, l)
				}
			})
		}
	}
}
