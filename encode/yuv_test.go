package encode

import (
	"fmt"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode/encodetest"
	"github.com/framewire/framewire/encode/internal/yuv"
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

// TestConverterMatchesSwscale checks Converter's same-size I420 path
// (package yuv's AVX2 kernel where the machine has it) against swscale's
// bilinear path on moving test scenes, per plane, for both matrices: at
// least 40 dB everywhere (luma differs by rounding only, chroma by the
// 2×2 mean against swscale's vertical filter). NV12 goes through swscale.
func TestConverterMatchesSwscale(t *testing.T) {
	for _, tc := range []struct {
		format PixelFormat
		cs     colour
	}{{PixelI420, colour{bt709: true}}, {PixelI420, colour{}}} {
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
			if yuv.Fast() && c.sws.c != nil {
				t.Error("a same-size I420 conversion opened a swscale context")
			}
		})
	}
}
