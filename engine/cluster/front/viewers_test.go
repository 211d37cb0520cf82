package front_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/enginetest"
)

// Viewers in production: POST …/connections through a front reaches the
// owning node (201 with a connection id), and a viewer offering on that
// id through the other front watches the same session next to the SDK
// 2.9.0 client (item 38; the 429 at the cap: TestProductionViewerCap).
func TestProductionViewer(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 2, nodes: 1, capacity: 1})
	a, b := e.fronts[0].URL, e.fronts[1].URL
	tok := e.token("acme")
	d := e.create(a, tok)
	r := e.waitReady(b, tok, d.SessionID, 5*time.Second)
	driver := enginetest.Dial(t, a, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	driver.WaitReady()
	hdr := map[string]string{}
	for k, v := range enginetest.RTCHeaders {
		hdr[k] = v
	}
	hdr["Authorization"] = "Bearer " + tok
	code, body := enginetest.Do(t, a, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/connections", nil, hdr)
	var reg struct {
		ID int `json:"connection_id"`
	}
	if code != 201 || json.Unmarshal(body, &reg) != nil || reg.ID < 1002 {
		t.Fatalf("register through the front: %d %s", code, body)
	}
	viewer := enginetest.Dial(t, b, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok, ConnectionID: reg.ID, Trickle: true})
	viewer.WaitReady()
	viewer.WaitFrames(10, 10*time.Second)
	driver.WaitFrames(driver.Frames.Load()+10, 10*time.Second)
	if code, _ := enginetest.Do(t, a, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/connections", nil, map[string]string{"Authorization": "Bearer " + e.token("other")}); code/100 == 2 {
		t.Fatalf("another account registered a viewer on this session: %d", code)
	}
}

// TestProductionViewerCap: with the per-session cap at 2, the SDK 2.9.0
// client and one viewer fill it; POST …/connections through either front
// then answers 429 {"detail":"Connection limit reached"} (contract item
// 38: the front answers 429 at registration; the owning node, which alone
// sees connections open and drop, decides and the front relays it); once
// the viewer leaves, registering through the front answers 201 again and
// a viewer on that id watches.
func TestProductionViewerCap(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 2, nodes: 1, capacity: 1, node: func(c *node.Config) { c.Protocol.MaxConnections = 2 }})
	a, b := e.fronts[0].URL, e.fronts[1].URL
	tok := e.token("acme")
	d := e.create(a, tok)
	r := e.waitReady(b, tok, d.SessionID, 5*time.Second)
	driver := enginetest.Dial(t, a, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	driver.WaitReady()
	hdr := map[string]string{}
	for k, v := range enginetest.RTCHeaders {
		hdr[k] = v
	}
	hdr["Authorization"] = "Bearer " + tok
	register := func(front string) (int, []byte) {
		return enginetest.Do(t, front, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/connections", nil, hdr)
	}
	var reg struct {
		ID int `json:"connection_id"`
	}
	code, body := register(a)
	if code != http.StatusCreated || json.Unmarshal(body, &reg) != nil {
		t.Fatalf("register under the cap: %d %s", code, body)
	}
	// Registering counts nothing: a second id is minted while only the
	// driver is connected.
	if code, body := register(b); code != http.StatusCreated {
		t.Fatalf("second register under the cap: %d %s", code, body)
	}
	viewer := enginetest.Dial(t, b, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok, ConnectionID: reg.ID})
	viewer.WaitReady()
	viewer.WaitFrames(5, 10*time.Second)
	for _, f := range []string{a, b} {
		code, body := register(f)
		var e struct{ Detail string }
		if code != http.StatusTooManyRequests || json.Unmarshal(body, &e) != nil || e.Detail != "Connection limit reached" {
			t.Errorf("register at the cap through %s: %d %s; want 429 {\"detail\":\"Connection limit reached\"}", f, code, body)
		}
	}
	driver.WaitFrames(driver.Frames.Load()+10, 10*time.Second) // the refusals touch no one

	viewer.Close()
	enginetest.Eventually(t, 10*time.Second, "register answers 201 once the viewer left", func() bool {
		code, body = register(a)
		return code == http.StatusCreated
	})
	if err := json.Unmarshal(body, &reg); err != nil {
		t.Fatal(err)
	}
	viewer2 := enginetest.Dial(t, b, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok, ConnectionID: reg.ID})
	viewer2.WaitReady()
	viewer2.WaitFrames(5, 10*time.Second)
}
