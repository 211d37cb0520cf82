package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
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
		e.srv.mu.Lock()
		cur := e.srv.cur
		e.srv.mu.Unlock()
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
	eng := newTestEngine(t, wiring.Config{})
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
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("Origin", "http://page.example:5173")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("%s %s: response %d has no Access-Control-Allow-Origin", method, path, resp.StatusCode)
	}
	return resp.StatusCode, out
}

var apiHdr = map[string]string{"Reactor-API-Version": "1", "Reactor-API-Accept-Version": "1", "Content-Type": "application/json"}
var rtcHdr = map[string]string{"Authorization": "Bearer local", "Reactor-WebRTC-Version": "1.0", "Content-Type": "application/json"}

type descriptor struct {
	SessionID    string              `json:"session_id"`
	State        string              `json:"state"`
	Cluster      string              `json:"cluster"`
	Capabilities engine.Capabilities `json:"capabilities"`
}

func (ts *testServer) start(t testing.TB) descriptor {
	t.Helper()
	code, body := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if ts.eng != nil {
		if s := ts.eng.last(); s == nil || s.es.ID() != d.SessionID {
			t.Fatalf("start_session answered %s, but the server's current session is another", d.SessionID)
		}
	}
	return d
}

// client is a pion peer that follows the SDK 2.9.0 flow.
type client struct {
	t   testing.TB
	ts  *testServer
	sid string
	pc  *webrtc.PeerConnection
	dc  *webrtc.DataChannel

	transceivers map[string]*webrtc.RTPTransceiver
	open         chan struct{}
	connected    chan struct{}
	msgs         chan map[string]any
	frames       atomic.Int64
	lastLuma     atomic.Int32
	frameWH      atomic.Int64
	samples      atomic.Int64
	keySamples   atomic.Int64
	firstKey     atomic.Int32 // 1: the first sample was a keyframe, 2: not
	serverDC     atomic.Bool  // the server opened a data channel

	mu     sync.Mutex // guards wg.Add against close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// track registers a goroutine of the client; false once close has begun
// (a pion callback may start after close, and WaitGroup.Add must not race
// with Wait).
func (c *client) track() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// clientOptions vary the test client's offer.
type clientOptions struct {
	vp8Only        bool // offer VP8 as the only video codec
	sendrecvInputs bool // offer input tracks as sendrecv, not sendonly
	// onAudio, when set, reads each audio track the model sends instead of
	// the video decoding below; it runs on the track's goroutine, which
	// close waits for, and returns when reading fails.
	onAudio func(remote *webrtc.TrackRemote)
}

func newPC(t testing.TB, o clientOptions) *webrtc.PeerConnection {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSCTPMaxMessageSize(262144)
	m := &webrtc.MediaEngine{}
	if o.vp8Only {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	} else if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{} // NACK, RTCP reports and TWCC feedback, as a browser sends
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// dial builds the peer connection, offers, posts (method POST or PUT) and
// polls for the answer like the SDK; it returns after the answer is applied.
func (ts *testServer) dial(t testing.TB, sid string, caps []engine.TrackCap, method string) *client {
	t.Helper()
	c := &client{t: t, ts: ts, sid: sid, transceivers: map[string]*webrtc.RTPTransceiver{},
		open: make(chan struct{}), connected: make(chan struct{}), msgs: make(chan map[string]any, 64)}
	code, body := ts.do(t, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, rtcHdr)
	if code != 200 {
		t.Fatalf("ice_servers: %d %s", code, body)
	}
	c.pc = newPC(t, ts.client)
	t.Cleanup(func() { c.close() })
	dc, err := c.pc.CreateDataChannel("data", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.dc = dc
	dc.OnOpen(func() { close(c.open) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		var v map[string]any
		if !m.IsString || json.Unmarshal(m.Data, &v) != nil {
			v = map[string]any{"_bad": string(m.Data)}
		}
		select {
		case c.msgs <- v:
		default:
		}
	})
	var once sync.Once
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.connected) })
		}
	})
	c.pc.OnTrack(c.onTrack)
	c.pc.OnDataChannel(func(*webrtc.DataChannel) { c.serverDC.Store(true) })
	for _, tr := range caps {
		dir := webrtc.RTPTransceiverDirectionRecvonly
		if peer.Direction(tr.Direction) == peer.DirSendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
			if ts.client.sendrecvInputs {
				dir = webrtc.RTPTransceiverDirectionSendrecv
			}
		}
		x, err := c.pc.AddTransceiverFromKind(webrtc.NewRTPCodecType(string(tr.Kind)), webrtc.RTPTransceiverInit{Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		c.transceivers[tr.Name] = x
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-g
	mapping := make([]peer.TrackMapping, 0, len(caps))
	for _, tr := range caps {
		mapping = append(mapping, peer.TrackMapping{MID: c.transceivers[tr.Name].Mid(), Name: tr.Name, Kind: peer.Kind(tr.Kind), Direction: peer.Direction(tr.Direction)})
	}
	code, body = ts.do(t, method, "/sessions/"+sid+"/transport/webrtc/sdp_params", map[string]any{
		"sdp_offer": c.pc.LocalDescription().SDP, "client_info": map[string]string{"sdk_version": "2.9.0", "sdk_type": "js"}, "track_mapping": mapping,
	}, rtcHdr)
	if code != http.StatusAccepted {
		t.Fatalf("%s sdp_params: %d %s, want 202", method, code, body)
	}
	answer := ts.pollAnswer(t, sid)
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("apply answer: %v", err)
	}
	return c
}

// pollAnswer polls like the SDK: 6 GETs, sleeping 200, 400, ... ms.
func (ts *testServer) pollAnswer(t testing.TB, sid string) string {
	t.Helper()
	back := 200 * time.Millisecond
	for i := 0; i < 6; i++ {
		code, body := ts.do(t, "GET", "/sessions/"+sid+"/transport/webrtc/sdp_params", nil, rtcHdr)
		switch code {
		case 200:
			var a struct {
				SDPAnswer string `json:"sdp_answer"`
			}
			if err := json.Unmarshal(body, &a); err != nil || a.SDPAnswer == "" {
				t.Fatalf("GET sdp_params 200 without sdp_answer: %s", body)
			}
			return a.SDPAnswer
		case 202:
			time.Sleep(back)
			back *= 2
		default:
			t.Fatalf("GET sdp_params: %d %s", code, body)
		}
	}
	t.Fatal("no answer after the SDK's 6 polls")
	return ""
}

func (c *client) waitReady() {
	c.t.Helper()
	for _, ch := range []chan struct{}{c.connected, c.open} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			c.t.Fatal("client not connected with an open data channel after 10 s")
		}
	}
}

// onTrack decodes the model's output, counting frames and reading the
// centre pixel.
func (c *client) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if !c.track() {
		return
	}
	defer c.wg.Done()
	if remote.Kind() == webrtc.RTPCodecTypeAudio && c.ts.client.onAudio != nil {
		c.ts.client.onAudio(remote)
		return
	}
	codec := encode.CodecH264
	var dep interface {
		Unmarshal([]byte) ([]byte, error)
		IsPartitionHead([]byte) bool
		IsPartitionTail(bool, []byte) bool
	} = &codecs.H264Packet{}
	if remote.Codec().MimeType == webrtc.MimeTypeVP8 {
		codec, dep = encode.CodecVP8, &codecs.VP8Packet{}
	}
	dec, err := encode.NewVideoDecoder(codec)
	if err != nil {
		c.t.Error(err)
		return
	}
	defer dec.Close()
	sb := samplebuilder.New(256, dep, 90000)
	rgb := make([]byte, 4096*4096*3)
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			key := codec == encode.CodecH264 && isH264Key(s.Data) || codec == encode.CodecVP8 && len(s.Data) > 0 && s.Data[0]&1 == 0
			if c.samples.Add(1) == 1 {
				if key {
					c.firstKey.Store(1)
				} else {
					c.firstKey.Store(2)
				}
			}
			if key {
				c.keySamples.Add(1)
			}
			_ = dec.Decode(s.Data, func(f encode.Frame) error {
				w, h := f.Size()
				if _, err := f.RGB(rgb); err != nil {
					return err
				}
				c.frames.Add(1)
				c.frameWH.Store(int64(w)<<16 | int64(h))
				c.lastLuma.Store(int32(rgb[(h/2*w+w/2)*3]))
				return nil
			})
		}
	}
}

func (c *client) waitFrames(n int64, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for c.frames.Load() < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("decoded %d frames within %s, want %d", c.frames.Load(), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.dc.SendText(string(b)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) command(name string, data any, uploads map[string]any) {
	inner := map[string]any{"type": name, "data": data}
	if uploads != nil {
		inner["uploads"] = uploads
	}
	c.sendJSON(map[string]any{"scope": "application", "data": inner})
}

// expect waits for a message whose data.type (runtime) or data.type
// (application payload) is typ.
func (c *client) expect(scope, typ string, within time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-c.msgs:
			if m["scope"] != scope {
				continue
			}
			d, _ := m["data"].(map[string]any)
			if d != nil && d["type"] == typ {
				return d
			}
		case <-deadline:
			c.t.Fatalf("no %s message of type %q within %s", scope, typ, within)
			return nil
		}
	}
}

// publishWebcam replaces the webcam transceiver's track (no renegotiation)
// and sends encoded frames of w x h until stop is closed.
func (c *client) publishWebcam(w, h int, stop <-chan struct{}) {
	c.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "webcam", "cam")
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.transceivers["webcam"].Sender().ReplaceTrack(tr); err != nil {
		c.t.Fatal(err)
	}
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendVP8, Width: w, Height: h, FPS: 30})
	if err != nil {
		c.t.Fatal(err)
	}
	if !c.track() {
		enc.Close()
		return
	}
	go func() {
		defer c.wg.Done()
		defer enc.Close()
		img := make([]byte, w*h*3)
		buf := make([]byte, 1<<20)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for j := range img {
				img[j] = byte(i)
			}
			n, _, err := enc.Encode(encode.Image{Pix: img, Width: w, Height: h}, i*3000, buf)
			if err == nil && n > 0 {
				_ = tr.WriteSample(media.Sample{Data: buf[:n], Duration: time.Second / 30})
			}
		}
	}()
}

func (c *client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.pc != nil {
		_ = c.pc.Close()
	}
	c.wg.Wait()
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectClient runs the whole SDK connect flow.
func (ts *testServer) connectClient(t testing.TB) (descriptor, *client) {
	t.Helper()
	d := ts.start(t)
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.waitReady()
	return d, c
}

// isH264Key reports whether an Annex-B access unit holds an IDR slice.
func isH264Key(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			if au[i+3]&0x1f == 5 {
				return true
			}
			i += 2
		}
	}
	return false
}
