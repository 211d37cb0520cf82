package engine_test

// The three models of the Reactor tracks page, ported to Go. Each runs in
// `go test`: the example plays the transport, feeding inputs with Deliver
// and taking outputs with Next.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// The default-track emitter: no tracks declared, so the model gets one
// VideoOut named main_video, and get_ctx() is engine.FromContext(ctx):
// the caller's own session, whatever else runs.
//
//	def start_session(self):
//	    while not get_ctx().should_stop():
//	        frame = self.generate()
//	        get_ctx().get_track().emit(frame)
func Example_defaultTrack() {
	generate := func() []byte {
		time.Sleep(time.Second / 30) // a model producing 30 frames/s
		return bytes.Repeat([]byte{0, 128, 255}, 64*48)
	}
	model := engine.Model{
		Name: "emitter",
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(runCtx context.Context, _ *engine.Session) error {
				for {
					ctx, err := engine.FromContext(runCtx)
					if err != nil || ctx.ShouldStop() {
						return nil
					}
					frame := generate()
					out, err := ctx.VideoOut("") // get_track(): the default track
					if err != nil {
						return err
					}
					if err := out.Emit(frame, 48, 64, 3); err != nil {
						return nil // the session ended while we generated
					}
				}
			}), nil
		},
	}
	e, err := engine.New(model)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")

	fmt.Println(e.Capabilities().Tracks)
	out, _ := s.VideoOut("main_video") // the pipeline's side
	for range 3 {
		f, err := out.Next(context.Background())
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %dx%d RGB %v\n", out.Name(), f.Width, f.Height, f.Pix[:3])
		f.Release()
	}
	// Output:
	// [{main_video video recvonly}]
	// main_video: 64x48 RGB [0 128 255]
	// main_video: 64x48 RGB [0 128 255]
	// main_video: 64x48 RGB [0 128 255]
}

// faceTransform is the page's face-transform model: webcam in, transformed
// video out, with a config file.
//
//	@model(name="face-transform", config="config.yml")
//	class FaceTransform(VideoModel):
//	    webcam = VideoIn()
//	    main_video = VideoOut(default=True)
type faceTransform struct {
	cfg struct {
		Invert bool `yaml:"invert"`
	}
}

func (m *faceTransform) transform(f *tracks.VideoFrame) []byte {
	out := make([]byte, len(f.Pix))
	for i, v := range f.Pix {
		if m.cfg.Invert {
			v = 255 - v
		}
		out[i] = v
	}
	return out
}

func (m *faceTransform) RunSession(ctx context.Context, s *engine.Session) error {
	webcam, err := s.VideoIn("webcam")
	if err != nil {
		return err
	}
	out, err := s.VideoOut("")
	if err != nil {
		return err
	}
	var last time.Time
	for !s.ShouldStop() {
		frame := webcam.Latest() // get_track("webcam").latest()
		if frame == nil || !frame.Capture.After(last) {
			time.Sleep(time.Millisecond) // nothing new yet
			continue
		}
		last = frame.Capture
		if err := out.Emit(m.transform(frame), frame.Height, frame.Width, 3); err != nil {
			return nil
		}
	}
	return nil
}

func Example_faceTransform() {
	dir, _ := os.MkdirTemp("", "face-transform")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "config.yml")
	_ = os.WriteFile(config, []byte("invert: true\n"), 0o600)

	e, err := engine.New(engine.Model{
		Name:   "face-transform",
		Config: config,
		Tracks: []tracks.Spec{
			tracks.VideoInput("webcam"),
			tracks.VideoOutput("main_video", tracks.Default()),
		},
		New: func(c engine.Config) (engine.Runner, error) {
			m := &faceTransform{}
			return m, c.Decode(&m.cfg)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	caps, _ := json.Marshal(e.Capabilities().Tracks)
	fmt.Println(string(caps))

	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")
	webcam, _ := s.VideoIn("webcam")
	out, _ := s.VideoOut("main_video")

	_ = webcam.Deliver(bytes.Repeat([]byte{10, 20, 30}, 4*2), 4, 2, time.Now()) // the transport
	f, err := out.Next(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%dx%d RGB %v\n", f.Width, f.Height, f.Pix[:3])
	f.Release()
	// Output:
	// [{"name":"webcam","kind":"video","direction":"sendonly"},{"name":"main_video","kind":"video","direction":"recvonly"}]
	// 4x2 RGB [245 235 225]
}

// morpheus is the page's multi-track model: a set_prompt command, OnMedia
// feeding every webcam frame to its pipeline, and a black frame while the
// pipeline warms up.
type morpheus struct {
	mu     sync.Mutex
	prompt string
	frames chan webcamFrame // the pipeline's input
}

type webcamFrame struct {
	pix  []byte
	w, h int
}

// SetPrompt is set_prompt's parameters: @command("set_prompt") def
// set_prompt(self, prompt: str).
type SetPrompt struct {
	Prompt string `json:"prompt" description:"what to turn the webcam into"`
}

func (m *morpheus) setPrompt(_ *engine.Session, p SetPrompt) error {
	m.mu.Lock()
	m.prompt = p.Prompt
	m.mu.Unlock()
	return nil
}

// OnMedia is on_media(self, bundle): push every webcam frame to the pipeline.
func (m *morpheus) OnMedia(s *engine.Session, b *tracks.MediaBundle) error {
	d := b.Track("webcam")
	if d == nil {
		return nil
	}
	// The bundle is borrowed: copy what the pipeline keeps.
	select {
	case m.frames <- webcamFrame{pix: bytes.Clone(d.Video.Pix), w: d.Video.Width, h: d.Video.Height}:
	case <-s.Stopping(): // never block past the session's end
	}
	return nil
}

// RunSession is start_session: a black frame while the pipeline warms up,
// then the pipeline's loop.
func (m *morpheus) RunSession(ctx context.Context, s *engine.Session) error {
	out, err := s.VideoOut("")
	if err != nil {
		return err
	}
	if err := out.Emit(nil); err != nil { // black frame while pipeline warms up
		return nil
	}
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-m.frames:
			n++
			m.mu.Lock()
			prompt := m.prompt
			m.mu.Unlock()
			_ = s.Send(map[string]any{"frame": n, "prompt": prompt})
			if err := out.Emit(f.pix, f.h, f.w, 3); err != nil {
				return nil
			}
		}
	}
}

// printTransport stands in for the data channel package protocol attaches:
// it prints what the model sends.
type printTransport struct{}

func (printTransport) Send(msg json.RawMessage) error { fmt.Printf("sent: %s\n", msg); return nil }
func (printTransport) CommandRejected(name string, err error) {
	fmt.Printf("rejected %s: %v\n", name, err)
}
func (printTransport) Upload(context.Context, string) (engine.Upload, error) {
	return engine.Upload{}, errors.New("no uploads here")
}

func Example_morpheus() {
	m := &morpheus{frames: make(chan webcamFrame, 8)}
	e, err := engine.New(engine.Model{
		Name:     "morpheus",
		Tracks:   []tracks.Spec{tracks.VideoInput("webcam"), tracks.VideoOutput("main_video", tracks.Default())},
		Commands: []engine.CommandDef{engine.Command("set_prompt", "", m.setPrompt)},
		New:      func(engine.Config) (engine.Runner, error) { return m, nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	cmds, _ := json.Marshal(e.Capabilities().Commands)
	fmt.Println(string(cmds))

	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")
	s.Attach(printTransport{}) // package protocol attaches the data channel
	out, _ := s.VideoOut("main_video")
	f, _ := out.Next(context.Background())
	fmt.Printf("warming up: %dx%d black=%v\n", f.Width, f.Height, bytes.Count(f.Pix, []byte{0}) == len(f.Pix))
	f.Release()

	// The client sends a command, then its webcam starts.
	if err := s.Call(context.Background(), "set_prompt", json.RawMessage(`{"prompt":"neon"}`), nil); err != nil {
		fmt.Println(err)
	}
	webcam, _ := s.VideoIn("webcam")
	_ = webcam.Deliver(bytes.Repeat([]byte{1, 2, 3}, 4*2), 4, 2, time.Now())

	f, _ = out.Next(context.Background())
	fmt.Printf("frame: %dx%d RGB %v\n", f.Width, f.Height, f.Pix[:3])
	f.Release()
	// Output:
	// [{"name":"set_prompt","description":"","schema":{"prompt":{"type":"string","description":"what to turn the webcam into","required":true}}}]
	// warming up: 1280x720 black=true
	// sent: {"frame":1,"prompt":"neon"}
	// frame: 4x2 RGB [1 2 3]
}
