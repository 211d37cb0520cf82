package front_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/enginetest"
)

// TestProductionFlow is the SDK 2.9.0 flow through two fronts to a node
// (checklist items 3, 4, 7–10, 14, 17–20, 26–28): a token from /tokens,
// POST /sessions on one front, polls and signalling on the other, a pion
// peer ready with video and a command reply, an upload read by the model,
// reconnect into the same session, DELETE.
func TestProductionFlow(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 2, nodes: 2, capacity: 2})
	a, b := e.fronts[0].URL, e.fronts[1].URL
	tok := e.token("acme")
	d := e.create(a, tok)
	if d.State != registry.StateCreated || d.SessionID == "" || d.raw["cluster"] == nil || d.Capabilities != nil {
		t.Fatalf("POST /sessions: %+v", d.raw)
	}
	r := e.waitReady(b, tok, d.SessionID, 5*time.Second)
	if r.SessionID != d.SessionID || r.SelectedTransport["protocol"] != "webrtc" || len(r.Capabilities.Tracks) == 0 {
		t.Fatalf("ready answer: %+v", r.raw)
	}
	c := enginetest.Dial(t, b, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	c.WaitReady()
	c.WaitFrames(10, 10*time.Second)
	c.Command("echo", map[string]any{"text": "hi"}, nil)
	if m := c.Expect("application", "echo", 5*time.Second); m["text"] != "hi" {
		t.Fatalf("echo reply: %v", m)
	}

	// Upload: a slot through front a, the PUT (no Authorization) to the
	// presigned URL, the model reads it.
	code, body := enginetest.Do(t, a, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "x.bin", "size": 5, "mime_type": "application/octet-stream"}, apiHeaders(tok))
	if code/100 != 2 {
		t.Fatalf("upload slot: %d %s", code, body)
	}
	var slot struct{ PresignedID, PresignedURL, Path string }
	_ = json.Unmarshal(bytes.ReplaceAll(body, []byte("presigned_"), []byte("Presigned")), &slot)
	if slot.PresignedID == "" || !strings.HasPrefix(slot.PresignedURL, a+"/uploads/") || slot.Path == "" {
		t.Fatalf("slot: %s", body)
	}
	put := func(data string) int {
		req, _ := http.NewRequest("PUT", slot.PresignedURL, strings.NewReader(data))
		req.Header.Set("Origin", enginetest.Origin)
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Error("PUT answer without Access-Control-Allow-Origin")
		}
		return resp.StatusCode
	}
	if code := put("toolong"); code/100 != 4 {
		t.Fatalf("PUT of the wrong size: %d, want 4xx", code)
	}
	if code := put("hello"); code/100 != 2 {
		t.Fatalf("PUT: %d", code)
	}
	if code := put("hello"); code/100 != 4 {
		t.Fatalf("reused PUT: %d, want 4xx", code)
	}
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "fileUploaded", "data": map[string]any{"upload_id": slot.PresignedID, "name": "x.bin", "mime_type": "application/octet-stream", "size": 5}}})
	c.Command("inspect", map[string]any{}, map[string]any{"file": map[string]any{"upload_id": slot.PresignedID, "name": "x.bin", "mime_type": "application/octet-stream", "size": 5}})
	if m := c.Expect("application", "file", 5*time.Second); m["size"] != float64(5) {
		t.Fatalf("inspect reply: %v", m)
	}

	// Reconnect: a new peer with PUT on the same session, same node.
	_, st := e.get(a, tok, d.SessionID)
	c.Close()
	c2 := enginetest.Dial(t, a, d.SessionID, r.Capabilities.Tracks, "PUT", enginetest.ClientOptions{Token: tok})
	c2.WaitReady()
	c2.WaitFrames(5, 10*time.Second)
	if _, st2 := e.get(b, tok, d.SessionID); st2.Cluster != st.Cluster {
		t.Fatalf("reconnect moved the session: %s → %s", st.Cluster, st2.Cluster)
	}

	// DELETE ends it everywhere; a second DELETE is 404.
	if code, body := enginetest.Do(t, b, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if code, g := e.get(a, tok, d.SessionID); code == 200 && g.State != registry.StateClosed {
		t.Fatalf("GET after DELETE: %d %+v", code, g.raw)
	}
	if code, _ := enginetest.Do(t, a, "DELETE", "/sessions/"+d.SessionID, `{"reason":"x"}`, apiHeaders(tok)); code != 404 {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
	if code, _ := enginetest.Do(t, a, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, apiHeaders(tok)); code != 404 {
		t.Fatalf("transport after DELETE: %d, want 404", code)
	}
	enginetest.Eventually(t, 5*time.Second, "slots freed", func() bool {
		nodes, _ := e.store.Nodes(t.Context())
		used := 0
		for _, n := range nodes {
			used += n.Used
		}
		return used == 0
	})
}
