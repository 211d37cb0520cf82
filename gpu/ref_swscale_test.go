package gpu

import (
	"errors"
	"fmt"
	"github.com/framewire/framewire/encode/encodetest"
	"testing"

	"github.com/asticode/go-astiav"
)

// swscaleConvert runs one picture through FFmpeg's scale filter (swscale)
// with the given filter arguments and returns the output's packed bytes.
func swscaleConvert(t *testing.T, in []byte, w, h int, from, to astiav.PixelFormat, args string) []byte {
	t.Helper()
	g := astiav.AllocFilterGraph()
	defer g.Free()
	src, err := g.NewBuffersrcFilterContext(astiav.FindFilterByName("buffer"), "in")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := g.NewBuffersinkFilterContext(astiav.FindFilterByName("buffersink"), "out")
	if err != nil {
		t.Fatal(err)
	}
	p := astiav.AllocBuffersrcFilterContextParameters()
	defer p.Free()
	p.SetWidth(w)
	p.SetHeight(h)
	p.SetPixelFormat(from)
	p.SetTimeBase(astiav.NewRational(1, 30))
	p.SetSampleAspectRatio(astiav.NewRational(1, 1))
	if err := src.SetParameters(p); err != nil {
		t.Fatal(err)
	}
	if err := src.Initialize(nil); err != nil {
		t.Fatal(err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(src.FilterContext())
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(sink.FilterContext())
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	desc := fmt.Sprintf("scale=%s,format=%s", args, to)
	if err := g.Parse(desc, inputs, outputs); err != nil {
		t.Fatalf("parse %q: %v", desc, err)
	}
	if err := g.Configure(); err != nil {
		t.Fatalf("configure %q: %v", desc, err)
	}
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(from)
	if err := f.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	if err := f.Data().SetBytes(in, 1); err != nil {
		t.Fatal(err)
	}
	if err := src.AddFrame(f, astiav.NewBuffersrcFlags()); err != nil {
		t.Fatal(err)
	}
	out := astiav.AllocFrame()
	defer out.Free()
	if err := sink.GetFrame(out, astiav.NewBuffersinkFlags()); err != nil {
		if errors.Is(err, astiav.ErrEagain) {
			t.Fatal("scale filter produced no frame")
		}
		t.Fatal(err)
	}
	b, err := out.Data().Bytes(1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The CPU reference of fw_rgb_to_nv12 agrees with swscale's BT.709
// limited-range RGB→NV12 within ±2 per sample, for RGB24 and RGBA.
func TestReferenceRGBToNV12MatchesSwscale(t *testing.T) {
	const w, h = 320, 240
	for _, tc := range []struct {
		bpp int
		pf  astiav.PixelFormat
	}{{3, astiav.PixelFormatRgb24}, {4, astiav.PixelFormatRgba}} {
		for _, seed := range []int{0, 97} {
			img := testImage(w, h, tc.bpp, seed)
			y, uv := refRGBToNV12(img, w*tc.bpp, tc.bpp, w, h, w, h)
			got := swscaleConvert(t, img, w, h, tc.pf, astiav.PixelFormatNv12,
				"out_color_matrix=bt709:out_range=tv:flags=bilinear+accurate_rnd+full_chroma_int")
			want := append(y, uv...)
			if len(got) != len(want) {
				t.Fatalf("swscale gave %d bytes, want %d", len(got), len(want))
			}
			if d, at := maxDiff(got[:w*h], want[:w*h]); d > 2 {
				t.Errorf("bpp %d seed %d: luma differs by %d at (%d,%d): swscale %d, reference %d", tc.bpp, seed, d, at%w, at/w, got[at], want[at])
			}
			if d, at := maxDiff(got[w*h:], want[w*h:]); d > 2 {
				t.Errorf("bpp %d seed %d: chroma differs by %d at byte %d: swscale %d, reference %d", tc.bpp, seed, d, at, got[w*h+at], want[w*h+at])
			}
		}
	}
}

// The CPU reference of fw_nv12_to_rgb agrees with swscale's BT.709
// limited-range NV12→RGB24 within ±2 per channel. The input sweeps luma
// over its whole range and Cb, Cr over theirs along x and y; chroma
// changes by less than one step per sample so swscale's interpolating
// chroma upsampler and the kernel's replicating one agree, and what is
// compared is the matrix and the range.
func TestReferenceNV12ToRGBMatchesSwscale(t *testing.T) {
	const w, h = 640, 480
	for _, flip := range []bool{false, true} {
		y := make([]byte, w*h)
		uv := make([]byte, w*h/2)
		for j := 0; j < h; j++ {
			for i := 0; i < w; i++ {
				y[j*w+i] = byte(16 + (i+j)*219/(w+h))
			}
		}
		for j := 0; j < h/2; j++ {
			for i := 0; i < w/2; i++ {
				cb, cr := 16+i*224/(w/2), 240-j*224/(h/2)
				if flip {
					cb, cr = 256-cb, 256-cr
				}
				uv[j*w+2*i], uv[j*w+2*i+1] = byte(cb), byte(cr)
			}
		}
		want := refNV12ToRGB(y, w, uv, w, w, h, 3)
		got := swscaleConvert(t, append(y, uv...), w, h, astiav.PixelFormatNv12, astiav.PixelFormatRgb24,
			"in_color_matrix=bt709:in_range=tv:flags=bilinear+accurate_rnd+full_chroma_int")
		if d, at := maxDiff(got, want); d > 2 {
			t.Errorf("flip %v: differs by %d at pixel (%d,%d) channel %d: swscale %d, reference %d", flip, d, at/3%w, at/3/w, at%3, got[at], want[at])
		}
	}
}

// The reference round trip RGB→NV12→RGB stays within the error chroma
// subsampling of a smooth picture allows.
func TestReferenceRoundTrip(t *testing.T) {
	const w, h = 64, 48
	img := testImage(w, h, 3, 5)
	y, uv := refRGBToNV12(img, w*3, 3, w, h, w, h)
	back := refNV12ToRGB(y, w, uv, w, w, h, 3)
	if d, at := maxDiff(img, back); d > 12 {
		t.Errorf("round trip differs by %d at byte %d (%d → %d)", d, at, img[at], back[at])
	}
	if p := encodetest.PSNR(img, back); p < 35 {
		t.Errorf("round trip PSNR %.1f dB, want >= 35", p)
	}
}
