package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest/y4m"
	"github.com/framewire/framewire/tracks"
)

// messages is a Transport that keeps the faces messages the model sends.
type messages struct {
	mu    sync.Mutex
	faces []facesMsg
}

func (m *messages) Send(msg json.RawMessage) error {
	var f facesMsg
	if err := json.Unmarshal(msg, &f); err == nil && f.Type == "faces" {
		m.mu.Lock()
		m.faces = append(m.faces, f)
		m.mu.Unlock()
	}
	return nil
}

func (m *messages) CommandRejected(string, error) {}

func (m *messages) Upload(context.Context, string) (engine.Upload, error) {
	return engine.Upload{}, errors.New("no uploads here")
}

func (m *messages) list() []facesMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]facesMsg(nil), m.faces...)
}

// TestDemoFacesOnMegamind runs the demo model in an engine session, no
// browser or codec: Megamind's frames delivered to webcam at 24 fps for 4
// s. The model emits main_video at its 30 fps meanwhile, sends a faces
// message a second with faces inside the fitted camera picture, each
// second's detections and detect_ms, and its detector goroutine ends with
// the session.
func TestDemoFacesOnMegamind(t *testing.T) {
	video := y4m.OpenFaceVideo(t)
	eng, err := engine.New(demoModel())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.StartSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msgs := &messages{}
	s.Attach(msgs)
	cam, _ := s.VideoIn("webcam")
	out, _ := s.VideoOut("main_video")
	emitted := make(chan int, 1)
	go func() { emitted <- countFrames(out.Next) }()

	var pix []byte
	tick := time.NewTicker(time.Second * 1001 / 24000)
	for t0 := time.Now(); time.Since(t0) < 4*time.Second; <-tick.C {
		if pix, err = video.Next(pix); err != nil {
			t.Fatalf("Megamind frame: %v", err)
		}
		if err := cam.Deliver(pix, video.Width, video.Height, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	s.Stop("test over")
	if n := <-emitted; n < 4*25 && !raceEnabled { // the race detector slows detection many times over
		t.Errorf("main_video: %d frames in 4 s while detecting; want >= 100 (30 fps)", n)
	}
	checkFacesMessages(t, msgs.list())
}

// countFrames counts the frames next returns until it fails (the session
// ended).
func countFrames(next func(context.Context) (*tracks.VideoFrame, error)) int {
	n := 0
	for {
		f, err := next(context.Background())
		if err != nil {
			return n
		}
		f.Release()
		n++
	}
}

// checkFacesMessages checks the messages of 4 s of Megamind's first 96
// frames: the cascade finds its face in all but a few (faceHold bridges
// those), so all messages but perhaps one report a face.
func checkFacesMessages(t *testing.T, faces []facesMsg) {
	t.Helper()
	area := fitCamera(720, 528).rect
	with := 0
	for _, m := range faces {
		t.Logf("faces %d, boxes %v, detect_ms %.1f, %d detections", m.Count, m.Boxes, m.DetectMs, m.Detections)
		if m.Count > 0 {
			with++
		}
		if m.Count != len(m.Boxes) || m.DetectMs <= 0 || m.Detections < 2 || m.Detections > detectRate+1 {
			t.Errorf("faces message %+v: want count = len(boxes), detect_ms > 0, 2..%d detections", m, detectRate+1)
		}
		for _, b := range m.Boxes {
			if b[0] < area.Min.X || b[1] < area.Min.Y || b[0]+b[2] > area.Max.X || b[1]+b[3] > area.Max.Y || b[2] < 40 {
				t.Errorf("face box %v outside the camera's %v or under 40 pixels", b, area)
			}
		}
	}
	if len(faces) < 3 || with < len(faces)-1 {
		t.Errorf("%d faces messages in 4 s, %d with a face; want >= 3, all but one with a face", len(faces), with)
	}
}
