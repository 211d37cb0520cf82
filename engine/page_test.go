package engine_test

// Tests of the statements of the Reactor tracks page that concern sessions,
// get_ctx(), on_media(), commands and the client-facing names. Each quotes
// its statement; the track-level statements are tested in package tracks.

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/tracks"
)

// "If you do not declare any tracks, Reactor gives your model a single video
// output track called main_video. This is why the basic emit pattern works
// without any track setup: while not get_ctx().should_stop(): ...
// get_ctx().get_track().emit(frame)"
func TestPageBasicEmitPatternWithoutTracks(t *testing.T) {
	e := newEngine(t, engine.Model{New: func(engine.Config) (engine.Runner, error) {
		return engine.RunFunc(func(ctx context.Context, _ *engine.Session) error {
			frame := make([]byte, 8*4*3)
			for {
				s, err := engine.FromContext(ctx)
				if err != nil || s.ShouldStop() {
					return nil
				}
				out, err := s.VideoOut("")
				if err != nil {
					return err
				}
				frame[0]++
				if err := out.Emit(frame, 4, 8, 3); err != nil {
					return nil // closed: the session is ending
				}
				time.Sleep(time.Millisecond)
			}
		}), nil
	}})
	s := start(t, e)
	out, err := s.VideoOut("main_video")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f, err := out.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if f.Width != 8 || f.Height != 4 {
			t.Fatalf("frame %dx%d", f.Width, f.Height)
		}
		f.Release()
	}
	if got := s.Outputs(); len(got) != 1 || got[0].Name() != "main_video" || len(s.Inputs()) != 0 {
		t.Fatalf("outputs %v inputs %v", got, s.Inputs())
	}
}

// "Calling get_track() with no arguments returns the default track."
func TestPageSessionTrackNoArgumentIsDefault(t *testing.T) {
	e := newEngine(t, engine.Model{Tracks: []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video", tracks.Default())}})
	s := start(t, e)
	d, err := s.Track("")
	if err != nil || d.Name() != "main_video" {
		t.Fatalf("Track(\"\") = %v, %v", d, err)
	}
	byName, _ := s.Track("main_video")
	if byName != d {
		t.Fatal("Track(\"main_video\") and Track(\"\") differ")
	}
}

// "This is a global accessor — you can call it from your VideoModel, a
// separate pipeline class, utility functions, or any module. No need to pass
// track references through constructors." In Go the accessor takes the
// context the code was handed (engine.FromContext), so with many sessions
// each caller reaches its own.
func TestPageGlobalAccessorFromAnyCode(t *testing.T) {
	if _, err := engine.FromContext(context.Background()); err == nil {
		t.Fatal("FromContext of no session returned a session")
	} else {
		wantErr(t, err, engine.ErrNoSession)
	}
	emitted := make(chan error, 1)
	e := newEngine(t, engine.Model{New: func(engine.Config) (engine.Runner, error) {
		p := &pipelineClass{}
		return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
			emitted <- p.run(ctx) // no track reference passed in
			<-ctx.Done()
			return nil
		}), nil
	}})
	s := start(t, e)
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	out, _ := s.VideoOut("")
	f, err := out.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	s.Stop("done")
}

type pipelineClass struct{}

func (pipelineClass) run(ctx context.Context) error {
	s, err := engine.FromContext(ctx)
	if err != nil {
		return err
	}
	out, err := s.VideoOut("")
	if err != nil {
		return err
	}
	return out.Emit(nil)
}

// "should_stop()" in "while not get_ctx().should_stop():" — true once the
// session is told to stop; the loop then returns and the session ends.
func TestPageShouldStopEndsTheLoop(t *testing.T) {
	var iterations atomic.Int64
	e := newEngine(t, engine.Model{New: func(engine.Config) (engine.Runner, error) {
		return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
			for !s.ShouldStop() {
				iterations.Add(1)
				time.Sleep(time.Millisecond)
			}
			return nil
		}), nil
	}})
	s := start(t, e)
	enginetest.Eventually(t, 10*time.Second, "three loop iterations", func() bool { return iterations.Load() >= 3 })
	if s.ShouldStop() {
		t.Fatal("ShouldStop true while running")
	}
	s.Stop("user left")
	if !s.ShouldStop() {
		t.Fatal("ShouldStop false after Stop")
	}
	wantErr(t, s.Err(), engine.ErrStopped, "user left")
}

// "In the model: get_ctx().get_track("webcam").latest() reads the webcam
// feed." and "latest() ... or None if no data has arrived yet."
func TestPageWebcamLatestInModel(t *testing.T) {
	seen := make(chan byte, 1)
	nilFirst := make(chan bool, 1)
	e := newEngine(t, engine.Model{
		Tracks: []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video", tracks.Default())},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				in, err := s.VideoIn("webcam")
				if err != nil {
					return err
				}
				nilFirst <- in.Latest() == nil
				for !s.ShouldStop() {
					if f := in.Latest(); f != nil {
						seen <- f.Pix[0]
						<-ctx.Done()
						return nil
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			}), nil
		},
	})
	s := start(t, e)
	if !<-nilFirst {
		t.Fatal("Latest before data was not nil")
	}
	in, _ := s.VideoIn("webcam")
	if err := in.Deliver(bytes.Repeat([]byte{42}, 2*2*3), 2, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := <-seen; v != 42 {
		t.Fatalf("model saw %d", v)
	}
}

type mediaCounter struct {
	engine.Runner
	got chan byte
}

func (m *mediaCounter) OnMedia(s *engine.Session, b *tracks.MediaBundle) error {
	if d := b.Track("webcam"); d != nil {
		m.got <- d.Video.Pix[0]
	}
	return nil
}

// "For models that need to process every inbound frame rather than just the
// latest, override on_media()" and "Use on_media() only when your pipeline
// needs to process the full stream of inbound frames without dropping any."
func TestPageOnMediaSeesEveryFrame(t *testing.T) {
	r := &mediaCounter{Runner: waitRunner(), got: make(chan byte, 100)}
	e := newEngine(t, engine.Model{
		Tracks: []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video", tracks.Default())},
		New:    func(engine.Config) (engine.Runner, error) { return r, nil },
	})
	s := start(t, e)
	in, _ := s.VideoIn("webcam")
	for i := 1; i <= 40; i++ {
		_ = in.Deliver(bytes.Repeat([]byte{byte(i)}, 3), 1, 1, time.Now())
		if i%8 == 0 { // the transport delivers at a media pace
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 1; i <= 40; i++ {
		select {
		case v := <-r.got:
			if v != byte(i) {
				t.Fatalf("event %d carried frame %d: order or completeness broken", i, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 40 frames reached OnMedia", i-1)
		}
	}
	if st := s.Stats(); st.MediaEvents != 40 || st.Tracks["webcam"].Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// "The class attribute name is the track's identifier — ... the same string
// the frontend uses to route media." and "The strings "main_video" and
// "webcam" must match the Python class attribute names exactly."
func TestPageNamesReachTheClientExactly(t *testing.T) {
	e := newEngine(t, engine.Model{Tracks: []tracks.Spec{tracks.VideoInput("WebCam"), tracks.VideoOutput("main_Video")}})
	caps := e.Capabilities()
	if caps.Tracks[0].Name != "WebCam" || caps.Tracks[1].Name != "main_Video" {
		t.Fatalf("capabilities renamed the tracks: %+v", caps.Tracks)
	}
	s := start(t, e)
	if _, err := s.Track("WebCam"); err != nil {
		t.Fatal(err)
	}
}

// "For single-track video-out models, these props can be omitted — the SDK
// defaults to receiving from main_video." — the capabilities of a model
// without tracks list exactly main_video, received by the client.
func TestPageSingleTrackModelCapabilities(t *testing.T) {
	e := newEngine(t, engine.Model{})
	b, _ := json.Marshal(e.Capabilities().Tracks)
	if string(b) != `[{"name":"main_video","kind":"video","direction":"recvonly"}]` {
		t.Fatalf("tracks %s", b)
	}
}

// Track Types: "VideoOut model → client ... VideoIn client → model" — in the
// capabilities, directions are the client's view: outputs recvonly, inputs
// sendonly (protocol §4.1).
func TestPageDirectionsInCapabilities(t *testing.T) {
	e := newEngine(t, engine.Model{Tracks: []tracks.Spec{
		tracks.VideoOutput("main_video"), tracks.AudioOutput("narration"), tracks.VideoInput("webcam"), tracks.AudioInput("microphone"),
	}})
	b, _ := json.Marshal(e.Capabilities().Tracks)
	want := `[{"name":"main_video","kind":"video","direction":"recvonly"},{"name":"narration","kind":"audio","direction":"recvonly"},` +
		`{"name":"webcam","kind":"video","direction":"sendonly"},{"name":"microphone","kind":"audio","direction":"sendonly"}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// morpheus: "@command("set_prompt") def set_prompt(self, prompt: str)" with
// "ctx.get_track().emit(None)  # black frame while pipeline warms up" —
// commands run concurrently with the generation loop, which reads the state
// they update (protocol §10).
func TestPageCommandsRunConcurrentlyWithTheLoop(t *testing.T) {
	type setPrompt struct {
		Prompt string `json:"prompt"`
	}
	var prompt atomic.Value
	prompt.Store("")
	loopSaw := make(chan string, 1)
	e := newEngine(t, engine.Model{
		Commands: []engine.CommandDef{engine.Command("set_prompt", "", func(s *engine.Session, p setPrompt) error {
			prompt.Store(p.Prompt)
			return nil
		})},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				for !s.ShouldStop() { // the loop never yields to commands explicitly
					if p := prompt.Load().(string); p != "" {
						loopSaw <- p
						<-ctx.Done()
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			}), nil
		},
	})
	s := start(t, e)
	if err := s.Dispatch("set_prompt", json.RawMessage(`{"prompt":"a cat"}`), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-loopSaw:
		if p != "a cat" {
			t.Fatalf("loop saw %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the command never reached the running loop")
	}
}
