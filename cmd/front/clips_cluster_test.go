package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// checkClips: the framewire binary in -mode node records the demo model's
// session (its built-in config) under the front's session id, and the
// fronts route GET /clips (with the session's token) and the segments
// (without one) to that node: the SDK's clip flow through processes.
func checkClips(t *testing.T, a, b, tok string, d doc, cl *enginetest.Client) {
	cl.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestRecording", "data": map[string]any{}}})
	m := cl.Expect("runtime", "clipReady", 5*time.Second)
	clip, _ := m["data"].(map[string]any)
	if clip["session_id"] != d.SessionID || clip["kind"] != "recording" {
		t.Fatalf("clipReady %v, want the recording of session %s", clip, d.SessionID)
	}
	pl, _ := clip["playlist_url"].(string)
	if !strings.HasPrefix(pl, "/clips?session_id="+d.SessionID+"&") {
		t.Fatalf("playlist_url %q", pl)
	}
	get := func(base, path, token string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		must(t, err)
		return resp, string(body)
	}
	if resp, _ := get(b, pl, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("playlist without a token: %d, want 401", resp.StatusCode)
	}
	var body string
	enginetest.Eventually(t, 15*time.Second, "the playlist ready (its 4 s chunk closed)", func() bool {
		resp, b := get(b, pl, tok)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
			t.Fatalf("GET %s: %d %s", pl, resp.StatusCode, b)
		}
		body = b
		return resp.StatusCode == http.StatusOK
	})
	var uris []string
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if u, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`); ok {
			uris = append(uris, strings.TrimSuffix(u, `"`))
		} else if !strings.HasPrefix(l, "#") {
			uris = append(uris, l)
		}
	}
	if len(uris) < 2 || !strings.HasSuffix(uris[0], "/init.mp4") {
		t.Fatalf("playlist:\n%s", body)
	}
	for i, u := range uris {
		resp, seg := get(a, u, "")
		want := "video/iso.segment"
		if i == 0 {
			want = "video/mp4"
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want || len(seg) == 0 {
			t.Fatalf("GET %s through the other front: %d %s, %d bytes", u, resp.StatusCode, resp.Header.Get("Content-Type"), len(seg))
		}
	}
}
