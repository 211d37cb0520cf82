package protocol

import (
	"strings"
	"testing"
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
	}
	for _, tc := range cases {
		code, raw := ts.do(t, tc.method, tc.path, tc.body, rtcHdr)
		if code != tc.want || !strings.Contains(string(raw), `"detail"`) || !strings.Contains(string(raw), tc.detail) {
			t.Errorf("%s: %d %s, want %d with a detail mentioning %q", tc.name, code, raw, tc.want, tc.detail)
		}
	}
	// The session still negotiates.
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	c.WaitFrames(3, 5*ts.srv.cfg.NegotiationTimeout)
}
