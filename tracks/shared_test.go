package tracks_test

import (
	"context"
	"errors"
	"image"
	"sync/atomic"
	"testing"

	"github.com/framewire/framewire/tracks"
)

// counter is a Releaser that counts its calls.
type counter struct{ n atomic.Int32 }

func (c *counter) Release() { c.n.Add(1) }

func (c *counter) want(t *testing.T, n int32, when string) {
	t.Helper()
	if got := c.n.Load(); got != n {
		t.Fatalf("%s: Release called %d times, want %d", when, got, n)
	}
}

// EmitShared queues the caller's pixels without copying them and gives
// them back exactly once, whichever way the frame leaves the track.
func TestEmitSharedLendsPixels(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v", tracks.QueueSize(2)))
	out, _ := s.VideoOut("v")
	ctx := ctxT(t)

	// Encoded: Next sees the caller's memory; Release gives it back.
	img := tracks.NewImage(4, 2)
	var c counter
	if err := out.EmitShared(ctx, img, &c); err != nil {
		t.Fatal(err)
	}
	f, err := out.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if &f.Pix[0] != &img.Pix[0] || len(f.Pix) != 4*2*3 || f.Width != 4 || f.Height != 2 {
		t.Fatalf("frame %dx%d with %d bytes at a copy; want the caller's 4x2 pixels in place", f.Width, f.Height, len(f.Pix))
	}
	c.want(t, 0, "while the pipeline holds the frame")
	f.Release()
	c.want(t, 1, "after Release")
	f.Release()
	c.want(t, 1, "after a second Release")

	// Dropped for a newer frame (DropOldest, queue of 2).
	var d [3]counter
	for i := range d {
		if err := out.EmitShared(ctx, tracks.NewImage(2, 2), &d[i]); err != nil {
			t.Fatal(err)
		}
	}
	d[0].want(t, 1, "the dropped oldest frame")
	d[1].want(t, 0, "a queued frame")
	if st := out.Stats(); st.Dropped != 1 || st.QueueDepth != 2 {
		t.Fatalf("stats %+v, want 1 dropped and 2 queued", st)
	}

	// A strided image is copied, and given back at once.
	var st counter
	sub := tracks.NewImage(8, 8).SubImage(image.Rect(2, 2, 6, 6))
	if err := out.EmitShared(ctx, sub, &st); err != nil {
		t.Fatal(err)
	}
	st.want(t, 1, "a copied strided image, on return")
	d[1].want(t, 1, "the frame the strided one pushed out")

	// A bad image: an error, nothing queued, given back.
	var bad counter
	if err := out.EmitShared(ctx, tracks.Image{Pix: make([]byte, 5), Width: 2, Height: 2}, &bad); !errors.Is(err, tracks.ErrBadFrame) {
		t.Fatalf("short image: %v, want ErrBadFrame", err)
	}
	bad.want(t, 1, "a rejected image, on return")

	// Close discards what is queued: given back too.
	_ = out.Close()
	d[2].want(t, 1, "a frame discarded at close")
	var late counter
	if err := out.EmitShared(ctx, tracks.NewImage(2, 2), &late); !errors.Is(err, tracks.ErrClosed) {
		t.Fatalf("emit after close: %v, want ErrClosed", err)
	}
	late.want(t, 1, "an emit after close, on return")

	// nil done: pixels that never change.
	s2 := mustSet(t, tracks.VideoOutput("w"))
	w, _ := s2.VideoOut("w")
	if err := w.EmitShared(ctx, tracks.NewImage(2, 2), nil); err != nil {
		t.Fatal(err)
	}
	g, _ := w.Next(ctx)
	g.Release()
}

// A back-pressure track whose wait ends with ctx gives the pixels back.
func TestEmitSharedContextEnds(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v", tracks.QueueSize(1), tracks.Backpressure()))
	out, _ := s.VideoOut("v")
	var a, b counter
	if err := out.EmitShared(ctxT(t), tracks.NewImage(2, 2), &a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := out.EmitShared(ctx, tracks.NewImage(2, 2), &b); !errors.Is(err, context.Canceled) {
		t.Fatalf("full queue, ended ctx: %v, want context.Canceled", err)
	}
	b.want(t, 1, "a frame whose wait ended")
	a.want(t, 0, "the queued frame")
}

// Steady-state EmitShared → Next → Release allocates nothing.
func TestEmitSharedAllocatesNothing(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v"))
	out, _ := s.VideoOut("v")
	ctx := ctxT(t)
	img := tracks.NewImage(64, 48)
	var c counter
	step := func() {
		if err := out.EmitShared(ctx, img, &c); err != nil {
			t.Fatal(err)
		}
		f, err := out.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocations per EmitShared cycle, want 0", n)
	}
}
