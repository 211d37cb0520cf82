package protocol_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// Serving a model from a Go server: declare it, load it once with
// engine.New, wire its media with wiring.New and mount the protocol
// server. The published @reactor-team/js-sdk (local: true) then connects
// to it.
func ExampleNewServer() {
	type Prompt struct {
		Text string `json:"text" description:"what to draw"`
	}
	model := engine.Model{
		Name:   "my-model",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30)), tracks.VideoInput("webcam")},
		Commands: []engine.CommandDef{engine.Command("set_prompt", "", func(s *engine.Session, p Prompt) error {
			return s.Send(map[string]string{"prompt": p.Text})
		})},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				<-ctx.Done() // a real model emits frames here
				return nil
			}), nil
		},
	}
	eng, err := engine.New(model)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	wired, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264}) // Backend "" probes NVENC first
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := protocol.NewServer(wired, protocol.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	hs := httptest.NewServer(srv) // in production: http.ListenAndServe(":8080", srv)
	defer hs.Close()

	// What the SDK's start_session gets back.
	req, _ := http.NewRequest("POST", hs.URL+"/start_session", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var d struct {
		Capabilities engine.Capabilities `json:"capabilities"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&d)
	caps, _ := json.Marshal(d.Capabilities.Commands)
	fmt.Println(resp.StatusCode, d.Capabilities.Tracks, *d.Capabilities.EmissionFPS)
	fmt.Println(string(caps))
	fmt.Println(len(wired.Stats()), "session running")
	// Output:
	// 200 [{main_video video recvonly} {webcam video sendonly}] 30
	// [{"name":"set_prompt","description":"","schema":{"text":{"type":"string","description":"what to draw","required":true}}}]
	// 1 session running
}
