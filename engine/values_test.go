package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// closingState records its Close.
type closingState struct {
	prompt atomic.Pointer[string]
	closed atomic.Int32
}

func (c *closingState) Close() error { c.closed.Add(1); return nil }

// Each session has its own value, shared by its RunSession and command
// handlers, made once even under concurrent first use, and closed after
// the session's goroutines returned.
func TestSessionValue(t *testing.T) {
	var made atomic.Int32
	state := engine.NewSessionValue(func(*engine.Session) *closingState { made.Add(1); return &closingState{} })
	seen := make(chan *closingState, 2)
	e := newEngine(t, engine.Model{
		Commands: []engine.CommandDef{engine.Command("set", "", func(s *engine.Session, p struct {
			Prompt string `json:"prompt"`
		}) error {
			state.Get(s).prompt.Store(&p.Prompt)
			return nil
		})},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				seen <- state.Get(s)
				<-ctx.Done()
				return nil
			}), nil
		},
	})
	a, b := start(t, e), start(t, e)
	va, vb := <-seen, <-seen
	if va == vb {
		t.Fatal("two sessions share one value")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = state.Get(a) })
	}
	wg.Wait()
	if n := made.Load(); n != 2 {
		t.Fatalf("made %d values for 2 sessions", n)
	}
	if err := a.Call(ctxT(t), "set", json.RawMessage(`{"prompt":"neon"}`), nil); err != nil {
		t.Fatal(err)
	}
	mine := state.Get(a)
	if p := mine.prompt.Load(); p == nil || *p != "neon" || (mine != va && mine != vb) {
		t.Fatalf("the command's value is not the session's: %v", p)
	}
	if p := state.Get(b).prompt.Load(); p != nil {
		t.Fatalf("session b sees session a's prompt %q", *p)
	}
	a.Stop("test")
	if mine.closed.Load() != 1 {
		t.Fatalf("value closed %d times after its session ended; want 1", mine.closed.Load())
	}
	other := state.Get(b)
	if other.closed.Load() != 0 {
		t.Fatal("a running session's value was closed")
	}
}

// A command handler keeps per-session state in a SessionValue, which the
// model's loop reads: no map keyed by session, no cleanup.
func ExampleSessionValue() {
	type state struct {
		mu     sync.Mutex
		prompt string
	}
	prompts := engine.NewSessionValue(func(*engine.Session) *state { return &state{prompt: "a cat"} })
	type setPrompt struct {
		Prompt string `json:"prompt"`
	}
	e, err := engine.New(engine.Model{
		Name: "prompted",
		Commands: []engine.CommandDef{engine.Command("set_prompt", "", func(s *engine.Session, p setPrompt) error {
			st := prompts.Get(s)
			st.mu.Lock()
			st.prompt = p.Prompt
			st.mu.Unlock()
			return nil
		})},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				<-ctx.Done() // a real model reads prompts.Get(s) every frame
				return nil
			}), nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")
	fmt.Println("before:", prompts.Get(s).prompt)
	_ = s.Call(context.Background(), "set_prompt", json.RawMessage(`{"prompt":"a dog"}`), nil)
	fmt.Println("after:", prompts.Get(s).prompt)
	// Output:
	// before: a cat
	// after: a dog
}

// slowMedia's OnMedia holds the first event until release is closed.
type slowMedia struct {
	engine.Runner
	entered, release chan struct{}
	once             sync.Once
}

func (m *slowMedia) OnMedia(*engine.Session, *tracks.MediaBundle) error {
	m.once.Do(func() { close(m.entered); <-m.release })
	return nil
}

// WithMediaQueue bounds the events waiting for a slow OnMedia: beyond it
// the oldest are dropped and counted on the input track.
func TestWithMediaQueue(t *testing.T) {
	if _, err := engine.New(engine.Model{Name: "m", New: func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }}, engine.WithMediaQueue(0)); err == nil || !strings.Contains(err.Error(), "want at least 1") {
		t.Fatalf("WithMediaQueue(0): %v", err)
	}
	m := &slowMedia{Runner: waitRunner(), entered: make(chan struct{}), release: make(chan struct{})}
	e := newEngine(t, engine.Model{
		Tracks: []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video")},
		New:    func(engine.Config) (engine.Runner, error) { return m, nil },
	}, engine.WithMediaQueue(2))
	s := start(t, e)
	cam, err := s.VideoIn("webcam")
	if err != nil {
		t.Fatal(err)
	}
	px := []byte{1, 2, 3}
	if err := cam.Deliver(px, 1, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	<-m.entered // the handler holds event 1
	for range 4 {
		if err := cam.Deliver(px, 1, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if st := cam.Stats(); st.Delivered != 5 || st.Dropped != 2 {
		t.Fatalf("webcam stats %+v; want 5 delivered, 2 dropped (queue of 2 behind the busy handler)", st)
	}
	close(m.release)
}
