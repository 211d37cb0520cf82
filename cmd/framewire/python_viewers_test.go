package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// A Python model's @connected/@disconnected hooks over the C ABI: an SDK
// 2.9.0 client (connection 1001) and a registered viewer are each greeted
// by client.send with their id and the live count, a command's reply
// reaches its sender only, and a viewer leaving is seen by the others.
func TestPythonClientHooks(t *testing.T) {
	needPython(t)
	base, _ := startPython(t, "tests/models/viewers.py")
	d, legacy := enginetest.Connect(t, base, enginetest.ClientOptions{})
	welcome := func(c *enginetest.Client) map[string]any {
		t.Helper()
		return c.Expect("application", "welcome", 10*time.Second)
	}
	if m := welcome(legacy); m["id"] != 1001.0 || m["live"] != 1.0 {
		t.Fatalf("legacy welcome %v; want id 1001, live 1", m)
	}
	code, body := enginetest.Do(t, base, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/connections", nil, enginetest.RTCHeaders)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg struct {
		ID int `json:"connection_id"`
	}
	if err := json.Unmarshal(body, &reg); err != nil {
		t.Fatal(err)
	}
	viewer := enginetest.Dial(t, base, d.SessionID, d.Capabilities.Tracks, "POST", enginetest.ClientOptions{ConnectionID: reg.ID})
	viewer.WaitReady()
	if m := welcome(viewer); m["id"] != float64(reg.ID) || m["live"] != 2.0 {
		t.Fatalf("viewer welcome %v; want id %d, live 2", m, reg.ID)
	}
	viewer.WaitFrames(5, 10*time.Second)
	viewer.Command("whoami", map[string]any{}, nil)
	if m := viewer.Expect("application", "you", 10*time.Second); m["id"] != float64(reg.ID) || m["clients"] != 2.0 {
		t.Fatalf("reply %v; want id %d, clients 2", m, reg.ID)
	}
	viewer.Close()
	if m := legacy.Expect("application", "left", 10*time.Second); m["id"] != float64(reg.ID) || m["live"] != 1.0 {
		t.Fatalf("left %v; want id %d, live 1", m, reg.ID)
	}
}
