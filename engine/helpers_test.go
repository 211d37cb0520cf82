package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine"
)

// newEngine builds an engine for m and closes it, checking for leaked
// goroutines, when the test ends.
func newEngine(t *testing.T, m engine.Model, opts ...engine.Option) *engine.Engine {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	if m.New == nil {
		m.New = func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }
	}
	if m.Name == "" {
		m.Name = "test"
	}
	e, err := engine.New(m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Close()
		goleak.VerifyNone(t, ignore)
	})
	return e
}

// waitRunner runs until the session stops.
func waitRunner() engine.Runner {
	return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
		<-ctx.Done()
		return nil
	})
}

func start(t *testing.T, e *engine.Engine) *engine.Session {
	t.Helper()
	s, err := e.StartSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop("test over") })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, err, sentinel error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", sentinel)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not say %q", err, f)
		}
	}
}

func waitDone(t *testing.T, s *engine.Session) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
}

// recordingTransport is an engine.Transport for tests: send handles Send,
// uploads answers Upload, and every rejection is recorded.
type recordingTransport struct {
	send    func(json.RawMessage) error
	uploads func(ctx context.Context, id string) (engine.Upload, error)

	mu       sync.Mutex
	rejected []string // "command: error"
}

func (r *recordingTransport) Send(msg json.RawMessage) error {
	if r.send == nil {
		return nil
	}
	return r.send(msg)
}

func (r *recordingTransport) CommandRejected(command string, err error) {
	r.mu.Lock()
	r.rejected = append(r.rejected, command+": "+err.Error())
	r.mu.Unlock()
}

func (r *recordingTransport) Upload(ctx context.Context, id string) (engine.Upload, error) {
	if r.uploads == nil {
		return engine.Upload{}, errors.New("no uploads")
	}
	return r.uploads(ctx, id)
}

func (r *recordingTransport) rejections() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}
