package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/tracks"
)

// demoEngine serves the demo model through the protocol package's Engine
// interface, on the real tracks (tracks.Set: VideoOut main_video, VideoIn
// webcam) and the real encode pipeline (pipeline.Video per output).
//
// TODO(engine core): replace with an adapter from engine.Engine /
// engine.Session once they land; the model code (demo.go) stays.
type demoEngine struct {
	log  *slog.Logger
	caps protocol.Capabilities
}

func demoSpecs() []tracks.Spec {
	return []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(demoFPS)), tracks.VideoInput("webcam")}
}

func newDemoEngine(log *slog.Logger) *demoEngine {
	cmds := make([]protocol.CommandCap, 0, len(demoCommands))
	for _, c := range demoCommands {
		schema, _ := json.Marshal(c["schema"])
		cmds = append(cmds, protocol.CommandCap{Name: c["name"].(string), Description: c["description"].(string), Schema: schema})
	}
	fps := float64(demoFPS)
	return &demoEngine{log: log, caps: protocol.Capabilities{
		ProtocolVersion: "v0",
		Tracks: []protocol.TrackCap{
			{Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly},
			{Name: "webcam", Kind: peer.KindVideo, Direction: peer.DirSendonly},
		},
		Commands:    cmds,
		EmissionFPS: &fps,
	}}
}

func (e *demoEngine) ModelName() string                   { return "framewire-demo" }
func (e *demoEngine) Capabilities() protocol.Capabilities { return e.caps }

func (e *demoEngine) StartSession(context.Context) (protocol.Session, error) {
	set, err := tracks.NewSet(demoSpecs())
	if err != nil {
		return nil, err
	}
	out, err := set.VideoOut("main_video")
	if err != nil {
		return nil, err
	}
	cam, err := set.VideoIn("webcam")
	if err != nil {
		return nil, err
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	s := &demoSession{id: hex.EncodeToString(id[:]), log: e.log, state: newDemoState(),
		set: set, out: out, cam: cam, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.wg.Add(2)
	go s.model()
	go s.reportWebcam()
	return s, nil
}

type demoSession struct {
	id    string
	log   *slog.Logger
	state *demoState
	set   *tracks.Set
	out   *tracks.VideoOut
	cam   *tracks.VideoIn

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	sendMu sync.Mutex
	send   func(v any) error
}

func (s *demoSession) ID() string            { return s.id }
func (s *demoSession) Done() <-chan struct{} { return s.done }

func (s *demoSession) Stop() {
	s.once.Do(func() {
		s.cancel()
		_ = s.set.Close()
		s.wg.Wait()
		close(s.done)
	})
	<-s.done
}

func (s *demoSession) SetSender(f func(v any) error) {
	s.sendMu.Lock()
	s.send = f
	s.sendMu.Unlock()
}

// Send is the model's Send.
func (s *demoSession) Send(v any) error {
	s.sendMu.Lock()
	f := s.send
	s.sendMu.Unlock()
	if f == nil {
		return protocol.ErrNoClient
	}
	return f(v)
}

// model is the demo's generation loop: it draws at 30 fps into main_video
// and reads the latest webcam frame, until the session stops.
func (s *demoSession) model() {
	defer s.wg.Done()
	img := make([]byte, demoW*demoH*3)
	var camFrame tracks.VideoFrame
	var cam webcamFrame
	tick := time.NewTicker(time.Second / demoFPS)
	defer tick.Stop()
	pos := 0.0
	for i := int64(0); ; i++ {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		hue, mode, speed := s.state.get()
		pos += speed * 2
		var cp *webcamFrame
		if s.cam.LatestInto(&camFrame) {
			cam.pix, cam.w, cam.h = camFrame.Pix, camFrame.Width, camFrame.Height
			cp = &cam
		}
		draw(img, i, pos, hue, mode, cp)
		if err := s.out.Emit(img, demoH, demoW, 3); err != nil {
			if errors.Is(err, tracks.ErrClosed) {
				return
			}
			s.log.Warn("emit", "err", err)
		}
	}
}

func (s *demoSession) Dispatch(name string, args json.RawMessage, ups map[string]protocol.Upload) error {
	var a map[string]any
	if err := json.Unmarshal(args, &a); err != nil {
		return fmt.Errorf("command %s: arguments are not a JSON object: %v", name, err)
	}
	num := func(k string, lo, hi float64) (float64, error) {
		v, ok := a[k].(float64)
		if !ok {
			return 0, fmt.Errorf("command %s: %s must be a number, got %T", name, k, a[k])
		}
		if v < lo || v > hi {
			return 0, fmt.Errorf("command %s: %s=%g out of range [%g, %g]", name, k, v, lo, hi)
		}
		return v, nil
	}
	switch name {
	case "set_color":
		hue, err := num("hue", 0, 360)
		if err != nil {
			return err
		}
		mode := "stripes"
		if m, ok := a["mode"]; ok {
			ms, isStr := m.(string)
			if !isStr || (ms != "stripes" && ms != "solid" && ms != "checker") {
				return fmt.Errorf("command set_color: mode must be one of stripes, solid, checker; got %v", m)
			}
			mode = ms
		}
		s.state.mu.Lock()
		s.state.hue, s.state.mode = hue, mode
		s.state.mu.Unlock()
		return s.Send(map[string]any{"type": "color_set", "hue": hue, "mode": mode})
	case "set_speed":
		v, err := num("speed", 0, 10)
		if err != nil {
			return err
		}
		s.state.mu.Lock()
		s.state.speed = v
		s.state.mu.Unlock()
		return s.Send(map[string]any{"type": "speed_set", "speed": v})
	case "inspect_file":
		u, ok := ups["file"]
		if !ok {
			return errors.New("command inspect_file: the file parameter needs an upload")
		}
		return s.Send(fileInfo(u.Name, u.MimeType, u.Data))
	}
	return fmt.Errorf("unknown command %q; want set_color, set_speed or inspect_file", name)
}

// StartOutput runs the encode pipeline of main_video into out under the
// session; the pipeline is the Control keyframe requests and bitrate
// estimates go to.
func (s *demoSession) StartOutput(name string, out *peer.Output) (peer.Control, error) {
	if name != "main_video" {
		return nil, fmt.Errorf("no output track %q", name)
	}
	backend := encode.BackendX264
	if out.Codec() == peer.CodecVP8 {
		backend = encode.BackendVP8
	}
	v, err := pipeline.NewVideo(s.out, out, pipeline.VideoConfig{Backend: backend, Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := v.Run(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("main_video pipeline", "err", err)
		}
	}()
	return v, nil
}

func (s *demoSession) VideoInput(name string) peer.VideoInput {
	if name == "webcam" {
		return s.cam
	}
	return nil
}

func (s *demoSession) AudioInput(string) peer.AudioInput { return nil }

// reportWebcam sends {type:"webcam", width, height, frames} every second
// while webcam frames arrive (what the model's Latest() sees).
func (s *demoSession) reportWebcam() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	var f tracks.VideoFrame
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		n := s.cam.Stats().Delivered
		if n == last || !s.cam.LatestInto(&f) {
			continue
		}
		last = n
		_ = s.Send(map[string]any{"type": "webcam", "width": f.Width, "height": f.Height, "frames": n})
	}
}
