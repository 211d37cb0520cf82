package protocol

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Bad input gets a 4xx with a {"detail"} that says what was wrong, never a
// panic, and the session keeps working.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d := ts.start(t)
	sdpPath := "/sessions/" + d.SessionID + "/transport/webrtc/sdp_params"
	_, good := offerFor(t, d.Capabilities.Tracks)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name, method, path string
		body               any
		want               int
		detail             string
	}{
		{"start_session malformed JSON", "POST", "/start_session", "{nope", 400, "not the expected JSON"},
		{"start_session array", "POST", "/start_session", "[1,2]", 400, "JSON"},
		{"sdp_params malformed JSON", "POST", sdpPath, "{", 400, "JSON"},
		{"sdp_params without track_mapping", "POST", sdpPath, with("track_mapping", nil), 400, "track_mapping is required"},
		{"sdp_params without sdp_offer", "POST", sdpPath, with("sdp_offer", nil), 400, "sdp_offer is required"},
		{"sdp_params with an SDP that is not SDP", "POST", sdpPath, with("sdp_offer", "hello, I am an offer"), 400, "want an SDP offer"},
		{"sdp_params with broken SDP", "POST", sdpPath, with("sdp_offer", "v=0\r\nthis is=not sdp\r\n"), 400, "not valid SDP"},
		{"track_mapping naming an unknown track", "POST", sdpPath, with("track_mapping", []map[string]string{{"mid": "0", "name": "ghost", "kind": "video", "direction": "recvonly"}}), 400, "does not declare"},
		{"track_mapping with a mid not in the offer", "POST", sdpPath, with("track_mapping", []map[string]string{{"mid": "77", "name": "main_video", "kind": "video", "direction": "recvonly"}}), 400, "not in the offer"},
		{"track_mapping with the wrong direction", "POST", sdpPath, with("track_mapping", []map[string]string{{"mid": "1", "name": "main_video", "kind": "video", "direction": "sendonly"}}), 400, "declares"},
		{"track_mapping of the wrong type", "POST", sdpPath, with("track_mapping", "main_video"), 400, "JSON"},
		{"upload without size", "POST", "/sessions/" + d.SessionID + "/uploads", map[string]any{"name": "a", "mime_type": "x"}, 400, "size"},
		{"upload with a negative size", "POST", "/sessions/" + d.SessionID + "/uploads", map[string]any{"name": "a", "size": -4, "mime_type": "x"}, 400, "positive"},
		{"upload with size as a string", "POST", "/sessions/" + d.SessionID + "/uploads", map[string]any{"name": "a", "size": "4", "mime_type": "x"}, 400, "JSON"},
		{"DELETE start_session", "DELETE", "/start_session", nil, 405, "not allowed"},
		{"start_session as text/plain", "POST", "/start_session", "{}", 415, "want application/json"},
		{"start_session body over 1 MiB", "POST", "/start_session", strings.Repeat(" ", 2<<20), 400, "larger than"},
		{"sdp_params with an empty track_mapping", "POST", sdpPath, with("track_mapping", []any{}), 400, "track_mapping is empty"},
		{"upload with a size over the maximum", "POST", "/sessions/" + d.SessionID + "/uploads", map[string]any{"name": "a", "size": 1 << 40, "mime_type": "x"}, 413, "exceeds the maximum"},
		{"PUT to an unknown upload", "PUT", "/uploads/nope", "x", 404, "unknown upload"},
		{"upload slot of an unknown session", "POST", "/sessions/nope/uploads", map[string]any{"name": "a", "size": 1, "mime_type": "x"}, 404, "unknown session"},
	}
	for _, tc := range cases {
		hdr := rtcHdr
		if strings.Contains(tc.name, "text/plain") {
			hdr = map[string]string{"Content-Type": "text/plain"}
		}
		code, raw := ts.do(t, tc.method, tc.path, tc.body, hdr)
		if code != tc.want || !strings.Contains(string(raw), `"detail"`) || !strings.Contains(string(raw), tc.detail) {
			t.Errorf("%s: %d %s, want %d with a detail mentioning %q", tc.name, code, raw, tc.want, tc.detail)
		}
	}
	// The session still negotiates.
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	c.WaitFrames(3, 5*ts.srv.cfg.NegotiationTimeout)

	// Bad data-channel frames: each is dropped and counted, a bad command
	// gets a runtime error saying what was wrong, and the channel lives.
	frames := []struct {
		name  string
		send  func()
		error string // the runtime error's message, "" when none is sent
	}{
		{"not JSON", func() { _ = c.DC.SendText("{nope") }, ""},
		{"a binary frame", func() { _ = c.DC.Send([]byte{1, 2, 3}) }, ""},
		{"unknown scope", func() { _ = c.DC.SendText(`{"scope":"weird","data":{"type":"x"}}`) }, ""},
		{"unknown runtime type", func() { _ = c.DC.SendText(`{"scope":"runtime","data":{"type":"nope"}}`) }, ""},
		{"fileUploaded without upload_id", func() { _ = c.DC.SendText(`{"scope":"runtime","data":{"type":"fileUploaded","data":{}}}`) }, ""},
		{"unknown command", func() { c.Command("no_such_command", map[string]any{}, nil) }, "unknown command"},
		{"a 10 KB command name", func() { c.Command(strings.Repeat("n", 10_000), map[string]any{}, nil) }, "bytes)"},
		{"wrong argument type", func() { c.Command("set_color", map[string]any{"level": "high", "label": "red"}, nil) }, "level"},
		{"value out of range", func() { c.Command("set_color", map[string]any{"level": 999, "label": "red"}, nil) }, "level"},
	}
	for _, f := range frames {
		before := ts.srv.Stats().DroppedMessages
		rejected := ts.eng.Engine().Stats().CommandsRejected
		f.send()
		if f.error == "" {
			eventually(t, 5*time.Second, f.name+" counted as dropped", func() bool { return ts.srv.Stats().DroppedMessages == before+1 })
			continue
		}
		m := c.Expect("runtime", "error", 5*time.Second)
		if data, _ := m["data"].(map[string]any); data == nil || !strings.Contains(fmt.Sprint(data["message"]), f.error) {
			t.Errorf("%s: error reply %v; want a message mentioning %q", f.name, m, f.error)
		}
		if got := ts.eng.Engine().Stats().CommandsRejected; got != rejected+1 {
			t.Errorf("%s: %d commands rejected; want %d", f.name, got, rejected+1)
		}
	}
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities"}})
	c.Expect("runtime", "modelCapabilities", 5*time.Second)

	// A fresh session works afterwards.
	c.Close()
	_, c2 := ts.connectClient(t)
	c2.WaitFrames(3, 5*ts.srv.cfg.NegotiationTimeout)
}
