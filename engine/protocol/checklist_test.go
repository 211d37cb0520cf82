package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
)

// Each TestChecklistNN maps to item NN of the conformance checklist (§13 of
// the wire contract). Items 17 and (in the browser) 18/19/25 are also
// covered by cmd/framewire's TestBrowserSDK with the real SDK.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var allRoutes = []string{
	"/start_session", "/stop_session",
	"/sessions/x/transport/webrtc/ice_servers", "/sessions/x/transport/webrtc/sdp_params",
	"/sessions/x/uploads", "/uploads/abc",
}

func TestChecklist01_PreflightOnEveryRoute(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedOrigins = []string{"http://page.example"} // the app's page
	ts := newTestServer(t, cfg)
	for _, path := range allRoutes {
		req, _ := http.NewRequest("OPTIONS", ts.URL+path, nil)
		req.Header.Set("Origin", "http://page.example")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,reactor-webrtc-version")
		req.Header.Set("Access-Control-Request-Private-Network", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("OPTIONS %s: %d, ACAO %q", path, resp.StatusCode, h.Get("Access-Control-Allow-Origin"))
		}
		for _, m := range []string{"GET", "POST", "PUT"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
				t.Errorf("OPTIONS %s: Allow-Methods %q lacks %s", path, h.Get("Access-Control-Allow-Methods"), m)
			}
		}
		for _, hd := range []string{"Authorization", "Content-Type", "Reactor-API-Version", "Reactor-API-Accept-Version", "Reactor-WebRTC-Version"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hd) {
				t.Errorf("OPTIONS %s: Allow-Headers %q lacks %s", path, h.Get("Access-Control-Allow-Headers"), hd)
			}
		}
		if h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Private-Network") != "true" {
			t.Errorf("OPTIONS %s: Max-Age %q, Private-Network %q", path, h.Get("Access-Control-Max-Age"), h.Get("Access-Control-Allow-Private-Network"))
		}
	}
}

func TestChecklist02_CORSOnEveryResponse(t *testing.T) {
	ts := newTestServer(t, testConfig())
	// do() fails the test on any response without Access-Control-Allow-Origin.
	ts.do(t, "GET", "/nowhere", nil, nil)                                    // 404
	ts.do(t, "GET", "/start_session", nil, nil)                              // 405
	ts.do(t, "GET", "/sessions/x/transport/webrtc/ice_servers", nil, rtcHdr) // 400, no session
	d := ts.start(t)
	ts.do(t, "GET", "/sessions/wrong/transport/webrtc/ice_servers", nil, rtcHdr) // 404
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")                  // 202 and 200
	c.WaitReady()
	if code, _ := ts.do(t, "POST", "/stop_session", nil, nil); code != 200 {
		t.Fatalf("stop_session %d", code)
	}
}

func TestChecklist03_StartSessionDescriptor(t *testing.T) {
	ts := newTestServer(t, testConfig())
	for _, body := range []any{"{}", nil} { // {} as 2.9.0 sends, and an absent body
		code, raw := ts.do(t, "POST", "/start_session", body, apiHdr)
		if code != 200 {
			t.Fatalf("start_session(%v): %d %s", body, code, raw)
		}
		var d struct {
			SessionID  *string `json:"session_id"`
			State      *string `json:"state"`
			Cluster    *string `json:"cluster"`
			Model      struct{ Name *string }
			ServerInfo struct {
				ServerVersion *string `json:"server_version"`
			} `json:"server_info"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if d.SessionID == nil || *d.SessionID == "" || d.State == nil || d.Cluster == nil || d.Model.Name == nil || *d.Model.Name != "testmodel" || d.ServerInfo.ServerVersion == nil {
			t.Errorf("descriptor misses a required string: %s", raw)
		}
	}
}

func TestChecklist04_SelectedTransportAndCapabilities(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, raw := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	var d struct {
		SelectedTransport map[string]string `json:"selected_transport"`
		Capabilities      map[string]any    `json:"capabilities"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.SelectedTransport["protocol"] != "webrtc" || d.SelectedTransport["version"] != "1.0" {
		t.Errorf("selected_transport %v", d.SelectedTransport)
	}
	if _, ok := d.Capabilities["protocol_version"].(string); !ok {
		t.Errorf("capabilities.protocol_version not a string: %v", d.Capabilities)
	}
	if _, ok := d.Capabilities["tracks"].([]any); !ok {
		t.Errorf("capabilities.tracks not an array: %v", d.Capabilities)
	}
}

func TestChecklist05_TrackEntries(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	want := map[string]string{"main_video": string(peer.DirRecvonly), "webcam": string(peer.DirSendonly)}
	for _, tr := range d.Capabilities.Tracks {
		if tr.Kind != string(peer.KindVideo) && tr.Kind != string(peer.KindAudio) {
			t.Errorf("track %q kind %q", tr.Name, tr.Kind)
		}
		if want[tr.Name] != tr.Direction {
			t.Errorf("track %q direction %q, want %q", tr.Name, tr.Direction, want[tr.Name])
		}
	}
}

func TestChecklist06_CommandEntries(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, raw := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	var d struct {
		Capabilities struct {
			Commands    []map[string]any `json:"commands"`
			EmissionFPS any              `json:"emission_fps"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Capabilities.Commands) == 0 {
		t.Fatal("no commands")
	}
	for _, c := range d.Capabilities.Commands {
		_, n := c["name"].(string)
		_, desc := c["description"].(string)
		sch, hasSchema := c["schema"]
		_, obj := sch.(map[string]any)
		if !n || !desc || hasSchema && !obj {
			t.Errorf("command entry %v: want string name, string description, object schema", c)
		}
	}
	switch d.Capabilities.EmissionFPS.(type) {
	case nil, float64:
	default:
		t.Errorf("emission_fps %v", d.Capabilities.EmissionFPS)
	}
}

func TestChecklist07_StartReplacesStaleSession(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d1, c1 := ts.connectClient(t)
	first := ts.eng.last()
	c1.PC.Close() // the tab vanished without stop_session
	d2 := ts.start(t)
	if d2.SessionID == d1.SessionID {
		t.Fatal("same session id after a second start_session")
	}
	if !first.stopped() {
		t.Error("the replaced model session was not stopped")
	}
	if code, _ := ts.do(t, "GET", "/sessions/"+d1.SessionID+"/transport/webrtc/ice_servers", nil, rtcHdr); code != 404 {
		t.Errorf("old session's route answered %d, want 404", code)
	}
	c2 := ts.dial(t, d2.SessionID, d2.Capabilities.Tracks, "POST")
	c2.WaitReady()
	c2.WaitFrames(5, 5*time.Second)
}

func TestChecklist08_ICEServers(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	code, raw := ts.do(t, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, rtcHdr)
	if code != 200 || strings.TrimSpace(string(raw)) != `{"ice_servers":[]}` {
		t.Errorf("ice_servers: %d %s, want 200 {\"ice_servers\":[]}", code, raw)
	}
	cfg := testConfig()
	cfg.Peer.ICEServers = []peer.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}, {URLs: []string{"turn:127.0.0.1:3478"}, Username: "u", Credential: "p"}}
	ts2 := newTestServer(t, cfg)
	d2 := ts2.start(t)
	_, raw = ts2.do(t, "GET", "/sessions/"+d2.SessionID+"/transport/webrtc/ice_servers", nil, rtcHdr)
	want := `{"ice_servers":[{"uris":["stun:127.0.0.1:3478"]},{"uris":["turn:127.0.0.1:3478"],"credentials":{"password":"p","username":"u"}}]}`
	if strings.TrimSpace(string(raw)) != want {
		t.Errorf("ice_servers %s\nwant %s", raw, want)
	}
}

func TestChecklist09_UnknownOrMissingSession(t *testing.T) {
	ts := newTestServer(t, testConfig())
	paths := []struct{ method, path string }{
		{"GET", "/transport/webrtc/ice_servers"}, {"GET", "/transport/webrtc/sdp_params"},
		{"POST", "/transport/webrtc/sdp_params"}, {"PUT", "/transport/webrtc/sdp_params"}, {"POST", "/uploads"},
	}
	for _, p := range paths { // no session at all
		if code, raw := ts.do(t, p.method, "/sessions/none"+p.path, "{}", rtcHdr); code/100 == 2 || !strings.Contains(string(raw), "detail") {
			t.Errorf("%s %s without a session: %d %s", p.method, p.path, code, raw)
		}
	}
	ts.start(t)
	for _, p := range paths {
		if code, _ := ts.do(t, p.method, "/sessions/wrong"+p.path, "{}", rtcHdr); code != 404 {
			t.Errorf("%s %s with a wrong sid: %d, want 404", p.method, p.path, code)
		}
	}
	if code, _ := ts.do(t, "PUT", "/uploads/nope", "x", nil); code != 404 {
		t.Errorf("PUT to an unknown upload: %d, want 404", code)
	}
}

// offerFor builds an SDK-shaped offer body without posting it.
func offerFor(t *testing.T, caps []engine.TrackCap) (*webrtc.PeerConnection, map[string]any) {
	pc := newPC(t, clientOptions{})
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	var mapping []peer.TrackMapping
	var trs []*webrtc.RTPTransceiver
	for _, tr := range caps {
		dir := webrtc.RTPTransceiverDirectionRecvonly
		if peer.Direction(tr.Direction) == peer.DirSendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
		}
		x, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, x)
	}
	o, _ := pc.CreateOffer(nil)
	g := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(o)
	<-g
	for i, tr := range caps {
		mapping = append(mapping, peer.TrackMapping{MID: trs[i].Mid(), Name: tr.Name, Kind: peer.Kind(tr.Kind), Direction: peer.Direction(tr.Direction)})
	}
	return pc, map[string]any{"sdp_offer": pc.LocalDescription().SDP, "client_info": map[string]string{"sdk_version": "2.9.0", "sdk_type": "js"}, "track_mapping": mapping}
}

func TestChecklist10_PostOfferIs202(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	_, body := offerFor(t, d.Capabilities.Tracks)
	if code, raw := ts.do(t, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", body, rtcHdr); code != 202 {
		t.Fatalf("POST sdp_params: %d %s, want exactly 202", code, raw)
	}
}

func TestChecklist11_AnswerPollingWithin5s(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	_, body := offerFor(t, d.Capabilities.Tracks)
	posted := time.Now()
	ts.do(t, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", body, rtcHdr)
	var raw []byte
	enginetest.Eventually(t, 5*time.Second, "the answer after the POST", func() bool {
		var code int
		code, raw = ts.do(t, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", nil, rtcHdr)
		if code != 200 && code != 202 {
			t.Fatalf("GET sdp_params: %d %s, want 202 or 200", code, raw)
		}
		return code == 200
	})
	var a map[string]string
	if json.Unmarshal(raw, &a) != nil || !strings.HasPrefix(a["sdp_answer"], "v=0") {
		t.Fatalf("200 body %s", raw)
	}
	t.Logf("answer ready %s after the POST", time.Since(posted).Round(time.Millisecond))
}

func iceUfrag(t *testing.T, s string) string {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		t.Fatal(err)
	}
	for _, m := range sd.MediaDescriptions {
		if v, ok := m.Attribute("ice-ufrag"); ok {
			return v
		}
	}
	v, _ := sd.Attribute("ice-ufrag")
	return v
}

func TestChecklist12_PutNeverReturnsStaleAnswer(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	_, body1 := offerFor(t, d.Capabilities.Tracks)
	ts.do(t, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", body1, rtcHdr)
	first := enginetest.PollAnswer(t, ts.URL, d.SessionID)
	_, body2 := offerFor(t, d.Capabilities.Tracks)
	if code, _ := ts.do(t, "PUT", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", body2, rtcHdr); code != 202 {
		t.Fatalf("PUT %d", code)
	}
	var code int
	var raw []byte
	enginetest.Eventually(t, 5*time.Second, "an answer after the PUT", func() bool {
		code, raw = ts.do(t, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", nil, rtcHdr)
		return code != 202
	})
	var a map[string]string
	_ = json.Unmarshal(raw, &a)
	if code != 200 || a["sdp_answer"] == first || iceUfrag(t, a["sdp_answer"]) == iceUfrag(t, first) {
		t.Fatalf("after PUT: %d, the previous answer handed out again: %v", code, a["sdp_answer"] == first)
	}
}

func TestChecklist13_AnswerCarriesCandidates(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	if !strings.Contains(c.PC.RemoteDescription().SDP, "a=candidate:") {
		t.Fatal("answer has no a=candidate lines")
	}
	c.WaitReady() // no trickle, no further signalling
}

func TestChecklist14_AnswerBundleSCTPDirections(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(c.PC.RemoteDescription().SDP); err != nil {
		t.Fatal(err)
	}
	if g, ok := sd.Attribute("group"); !ok || !strings.HasPrefix(g, "BUNDLE") {
		t.Errorf("answer has no BUNDLE group: %q", g)
	}
	dirs := map[string]string{}
	for _, m := range sd.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		if m.MediaName.Media == "application" {
			v, ok := m.Attribute("max-message-size")
			if n, err := strconv.Atoi(v); !ok || err != nil || n < 262144 {
				t.Errorf("application section max-message-size %q, want >= 262144", v)
			}
			continue
		}
		for _, dir := range []string{"sendonly", "recvonly", "sendrecv", "inactive"} {
			if _, ok := m.Attribute(dir); ok {
				dirs[mid] = dir
			}
		}
	}
	if got := dirs[c.Transceivers["main_video"].Mid()]; got != "sendonly" {
		t.Errorf("main_video (client recvonly) answered %q, want sendonly", got)
	}
	if got := dirs[c.Transceivers["webcam"].Mid()]; got != "recvonly" {
		t.Errorf("webcam (client sendonly) answered %q, want recvonly", got)
	}
}

func TestChecklist15_RoutedByMidNotOrder(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	tracks := d.Capabilities.Tracks
	reversed := []engine.TrackCap{tracks[1], tracks[0]} // webcam gets the first m-line
	c := ts.dial(t, d.SessionID, reversed, "POST")
	c.WaitReady()
	c.WaitFrames(10, 5*time.Second)
	stop := make(chan struct{})
	defer close(stop)
	c.PublishWebcam("webcam", 160, 120, stop)
	s := ts.eng.last()
	eventually(t, 5*time.Second, "webcam frames delivered to the model", func() bool { return s.webcamN() > 5 })
}

func TestChecklist16_ServerOpensNoDataChannel(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.WaitFrames(5, 5*time.Second)
	if c.ServerDC.Load() {
		t.Fatal("server opened a data channel")
	}
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities", "data": map[string]any{}}})
	c.Expect("runtime", "modelCapabilities", 3*time.Second) // the client's "data" channel was accepted
}

// TestChecklist17_StatusSequence: the SDK's status sequence is checked in
// the browser by cmd/framewire TestBrowserSDK; here, the server-side states
// a client passes through: waiting → streaming.
func TestChecklist17_StatusSequence(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	if d.State != "waiting" || ts.srv.Stats().State != "waiting" {
		t.Fatalf("state after start %q/%q, want waiting", d.State, ts.srv.Stats().State)
	}
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	eventually(t, 2*time.Second, "streaming", func() bool { return ts.srv.Stats().State == "streaming" })
}

func TestChecklist18_VideoFlowsKeyframeFirstAndOnPLI(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	ready := time.Now()
	c.WaitFrames(1, 3*time.Second)
	t.Logf("first decoded frame %s after ready", time.Since(ready).Round(time.Millisecond))
	if c.FirstKey.Load() != 1 {
		t.Error("the first sample on main_video was not a keyframe")
	}
	c.WaitFrames(30, 5*time.Second)
	keys := c.KeySamples.Load()
	ssrc := uint32(c.Transceivers["main_video"].Receiver().Track().SSRC())
	if err := c.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "a keyframe after PLI", func() bool { return c.KeySamples.Load() > keys })
	keys = c.KeySamples.Load()
	if err := c.PC.WriteRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{MediaSSRC: ssrc, FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: 1}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "a keyframe after FIR", func() bool { return c.KeySamples.Load() > keys })
}

func TestChecklist19_WebcamReachesModelWithoutRenegotiation(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	s := ts.eng.last()
	c.WaitFrames(c.Frames.Load()+10, 5*time.Second) // the connection has been live for 10 output frames
	if s.webcamN() != 0 {
		t.Fatal("webcam frames before publishing")
	}
	stop := make(chan struct{})
	c.PublishWebcam("webcam", 176, 144, stop)
	eventually(t, 5*time.Second, "webcam frames in the model", func() bool { return s.webcamN() >= 10 })
	if wh := s.webcamWH(); wh != 176<<16|144 {
		t.Errorf("webcam delivered %dx%d, want 176x144", wh>>16, wh&0xffff)
	}
	close(stop)                                     // unpublish: delivery stops
	c.WaitFrames(c.Frames.Load()+10, 5*time.Second) // what was in flight has drained
	n := s.webcamN()
	c.WaitFrames(c.Frames.Load()+15, 5*time.Second) // half a second more of a live connection
	if s.webcamN() != n {
		t.Error("webcam frames still delivered after the client stopped sending")
	}
}

func TestChecklist20_BlackFrameVisible(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.Command("set_color", map[string]any{"level": 0, "label": "red"}, nil)
	eventually(t, 5*time.Second, "black picture at the client", func() bool { return c.Frames.Load() > 0 && c.LastLuma.Load() < 20 })
}

func TestChecklist21_ServerFramesAreTextEnvelopes(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities", "data": map[string]any{}}})
	c.Command("set_color", map[string]any{"level": 10, "label": "red"}, nil)
	c.Command("nope", map[string]any{}, nil) // produces a runtime error message
	for i := 0; i < 3; i++ {
		select {
		case m := <-c.Msgs:
			if _, bad := m["_bad"]; bad || m["scope"] == nil || m["data"] == nil {
				t.Errorf("frame %v is not a text JSON {scope, data} envelope", m)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("got %d of 3 messages", i)
		}
	}
}

func TestChecklist22_PingRefreshesLiveness(t *testing.T) {
	cfg := testConfig()
	cfg.PingTimeout = 600 * time.Millisecond
	ts := newTestServer(t, cfg)
	_, c := ts.connectClient(t)
	for i := 0; i < 10; i++ { // 2 s of pings, > 3 ping timeouts
		c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "ping", "data": map[string]any{}}})
		time.Sleep(200 * time.Millisecond)
	}
	if st := ts.srv.Stats().State; st != "streaming" {
		t.Fatalf("state %q while pinging, want streaming", st)
	}
	select {
	case m := <-c.Msgs:
		t.Fatalf("ping answered with %v", m)
	default:
	}
}

func TestChecklist23_RequestCapabilities(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities", "data": map[string]any{}}})
	m := c.Expect("runtime", "modelCapabilities", 3*time.Second)
	data, _ := m["data"].(map[string]any)
	cmds, _ := data["commands"].([]any)
	if len(cmds) != len(ts.eng.caps.Commands) {
		t.Fatalf("modelCapabilities lists %d commands, want %d", len(cmds), len(ts.eng.caps.Commands))
	}
	first, _ := cmds[0].(map[string]any)
	schema, _ := first["schema"].(map[string]any)
	level, _ := schema["level"].(map[string]any)
	if level["type"] != "number" || level["maximum"] != 255.0 {
		t.Errorf("schema is not the flat parameter map: %v", first)
	}
	if _, ok := data["tracks"]; !ok {
		t.Error("modelCapabilities is not the whole capabilities object")
	}
}

func TestChecklist24_CommandsInvalidDroppedChannelKept(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	for _, bad := range []string{`not json`, `{"scope":"application"}`, `{"scope":"weird","data":{"type":"x"}}`, `{"scope":"runtime","data":{"type":"unknownThing"}}`} {
		if err := c.DC.SendText(bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DC.Send([]byte{0xff, 0x00}); err != nil { // binary frame
		t.Fatal(err)
	}
	c.Command("no_such_command", map[string]any{}, nil)
	c.Command("set_color", map[string]any{"level": "high", "label": 3}, nil) // wrong argument types
	c.Command("set_color", map[string]any{"level": 99, "label": "green"}, nil)
	m := c.Expect("application", "color_set", 3*time.Second)
	if m["level"] != 99.0 {
		t.Errorf("color_set %v", m)
	}
	s, es := ts.srv.Stats(), ts.eng.Engine().Stats()
	if s.DroppedMessages < 4 || es.CommandsRejected < 2 || es.CommandsRun != 1 {
		t.Errorf("server %+v, engine %+v: want >= 4 dropped, >= 2 rejected, 1 command run", s, es)
	}
	if ts.eng.last().cmds.Load() != 1 {
		t.Error("the model ran a command it should not have")
	}
}

func TestChecklist25_SendReachesClientExactly(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.Command("set_color", map[string]any{"level": 42, "label": "red"}, nil)
	m := c.Expect("application", "color_set", 3*time.Second)
	want := map[string]any{"type": "color_set", "level": 42.0, "label": "red"}
	if len(m) != len(want) || m["level"] != want["level"] || m["label"] != want["label"] {
		t.Errorf("application data %v, want exactly %v", m, want)
	}
}

func TestChecklist26_LargeMessagesBothWays(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	blob := strings.Repeat("0123456789abcdef", 200*1024/16) // 200 KiB
	c.Command("blob", map[string]any{"blob": blob}, nil)
	m := c.Expect("application", "blob", 5*time.Second)
	sum := sha256.Sum256([]byte(blob))
	if m["size"] != float64(len(blob)) || m["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("200 KiB message not received intact: %v", m)
	}
	// Beyond the client's a=max-message-size (262144 here) the model's Send
	// fails and nothing is sent.
	s := ts.eng.last()
	c.Command("big", map[string]any{"n": 300_000}, nil)
	select {
	case err := <-s.sendErrs:
		if !errors.Is(err, peer.ErrMessageTooLarge) {
			t.Fatalf("Send of 300 kB: %v, want ErrMessageTooLarge", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("big command not run")
	}
	if n := ts.eng.Engine().Stats().SendsRefused; n != 1 {
		t.Errorf("refused sends %d; want 1", n)
	}
}

func createUpload(t *testing.T, ts *testServer, sid string, name string, size int) map[string]string {
	t.Helper()
	code, raw := ts.do(t, "POST", "/sessions/"+sid+"/uploads", map[string]any{"name": name, "size": size, "mime_type": "text/plain"}, apiHdr)
	if code/100 != 2 {
		t.Fatalf("create upload: %d %s", code, raw)
	}
	var slot map[string]string
	if err := json.Unmarshal(raw, &slot); err != nil {
		t.Fatal(err)
	}
	return slot
}

func putURL(t *testing.T, url string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(string(body)))
	req.Header.Set("Origin", "http://page.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Error("PUT response without Access-Control-Allow-Origin")
	}
	return resp.StatusCode
}

func TestChecklist27_CreateUploadSlot(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	slot := createUpload(t, ts, d.SessionID, "../../etc/pass wd", 5)
	if slot["presigned_id"] == "" || !strings.HasPrefix(slot["presigned_url"], ts.URL+"/uploads/") || slot["path"] == "" {
		t.Fatalf("slot %v", slot)
	}
	if len(slot["presigned_id"]) != 32 {
		t.Errorf("upload id %q is not 128 random bits", slot["presigned_id"])
	}
	if want := "sessions/" + d.SessionID + "/uploads/" + slot["presigned_id"] + "/pass_wd"; slot["path"] != want {
		t.Errorf("path %q, want sanitised %q", slot["path"], want)
	}
}

func TestChecklist28_PutExactSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxUploadSize = 1000
	cfg.UploadQuota = 1500
	ts := newTestServer(t, cfg)
	d := ts.start(t)
	slot := createUpload(t, ts, d.SessionID, "a.txt", 10)
	if code := putURL(t, slot["presigned_url"], []byte("short")); code != 400 {
		t.Errorf("PUT of 5 bytes for 10: %d, want 400", code)
	}
	if code := putURL(t, slot["presigned_url"], []byte("much too long")); code != 400 {
		t.Errorf("PUT of 13 bytes for 10: %d, want 400", code)
	}
	if code := putURL(t, slot["presigned_url"], []byte("0123456789")); code != 200 {
		t.Errorf("PUT of exactly 10 bytes: %d, want 200", code)
	}
	if code := putURL(t, slot["presigned_url"], []byte("0123456789")); code != 409 {
		t.Errorf("second PUT: %d, want 409", code)
	}
	if code, _ := ts.do(t, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "big", "size": 1001, "mime_type": "x"}, apiHdr); code != 413 {
		t.Errorf("upload over the max size: %d, want 413", code)
	}
	createUpload(t, ts, d.SessionID, "b", 1000)
	if code, _ := ts.do(t, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "c", "size": 600, "mime_type": "x"}, apiHdr); code != 400 {
		t.Errorf("upload over the session quota: %d, want 400", code)
	}
}

func TestChecklist29_UploadsResolveEvenBeforePut(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d, c := ts.connectClient(t)
	data := []byte("the bytes of a file")
	slot := createUpload(t, ts, d.SessionID, "x.bin", len(data))
	ref := map[string]any{"upload_id": slot["presigned_id"], "name": "x.bin", "mime_type": "text/plain", "size": len(data)}
	// The command arrives first and waits on the command path for the
	// bytes; only then does the PUT complete.
	c.Command("read_file", map[string]any{}, map[string]any{"image": ref})
	ss := ts.srv.currentSession()
	eventually(t, 5*time.Second, "the command waits for its upload", func() bool { return ss.uploads.waiting.Load() == 1 })
	if code := putURL(t, slot["presigned_url"], data); code != 200 {
		t.Fatalf("PUT %d", code)
	}
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "fileUploaded", "data": ref}})
	m := c.Expect("application", "file", 5*time.Second)
	sum := sha256.Sum256(data)
	if m["sha256"] != hex.EncodeToString(sum[:]) || m["name"] != "x.bin" {
		t.Fatalf("model read %v", m)
	}
	// An upload id the session never issued: the command is refused.
	c.Command("read_file", map[string]any{}, map[string]any{"image": map[string]any{"upload_id": "nope", "name": "n", "mime_type": "x", "size": 1}})
	c.Expect("runtime", "error", 3*time.Second)
}

func TestChecklist30_StopSession(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.WaitFrames(5, 5*time.Second)
	s := ts.eng.last()
	req, _ := http.NewRequest("POST", ts.URL+"/stop_session", nil) // no body, no Content-Type
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stop_session %d", resp.StatusCode)
	}
	if !s.stopped() {
		t.Error("model session not stopped")
	}
	eventually(t, 10*time.Second, "client sees the peer closed", func() bool {
		st := c.PC.ConnectionState()
		return st == webrtc.PeerConnectionStateDisconnected || st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed
	})
	if code, _ := ts.do(t, "POST", "/stop_session", nil, nil); code != 409 {
		t.Errorf("stop_session when idle: %d, want 409", code)
	}
	_, c2 := ts.connectClient(t)
	c2.WaitFrames(5, 5*time.Second)
}

func TestChecklist31_PeerLossOrphans(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.WaitFrames(3, 5*time.Second)
	c.PC.Close()
	eventually(t, 5*time.Second, "orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })
	if ts.eng.last().stopped() {
		t.Fatal("model session stopped on peer loss")
	}
}

func TestChecklist32_ReconnectWithPut(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d, c := ts.connectClient(t)
	c.WaitFrames(3, 5*time.Second)
	c.Command("set_color", map[string]any{"level": 200, "label": "red"}, nil)
	c.Expect("application", "color_set", 3*time.Second)
	c.PC.Close()
	eventually(t, 5*time.Second, "orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })
	c2 := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "PUT")
	c2.WaitReady()
	c2.WaitFrames(10, 5*time.Second)
	if l := c2.LastLuma.Load(); l < 180 {
		t.Errorf("luma %d after reconnect: the model's state did not survive", l)
	}
	if ts.eng.started() != 1 || ts.eng.last().stopped() {
		t.Error("reconnect started a new model session")
	}
}

func TestChecklist33_GraceExpires(t *testing.T) {
	cfg := testConfig()
	cfg.OrphanGrace = 500 * time.Millisecond
	ts := newTestServer(t, cfg)
	d, c := ts.connectClient(t)
	c.PC.Close()
	eventually(t, 5*time.Second, "session closed after the grace period", func() bool { return ts.eng.last().stopped() })
	if code, _ := ts.do(t, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, rtcHdr); code/100 == 2 {
		t.Errorf("route of the expired session answered %d", code)
	}
	// A session that never gets a peer expires too.
	ts.start(t)
	eventually(t, 5*time.Second, "unconnected session closed", func() bool { return ts.eng.last().stopped() })
}

func TestChecklist34_VersionHeaders(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	path := "/sessions/" + d.SessionID + "/transport/webrtc/ice_servers"
	for v, want := range map[string]int{"1.0": 200, "": 200, "1": 200, "2.0": 501, "0.9": 426, "abc": 400} {
		h := map[string]string{"Authorization": "Bearer local"}
		if v != "" {
			h["Reactor-WebRTC-Version"] = v
		}
		if code, _ := ts.do(t, "GET", path, nil, h); code != want {
			t.Errorf("Reactor-WebRTC-Version %q: %d, want %d", v, code, want)
		}
	}
}

func TestChecklist35_SilentPeerIsLost(t *testing.T) {
	cfg := testConfig()
	cfg.PingTimeout = 500 * time.Millisecond
	ts := newTestServer(t, cfg)
	_, c := ts.connectClient(t) // connected, but never sends a message
	_ = c
	eventually(t, 5*time.Second, "silent peer orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })
	if ts.eng.last().stopped() {
		t.Fatal("silent peer closed the session instead of orphaning it")
	}
}
