package front_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/record/recordtest"
	"github.com/framewire/framewire/engine/wiring"
)

// TestClipsThroughFront: a node records its session under the front's
// session id; behind a front with a path prefix, clipReady's playlist URL
// keeps the prefix, the front routes GET /clips (the session account's
// token) and the segments (no token) to the node, the playlist's URLs
// are the front's with the prefix, the files are H.264 + AAC, and the
// recording stays reachable after the session was deleted.
func TestClipsThroughFront(t *testing.T) {
	store, err := record.OpenStore(record.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() }) // after the env's: the node's sessions end first
	const prefix = "/reactor"
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1,
		front: func(_ int, c *front.Config) { c.Prefix = prefix },
		wiring: func(c *wiring.Config) {
			c.Recording, c.Recordings = record.Config{Enabled: true, ChunkSeconds: 1}, store
		}})
	origin := e.fronts[0].URL
	base := origin + prefix
	token := func(account string) string {
		code, body := enginetest.Do(t, base, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": account + "-key-0123456789"})
		var r struct {
			JWT string `json:"jwt"`
		}
		if code != 200 || json.Unmarshal(body, &r) != nil || r.JWT == "" {
			t.Fatalf("tokens: %d %s", code, body)
		}
		return r.JWT
	}
	tok, other := token("acme"), token("other")
	d := e.create(base, tok)
	r := e.waitReady(base, tok, d.SessionID, 5*time.Second)
	c := enginetest.Dial(t, base, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	c.WaitReady()
	c.WaitFrames(10, 10*time.Second)
	var clip map[string]any
	enginetest.Eventually(t, 15*time.Second, "2 s recorded", func() bool {
		c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestRecording", "data": map[string]any{}}})
		m := c.Expect("runtime", "clipReady", 5*time.Second)
		clip, _ = m["data"].(map[string]any)
		return clip["now_marker"].(float64) >= 2
	})
	if clip["session_id"] != d.SessionID {
		t.Fatalf("clipReady session_id %v, want the front's session id %s", clip["session_id"], d.SessionID)
	}
	pl, _ := clip["playlist_url"].(string)
	if !strings.HasPrefix(pl, prefix+"/clips?session_id="+d.SessionID+"&") {
		t.Fatalf("playlist_url %q, want the front's prefix %s kept", pl, prefix)
	}
	get := func(u, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Origin", enginetest.Origin)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		fatalIf(t, err)
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("GET %s: Access-Control-Allow-Origin %q", u, resp.Header.Values("Access-Control-Allow-Origin"))
		}
		return resp, b
	}
	if resp, _ := get(origin+pl, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("playlist without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(origin+pl, other); resp.StatusCode != http.StatusGone {
		t.Fatalf("playlist with another account's token: %d, want 410", resp.StatusCode)
	}
	if code, body := enginetest.Do(t, base, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	c.Close()
	// After the session's end (its completion closes the last segment),
	// the whole recording through the front: absolute URLs with the
	// prefix, segments without a token.
	var body []byte
	enginetest.Eventually(t, 10*time.Second, "playlist 200", func() bool {
		resp, b := get(origin+pl, tok)
		if resp.StatusCode == http.StatusAccepted && (resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After")) {
			t.Fatalf("202 without an exposed Retry-After: %v", resp.Header)
		}
		body = b
		return resp.StatusCode == http.StatusOK
	})
	dir := t.TempDir()
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		u, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`)
		if ok {
			u = strings.TrimSuffix(u, `"`)
		} else if strings.HasPrefix(l, "#") {
			continue
		} else {
			u = l
		}
		if !strings.HasPrefix(u, base+"/clips/chunks/"+d.SessionID+"/") {
			t.Fatalf("playlist URI %q, want %s/clips/chunks/…", u, base)
		}
		resp, b := get(u, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		p := filepath.Join(dir, fmt.Sprintf("%02d_%s", len(files), filepath.Base(u)))
		fatalIf(t, os.WriteFile(p, b, 0o644))
		files = append(files, p)
	}
	st, err := recordtest.Probe(files...)
	fatalIf(t, err)
	if st.Codec != "h264" || st.Audio != "aac" || !st.FirstKey || st.Duration < clip["end_marker"].(float64)-0.001 || math.Abs(st.AudioDuration-st.Duration) > 0.05 {
		t.Fatalf("recording through the front: %+v, want h264 + aac of at least %v s", st, clip["end_marker"])
	}
	for _, c := range []struct {
		path string
		code int
	}{
		{"/clips/chunks/" + d.SessionID + "/secrets.txt", 404},
		{"/clips/chunks/" + record.NewID() + "/init.mp4", 410},
		{"/clips/chunks/not-a-uuid/init.mp4", 410},
		{"/clips?session_id=" + record.NewID() + "&start=0&end=1", 410},
		{"/clips?session_id=" + d.SessionID + "&start=-1&end=1", 400},
	} {
		resp, b := get(base+c.path, tok)
		var detail struct{ Detail any }
		if resp.StatusCode != c.code || json.Unmarshal(b, &detail) != nil || detail.Detail == nil {
			t.Errorf("GET %s: %d %s, want %d with a detail", c.path, resp.StatusCode, b, c.code)
		}
	}
}
