package tracks_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"

	"github.com/framewire/framewire/tracks"
)

// A sub-image shares its parent's pixels (no copy), and EmitImage sends
// exactly its pixels, row by row, whatever the stride.
func TestEmitImageSubImage(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v"))
	out, _ := s.VideoOut("v")
	img := tracks.NewImage(5, 4)
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	sub := img.SubImage(image.Rect(1, 1, 4, 3))
	if sub.Width != 3 || sub.Height != 2 || sub.Stride != 15 {
		t.Fatalf("sub-image %dx%d stride %d; want 3x2 stride 15", sub.Width, sub.Height, sub.Stride)
	}
	sub.Pix[0] = 200 // shared: pixel (1,1) of the parent
	if img.Pix[1*15+3] != 200 {
		t.Fatal("SubImage copied the pixels")
	}
	if err := out.EmitImage(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	f, err := out.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	want := append(append([]byte{}, img.Pix[18:27]...), img.Pix[33:42]...)
	if f.Width != 3 || f.Height != 2 || string(f.Pix) != string(want) {
		t.Fatalf("frame %dx%d %v; want 3x2 %v", f.Width, f.Height, f.Pix, want)
	}
	if e := img.SubImage(image.Rect(9, 9, 12, 12)); e.Width != 0 || e.Height != 0 {
		t.Fatalf("out-of-bounds SubImage %+v; want empty", e)
	}
}

// Bad images are refused with ErrBadFrame and a message saying what was
// expected; nothing is queued.
func TestEmitImageRejectsBadImages(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v"))
	out, _ := s.VideoOut("v")
	for _, c := range []struct {
		img  tracks.Image
		says string
	}{
		{tracks.Image{Width: 0, Height: 2}, "positive width and height"},
		{tracks.Image{Pix: make([]byte, 12), Width: 2, Height: 2, Stride: 5}, "stride 5 < width*3 = 6"},
		{tracks.Image{Pix: make([]byte, 11), Width: 2, Height: 2}, "want at least 12"},
	} {
		err := out.EmitImage(context.Background(), c.img)
		if !errors.Is(err, tracks.ErrBadFrame) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "v") {
			t.Errorf("EmitImage(%dx%d stride %d, %d bytes): %v; want ErrBadFrame saying %q", c.img.Width, c.img.Height, c.img.Stride, len(c.img.Pix), err, c.says)
		}
	}
	if st := out.Stats(); st.Rejected != 3 || st.QueueDepth != 0 {
		t.Fatalf("stats %+v; want 3 rejected, nothing queued", st)
	}
}

// A model that renders into a larger canvas emits the visible region
// without copying it first.
func ExampleImage_SubImage() {
	canvas := tracks.NewImage(1920, 1080)
	view := canvas.SubImage(image.Rect(320, 180, 1600, 900)) // a 1280x720 crop
	fmt.Println(view.Width, view.Height, view.Stride, &view.Pix[0] == &canvas.Pix[180*canvas.Stride+320*3])
	// Output: 1280 720 5760 true
}
