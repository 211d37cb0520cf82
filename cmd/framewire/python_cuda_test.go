//go:build cuda

package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/metrics"
)

// TestPythonDeviceFrames serves a Python model that emits CUDA device
// frames (__cuda_array_interface__ v3 with its stream, and DLPack kDLCUDA)
// with the package's cuda library (chosen by its driver probe: here the
// emulated driver, make test-cuda-emu). Each picture is written by an
// asynchronous copy on the model's own stream just before emit, so a
// read not ordered after that stream would encode the allocator's 0xA5
// fill: the client must see the model's red of 40. Every picture reaches
// the device encoder from device memory (DeviceEncoded, no host copy),
// and is released exactly once, on an engine thread, not the model's.
func TestPythonDeviceFrames(t *testing.T) {
	needPython(t)
	base, _ := startPython(t, "tests/models/device.py", "-log-level", "warn")
	_, c := enginetest.Connect(t, base, enginetest.ClientOptions{})
	c.WaitReady()
	c.WaitFrames(20, 30*time.Second)
	enginetest.Eventually(t, 10*time.Second, "the picture the model wrote (red 40), not unwritten memory (165)", func() bool {
		r := c.LastLuma.Load()
		return r > 25 && r < 60
	})
	var doc metrics.Stats
	resp, err := http.Get(base + "/framewire/stats")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || len(doc.Sessions) != 1 || len(doc.Sessions[0].Tracks) != 1 {
		t.Fatalf("stats %+v: %v", doc, err)
	}
	tr := doc.Sessions[0].Tracks[0]
	t.Logf("main_video: backend %s, %d encoded, %d from device memory, %d errors", tr.Backend, tr.Encoded, tr.DeviceEncoded, tr.Errors)
	if tr.Backend != "cuda+libx264" || tr.DeviceEncoded < 20 || tr.DeviceEncoded != tr.Encoded || tr.Errors != 0 {
		t.Errorf("main_video %+v: want every encoded picture from device memory (cuda+libx264), no errors", tr)
	}
	c.Command("report", map[string]any{}, nil)
	m := c.Expect("application", "report", 5*time.Second)
	t.Logf("model's report: %v", m)
	emitted, released := m["emitted"].(float64), m["released"].(float64)
	if m["twice"] != 0.0 || m["on_model_thread"] != false || released < 20 || released > emitted {
		t.Errorf("report %v: want each picture released once, after the encoder, on an engine thread", m)
	}
}
