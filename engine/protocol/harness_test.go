package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/framewire/framewire/engine/peer"
)

// ---- a small real model: draws frames, encodes them with FFmpeg ----

const testW, testH = 320, 240

type testEngine struct {
	mu       sync.Mutex
	sessions []*testSession
	caps     Capabilities
}

func newTestEngine() *testEngine {
	return &testEngine{caps: Capabilities{
		ProtocolVersion: "v0",
		Tracks: []TrackCap{
			{Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly},
			{Name: "webcam", Kind: peer.KindVideo, Direction: peer.DirSendonly},
		},
		Commands: []CommandCap{
			{Name: "set_color", Description: "", Schema: json.RawMessage(`{"level":{"type":"number","minimum":0,"maximum":255,"required":true},"label":{"type":"string","enum":["red","green"],"required":true}}`)},
			{Name: "read_file", Description: "", Schema: json.RawMessage(`{"image":{"type":"file","required":true}}`)},
			{Name: "big", Description: "", Schema: json.RawMessage(`{"n":{"type":"integer","required":true}}`)},
			{Name: "blob", Description: "", Schema: json.RawMessage(`{"blob":{"type":"string","required":true}}`)},
		},
	}}
}

func (e *testEngine) ModelName() string          { return "testmodel" }
func (e *testEngine) Capabilities() Capabilities { return e.caps }
func (e *testEngine) StartSession(context.Context) (Session, error) {
	s := &testSession{id: newID(), done: make(chan struct{}), level: 128}
	e.mu.Lock()
	e.sessions = append(e.sessions, s)
	e.mu.Unlock()
	return s, nil
}

func (e *testEngine) last() *testSession {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sessions) == 0 {
		return nil
	}
	return e.sessions[len(e.sessions)-1]
}

type testSession struct {
	id     string
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	level  int32 // atomic: the grey level frames are drawn with
	sendMu sync.Mutex
	send   func(v any) error

	keyReq   atomic.Bool
	bitrate  atomic.Int64
	stopped  atomic.Bool
	cmds     atomic.Int64
	webcamN  atomic.Int64
	webcamWH atomic.Int64 // w<<16 | h
	sendErrs chan error
}

func (s *testSession) ID() string            { return s.id }
func (s *testSession) Done() <-chan struct{} { return s.done }
func (s *testSession) Stop() {
	s.once.Do(func() { s.stopped.Store(true); close(s.done) })
	s.wg.Wait()
}
func (s *testSession) SetSender(f func(v any) error) { s.sendMu.Lock(); s.send = f; s.sendMu.Unlock() }
func (s *testSession) Send(v any) error {
	s.sendMu.Lock()
	f := s.send
	s.sendMu.Unlock()
	return f(v)
}

func (s *testSession) Dispatch(name string, args json.RawMessage, ups map[string]Upload) error {
	switch name {
	case "set_color":
		var a struct {
			Level *float64 `json:"level"`
			Label *string  `json:"label"`
		}
		if err := json.Unmarshal(args, &a); err != nil || a.Level == nil || a.Label == nil {
			return fmt.Errorf("set_color wants {level: number, label: string}: %v", err)
		}
		atomic.StoreInt32(&s.level, int32(*a.Level))
		s.cmds.Add(1)
		return s.Send(map[string]any{"type": "color_set", "level": *a.Level, "label": *a.Label})
	case "read_file":
		u, ok := ups["image"]
		if !ok {
			return errors.New("read_file wants an image upload")
		}
		sum := sha256.Sum256(u.Data)
		return s.Send(map[string]any{"type": "file", "name": u.Name, "size": len(u.Data), "sha256": hex.EncodeToString(sum[:])})
	case "blob":
		var a struct{ Blob string }
		if err := json.Unmarshal(args, &a); err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(a.Blob))
		return s.Send(map[string]any{"type": "blob", "size": len(a.Blob), "sha256": hex.EncodeToString(sum[:])})
	case "big":
		var a struct{ N int }
		_ = json.Unmarshal(args, &a)
		err := s.Send(map[string]any{"type": "big", "pad": string(bytes.Repeat([]byte("x"), a.N))})
		if s.sendErrs != nil {
			s.sendErrs <- err
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", name)
}

func (s *testSession) SetBitrate(bps int) { s.bitrate.Store(int64(bps)) }
func (s *testSession) RequestKeyframe()   { s.keyReq.Store(true) }

// StartOutput runs a real encode loop: frames of the current grey level at
// 30 fps, libx264 or libvpx as the client's offer chose.
func (s *testSession) StartOutput(name string, out *peer.Output) (peer.Control, error) {
	backend := encode.BackendX264
	if out.Codec() == peer.CodecVP8 {
		backend = encode.BackendVP8
	}
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: backend, Width: testW, Height: testH, FPS: 30, Bitrate: 1_000_000})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer enc.Close()
		img := make([]byte, testW*testH*3)
		buf := make([]byte, 1<<20)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			lv := byte(atomic.LoadInt32(&s.level))
			for j := range img {
				img[j] = lv
			}
			if s.keyReq.Swap(false) {
				enc.RequestKeyframe()
			}
			if b := s.bitrate.Load(); b > 0 {
				enc.SetBitrate(int(b))
			}
			n, key, err := enc.Encode(encode.Image{Pix: img, Width: testW, Height: testH}, i*3000, buf)
			if err != nil || n == 0 {
				continue
			}
			_ = out.WriteSample(buf[:n], time.Second/30, time.Now(), key)
		}
	}()
	return s, nil
}

type webcamIn struct{ s *testSession }

func (w webcamIn) Deliver(rgb []byte, width, height int, _ time.Time) error {
	w.s.webcamN.Add(1)
	w.s.webcamWH.Store(int64(width)<<16 | int64(height))
	return nil
}

func (s *testSession) VideoInput(name string) peer.VideoInput {
	if name == "webcam" {
		return webcamIn{s}
	}
	return nil
}
func (s *testSession) AudioInput(string) peer.AudioInput { return nil }

// ---- server and an SDK-like pion client ----

type testServer struct {
	*httptest.Server
	srv *Server
	eng *testEngine
}

func testConfig() Config {
	return Config{
		Peer:        peer.Config{Loopback: true, Interfaces: []string{"lo"}},
		OrphanGrace: 3 * time.Second,
		PingTimeout: 2 * time.Second,
		UploadWait:  2 * time.Second,
	}
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	eng := newTestEngine()
	srv, err := NewServer(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return &testServer{Server: hs, srv: srv, eng: eng}
}

// do sends a request the way the SDK does and returns status and body.
func (ts *testServer) do(t *testing.T, method, path string, body any, hdr map[string]string) (int, []byte) {
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
	SessionID    string       `json:"session_id"`
	State        string       `json:"state"`
	Cluster      string       `json:"cluster"`
	Capabilities Capabilities `json:"capabilities"`
}

func (ts *testServer) start(t *testing.T) descriptor {
	t.Helper()
	code, body := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// client is a pion peer that follows the SDK 2.9.0 flow.
type client struct {
	t   *testing.T
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
	wg           sync.WaitGroup
}

func newPC(t *testing.T) *webrtc.PeerConnection {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSCTPMaxMessageSize(262144)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
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
func (ts *testServer) dial(t *testing.T, sid string, caps []TrackCap, method string) *client {
	t.Helper()
	c := &client{t: t, ts: ts, sid: sid, transceivers: map[string]*webrtc.RTPTransceiver{},
		open: make(chan struct{}), connected: make(chan struct{}), msgs: make(chan map[string]any, 64)}
	code, body := ts.do(t, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, rtcHdr)
	if code != 200 {
		t.Fatalf("ice_servers: %d %s", code, body)
	}
	c.pc = newPC(t)
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
		if tr.Direction == peer.DirSendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
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
		mapping = append(mapping, peer.TrackMapping{MID: c.transceivers[tr.Name].Mid(), Name: tr.Name, Kind: tr.Kind, Direction: tr.Direction})
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
func (ts *testServer) pollAnswer(t *testing.T, sid string) string {
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
	c.wg.Add(1)
	defer c.wg.Done()
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
	c.wg.Add(1)
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
	if c.pc != nil {
		_ = c.pc.Close()
	}
	c.wg.Wait()
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
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
func (ts *testServer) connectClient(t *testing.T) (descriptor, *client) {
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
