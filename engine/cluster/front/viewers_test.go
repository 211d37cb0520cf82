package front_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// Viewers in production: POST …/connections through a front reaches the
// owning node (201 with a connection id), and a viewer offering on that
// id through the other front watches the same session next to the SDK
// 2.9.0 client (item 38, but the front's own 429 cap is not implemented:
// the node's 503 at offer time applies).
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
