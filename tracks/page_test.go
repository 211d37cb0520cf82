package tracks_test

// Tests of the statements of the Reactor tracks page (reference/reactor-tracks.md)
// that belong to the track layer. Each quotes its statement. The statements
// about sessions, get_ctx(), on_media() and commands are tested in package
// engine.

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/tracks"
)

func mustSet(t *testing.T, specs ...tracks.Spec) *tracks.Set {
	t.Helper()
	s, err := tracks.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func rgb(w, h int, v byte) []byte { return bytes.Repeat([]byte{v}, w*h*3) }

// "If you do not declare any tracks, Reactor gives your model a single video
// output track called main_video."
func TestPageNoTracksGivesMainVideo(t *testing.T) {
	s := mustSet(t)
	all := s.All()
	if len(all) != 1 {
		t.Fatalf("got %d tracks, want 1", len(all))
	}
	sp := all[0].Spec()
	if sp.Name != "main_video" || sp.Kind != tracks.KindVideoOut || !sp.Default {
		t.Fatalf("got %+v, want the default VideoOut main_video", sp)
	}
}

// "Calling get_track() with no arguments returns the default track."
func TestPageGetTrackNoArgumentIsDefault(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.VideoOutput("preview"), tracks.VideoOutput("main_video", tracks.Default()))
	tr, err := s.Track("")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name() != "main_video" {
		t.Fatalf("Track(\"\") = %q, want main_video", tr.Name())
	}
	v, err := s.VideoOut("")
	if err != nil || v.Name() != "main_video" {
		t.Fatalf("VideoOut(\"\") = %v, %v", v, err)
	}
}

// "The class attribute name is the track's identifier — it is the same string
// you pass to get_track() in your Python code, and the same string the
// frontend uses to route media."
func TestPageNameIsTheIdentifierUnchanged(t *testing.T) {
	names := []string{"webcam", "Main_Video", "narration-2", "Mikrofon ü"}
	s := mustSet(t, tracks.VideoInput(names[0]), tracks.VideoOutput(names[1]), tracks.AudioOutput(names[2]), tracks.AudioInput(names[3]))
	for i, tr := range s.All() {
		if tr.Name() != names[i] {
			t.Errorf("track %d is named %q, want %q unchanged", i, tr.Name(), names[i])
		}
		got, err := s.Track(names[i])
		if err != nil || got != tr {
			t.Errorf("Track(%q) = %v, %v", names[i], got, err)
		}
	}
	if _, err := s.Track("main_video"); !errors.Is(err, tracks.ErrUnknownTrack) {
		t.Errorf("Track(main_video) with only Main_Video declared: err = %v, want ErrUnknownTrack (no case folding)", err)
	}
}

// Track Types: "VideoOut model → client Output video track. Send frames with
// emit(). AudioOut model → client ... VideoIn client → model Input video
// track. Read with latest(). AudioIn client → model".
func TestPageTrackTypesAndDirections(t *testing.T) {
	cases := []struct {
		spec      tracks.Spec
		output    bool
		media     string
		direction string // the client's view
	}{
		{tracks.VideoOutput("v"), true, "video", "recvonly"},
		{tracks.AudioOutput("a"), true, "audio", "recvonly"},
		{tracks.VideoInput("vi"), false, "video", "sendonly"},
		{tracks.AudioInput("ai"), false, "audio", "sendonly"},
	}
	specs := make([]tracks.Spec, len(cases))
	for i, c := range cases {
		specs[i] = c.spec
	}
	s := mustSet(t, specs...)
	for i, c := range cases {
		k := c.spec.Kind
		if k.IsOutput() != c.output || k.Media() != c.media || k.Direction() != c.direction {
			t.Errorf("%s: output=%v media=%s direction=%s", k, k.IsOutput(), k.Media(), k.Direction())
		}
		switch tr := s.All()[i].(type) {
		case *tracks.VideoOut:
			if err := tr.Emit(rgb(2, 2, 1), 2, 2, 3); err != nil {
				t.Error(err)
			}
		case *tracks.AudioOut:
			if err := tr.Emit([]int16{1, 2, 3}); err != nil {
				t.Error(err)
			}
		case *tracks.VideoIn:
			if tr.Latest() != nil {
				t.Error("VideoIn.Latest before data is not nil")
			}
		case *tracks.AudioIn:
			if tr.Latest() != nil {
				t.Error("AudioIn.Latest before data is not nil")
			}
		}
	}
	if len(s.Outputs()) != 2 || len(s.Inputs()) != 2 {
		t.Errorf("Outputs %d, Inputs %d; want 2 and 2", len(s.Outputs()), len(s.Inputs()))
	}
}

// Track Parameters: "rate float 0.0 Frame rate (video) or sample rate (audio).
// 0.0 means automatic — Reactor adapts to your model's actual push rate."
func TestPageRateDefaultsToZeroAutomatic(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("v"), tracks.AudioOutput("a"))
	v, _ := s.VideoOut("v")
	a, _ := s.AudioOut("a")
	if v.Rate() != 0 || a.Rate() != 0 {
		t.Fatalf("rates %v %v, want 0 (automatic)", v.Rate(), a.Rate())
	}
	if a.SampleRate() != 48000 {
		t.Fatalf("automatic audio SampleRate %d, want 48000", a.SampleRate())
	}
}

// Quick Reference: "Set explicit rate cam = VideoIn(rate=30.0)".
func TestPageExplicitRate(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("cam", tracks.Rate(30)), tracks.VideoOutput("main_video", tracks.Rate(24)), tracks.AudioOutput("narration", tracks.Rate(16000)))
	cam, _ := s.VideoIn("cam")
	out, _ := s.VideoOut("main_video")
	nar, _ := s.AudioOut("narration")
	if cam.Rate() != 30 || out.Rate() != 24 || nar.Rate() != 16000 || nar.SampleRate() != 16000 {
		t.Fatalf("rates: cam %v out %v narration %v/%d", cam.Rate(), out.Rate(), nar.Rate(), nar.SampleRate())
	}
}

// Track Parameters: "default bool False Mark as the default track for
// shorthand access via get_track()."
func TestPageDefaultMarked(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("first"), tracks.AudioOutput("narration", tracks.Default()))
	if d := s.Default(); d == nil || d.Name() != "narration" {
		t.Fatalf("default = %v, want narration", d)
	}
	if _, err := s.VideoOut(""); !errors.Is(err, tracks.ErrWrongKind) {
		t.Fatalf("VideoOut(\"\") with an audio default: %v, want ErrWrongKind", err)
	}
	specs, _ := tracks.Resolve([]tracks.Spec{tracks.VideoOutput("first"), tracks.AudioOutput("narration", tracks.Default())})
	if specs[0].Default || !specs[1].Default {
		t.Fatalf("Resolve: %+v", specs)
	}
}

// "If no track is explicitly marked as default, the first VideoOut track
// declared on your class becomes the default automatically."
func TestPageFirstVideoOutBecomesDefault(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.AudioOutput("narration"), tracks.VideoOutput("depth"), tracks.VideoOutput("main_video"))
	if d := s.Default(); d == nil || d.Name() != "depth" {
		t.Fatalf("default = %v, want depth (the first VideoOut)", d)
	}
	// With no VideoOut and nothing marked there is no default.
	s2 := mustSet(t, tracks.AudioOutput("narration"))
	if _, err := s2.Track(""); !errors.Is(err, tracks.ErrNoDefault) {
		t.Fatalf("Track(\"\") = %v, want ErrNoDefault", err)
	}
}

// Quick Reference: "Emit to named track get_track("name").emit(frame)".
func TestPageEmitToNamedTrack(t *testing.T) {
	s := mustSet(t, tracks.VideoOutput("main_video"), tracks.VideoOutput("depth"))
	d, err := s.VideoOut("depth")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Emit(rgb(4, 2, 9), 2, 4, 3); err != nil {
		t.Fatal(err)
	}
	f, err := d.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.Width != 4 || f.Height != 2 || f.Pix[0] != 9 {
		t.Fatalf("got %dx%d pix[0]=%d", f.Width, f.Height, f.Pix[0])
	}
	if m, _ := s.VideoOut("main_video"); m.Stats().Emitted != 0 {
		t.Fatal("emit to depth reached main_video")
	}
}

// "frame: A NumPy array with shape (N, H, W, 3) or (H, W, 3), dtype=np.uint8,
// values 0–255, RGB channel order." (the (H, W, 3) case)
func TestPageEmitSingleFrame(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	pix := make([]byte, 3*5*3)
	for i := range pix {
		pix[i] = byte(i * 5) // covers 0..210, RGB order kept
	}
	if err := out.Emit(pix, 3, 5, 3); err != nil {
		t.Fatal(err)
	}
	f, err := out.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.Width != 5 || f.Height != 3 || f.Batch != 0 || f.BatchSize != 1 || !bytes.Equal(f.Pix, pix) {
		t.Fatalf("got %dx%d batch %d/%d", f.Width, f.Height, f.Batch, f.BatchSize)
	}
	if f.Capture.IsZero() {
		t.Fatal("capture time not set")
	}
}

// "frame: A NumPy array with shape (N, H, W, 3) ..." — a batch "is split and
// paced frame by frame" (reactor-protocol.md §10).
func TestPageEmitBatchIsSplit(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	const n, h, w = 8, 2, 3 // 8 > DefaultQueueSize: the whole batch must still fit
	pix := make([]byte, n*h*w*3)
	for i := 0; i < n; i++ {
		copy(pix[i*h*w*3:], rgb(w, h, byte(10+i)))
	}
	if err := out.Emit(pix, n, h, w, 3); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		f, err := out.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if f.Batch != i || f.BatchSize != n || f.Width != w || f.Height != h || f.Pix[0] != byte(10+i) || len(f.Pix) != h*w*3 {
			t.Fatalf("frame %d: batch %d/%d %dx%d pix[0]=%d", i, f.Batch, f.BatchSize, f.Width, f.Height, f.Pix[0])
		}
		f.Release()
	}
	if st := out.Stats(); st.Emitted != n || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// "When you pass None, the track synthesises a real 720p black frame
// (np.zeros((720, 1280, 3), dtype=np.uint8)) for video" and "The synthesised
// frame flows through the pipeline normally — None never propagates beyond
// emit()."
func TestPageEmitNilIsRealBlackFrame(t *testing.T) {
	s := mustSet(t)
	out, _ := s.VideoOut("")
	// Dirty the pool first: the black frame must be cleared, not recycled.
	if err := out.Emit(rgb(1280, 720, 200), 720, 1280, 3); err != nil {
		t.Fatal(err)
	}
	f, _ := out.Next(ctxT(t))
	f.Release()
	if err := out.Emit(nil); err != nil {
		t.Fatal(err)
	}
	f, err := out.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.Pix == nil || f.Device != nil || f.Width != 1280 || f.Height != 720 || len(f.Pix) != 1280*720*3 {
		t.Fatalf("got %dx%d len %d", f.Width, f.Height, len(f.Pix))
	}
	for i, v := range f.Pix {
		if v != 0 {
			t.Fatalf("pix[%d] = %d, want 0", i, v)
		}
	}
}

// "... or a silence buffer for audio."
func TestPageAudioEmitNilIsSilence(t *testing.T) {
	s := mustSet(t, tracks.AudioOutput("narration"), tracks.AudioOutput("low", tracks.Rate(16000)))
	for _, name := range []string{"narration", "low"} {
		a, _ := s.AudioOut(name)
		if err := a.Emit([]int16{5000, 5000}); err != nil { // dirty the pool
			t.Fatal(err)
		}
		f, _ := a.Next(ctxT(t))
		f.Release()
		if err := a.Emit(nil); err != nil {
			t.Fatal(err)
		}
		f, err := a.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if f.Duration() != 20*time.Millisecond || f.Channels != 1 || f.SampleRate != a.SampleRate() {
			t.Fatalf("%s: silence is %v, %d ch, %d Hz", name, f.Duration(), f.Channels, f.SampleRate)
		}
		for _, v := range f.PCM {
			if v != 0 {
				t.Fatalf("%s: silence has sample %d", name, v)
			}
		}
		f.Release()
	}
}

// "Returns: A copy of the most recent frame from the client, or None if no
// data has arrived yet."
func TestPageLatestIsCopyOrNil(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"))
	in, _ := s.VideoIn("webcam")
	if in.Latest() != nil {
		t.Fatal("Latest before any data is not nil")
	}
	src := rgb(4, 2, 7)
	if err := in.Deliver(src, 4, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	src[0] = 99 // the transport reuses its buffer
	f := in.Latest()
	if f == nil || f.Width != 4 || f.Height != 2 || f.Pix[0] != 7 {
		t.Fatalf("Latest = %+v", f)
	}
	f.Pix[1] = 42 // the model scribbles on its copy
	if g := in.Latest(); g.Pix[1] != 7 {
		t.Fatal("Latest did not return a copy")
	}
}

// "The runtime updates input tracks in the background as new data arrives."
func TestPageInputUpdatedInBackground(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"))
	in, _ := s.VideoIn("webcam")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the transport's receiver goroutine
		defer wg.Done()
		for i := 1; i <= 50; i++ {
			_ = in.Deliver(rgb(8, 8, byte(i)), 8, 8, time.Now())
		}
	}()
	last := byte(0)
	for last != 50 {
		if f := in.Borrow(); f != nil {
			v := f.Pix[0]
			for _, p := range f.Pix { // never a torn frame
				if p != v {
					t.Fatalf("torn frame: %d and %d", v, p)
				}
			}
			if v < last {
				t.Fatalf("went back from %d to %d", last, v)
			}
			last = v
			f.Release()
		}
	}
	wg.Wait()
}

// "latest() is a polling API — it always returns the most recent frame,
// skipping any that arrived between calls."
func TestPageLatestSkipsIntermediateFrames(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.AudioInput("microphone"))
	in, _ := s.VideoIn("webcam")
	mic, _ := s.AudioIn("microphone")
	for i := 1; i <= 5; i++ {
		_ = in.Deliver(rgb(2, 2, byte(i)), 2, 2, time.Now())
		_ = mic.Deliver([]int16{int16(i), int16(i)}, time.Now())
	}
	if f := in.Latest(); f.Pix[0] != 5 {
		t.Fatalf("video Latest = %d, want 5", f.Pix[0])
	}
	if f := mic.Latest(); f.PCM[0] != 5 || f.SampleRate != 48000 || f.Channels != 1 {
		t.Fatalf("audio Latest = %+v", f)
	}
	// A second poll with nothing new returns the same frame again.
	if f := in.Latest(); f.Pix[0] != 5 {
		t.Fatalf("second Latest = %d, want 5", f.Pix[0])
	}
}

// "The MediaBundle contains a TrackData entry for each input track that had
// data in the current media event. Use bundle.get_track(name) to look up a
// track's data, and access the NumPy array via .data." and "Use on_media()
// only when your pipeline needs to process the full stream of inbound frames
// without dropping any."
func TestPageMediaBundleHasEveryFrame(t *testing.T) {
	s := mustSet(t, tracks.VideoInput("webcam"), tracks.AudioInput("microphone"))
	q := tracks.NewMediaQueue(0)
	defer q.Close()
	s.Subscribe(q)
	in, _ := s.VideoIn("webcam")
	mic, _ := s.AudioIn("microphone")
	for i := 1; i <= 3; i++ {
		_ = in.Deliver(rgb(2, 2, byte(i)), 2, 2, time.Now())
	}
	_ = mic.Deliver([]int16{7, 8}, time.Now())
	for i := 1; i <= 3; i++ {
		b, err := q.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		d := b.Track("webcam")
		if d == nil || d.Video == nil || d.Video.Pix[0] != byte(i) || b.Track("microphone") != nil {
			t.Fatalf("event %d: %+v", i, d)
		}
		b.Release()
	}
	b, _ := q.Next(ctxT(t))
	if d := b.Track("microphone"); d == nil || d.Audio == nil || d.Audio.PCM[1] != 8 || b.Track("webcam") != nil {
		t.Fatalf("audio event: %+v", d)
	}
	b.Release()
}

// "A model can declare any number of input and output tracks."
func TestPageAnyNumberOfTracks(t *testing.T) {
	var specs []tracks.Spec
	for i := 0; i < 20; i++ {
		specs = append(specs, tracks.VideoOutput("out"+string(rune('a'+i))), tracks.VideoInput("in"+string(rune('a'+i))),
			tracks.AudioOutput("aout"+string(rune('a'+i))), tracks.AudioInput("ain"+string(rune('a'+i))))
	}
	s := mustSet(t, specs...)
	if len(s.All()) != 80 || len(s.Outputs()) != 40 || len(s.Inputs()) != 40 {
		t.Fatalf("%d tracks", len(s.All()))
	}
	if s.Default().Name() != "outa" {
		t.Fatalf("default %q", s.Default().Name())
	}
}
