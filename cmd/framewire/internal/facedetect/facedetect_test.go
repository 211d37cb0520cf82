package facedetect

import (
	"errors"
	"image"
	"slices"
	"testing"
	"time"
)

func open(t testing.TB) *Detector {
	t.Helper()
	d, err := Open(DefaultCascade)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The demo's parameters for Megamind's 720×528 picture: scaled to 320
// pixels wide, faces of 60 output pixels (88 camera pixels) and up.
var megamindParams = Params{Downscale: 320.0 / 720, MinSize: 88, ScaleFactor: 1.1}

// TestDetectMegamind runs the cascade on every 9th frame of Megamind.avi
// (31 frames): a face is found in at least 80 % of them, each box is a
// plausible face (an eighth to three quarters of the picture's height)
// inside the picture, and frame 135 has one where its face is (x 410..590,
// y 120..330 in the 720×528 picture, checked by eye).
func TestDetectMegamind(t *testing.T) {
	frames, total, w, h := y4mFrames(t, 9)
	if w != 720 || h != 528 || total < 270 {
		t.Fatalf("Megamind is %dx%d with %d frames; want 720x528, 270", w, h, total)
	}
	d := open(t)
	found, tried := 0, 0
	for i, frame := range frames {
		tried++
		boxes, err := d.Detect(nil, frame, w, h, megamindParams)
		if err != nil {
			t.Fatalf("frame %d: %v", 9*i, err)
		}
		if len(boxes) > 0 {
			found++
		}
		for _, b := range boxes {
			if !b.In(image.Rect(0, 0, w, h)) || b.Dy() < h/8 || b.Dy() > h*3/4 {
				t.Errorf("frame %d: implausible face box %v", 9*i, b)
			}
		}
	}
	t.Logf("faces in %d of %d frames", found, tried)
	if found*10 < tried*8 {
		t.Errorf("faces in %d of %d frames; want at least 80%%", found, tried)
	}
	boxes, _ := d.Detect(nil, frames[135/9], w, h, megamindParams)
	face := image.Rect(410, 120, 590, 330)
	if !slices.ContainsFunc(boxes, func(b image.Rectangle) bool {
		c := image.Pt((b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2)
		return c.In(face)
	}) {
		t.Errorf("frame 135: boxes %v; want one centred in %v", boxes, face)
	}
}

// TestDetectNothing: a flat picture and a gradient have no face; Detect
// appends to dst and leaves what was there.
func TestDetectNothing(t *testing.T) {
	d := open(t)
	const w, h = 320, 240
	flat := make([]byte, w*h*3)
	grad := make([]byte, w*h*3)
	for i := range grad {
		flat[i] = 128
		grad[i] = byte(i / 3 % w)
	}
	keep := []image.Rectangle{image.Rect(1, 2, 3, 4)}
	for name, pic := range map[string][]byte{"flat": flat, "gradient": grad} {
		got, err := d.Detect(keep, pic, w, h, Params{})
		if err != nil || len(got) != 1 || got[0] != keep[0] {
			t.Errorf("%s: Detect = %v, %v; want dst unchanged, no error", name, got, err)
		}
	}
}

// TestDetectErrors: a short buffer, a missing cascade, Detect after Close
// and a second Close.
func TestDetectErrors(t *testing.T) {
	d := open(t)
	if _, err := d.Detect(nil, make([]byte, 10), 4, 4, Params{}); err == nil {
		t.Error("Detect of 10 bytes as 4x4 RGB24: no error")
	}
	if _, err := Open("/nonexistent/cascade.xml"); err == nil {
		t.Error("Open of a missing file: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Detect(nil, make([]byte, 48), 4, 4, Params{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Detect after Close: %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// BenchmarkDetect measures one detection on a 640×360 picture (Megamind's
// frames cropped to 16:9 and scaled), as the demo runs it on a 640×360
// webcam: scaled to 320×180 (min_size 60, scale 1.1, its defaults), and
// with min_size 20 (the full picture) and scale 1.2. It reports
// detect_ms's p50 and p95.
//
//	go test -run '^$' -bench Detect -benchtime 100x ./cmd/framewire/internal/facedetect/
func BenchmarkDetect(b *testing.B) {
	frames, _, w, h := y4mFrames(b, 3)
	pics := make([][]byte, 0, len(frames))
	for _, f := range frames {
		pics = append(pics, cropScale(f, w, h, 640, 360))
	}
	d := open(b)
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"size=640x360/min=60/scale=1.1", Params{Downscale: 0.5, MinSize: 60, ScaleFactor: 1.1}},
		{"size=640x360/min=60/scale=1.2", Params{Downscale: 0.5, MinSize: 60, ScaleFactor: 1.2}},
		{"size=640x360/min=20/scale=1.1", Params{Downscale: 1, MinSize: 20, ScaleFactor: 1.1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ms := make([]float64, 0, b.N)
			found := 0
			var dst []image.Rectangle
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				var err error
				dst, err = d.Detect(dst[:0], pics[i%len(pics)], 640, 360, c.p)
				if err != nil {
					b.Fatal(err)
				}
				ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
				if len(dst) > 0 {
					found++
				}
			}
			slices.Sort(ms)
			b.ReportMetric(ms[len(ms)/2], "p50_ms")
			b.ReportMetric(ms[min(len(ms)-1, len(ms)*95/100)], "p95_ms")
			b.ReportMetric(float64(found)/float64(b.N), "found/op")
		})
	}
}

// cropScale crops a w×h RGB24 picture to the aspect of dw×dh around its
// centre and scales it to dw×dh, nearest neighbour.
func cropScale(rgb []byte, w, h, dw, dh int) []byte {
	ch := w * dh / dw
	y0 := (h - ch) / 2
	out := make([]byte, dw*dh*3)
	for y := 0; y < dh; y++ {
		sy := y0 + y*ch/dh
		for x := 0; x < dw; x++ {
			copy(out[(y*dw+x)*3:(y*dw+x)*3+3], rgb[(sy*w+x*w/dw)*3:])
		}
	}
	return out
}
