package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// ---- a small model on the real engine, served through FromEngine ----

const testW, testH = 320, 240

// testState is one session's model state, shared by its RunSession and
// command handlers.
type testState struct {
	level    atomic.Int32 // the grey level frames are drawn with
	cmds     atomic.Int64 // set_color commands run
	sendErrs chan error   // the result of each big command's Send
}

// testModel draws grey frames of the level set_color chose at 30 fps into
// main_video (320x240); the engine's pipeline encodes them with the codec
// the client's offer chose.
type testModel struct{ states sync.Map } // session id -> *testState

func (m *testModel) state(id string) *testState {
	st := &testState{sendErrs: make(chan error, 1)}
	st.level.Store(128)
	v, _ := m.states.LoadOrStore(id, st)
	return v.(*testState)
}

func (m *testModel) RunSession(ctx context.Context, s *engine.Session) error {
	st := m.state(s.ID())
	out, err := s.VideoOut("main_video")
	if err != nil {
		return err
	}
	img := make([]byte, testW*testH*3)
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		lv := byte(st.level.Load())
		for j := range img {
			img[j] = lv
		}
		if err := out.Emit(img, testH, testW, 3); err != nil {
			return nil // the track closed: the session is ending
		}
	}
}

type setColorArgs struct {
	Level float64 `json:"level" min:"0" max:"255"`
	Label string  `json:"label" enum:"red,green"`
}

type readFileArgs struct {
	Image engine.File `json:"image"`
}

type bigArgs struct {
	N int `json:"n"`
}

type blobArgs struct {
	Blob string `json:"blob"`
}

func (m *testModel) declaration() engine.Model {
	return engine.Model{
		Name:   "testmodel",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30)), tracks.VideoInput("webcam")},
		Commands: []engine.CommandDef{
			engine.Command("set_color", "", func(s *engine.Session, a setColorArgs) error {
				st := m.state(s.ID())
				st.level.Store(int32(a.Level))
				st.cmds.Add(1)
				return s.Send(map[string]any{"type": "color_set", "level": a.Level, "label": a.Label})
			}),
			engine.Command("read_file", "", func(s *engine.Session, a readFileArgs) error {
				sum := sha256.Sum256(a.Image.Data)
				return s.Send(map[string]any{"type": "file", "name": a.Image.Name, "size": len(a.Image.Data), "sha256": hex.EncodeToString(sum[:])})
			}),
			engine.Command("big", "", func(s *engine.Session, a bigArgs) error {
				err := s.Send(map[string]any{"type": "big", "pad": strings.Repeat("x", a.N)})
				select {
				case m.state(s.ID()).sendErrs <- err:
				default:
				}
				return nil
			}),
			engine.Command("blob", "", func(s *engine.Session, a blobArgs) error {
				sum := sha256.Sum256([]byte(a.Blob))
				return s.Send(map[string]any{"type": "blob", "size": len(a.Blob), "sha256": hex.EncodeToString(sum[:])})
			}),
		},
		New: func(engine.Config) (engine.Runner, error) { return m, nil },
	}
}

// testEngine is the test model's engine, wired, with the server's latest
// session remembered (srv is set once the server exists).
type testEngine struct {
	*wiring.Wiring
	model *testModel
	caps  engine.Capabilities

	mu    sync.Mutex
	srv   *Server
	lastS *testSession
}

func newTestEngine(t testing.TB, cfg wiring.Config) *testEngine {
	t.Helper()
	m := &testModel{}
	eng, err := engine.New(m.declaration())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	w, err := wiring.New(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testEngine{Wiring: w, model: m, caps: eng.Capabilities()}
}

// serve records the server whose sessions last reports.
func (e *testEngine) serve(srv *Server) {
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
}

// last returns the server's current session or, once it ended, the last
// one it had.
func (e *testEngine) last() *testSession {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		cur := e.srv.currentSession()
		if cur != nil && (e.lastS == nil || e.lastS.es != cur.es) {
			e.lastS = &testSession{es: cur.es, testState: e.model.state(cur.id)}
		}
	}
	return e.lastS
}

// started counts the sessions the engine started.
func (e *testEngine) started() uint64 { return e.Engine().Stats().SessionsStarted }

// testSession is an engine session plus what tests inspect.
type testSession struct {
	es *engine.Session
	*testState
}

// stopped reports whether the engine session has ended.
func (s *testSession) stopped() bool {
	select {
	case <-s.es.Done():
		return true
	default:
		return false
	}
}

// webcamN counts webcam frames the model's input track received.
func (s *testSession) webcamN() int64 {
	in, err := s.es.VideoIn("webcam")
	if err != nil {
		return 0
	}
	return int64(in.Stats().Delivered)
}

// webcamWH is the latest webcam frame's size as w<<16 | h (0 before one).
func (s *testSession) webcamWH() int64 {
	in, err := s.es.VideoIn("webcam")
	if err != nil {
		return 0
	}
	f := in.Latest()
	if f == nil {
		return 0
	}
	return int64(f.Width)<<16 | int64(f.Height)
}

// videoStats returns the session's main_video pipeline stats.
func (e *testEngine) videoStats(t testing.TB) pipeline.VideoStats {
	t.Helper()
	for _, st := range e.Stats() {
		if st.ID == e.last().es.ID() && len(st.Video) > 0 {
			return st.Video[0]
		}
	}
	t.Fatal("no running main_video pipeline")
	return pipeline.VideoStats{}
}

// ---- server and an SDK-like pion client ----

type testServer struct {
	*httptest.Server
	srv    *Server
	eng    *testEngine
	client clientOptions // how dial's client offers
}

func testConfig() Config {
	return Config{
		Peer:        peer.Config{Loopback: true, Interfaces: []string{"lo"}},
		OrphanGrace: 3 * time.Second,
		PingTimeout: 2 * time.Second,
		UploadWait:  2 * time.Second,
	}
}

func newTestServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	return serveTestEngine(t, newTestEngine(t, wiring.Config{}), cfg)
}

// serveTestEngine serves eng with cfg on an httptest server, both closed
// when the test ends.
func serveTestEngine(t testing.TB, eng *testEngine, cfg Config) *testServer {
	t.Helper()
	srv, err := NewServer(eng.Wiring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng.serve(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return &testServer{Server: hs, srv: srv, eng: eng}
}

// do sends a request the way the SDK does and returns status and body.
func (ts *testServer) do(t testing.TB, method, path string, body any, hdr map[string]string) (int, []byte) {
	t.Helper()
	return enginetest.Do(t, ts.URL, method, path, body, hdr)
}

var (
	apiHdr = enginetest.APIHeaders
	rtcHdr = enginetest.RTCHeaders
)

type descriptor = enginetest.Descriptor

func (ts *testServer) start(t testing.TB) descriptor {
	t.Helper()
	d := enginetest.Start(t, ts.URL)
	if ts.eng != nil {
		if s := ts.eng.last(); s == nil || s.es.ID() != d.SessionID {
			t.Fatalf("start_session answered %s, but the server's current session is another", d.SessionID)
		}
	}
	return d
}

// client is the shared SDK-flow pion client.
type client = enginetest.Client

// clientOptions vary the test client's offer.
type clientOptions = enginetest.ClientOptions

// dial connects a client to session sid (method POST, or PUT to
// reconnect) with the server's client options.
func (ts *testServer) dial(t testing.TB, sid string, caps []engine.TrackCap, method string) *client {
	t.Helper()
	return enginetest.Dial(t, ts.URL, sid, caps, method, ts.client)
}

// connectClient runs the whole SDK connect flow.
func (ts *testServer) connectClient(t testing.TB) (descriptor, *client) {
	t.Helper()
	d := ts.start(t)
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	return d, c
}

var (
	eventually = enginetest.Eventually
	newPC      = enginetest.NewClientPC
	isH264Key  = enginetest.IsH264Key
)
