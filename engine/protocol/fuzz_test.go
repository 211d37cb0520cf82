package protocol

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzDataChannelMessage feeds arbitrary text frames to a connected
// session's data-channel handler: none may panic, and the session must
// still answer a ping-carrying requestCapabilities afterwards (checked on
// the seeds; under -fuzz each input only must not panic).
func FuzzDataChannelMessage(f *testing.F) {
	for _, s := range []string{
		`{"scope":"runtime","data":{"type":"ping"}}`,
		`{"scope":"runtime","data":{"type":"requestCapabilities"}}`,
		`{"scope":"runtime","data":{"type":"fileUploaded","data":{"upload_id":"nope"}}}`,
		`{"scope":"runtime","data":{"type":"fileUploaded","data":null}}`,
		`{"scope":"runtime","data":{"type":"fileUploaded","data":[1]}}`,
		`{"scope":"application","data":{"type":"set_color","data":{"r":1,"g":2,"b":3}}}`,
		`{"scope":"application","data":{"type":"set_color","data":"red"}}`,
		`{"scope":"application","data":{"type":"blob","data":{"blob":"x"},"uploads":{"f":{"upload_id":"u"}}}}`,
		`{"scope":"application","data":{"type":"","data":{}}}`,
		`{"scope":"application","data":null}`,
		`{"scope":7}`, `null`, `[]`, `"x"`, `{`, ``, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	ts := newTestServer(f, testConfig())
	_, c := ts.connectClient(f)
	defer c.Close()
	ss := ts.srv.currentSession()
	p := ss.currentPeer()
	if p == nil {
		f.Fatal("no connected peer")
	}
	ss.mu.Lock()
	lc := ss.conns[LegacyConnectionID]
	ss.mu.Unlock()
	f.Fuzz(func(t *testing.T, text []byte) {
		ss.onMessage(lc, p, text)
	})
}

// FuzzHTTPBodies posts arbitrary bodies to the JSON routes: each answer
// is a 2xx or 4xx with a JSON body, never a panic or a 5xx.
func FuzzHTTPBodies(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"extra_args":{"a":1}}`, `{"extra_args":[]}`, `[]`, `null`, `{`, ``, "\x00",
		`{"sdp_offer":"v=0\r\n","track_mapping":[]}`,
		`{"sdp_offer":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n","track_mapping":[{"mid":"0","name":"main_video","kind":"video","direction":"recvonly"}]}`,
		`{"sdp_offer":"x","track_mapping":null}`, `{"sdp_offer":1}`,
		`{"name":"a.png","size":3,"mime_type":"image/png"}`, `{"name":"../../etc/passwd","size":-1,"mime_type":""}`,
		`{"name":"a","size":1e30,"mime_type":"x"}`, `{"name":null,"size":null}`,
	} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
		f.Add(uint8(2), []byte(s))
	}
	ts := newTestServer(f, testConfig())
	sid := ts.start(f).SessionID
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		// The session routes follow the session: a body that starts a
		// new one (the real /start_session route, fuzzed like the
		// others) replaces it.
		routes := []string{
			"/sessions/" + sid + "/transport/webrtc/sdp_params",
			"/sessions/" + sid + "/uploads",
			"/start_session",
		}
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		ts.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusAccepted && ct != "application/json" {
			t.Errorf("POST %s %q: %d with Content-Type %q; want JSON", path, body, rec.Code, ct)
		}
		if path == "/start_session" && rec.Code == http.StatusOK {
			var d descriptor
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || d.SessionID == "" {
				t.Fatalf("start_session 200 without a session id: %s", rec.Body)
			}
			sid = d.SessionID
		}
	})
}

// FuzzDataChannelSCTP sends each input as a real frame over SCTP, from a
// pion client that ignores the answer's a=max-message-size: text or
// binary, padded with JSON whitespace to any size up to the SCTP receive
// window, so frames above the advertised 262144 bytes are fuzzed too.
// After every frame the channel must still answer requestCapabilities.
func FuzzDataChannelSCTP(f *testing.F) {
	for _, s := range []struct {
		text bool
		pad  uint32
		msg  string
	}{
		{true, 0, `{"scope":"runtime","data":{"type":"ping"}}`},
		{true, 262144 - 100, `{"scope":"application","data":{"type":"blob","data":{"blob":"x"}}}`},
		{true, 262145, `{"scope":"runtime","data":{"type":"ping"}}`},
		{true, 600_000, `{"scope":"application","data":{"type":"set_color","data":{"level":3,"label":"red"}}}`},
		{false, 10, "\x00\x01"},
		{false, 300_000, ""},
		{true, 0, `{`},
		{true, 0, ""},
	} {
		f.Add(s.text, s.pad, []byte(s.msg))
	}
	ts := newTestServer(f, testConfig())
	ts.client.SendMaxMessageSize = 1 << 20
	_, c := ts.connectClient(f)
	caps, _ := json.Marshal(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities"}})
	f.Fuzz(func(t *testing.T, text bool, pad uint32, msg []byte) {
		frame := append(append([]byte{}, msg...), bytes.Repeat([]byte(" "), int(pad%(1<<20-1024)))...)
		if len(frame) > 1<<20-1024 {
			frame = frame[:1<<20-1024]
		}
		var err error
		if text {
			err = c.DC.SendText(string(frame))
		} else {
			err = c.DC.Send(frame)
		}
		if err != nil && len(frame) > 0 {
			t.Fatalf("send %d bytes: %v", len(frame), err)
		}
		if err := c.DC.SendText(string(caps)); err != nil {
			t.Fatal(err)
		}
		c.T = t // Expect fails this input
		defer func() { c.T = f }()
		c.Expect("runtime", "modelCapabilities", 10*time.Second)
	})
}
