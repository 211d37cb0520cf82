package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/tracks"
)

// The capabilities document matches protocol §4.1's example exactly.
func TestCapabilitiesMatchProtocolExample(t *testing.T) {
	type setPrompt struct {
		Prompt string `json:"prompt"`
	}
	e := newEngine(t, engine.Model{
		Name:     "echo",
		Tracks:   []tracks.Spec{tracks.VideoOutput("main_video"), tracks.VideoInput("webcam")},
		Commands: []engine.CommandDef{engine.Command("set_prompt", "", func(*engine.Session, setPrompt) error { return nil })},
	})
	b, err := json.Marshal(e.Capabilities())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"protocol_version":"v0",` +
		`"tracks":[{"name":"main_video","kind":"video","direction":"recvonly"},` +
		`{"name":"webcam","kind":"video","direction":"sendonly"}],` +
		`"commands":[{"name":"set_prompt","description":"","schema":{"prompt":{"type":"string","required":true}}}],` +
		`"emission_fps":null}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// Callers get a copy.
	c := e.Capabilities()
	c.Tracks[0].Name = "x"
	c.Commands[0].Schema["prompt"] = engine.Param{}
	if c2 := e.Capabilities(); c2.Tracks[0].Name != "main_video" || c2.Commands[0].Schema["prompt"].Type != "string" {
		t.Fatal("Capabilities shares state with callers")
	}
}

func TestCapabilitiesEmissionFPS(t *testing.T) {
	cases := []struct {
		specs []tracks.Spec
		want  string
	}{
		{nil, "null"},
		{[]tracks.Spec{tracks.VideoOutput("v", tracks.Rate(30))}, "30"},
		{[]tracks.Spec{tracks.VideoOutput("a", tracks.Rate(24)), tracks.VideoOutput("b", tracks.Rate(12), tracks.Default())}, "12"},
		{[]tracks.Spec{tracks.AudioOutput("n", tracks.Rate(16000), tracks.Default()), tracks.VideoOutput("v", tracks.Rate(25))}, "25"},
		{[]tracks.Spec{tracks.AudioOutput("n", tracks.Rate(16000))}, "null"},
		{[]tracks.Spec{tracks.VideoInput("w", tracks.Rate(30)), tracks.VideoOutput("v")}, "null"},
	}
	for _, c := range cases {
		e := newEngine(t, engine.Model{Tracks: c.specs})
		b, _ := json.Marshal(e.Capabilities().EmissionFPS)
		if string(b) != c.want {
			t.Errorf("%v: emission_fps %s, want %s", c.specs, b, c.want)
		}
		if c := e.Capabilities().Commands; c == nil {
			t.Error("commands is null; want []")
		}
	}
}

func TestNewRejectsBadModels(t *testing.T) {
	ok := func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }
	cases := []struct {
		m    engine.Model
		says []string
	}{
		{engine.Model{New: ok}, []string{"no name"}},
		{engine.Model{Name: "m"}, []string{"no constructor"}},
		{engine.Model{Name: "m", New: ok, Tracks: []tracks.Spec{tracks.VideoOutput("")}}, []string{"empty name"}},
		{engine.Model{Name: "m", New: ok, Tracks: []tracks.Spec{tracks.VideoOutput("a"), tracks.AudioOutput("a")}}, []string{`both named "a"`}},
		{engine.Model{Name: "m", New: ok, Tracks: []tracks.Spec{tracks.VideoOutput("a", tracks.Default()), tracks.AudioOutput("b", tracks.Default())}}, []string{"both marked default"}},
		{engine.Model{Name: "m", New: ok, Tracks: []tracks.Spec{tracks.VideoInput("w", tracks.Default())}}, []string{"cannot be the default"}},
		{engine.Model{Name: "m", New: ok, Tracks: []tracks.Spec{tracks.VideoOutput("v", tracks.Rate(math.NaN()))}}, []string{"rate NaN"}},
		{engine.Model{Name: "m", New: ok, Config: "/nonexistent/config.yml"}, []string{"config file", "/nonexistent/config.yml"}},
		{engine.Model{Name: "m", New: func(engine.Config) (engine.Runner, error) { return nil, nil }}, []string{"nil Runner"}},
	}
	for _, c := range cases {
		_, err := engine.New(c.m)
		wantErr(t, err, engine.ErrInvalidModel, c.says...)
	}
	_, err := engine.New(engine.Model{Name: "m", New: func(engine.Config) (engine.Runner, error) { return nil, errors.New("no weights") }})
	wantErr(t, err, nil, `model "m": constructor: no weights`)
	_, err = engine.New(engine.Model{Name: "m", New: ok}, engine.WithMaxSessions(-1))
	wantErr(t, err, nil, "WithMaxSessions(-1)")
}

type modelConfig struct {
	Steps int    `yaml:"steps"`
	Model string `yaml:"model"`
}

// The config file is read once per process, handed to the constructor, and
// decoded strictly.
func TestConfigLoadedOnceAndStrict(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.yml")
	_ = os.WriteFile(good, []byte("steps: 4\nmodel: sd-turbo\n"), 0o600)
	var calls atomic.Int64
	var got modelConfig
	m := engine.Model{Name: "m", Config: good, New: func(c engine.Config) (engine.Runner, error) {
		calls.Add(1)
		got = modelConfig{Steps: 1}
		if err := c.Decode(&got); err != nil {
			return nil, err
		}
		return waitRunner(), nil
	}}
	e := newEngine(t, m)
	for i := 0; i < 3; i++ {
		start(t, e).Stop("next")
	}
	if calls.Load() != 1 || got.Steps != 4 || got.Model != "sd-turbo" {
		t.Fatalf("constructor called %d times, config %+v", calls.Load(), got)
	}

	bad := filepath.Join(dir, "bad.yml")
	_ = os.WriteFile(bad, []byte("steps: 4\nstepz: 5\n"), 0o600)
	_, err := engine.New(m, engine.WithConfigFile(bad))
	wantErr(t, err, nil, "stepz", "not found", "line 2")

	// The runtime's own `recording:` block is not the model's: its strict
	// Decode skips it, and still names the model's own misspelt keys.
	rec := filepath.Join(dir, "rec.yml")
	_ = os.WriteFile(rec, []byte("steps: 3\nrecording:\n  enabled: true\nmodel: x\n"), 0o600)
	e2, err := engine.New(m, engine.WithConfigFile(rec))
	if err != nil || got.Steps != 3 || got.Model != "x" {
		t.Fatalf("config with recording: %v %+v", err, got)
	}
	if !bytes.Contains(e2.Config().Bytes(), []byte("recording:")) {
		t.Fatalf("Engine.Config: %q", e2.Config().Bytes())
	}
	_ = e2.Close()
	_ = os.WriteFile(rec, []byte("recording:\n  enabled: true\nstepz: 5\n"), 0o600)
	_, err = engine.New(m, engine.WithConfigFile(rec))
	wantErr(t, err, nil, "stepz", "line 3")

	// No config file: Decode leaves the defaults.
	m.Config = ""
	if _, err := engine.New(m); err != nil || got.Steps != 1 {
		t.Fatalf("no config: %v %+v", err, got)
	}
}

// Stop makes ShouldStop true, cancels, waits for every goroutine (the model
// loop, the OnMedia dispatcher, the command runner, Go functions) and closes
// the tracks; goleak (in newEngine) checks nothing is left.
func TestStopWaitsForEverything(t *testing.T) {
	goExited := make(chan struct{})
	r := &mediaCounter{Runner: engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
		out, _ := s.VideoOut("")
		for !s.ShouldStop() {
			_ = out.Emit(nil)
			time.Sleep(time.Millisecond)
		}
		return ctx.Err()
	}), got: make(chan byte, 1000)}
	e := newEngine(t, engine.Model{
		Tracks: []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video")},
		New:    func(engine.Config) (engine.Runner, error) { return r, nil },
	})
	s := start(t, e)
	if err := s.Go(func(ctx context.Context) error { // e.g. the transport's pipeline
		defer close(goExited)
		out, _ := s.VideoOut("main_video")
		for {
			f, err := out.Next(ctx)
			if err != nil {
				return nil
			}
			f.Release()
		}
	}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.VideoIn("webcam")
	_ = in.Deliver(make([]byte, 3), 1, 1, time.Now())
	s.Stop("client left")
	select {
	case <-goExited:
	default:
		t.Fatal("Stop returned before a Go function exited")
	}
	wantErr(t, s.Err(), engine.ErrStopped, "client left")
	out, _ := s.VideoOut("")
	wantErr(t, out.Emit(nil), tracks.ErrClosed)
	wantErr(t, in.Deliver(make([]byte, 3), 1, 1, time.Now()), tracks.ErrClosed)
	wantErr(t, s.Go(func(context.Context) error { return nil }), engine.ErrSessionEnded)
	wantErr(t, s.Dispatch("x", nil, nil), engine.ErrUnknownCommand)
	s.Stop("again") // idempotent
	if len(e.Sessions()) != 0 {
		t.Fatal("ended session still listed")
	}
}

// "If the model's session function returns or panics, the session ends
// cleanly (panic contained and reported)."
func TestModelReturnOrPanicEndsSession(t *testing.T) {
	cases := []struct {
		run  engine.RunFunc
		want error
	}{
		{func(context.Context, *engine.Session) error { return nil }, engine.ErrModelReturned},
		{func(context.Context, *engine.Session) error { return errors.New("out of memory") }, nil},
		{func(context.Context, *engine.Session) error { panic("index out of range") }, nil},
	}
	for i, c := range cases {
		e := newEngine(t, engine.Model{New: func(engine.Config) (engine.Runner, error) { return c.run, nil }})
		s, err := e.StartSession(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, s)
		switch i {
		case 0:
			wantErr(t, s.Err(), engine.ErrModelReturned)
		case 1:
			wantErr(t, s.Err(), nil, "out of memory")
		case 2:
			var pe *engine.PanicError
			if !errors.As(s.Err(), &pe) || pe.Where != "RunSession" || len(pe.Stack) == 0 {
				t.Fatalf("panic not reported: %v", s.Err())
			}
			if s.Stats().Panics != 1 {
				t.Fatal("panic not counted")
			}
		}
		if !s.ShouldStop() {
			t.Fatal("ShouldStop false after the model returned")
		}
	}
}

func TestGoFailureEndsSession(t *testing.T) {
	e := newEngine(t, engine.Model{})
	s := start(t, e)
	_ = s.Go(func(context.Context) error { return errors.New("encoder died") })
	waitDone(t, s)
	wantErr(t, s.Err(), nil, "encoder died")
	s2 := start(t, e)
	_ = s2.Go(func(context.Context) error { panic("in pipeline") })
	waitDone(t, s2)
	var pe *engine.PanicError
	if !errors.As(s2.Err(), &pe) || pe.Where != "Go" {
		t.Fatalf("%v", s2.Err())
	}
}

type failingMedia struct {
	engine.Runner
	n atomic.Int64
}

func (f *failingMedia) OnMedia(*engine.Session, *tracks.MediaBundle) error {
	if f.n.Add(1)%2 == 0 {
		panic("bad frame")
	}
	return errors.New("cannot use frame")
}

func TestOnMediaErrorsAreContained(t *testing.T) {
	r := &failingMedia{Runner: waitRunner()}
	e := newEngine(t, engine.Model{
		Tracks: []tracks.Spec{tracks.AudioInput("microphone"), tracks.VideoOutput("main_video")},
		New:    func(engine.Config) (engine.Runner, error) { return r, nil },
	})
	s := start(t, e)
	mic, _ := s.AudioIn("microphone")
	for i := 0; i < 6; i++ {
		_ = mic.Deliver([]int16{1, 2}, time.Now())
		enginetest.Eventually(t, 10*time.Second, fmt.Sprintf("OnMedia call %d", i+1), func() bool { return r.n.Load() >= int64(i+1) })
	}
	enginetest.Eventually(t, 10*time.Second, "six media errors counted", func() bool { return s.Stats().MediaErrors >= 6 })
	if s.ShouldStop() {
		t.Fatal("OnMedia failures ended the session")
	}
	if st := s.Stats(); st.Panics != 3 || st.MediaEvents != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSend(t *testing.T) {
	e := newEngine(t, engine.Model{})
	s := start(t, e)
	wantErr(t, s.Send(map[string]any{"type": "progress"}), engine.ErrNoTransport)
	var sent []string
	s.Attach(&recordingTransport{send: func(raw json.RawMessage) error {
		if len(raw) > 64 {
			return errors.New("message larger than the peer's 64-byte limit")
		}
		sent = append(sent, string(raw))
		return nil
	}})
	if err := s.Send(map[string]any{"type": "progress", "data": map[string]int{"step": 3}}); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0] != `{"data":{"step":3},"type":"progress"}` {
		t.Fatalf("sent %q", sent)
	}
	wantErr(t, s.Send(map[string]any{"f": func() {}}), engine.ErrNotSerializable, "map[string]interface {}", "unsupported type")
	wantErr(t, s.Send(math.Inf(1)), engine.ErrNotSerializable, "unsupported value")
	wantErr(t, s.Send(make([]int, 100)), nil, "send of a 201-byte message", "64-byte limit")
	if got := e.Stats().SendsRefused; got != 2 {
		t.Errorf("engine SendsRefused = %d; want 2 (no transport, refused by the transport)", got)
	}
	s.Stop("bye")
	wantErr(t, s.Send("late"), engine.ErrSessionEnded)
}

// Several sessions: FromContext returns the caller's own session, from
// RunSession's context and from a goroutine started with Session.Go,
// whichever session started last.
func TestFromContextWithSeveralSessions(t *testing.T) {
	type seen struct{ run, goroutine *engine.Session }
	got := make(chan seen, 2)
	e := newEngine(t, engine.Model{New: func(engine.Config) (engine.Runner, error) {
		return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
			var sn seen
			sn.run, _ = engine.FromContext(ctx)
			done := make(chan struct{})
			if err := s.Go(func(gctx context.Context) error {
				sn.goroutine, _ = engine.FromContext(gctx)
				close(done)
				return nil
			}); err != nil {
				return err
			}
			<-done
			if sn.run != s || sn.goroutine != s {
				got <- seen{}
			} else {
				got <- sn
			}
			<-ctx.Done()
			return nil
		}), nil
	}})
	a := start(t, e)
	b := start(t, e)
	for range 2 {
		var sn seen
		select {
		case sn = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the sessions did not report within 10 s")
		}
		if sn.run == nil || (sn.run != a && sn.run != b) {
			t.Fatal("FromContext did not return the caller's own session")
		}
	}
	if a.ID() == b.ID() || len(a.ID()) < 20 {
		t.Fatalf("ids %q %q", a.ID(), b.ID())
	}
	if _, err := engine.FromContext(context.Background()); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("FromContext(Background) = %v, want ErrNoSession", err)
	}
}

func TestSessionLimitAndClose(t *testing.T) {
	e := newEngine(t, engine.Model{}, engine.WithMaxSessions(1))
	s := start(t, e)
	_, err := e.StartSession(context.Background())
	wantErr(t, err, engine.ErrTooManySessions, "limit 1")
	_ = e.Close()
	waitDone(t, s)
	wantErr(t, s.Err(), engine.ErrStopped, "engine closed")
	_, err = e.StartSession(context.Background())
	wantErr(t, err, engine.ErrEngineClosed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e2 := newEngine(t, engine.Model{})
	_, err = e2.StartSession(ctx)
	wantErr(t, err, context.Canceled)
}

type fakeDeviceFrame struct{}

func (fakeDeviceFrame) Size() (int, int) { return 64, 64 }
func (fakeDeviceFrame) Frames() int      { return 1 }

// Without WithDeviceSupport a device frame is refused, saying why (the
// default build: gpu's "built without CUDA"; the cuda build: no device
// encoder enabled); WithDeviceSupport(nil) enables the path.
func TestEmitDeviceFrameWithoutCUDA(t *testing.T) {
	e := newEngine(t, engine.Model{})
	s := start(t, e)
	out, _ := s.VideoOut("")
	wantDefaultDeviceRefusal(t, out.EmitDevice(fakeDeviceFrame{}))
	e2 := newEngine(t, engine.Model{}, engine.WithDeviceSupport(nil))
	s2 := start(t, e2)
	out2, _ := s2.VideoOut("")
	if err := out2.EmitDevice(fakeDeviceFrame{}); err != nil {
		t.Fatal(err)
	}
}
