package protocol

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// gateEngine holds StartSession until release is closed, so a test can
// close the server while a start_session is inside the model.
type gateEngine struct {
	*testEngine
	entered, release chan struct{}
}

func (g *gateEngine) StartSession(ctx context.Context) (Session, error) {
	close(g.entered)
	<-g.release
	return g.testEngine.StartSession(ctx)
}

// A start_session whose model start finishes after Server.Close must not
// start session goroutines Close no longer waits for (before, newSession
// added to the WaitGroup after Close's Wait, a race -race reports, and its
// goroutines outlived Close); it stops the model session and says the
// server is shutting down.
func TestCloseDuringStartSession(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	te := newTestEngine(t, Media{})
	g := &gateEngine{testEngine: te, entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := NewServer(g, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/start_session", strings.NewReader("{}")))
	}()
	<-g.entered
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	<-done
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("start_session finishing after Close: %d %s; want 503 saying the server is shutting down", rec.Code, rec.Body)
	}
	s := te.last()
	if s == nil || !s.stopped() {
		t.Error("the model session started after Close is still running")
	}
	if err := srv.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// Close is idempotent, and a server closed before any session refuses
// start_session with 503.
func TestCloseIdempotentThenStartRefused(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	for range 2 {
		if err := ts.srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !ts.eng.last().stopped() {
		t.Errorf("session %s still runs after Close", d.SessionID)
	}
	code, body := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	if code != http.StatusServiceUnavailable {
		t.Errorf("start_session after Close: %d %s; want 503", code, body)
	}
}
