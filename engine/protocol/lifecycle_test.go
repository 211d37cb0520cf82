package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/tracks"
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

// slowOutputEngine's sessions block in StartOutput until release is closed,
// like a model whose previous pipeline takes long to stop.
type slowOutputEngine struct {
	*testEngine
	entered, release chan struct{}
}

type slowOutputSession struct {
	Session
	e *slowOutputEngine
}

func (e *slowOutputEngine) StartSession(ctx context.Context) (Session, error) {
	s, err := e.testEngine.StartSession(ctx)
	if err != nil {
		return nil, err
	}
	return slowOutputSession{s, e}, nil
}

func (s slowOutputSession) StartOutput(name string, out *peer.Output) (peer.Control, error) {
	close(s.e.entered)
	<-s.e.release
	return s.Session.StartOutput(name, out)
}

// While the model starts an output for an offer, the session's state lock
// is free: pion's callbacks (a data-channel message, a connection
// becoming ready) and the stats and answer routes do not wait for the
// model (before, negotiate held it across StartOutput).
func TestStartOutputDoesNotHoldSessionLock(t *testing.T) {
	te := newTestEngine(t, Media{})
	e := &slowOutputEngine{testEngine: te, entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := NewServer(e, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ts := &testServer{Server: hs, srv: srv, eng: te}
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	d := ts.start(t)
	_, body := offerFor(t, d.Capabilities.Tracks)
	posted := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		j, _ := json.Marshal(body)
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", bytes.NewReader(j)))
		posted <- rec.Code
	}()
	<-e.entered
	free := make(chan struct{})
	go func() {
		defer close(free)
		_ = srv.Stats()
		srv.mu.Lock()
		ss := srv.cur
		srv.mu.Unlock()
		ss.onReady(nil)
		_, _ = ss.answerStatus()
	}()
	select {
	case <-free:
	case <-time.After(10 * time.Second):
		t.Error("the session's state lock is held while the model starts an output")
	}
	close(e.release)
	<-free
	if code := <-posted; code != http.StatusAccepted {
		t.Errorf("sdp_params: %d; want 202", code)
	}
}

// slowCloseDevice is a device encoder whose Close waits for release: the
// output's pipeline run does not finish until then.
type slowCloseDevice struct {
	closing chan struct{}
	release chan struct{}
	once    sync.Once
}

func (d *slowCloseDevice) Encode(tracks.DeviceFrame, int64, []byte) (int, bool, error) {
	return 0, false, errors.New("no device in this test")
}
func (d *slowCloseDevice) RequestKeyframe() {}
func (d *slowCloseDevice) SetBitrate(int)   {}
func (d *slowCloseDevice) Close() error {
	d.once.Do(func() {
		close(d.closing)
		<-d.release
	})
	return nil
}

// While an output's pipeline restarts (a reconnect dropped its codec) and
// the previous run is still stopping, Adapter.Stats answers (before,
// StartOutput held the lock Stats takes while it waited).
func TestAdapterStatsDuringOutputRestart(t *testing.T) {
	m := &testModel{}
	eng, err := engine.New(m.declaration())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	first := &slowCloseDevice{closing: make(chan struct{}), release: make(chan struct{})}
	var opened atomic.Int32
	a, err := FromEngine(eng, Media{Backend: encode.BackendX264, DeviceEncoder: func(string) (DeviceEncoder, error) {
		if opened.Add(1) == 1 {
			return first, nil
		}
		d := &slowCloseDevice{closing: make(chan struct{}), release: make(chan struct{})}
		close(d.release)
		return d, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.StartSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	out1, err := peer.NewOutput("main_video", peer.KindVideo, peer.CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartOutput("main_video", out1); err != nil {
		t.Fatal(err)
	}
	out2, err := peer.NewOutput("main_video", peer.KindVideo, peer.CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() {
		_, err := s.StartOutput("main_video", out2)
		restarted <- err
	}()
	<-first.closing // the first run is stopping and waits in Close
	stats := make(chan []SessionStats, 1)
	go func() { stats <- a.Stats() }()
	blocked := false
	select {
	case st := <-stats:
		if len(st) != 1 || len(st[0].Video) != 1 {
			t.Errorf("Stats during a restart: %+v; want one session with one video output", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("Adapter.Stats waits for an output's previous pipeline to stop")
		blocked = true
	}
	close(first.release)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if blocked {
		<-stats
	}
	if st := a.Stats(); len(st) != 1 || len(st[0].Video) != 1 {
		t.Errorf("Stats after the restart: %+v; want one video output", st)
	}
}
