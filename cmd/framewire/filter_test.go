package main

import (
	"image"
	"math/rand/v2"
	"testing"
)

// TestFitCamera: a camera picture keeps its aspect, centred, filling the
// height (4:3, Megamind's 720×528) or the whole picture (16:9).
func TestFitCamera(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want image.Rectangle
	}{
		{640, 480, image.Rect(80, 0, 560, 360)},
		{720, 528, image.Rect(74, 0, 565, 360)},
		{360, 264, image.Rect(74, 0, 565, 360)},
		{1280, 720, image.Rect(0, 0, 640, 360)},
		{640, 640, image.Rect(140, 0, 500, 360)},
	} {
		if got := fitCamera(c.w, c.h).rect; got != c.want {
			t.Errorf("fitCamera(%d, %d) = %v, want %v", c.w, c.h, got, c.want)
		}
	}
	f := fitCamera(640, 480) // s = 0.75
	if got := f.toOutput(image.Rect(100, 40, 300, 240)); got != image.Rect(155, 30, 305, 180) {
		t.Errorf("toOutput = %v, want (155,30)-(305,180)", got)
	}
	if got := f.toOutput(image.Rect(600, 400, 700, 500)); got != image.Rect(530, 300, 560, 360) {
		t.Errorf("toOutput of a box past the edge = %v, want it clipped to (530,300)-(560,360)", got)
	}
}

// noise returns a demoW×demoH picture of random pixels (a face's detail
// at its worst).
func noise() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	img := make([]byte, demoW*demoH*3)
	for i := range img {
		img[i] = byte(r.IntN(256))
	}
	return img
}

// outsideSame reports whether img and ref agree everywhere outside b.
func outsideSame(img, ref []byte, b image.Rectangle) bool {
	for y := 0; y < demoH; y++ {
		for x := 0; x < demoW; x++ {
			if image.Pt(x, y).In(b) {
				continue
			}
			i := (y*demoW + x) * 3
			if img[i] != ref[i] || img[i+1] != ref[i+1] || img[i+2] != ref[i+2] {
				return false
			}
		}
	}
	return true
}

// cellStd is the mean over the pixelBlock grid cells wholly inside b of
// the standard deviation of their red channel.
func cellStd(img []byte, b image.Rectangle) float64 {
	var sum float64
	n := 0
	for cy := 0; cy+pixelBlock <= demoH; cy += pixelBlock {
		for cx := 0; cx+pixelBlock <= demoW; cx += pixelBlock {
			if !image.Rect(cx, cy, cx+pixelBlock, cy+pixelBlock).In(b) {
				continue
			}
			var s, s2 float64
			for y := cy; y < cy+pixelBlock; y++ {
				for x := cx; x < cx+pixelBlock; x++ {
					v := float64(img[(y*demoW+x)*3])
					s, s2 = s+v, s2+v*v
				}
			}
			m := s / (pixelBlock * pixelBlock)
			sum += s2/(pixelBlock*pixelBlock) - m*m
			n++
		}
	}
	return sum / float64(n)
}

// TestApplyFilter: each mode changes the picture inside the box only:
// pixelate makes every grid cell one colour, blur takes most of the
// variance away, boxes draws a frame of the colour, off draws nothing.
func TestApplyFilter(t *testing.T) {
	box := image.Rect(101, 53, 277, 230)
	ref := noise()
	scratch := make([]byte, len(ref))
	green := [3]byte{0, 255, 0}
	run := func(mode string) []byte {
		img := append([]byte(nil), ref...)
		applyFilter(img, scratch, mode, []image.Rectangle{box}, green)
		if !outsideSame(img, ref, box) {
			t.Errorf("%s: changed pixels outside the box", mode)
		}
		return img
	}
	before := cellStd(ref, box)
	if got := cellStd(run(filterPixelate), box); got != 0 {
		t.Errorf("pixelate: cell variance %.1f inside the box, want 0", got)
	}
	if got := cellStd(run(filterBlur), box); got > before/20 {
		t.Errorf("blur: cell variance %.1f inside the box, want < 1/20 of %.1f", got, before)
	}
	img := run(filterBoxes)
	for _, p := range []image.Point{box.Min, {box.Max.X - 1, box.Min.Y + 50}, {box.Min.X + 2, box.Max.Y - 3}} {
		if px := img[(p.Y*demoW+p.X)*3:][:3]; px[0] != 0 || px[1] != 255 || px[2] != 0 {
			t.Errorf("boxes: pixel %v on the frame is %v, want green", p, px)
		}
	}
	if cellStd(img, box.Inset(3)) != cellStd(ref, box.Inset(3)) {
		t.Error("boxes: changed the inside of the box")
	}
	if cellStd(run(filterOff), box) != before {
		t.Error("off: changed the box")
	}
}

// TestDrawCameraNoAllocs: the webcam, fitted, and a filter over three
// faces allocate nothing per frame.
func TestDrawCameraNoAllocs(t *testing.T) {
	cam := &webcamFrame{pix: make([]byte, 720*528*3), w: 720, h: 528}
	img, scratch := make([]byte, demoW*demoH*3), make([]byte, demoW*demoH*3)
	boxes := []image.Rectangle{image.Rect(300, 40, 450, 190), image.Rect(90, 200, 150, 260), image.Rect(500, 10, 560, 70)}
	for _, mode := range []string{filterBoxes, filterBlur, filterPixelate} {
		if n := testing.AllocsPerRun(5, func() {
			drawCamera(img, cam, fitCamera(cam.w, cam.h))
			applyFilter(img, scratch, mode, boxes, [3]byte{1, 2, 3})
		}); n != 0 {
			t.Errorf("%s: %.0f allocations per frame", mode, n)
		}
	}
}
