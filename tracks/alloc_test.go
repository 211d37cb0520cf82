package tracks_test

import (
	"context"
	"image"
	"testing"
	"time"

	"github.com/framewire/framewire/tracks"
)

// Steady-state Emit → Next → Release allocates nothing.
func TestEmitAllocatesNothing(t *testing.T) {
	s := mustSet(t, tracks.AudioOutput("a"), tracks.VideoOutput("v"))
	out, _ := s.VideoOut("v")
	a, _ := s.AudioOut("a")
	ctx := ctxT(t)
	pix := rgb(64, 48, 3)
	batch := make([]byte, 4*len(pix))
	pcm := make([]int16, 960*2)
	fpcm := make([]float32, 960)
	sub := tracks.NewImage(80, 60).SubImage(image.Rect(8, 6, 72, 54)) // strided
	step := func() {
		if err := out.Emit(pix, 48, 64, 3); err != nil {
			t.Fatal(err)
		}
		f, err := out.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
		if err := out.Emit(batch, 4, 48, 64, 3); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			f, err := out.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			f.Release()
		}
		if err := out.EmitImage(ctx, sub); err != nil {
			t.Fatal(err)
		}
		if f, err := out.Next(ctx); err != nil {
			t.Fatal(err)
		} else {
			f.Release()
		}
		if err := a.Emit(pcm, 2, 960); err != nil {
			t.Fatal(err)
		}
		if err := a.EmitFloat32(fpcm); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			f, _ := a.Next(ctx)
			f.Release()
		}
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocations per Emit cycle, want 0", n)
	}
	// Drop-oldest with nobody reading recycles too.
	drop := func() { _ = out.Emit(pix, 48, 64, 3) }
	for i := 0; i < 10; i++ {
		drop()
	}
	if n := testing.AllocsPerRun(100, drop); n != 0 {
		t.Fatalf("%v allocations per dropping Emit, want 0", n)
	}
}

// Steady-state Deliver (latest buffer and OnMedia queue) and Borrow/LatestInto
// allocate nothing.
func TestDeliverAllocatesNothing(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.AudioInput("mic"))
	in, _ := s.VideoIn("webcam")
	mic, _ := s.AudioIn("mic")
	pix := rgb(64, 48, 3)
	pcm := make([]int16, 960)
	now := time.Now()
	var dst tracks.VideoFrame
	step := func() {
		_ = in.Deliver(pix, 64, 48, now)
		_ = mic.Deliver(pcm, now)
		b := in.Borrow()
		_ = in.Deliver(pix, 64, 48, now)
		b.Release()
		in.LatestInto(&dst)
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocations per Deliver, want 0", n)
	}
	q := tracks.NewMediaQueue(4)
	defer q.Close()
	s.Subscribe(q)
	ctx := context.Background()
	withMedia := func() {
		_ = in.Deliver(pix, 64, 48, now)
		_ = mic.Deliver(pcm, now)
		for i := 0; i < 2; i++ {
			b, _ := q.Next(ctx)
			b.Release()
		}
	}
	withMedia()
	if n := testing.AllocsPerRun(100, withMedia); n != 0 {
		t.Fatalf("%v allocations per Deliver with OnMedia, want 0", n)
	}
}

func BenchmarkVideoOut_Emit(b *testing.B) {
	s, _ := tracks.NewSet(nil)
	defer s.Close()
	out, _ := s.VideoOut("")
	pix := make([]byte, 1280*720*3)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(pix)))
	for b.Loop() {
		_ = out.Emit(pix, 720, 1280, 3)
		f, _ := out.Next(ctx)
		f.Release()
	}
}
