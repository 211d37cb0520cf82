package tracks_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/tracks"
)

func wantErr(t *testing.T, err, sentinel error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not say %q", err, f)
		}
	}
}

func TestResolveRejectsBadDeclarations(t *testing.T) {
	cases := []struct {
		name  string
		specs []tracks.Spec
		says  []string
	}{
		{"empty name", []tracks.Spec{tracks.VideoOutput("")}, []string{"track 0 has an empty name"}},
		{"duplicate", []tracks.Spec{tracks.VideoOutput("main_video"), tracks.VideoInput("main_video")}, []string{`both named "main_video"`, "unique"}},
		{"two defaults", []tracks.Spec{tracks.VideoOutput("a", tracks.Default()), tracks.VideoOutput("b", tracks.Default())}, []string{`"a" and "b" are both marked default`}},
		{"input default", []tracks.Spec{tracks.VideoInput("webcam", tracks.Default())}, []string{`"webcam" is a VideoIn and cannot be the default`, "VideoOut or AudioOut"}},
		{"audio input default", []tracks.Spec{tracks.AudioInput("mic", tracks.Default())}, []string{"AudioIn", "cannot be the default"}},
		{"negative rate", []tracks.Spec{tracks.VideoOutput("v", tracks.Rate(-1))}, []string{"rate -1", "finite positive"}},
		{"NaN rate", []tracks.Spec{tracks.VideoOutput("v", tracks.Rate(math.NaN()))}, []string{"rate NaN"}},
		{"Inf rate", []tracks.Spec{tracks.AudioOutput("a", tracks.Rate(math.Inf(1)))}, []string{"rate +Inf"}},
		{"-Inf rate", []tracks.Spec{tracks.VideoInput("a", tracks.Rate(math.Inf(-1)))}, []string{"rate -Inf"}},
		{"fractional audio rate", []tracks.Spec{tracks.AudioOutput("a", tracks.Rate(44100.5))}, []string{"whole number"}},
		{"bad kind", []tracks.Spec{{Name: "x"}}, []string{`"x" has kind Kind(0)`}},
		{"negative queue", []tracks.Spec{tracks.VideoOutput("v", tracks.QueueSize(-2))}, []string{"queue size -2"}},
		{"input policy", []tracks.Spec{tracks.VideoInput("w", tracks.Backpressure())}, []string{"outputs only"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tracks.Resolve(c.specs)
			wantErr(t, err, tracks.ErrInvalidSpec, c.says...)
			_, err = tracks.NewSet(c.specs)
			wantErr(t, err, tracks.ErrInvalidSpec)
		})
	}
}

func TestVideoEmitRejectsBadFrames(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	cases := []struct {
		name  string
		pix   []byte
		shape []int
		says  []string
	}{
		{"short buffer", make([]byte, 10), []int{2, 2, 3}, []string{"pix has 10 bytes", "shape (2, 2, 3) needs 12"}},
		{"long buffer", make([]byte, 13), []int{2, 2, 3}, []string{"pix has 13 bytes", "needs 12"}},
		{"batch length", make([]byte, 12), []int{2, 2, 2, 3}, []string{"needs 24"}},
		{"nil with shape", nil, []int{2, 2, 3}, []string{"pix has 0 bytes"}},
		{"no shape", make([]byte, 12), nil, []string{"shape () has 0 dimensions", "want (H, W, 3) or (N, H, W, 3)"}},
		{"rank 2", make([]byte, 12), []int{2, 6}, []string{"2 dimensions"}},
		{"rank 5", make([]byte, 12), []int{1, 1, 2, 2, 3}, []string{"5 dimensions"}},
		{"four channels", make([]byte, 16), []int{2, 2, 4}, []string{"4 channels", "want 3"}},
		{"one channel", make([]byte, 4), []int{2, 2, 1}, []string{"1 channels", "want 3"}},
		{"zero height", nil, []int{0, 2, 3}, []string{"zero or negative size"}},
		{"negative width", make([]byte, 12), []int{2, -2, 3}, []string{"zero or negative size"}},
		{"zero batch", nil, []int{0, 2, 2, 3}, []string{"zero or negative size"}},
		{"huge", nil, []int{100000, 100000, 3}, []string{"too large"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, out.Emit(c.pix, c.shape...), tracks.ErrBadFrame, c.says...)
		})
	}
	if st := out.Stats(); st.Emitted != 0 || st.Rejected != uint64(len(cases)) || st.QueueDepth != 0 {
		t.Fatalf("stats after bad emits: %+v", st)
	}
}

func TestAudioEmitRejectsBadChunks(t *testing.T) {
	s := mustSet(t, tracks.AudioOutput("a"))
	a, _ := s.AudioOut("a")
	wantErr(t, a.Emit([]int16{}), tracks.ErrBadFrame, "no samples")
	wantErr(t, a.Emit([]int16{1, 2, 3}, 2, 2), tracks.ErrBadFrame, "pcm has 3 samples", "needs 4")
	wantErr(t, a.Emit([]int16{1, 2, 3}, 4), tracks.ErrBadFrame, "needs 4")
	wantErr(t, a.Emit(make([]int16, 18), 9, 2), tracks.ErrBadFrame, "9 channels", "1 to 8")
	wantErr(t, a.Emit([]int16{1}, 0, 1), tracks.ErrBadFrame, "0 channels")
	wantErr(t, a.Emit([]int16{1}, 1, 1, 1), tracks.ErrBadFrame, "3 dimensions")
	wantErr(t, a.EmitFloat32([]float32{0.5}, 2, 1), tracks.ErrBadFrame, "needs 2")
	if a.Stats().Rejected != 7 {
		t.Fatalf("rejected %d", a.Stats().Rejected)
	}
}

func TestDeliverRejectsBadInput(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.AudioInput("mic"))
	in, _ := s.VideoIn("webcam")
	mic, _ := s.AudioIn("mic")
	wantErr(t, in.Deliver(make([]byte, 11), 2, 2, time.Now()), tracks.ErrBadFrame, "delivered 11 bytes for 2x2; want 12")
	wantErr(t, in.Deliver(nil, 0, 2, time.Now()), tracks.ErrBadFrame, "0x2")
	wantErr(t, mic.Deliver(nil, time.Now()), tracks.ErrBadFrame, "delivered 0 samples")
	if in.Latest() != nil || mic.Latest() != nil {
		t.Fatal("bad input was stored")
	}
	if in.Stats().Rejected != 2 || mic.Stats().Rejected != 1 {
		t.Fatal("rejections not counted")
	}
}

func TestLookupErrors(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.VideoOutput("main_video"))
	_, err := s.Track("camera")
	wantErr(t, err, tracks.ErrUnknownTrack, `"camera"`, `"webcam" (VideoIn)`, `"main_video" (VideoOut)`)
	_, err = s.VideoOut("webcam")
	wantErr(t, err, tracks.ErrWrongKind, `"webcam" is a VideoIn, not a VideoOut`)
	_, err = s.AudioIn("webcam")
	wantErr(t, err, tracks.ErrWrongKind, "not a AudioIn")
	_, err = s.VideoIn("")
	wantErr(t, err, tracks.ErrWrongKind, `"main_video" is a VideoOut`)
}

type fakeDevice struct {
	w, h, n  int
	released int
}

func (d *fakeDevice) Size() (int, int) { return d.w, d.h }
func (d *fakeDevice) Frames() int      { return d.n }
func (d *fakeDevice) Release()         { d.released++ }

var errNoCUDA = errors.New("gpu: built without CUDA (rebuild with -tags cuda on a host with an NVIDIA driver)")

func TestEmitDevice(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	wantErr(t, out.EmitDevice(&fakeDevice{w: 4, h: 4, n: 1}), tracks.ErrNoDevicePath, "main_video", "cannot emit a device frame")
	s.SetDeviceSupport(errNoCUDA)
	wantErr(t, out.EmitDevice(&fakeDevice{w: 4, h: 4, n: 1}), errNoCUDA, "built without CUDA")
	s.SetDeviceSupport(nil)
	wantErr(t, out.EmitDevice(nil), tracks.ErrBadFrame, "EmitDevice(nil)")
	wantErr(t, out.EmitDevice(&fakeDevice{w: 0, h: 4, n: 1}), tracks.ErrBadFrame, "0x4")
	d := &fakeDevice{w: 33, h: 17, n: 4}
	if err := out.EmitDevice(d); err != nil {
		t.Fatal(err)
	}
	f, err := out.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Device != d || f.Pix != nil || f.Width != 33 || f.Height != 17 || f.BatchSize != 4 {
		t.Fatalf("%+v", f)
	}
	f.Release()
	f.Release() // idempotent
	if d.released != 1 {
		t.Fatalf("device frame released %d times, want 1", d.released)
	}
	// A device frame still queued at close is released too.
	d2 := &fakeDevice{w: 2, h: 2, n: 1}
	_ = out.EmitDevice(d2)
	_ = out.Close()
	if d2.released != 1 {
		t.Fatal("queued device frame not released at close")
	}
}

func TestDropOldestWhenFull(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v", tracks.QueueSize(2)))
	out, _ := s.VideoOut("v")
	for i := 1; i <= 5; i++ {
		if err := out.Emit(rgb(1, 1, byte(i)), 1, 1, 3); err != nil {
			t.Fatal(err)
		}
	}
	st := out.Stats()
	if st.Emitted != 5 || st.Dropped != 3 || st.QueueDepth != 2 || st.QueueCap != 2 {
		t.Fatalf("stats %+v", st)
	}
	for _, want := range []byte{4, 5} {
		f, _ := out.Next(ctxT(t))
		if f.Pix[0] != want {
			t.Fatalf("got %d want %d (oldest dropped)", f.Pix[0], want)
		}
		f.Release()
	}
}

func TestBackpressureBlocksUntilRoom(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v", tracks.QueueSize(1), tracks.Backpressure()))
	out, _ := s.VideoOut("v")
	_ = out.Emit(rgb(1, 1, 1), 1, 1, 3)
	done := make(chan error)
	go func() { done <- out.Emit(rgb(1, 1, 2), 1, 1, 3) }()
	waitBlocked(t, out, 1)
	select {
	case err := <-done:
		t.Fatalf("Emit returned %v while the queue was full", err)
	default:
	}
	f, _ := out.Next(ctxT(t))
	f.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f, _ = out.Next(ctxT(t))
	if f.Pix[0] != 2 || out.Stats().Dropped != 0 {
		t.Fatal("frame lost in block mode")
	}
	f.Release()
	// A blocked EmitContext gives up with its context's cause, recycling
	// its frame: the queue keeps what it had.
	_ = out.Emit(rgb(1, 1, 3), 1, 1, 3)
	cause := errors.New("model gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { done <- out.EmitContext(ctx, rgb(1, 1, 5), 1, 1, 3) }()
	waitBlocked(t, out, 1)
	cancel(cause)
	if err := <-done; !errors.Is(err, cause) {
		t.Fatalf("EmitContext after cancel: %v; want its cause", err)
	}
	if st := out.Stats(); st.Blocked != 0 || st.QueueDepth != 1 {
		t.Fatalf("stats %+v: want nothing blocked and the one queued frame", st)
	}
	// A blocked Emit returns ErrClosed when the session ends.
	go func() { done <- out.Emit(rgb(1, 1, 4), 1, 1, 3) }()
	waitBlocked(t, out, 1) // Emit really waits before Close
	_ = out.Close()
	wantErr(t, <-done, tracks.ErrClosed, "v")
}

// waitBlocked waits until n Emit calls of out wait for room.
func waitBlocked(t *testing.T, out *tracks.VideoOut, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for out.Stats().Blocked != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d Emit calls blocked; want %d", out.Stats().Blocked, n)
		}
		runtime.Gosched()
	}
}

func TestNextHonoursContextAndClose(t *testing.T) {
	s := mustSet(t, tracks.AudioOutput("a"))
	a, _ := s.AudioOut("a")
	cause := errors.New("session over")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if _, err := a.Next(ctx); !errors.Is(err, cause) {
		t.Fatalf("Next on cancelled ctx: %v, want its cause", err)
	}
	_ = s.Close()
	_ = s.Close()
	if _, err := a.Next(context.Background()); !errors.Is(err, tracks.ErrClosed) {
		t.Fatalf("Next after close: %v", err)
	}
	wantErr(t, a.Emit(nil), tracks.ErrClosed, "a")
}

func TestOddSizesStream(t *testing.T) {
	// Odd widths and heights are accepted as they are; the encoder pads.
	s := mustSet(t)
	out, _ := s.VideoOut("")
	if err := out.Emit(rgb(33, 17, 5), 17, 33, 3); err != nil {
		t.Fatal(err)
	}
	f, _ := out.Next(ctxT(t))
	defer f.Release()
	if f.Width != 33 || f.Height != 17 || len(f.Pix) != 33*17*3 {
		t.Fatalf("%dx%d %d", f.Width, f.Height, len(f.Pix))
	}
}

func TestEmitCopiesCallerBuffer(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	buf := rgb(2, 2, 1)
	_ = out.Emit(buf, 2, 2, 3)
	buf[0] = 77 // reuse right after Emit returns
	f, _ := out.Next(ctxT(t))
	defer f.Release()
	if f.Pix[0] != 1 {
		t.Fatal("Emit kept the caller's buffer")
	}
}

func TestAudioNormalisation(t *testing.T) {
	s := mustSet(t, tracks.AudioOutput("a", tracks.Rate(24000)))
	a, _ := s.AudioOut("a")
	// (C, N) planar → interleaved.
	if err := a.Emit([]int16{1, 2, 3, -1, -2, -3}, 2, 3); err != nil {
		t.Fatal(err)
	}
	f, _ := a.Next(ctxT(t))
	if want := []int16{1, -1, 2, -2, 3, -3}; !equal16(f.PCM, want) || f.Channels != 2 || f.SampleRate != 24000 || f.Samples() != 3 {
		t.Fatalf("got %v ch %d rate %d", f.PCM, f.Channels, f.SampleRate)
	}
	f.Release()
	// float32 in [-1, 1], clipped, NaN → 0.
	if err := a.EmitFloat32([]float32{0, 0.5, -1, 2, float32(math.NaN())}, 5); err != nil {
		t.Fatal(err)
	}
	f, _ = a.Next(ctxT(t))
	if want := []int16{0, 16384, -32767, 32767, 0}; !equal16(f.PCM, want) || f.Channels != 1 {
		t.Fatalf("got %v", f.PCM)
	}
	f.Release()
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBorrowIsStableUntilRelease(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"))
	in, _ := s.VideoIn("webcam")
	if in.Borrow() != nil {
		t.Fatal("Borrow before data")
	}
	_ = in.Deliver(rgb(2, 2, 1), 2, 2, time.Now())
	b := in.Borrow()
	for i := 2; i < 10; i++ {
		_ = in.Deliver(rgb(2, 2, byte(i)), 2, 2, time.Now())
	}
	if b.Pix[0] != 1 {
		t.Fatal("borrowed frame overwritten")
	}
	b.Release()
	b.Release()
	var dst tracks.VideoFrame
	if !in.LatestInto(&dst) || dst.Pix[0] != 9 {
		t.Fatal("LatestInto")
	}
}

func TestMediaQueueDropsOldestAndCounts(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"))
	q := tracks.NewMediaQueue(2)
	s.Subscribe(q)
	in, _ := s.VideoIn("webcam")
	for i := 1; i <= 5; i++ {
		_ = in.Deliver(rgb(1, 1, byte(i)), 1, 1, time.Now())
	}
	if in.Stats().Dropped != 3 || q.Stats().Dropped != 3 {
		t.Fatalf("drops: track %d queue %d", in.Stats().Dropped, q.Stats().Dropped)
	}
	b, _ := q.Next(ctxT(t))
	if b.Track("webcam").Video.Pix[0] != 4 {
		t.Fatal("oldest not dropped")
	}
	b.Release()
	_ = q.Close()
	if _, err := q.Next(ctxT(t)); !errors.Is(err, tracks.ErrClosed) {
		t.Fatal(err)
	}
}
