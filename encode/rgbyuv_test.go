package encode

import (
	"fmt"
	"math"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode/encodetest"
	"github.com/framewire/framewire/tracks"
)

// planes returns copies of f's planes without their padding: Y (w×h),
// then U and V (w/2×h/2 each) or, for NV12, the interleaved UV (w×h/2).
func planes(f *astiav.Frame, w, h int, nv12 bool) [][]byte {
	rows := func(i, width, height int) []byte {
		p, stride := framePlane(f, i, height)
		out := make([]byte, 0, width*height)
		for r := range height {
			out = append(out, p[r*stride:r*stride+width]...)
		}
		return out
	}
	if nv12 {
		return [][]byte{rows(0, w, h), rows(1, w, h/2)}
	}
	return [][]byte{rows(0, w, h), rows(1, w/2, h/2), rows(2, w/2, h/2)}
}

// swscalePlanes converts img with swscale's bilinear path (what Converter
// used for every picture before the table converter).
func swscalePlanes(t testing.TB, img Image, format PixelFormat, cs colour) [][]byte {
	t.Helper()
	var s scaler
	defer s.close()
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(img.Width)
	f.SetHeight(img.Height)
	f.SetPixelFormat(format.av())
	if err := f.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	if err := s.ensure(img.Width, img.Height, astiav.PixelFormatRgb24, img.Width, img.Height, format.av(), cs); err != nil {
		t.Fatal(err)
	}
	if err := s.toFrame(img.Pix, img.RowStride(), img.Height, f); err != nil {
		t.Fatal(err)
	}
	return planes(f, img.Width, img.Height, format == PixelNV12)
}

func convertedPlanes(t testing.TB, c *Converter, img Image) [][]byte {
	t.Helper()
	if err := c.Convert(img, img.Width, img.Height); err != nil {
		t.Fatal(err)
	}
	return planes(c.picture(), img.Width, img.Height, c.format == PixelNV12)
}

// TestTableConverterMatchesSwscale checks the table converter against
// swscale on moving test scenes, per plane, for both matrices and both
// layouts: at least 40 dB everywhere (luma differs by rounding only;
// chroma by the 2×2 mean against swscale's bilinear vertical filter).
func TestTableConverterMatchesSwscale(t *testing.T) {
	for _, tc := range []struct {
		format PixelFormat
		cs     colour
	}{{PixelI420, colour{bt709: true}}, {PixelI420, colour{}}, {PixelNV12, colour{bt709: true}}} {
		t.Run(fmt.Sprintf("%s/bt709=%v", tc.format, tc.cs.bt709), func(t *testing.T) {
			const w, h = 320, 180
			c, err := newConverter(tc.format, tc.cs)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A padded row stride, as a model's tensor view may have.
			img := Image{Pix: make([]byte, (w*3+12)*h), Width: w, Height: h, Stride: w*3 + 12}
			scene := make([]byte, w*h*3)
			for i := range 4 {
				encodetest.Scene(scene, w, h, 5*i)
				for r := range h {
					copy(img.Pix[r*img.Stride:], scene[r*w*3:(r+1)*w*3])
				}
				want := swscalePlanes(t, img, tc.format, tc.cs)
				got := convertedPlanes(t, c, img)
				for p := range want {
					psnr := encodetest.PSNR(want[p], got[p])
					if i == 0 {
						t.Logf("plane %d: %.1f dB against swscale", p, psnr)
					}
					if psnr < 40 {
						t.Errorf("scene %d plane %d: %.1f dB against swscale, want >= 40", i, p, psnr)
					}
				}
			}
			if c.sws.c != nil {
				t.Error("a same-size conversion opened a swscale context")
			}
		})
	}
}

// TestTableConverterThinLine draws a one-pixel green line across a grey
// picture, on each row and column phase of a 2×2 chroma block, and checks
// that the chroma of the block holding it moves towards green by at least
// 0.4 of what a solid green block gets (a 2×2 mean gives 0.5; taking the
// chroma of one row in two gives 0 for half the rows, which broke the
// face filter's boxes).
func TestTableConverterThinLine(t *testing.T) {
	const w, h = 64, 32
	c, err := NewConverter(PixelI420)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	grey, green := [3]byte{128, 128, 128}, [3]byte{0, 255, 0}
	fill := func(on func(x, y int) bool) Image {
		img := tracks.NewImage(w, h)
		for y := range h {
			for x := range w {
				px := grey
				if on(x, y) {
					px = green
				}
				copy(img.Pix[y*img.Stride+3*x:], px[:])
			}
		}
		return img
	}
	dist := func(pl [][]byte, cx, cy int) float64 {
		du := float64(pl[1][cy*w/2+cx]) - 128
		dv := float64(pl[2][cy*w/2+cx]) - 128
		return du*du + dv*dv
	}
	solid := dist(convertedPlanes(t, c, fill(func(int, int) bool { return true })), 3, 3)
	for phase := range 2 {
		row := 10 + phase
		pl := convertedPlanes(t, c, fill(func(_, y int) bool { return y == row }))
		if d := dist(pl, 5, row/2); d < 0.4*0.4*solid {
			t.Errorf("horizontal line on row %d: chroma moved %.2f of a solid green block's, want >= 0.4", row, sqrtRatio(d, solid))
		}
		col := 20 + phase
		pl = convertedPlanes(t, c, fill(func(x, _ int) bool { return x == col }))
		if d := dist(pl, col/2, 4); d < 0.4*0.4*solid {
			t.Errorf("vertical line on column %d: chroma moved %.2f of a solid green block's, want >= 0.4", col, sqrtRatio(d, solid))
		}
	}
}

func sqrtRatio(d, solid float64) float64 { return math.Sqrt(d / solid) }

// BenchmarkTableConverter measures the table converter at 720p against
// swscale's bilinear path on the same picture (ns/op is one picture).
func BenchmarkTableConverter(b *testing.B) {
	const w, h = 1280, 720
	img := tracks.NewImage(w, h)
	encodetest.Scene(img.Pix, w, h, 3)
	b.Run("conv=table", func(b *testing.B) {
		c, _ := NewConverter(PixelI420)
		defer c.Close()
		for b.Loop() {
			if err := c.Convert(img, w, h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("conv=swscale", func(b *testing.B) {
		var s scaler
		defer s.close()
		f := astiav.AllocFrame()
		defer f.Free()
		f.SetWidth(w)
		f.SetHeight(h)
		f.SetPixelFormat(astiav.PixelFormatYuv420P)
		if err := f.AllocBuffer(0); err != nil {
			b.Fatal(err)
		}
		if err := s.ensure(w, h, astiav.PixelFormatRgb24, w, h, astiav.PixelFormatYuv420P, colour{bt709: true}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.toFrame(img.Pix, img.RowStride(), h, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
