package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/wiring"
)

// A start_session whose engine start finishes after Server.Close stops
// the model session it started (no goroutine outlives it) and says the
// server is shutting down.
func TestCloseDuringStartSession(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	te := newTestEngine(t, wiring.Config{})
	srv, err := NewServer(te.Wiring, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	srv.testHookStarted = func() { close(entered); <-release }
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest(http.MethodPost, "/start_session", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		srv.ServeHTTP(rec, req)
	}()
	<-entered
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("start_session finishing after Close: %d %s; want 503 saying the server is shutting down", rec.Code, rec.Body)
	}
	if st := te.Engine().Stats(); st.SessionsStarted != 1 || st.SessionsRunning != 0 {
		t.Errorf("engine %+v: the model session started after Close must have been stopped", st)
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

// While an offer's outputs are being prepared (here a device encoder
// factory that blocks), the session's state lock is free: pion's callbacks
// (a data-channel message, a connection becoming ready) and the stats and
// answer routes do not wait.
func TestPrepareDoesNotHoldSessionLock(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	te := newTestEngine(t, wiring.Config{Backend: encode.BackendX264, DeviceEncoder: func(string) (wiring.DeviceEncoder, error) {
		once.Do(func() { close(entered); <-release })
		return nil, errors.New("no device in this test")
	}})
	ts := serveTestEngine(t, te, testConfig())
	srv := ts.srv
	d := ts.start(t)
	_, body := offerFor(t, d.Capabilities.Tracks)
	posted := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		j, _ := json.Marshal(body)
		req := httptest.NewRequest(http.MethodPost, "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", bytes.NewReader(j))
		req.Header.Set("Content-Type", "application/json")
		srv.ServeHTTP(rec, req)
		posted <- rec.Code
	}()
	<-entered
	free := make(chan struct{})
	go func() {
		defer close(free)
		_ = srv.Stats()
		_ = te.Stats()
		ss := srv.currentSession()
		ss.onReady(&conn{}, nil)
		_, _ = ss.answerStatus(LegacyConnectionID, false)
	}()
	select {
	case <-free:
	case <-time.After(10 * time.Second):
		t.Error("the session's state lock is held while the offer's outputs are prepared")
	}
	close(release)
	<-free
	if code := <-posted; code != http.StatusAccepted {
		t.Errorf("sdp_params: %d; want 202", code)
	}
}

// A clean session (connect, stream, a command, stop) logs nothing above
// Info, through the configured logger: pion's routine warnings are Debug,
// the interceptors log through it too, and FFmpeg's probe chatter stays in
// the probe's reasons.
func TestCleanSessionLogsNothingAboveInfo(t *testing.T) {
	var logs enginetest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	te := newTestEngine(t, wiring.Config{Logger: log})
	cfg := testConfig()
	cfg.Logger = log
	ts := serveTestEngine(t, te, cfg)
	_, c := ts.connectClient(t)
	c.WaitFrames(10, 5*time.Second)
	c.Command("set_color", map[string]any{"level": 99, "label": "green"}, nil)
	c.Expect("application", "color_set", 3*time.Second)
	if code, body := ts.do(t, "POST", "/stop_session", "{}", apiHdr); code != 200 {
		t.Fatalf("stop_session: %d %s", code, body)
	}
	c.Close()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a clean session logged: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "client connected") {
		t.Fatalf("the session's Info lines are missing; the logger is not the one configured:\n%s", logs.String())
	}
}
