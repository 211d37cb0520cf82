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
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
)

// demoEngine serves the demo model over the protocol package's Engine
// interface: one goroutine per output draws and encodes at 30 fps.
type demoEngine struct {
	log  *slog.Logger
	caps protocol.Capabilities
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
	var id [16]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	s := &demoSession{id: hex.EncodeToString(id[:]), log: e.log, state: newDemoState(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go s.reportWebcam()
	return s, nil
}

type demoSession struct {
	id     string
	log    *slog.Logger
	state  *demoState
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	sendMu sync.Mutex
	send   func(v any) error

	camMu sync.Mutex
	cam   webcamFrame // latest webcam frame (copied in Deliver)
	camN  atomic.Int64
}

func (s *demoSession) ID() string            { return s.id }
func (s *demoSession) Done() <-chan struct{} { return s.done }

func (s *demoSession) Stop() {
	s.once.Do(func() {
		s.cancel()
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

func (s *demoSession) Send(v any) error {
	s.sendMu.Lock()
	f := s.send
	s.sendMu.Unlock()
	if f == nil {
		return protocol.ErrNoClient
	}
	return f(v)
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

// control forwards transport feedback to the encode goroutine.
type control struct {
	key  atomic.Bool
	rate atomic.Int64
}

func (c *control) RequestKeyframe()   { c.key.Store(true) }
func (c *control) SetBitrate(bps int) { c.rate.Store(int64(bps)) }

func (s *demoSession) StartOutput(name string, out *peer.Output) (peer.Control, error) {
	backend := encode.BackendX264
	if out.Codec() == peer.CodecVP8 {
		backend = encode.BackendVP8
	}
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: backend, Width: demoW, Height: demoH, FPS: demoFPS, Bitrate: 2_500_000, Logger: s.log})
	if err != nil {
		return nil, err
	}
	ctl := &control{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer enc.Close()
		img := make([]byte, demoW*demoH*3)
		buf := make([]byte, 2<<20)
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
			s.camMu.Lock()
			if s.cam.n != cam.n {
				cam.pix = append(cam.pix[:0], s.cam.pix...)
				cam.w, cam.h, cam.n = s.cam.w, s.cam.h, s.cam.n
			}
			s.camMu.Unlock()
			draw(img, i, pos, hue, mode, &cam)
			if ctl.key.Swap(false) {
				enc.RequestKeyframe()
			}
			if r := ctl.rate.Swap(0); r > 0 {
				enc.SetBitrate(int(r))
			}
			n, key, err := enc.Encode(encode.Image{Pix: img, Width: demoW, Height: demoH}, i*90000/demoFPS, buf)
			if err != nil {
				s.log.Error("encode", "err", err)
				continue
			}
			if n > 0 {
				_ = out.WriteSample(buf[:n], time.Second/demoFPS, time.Now(), key)
			}
		}
	}()
	return ctl, nil
}

type demoWebcam struct{ s *demoSession }

func (d demoWebcam) Deliver(rgb []byte, w, h int, _ time.Time) {
	s := d.s
	s.camMu.Lock()
	s.cam.pix = append(s.cam.pix[:0], rgb...)
	s.cam.w, s.cam.h = w, h
	s.cam.n++
	s.camMu.Unlock()
	s.camN.Add(1)
}

func (s *demoSession) VideoInput(name string) peer.VideoInput {
	if name == "webcam" {
		return demoWebcam{s}
	}
	return nil
}

func (s *demoSession) AudioInput(string) peer.AudioInput { return nil }

// reportWebcam sends {type:"webcam", width, height, frames} every second
// while webcam frames arrive.
func (s *demoSession) reportWebcam() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		n := s.camN.Load()
		if n == last {
			continue
		}
		last = n
		s.camMu.Lock()
		w, h := s.cam.w, s.cam.h
		s.camMu.Unlock()
		_ = s.Send(map[string]any{"type": "webcam", "width": w, "height": h, "frames": n})
	}
}
