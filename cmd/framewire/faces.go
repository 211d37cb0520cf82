package main

import (
	"context"
	"image"
	"math"
	"time"

	"github.com/framewire/framewire/cmd/framewire/internal/facedetect"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// The demo's face detector: one goroutine per session (Session.Go) runs
// OpenCV's frontal-face cascade on the latest webcam picture, at most
// detectRate times a second, and publishes the boxes it found in output
// pixels; the draw loop reuses the last boxes on every frame, so the output
// keeps 30 fps however long a detection takes. Once a second it sends
// {type:"faces", count, boxes, detect_ms, detections}.

const (
	// detectRate caps detections per second (half the output's rate):
	// faces move little in 66 ms and the CPU stays for the encoder.
	detectRate = demoFPS / 2
	// detectWidth is the detection picture's width: larger webcam
	// pictures are scaled down to it (unless min_size asks for more).
	detectWidth = 320
	// cascadeWindow is the Haar cascade's window, in detection pixels: the
	// smallest face it can find.
	cascadeWindow = 24
	// faceHold keeps the last boxes for a detection that finds nothing,
	// up to this long after the last one that found a face, so that a
	// face the cascade misses for a few frames (a turn of the head; on
	// Megamind.avi it misses runs of up to 10 frames, 0.4 s) is not shown
	// unfiltered.
	faceHold = 500 * time.Millisecond
)

// SetFilter is set_filter's parameters.
type SetFilter struct {
	Mode string `json:"mode" enum:"boxes,blur,pixelate,off" default:"pixelate" description:"what to draw over each face found"`
}

// SetDetector is set_detector's parameters.
type SetDetector struct {
	MinSize int     `json:"min_size" min:"20" max:"200" default:"60" description:"smallest face looked for, in output pixels (smaller costs more)"`
	Scale   float64 `json:"scale" min:"1.05" max:"1.5" default:"1.1" description:"cascade scale step (smaller finds more, costs more)"`
}

// faceSet is the boxes of the latest detection, in output pixels.
type faceSet struct {
	n     int
	boxes [facedetect.MaxFaces]image.Rectangle
}

// slice returns the boxes.
func (f *faceSet) slice() []image.Rectangle { return f.boxes[:f.n] }

func (d *demo) setFilter(s *engine.Session, p SetFilter) error {
	st := d.state(s)
	st.mu.Lock()
	st.filter = p.Mode
	st.mu.Unlock()
	return s.Send(map[string]any{"type": "filter_set", "mode": p.Mode})
}

func (d *demo) setDetector(s *engine.Session, p SetDetector) error {
	st := d.state(s)
	st.mu.Lock()
	st.minSize, st.scale = p.MinSize, p.Scale
	st.mu.Unlock()
	return s.Send(map[string]any{"type": "detector_set", "min_size": p.MinSize, "scale": p.Scale})
}

// detectorParams returns the detection parameters for a camera picture of
// w×h placed by f: the picture is scaled to detectWidth, or larger when
// minSize (output pixels) would be smaller than the cascade's window.
func detectorParams(w int, f fit, minSize int, scale float64) facedetect.Params {
	minCam := float64(minSize) / f.s
	down := min(1, max(float64(detectWidth)/float64(w), cascadeWindow/minCam))
	return facedetect.Params{Downscale: down, MinSize: int(minCam), ScaleFactor: scale}
}

// faceReport gathers one second of detections for the faces message.
type faceReport struct {
	next  time.Time
	count int
	total time.Duration
}

// add records one detection's duration.
func (r *faceReport) add(d time.Duration) {
	r.count++
	r.total += d
}

// due reports whether a second has passed since the last report.
func (r *faceReport) due(now time.Time) bool { return r.count > 0 && !now.Before(r.next) }

// message returns the faces message for boxes and starts a new second.
func (r *faceReport) message(now time.Time, boxes []image.Rectangle) map[string]any {
	list := make([][4]int, len(boxes))
	for i, b := range boxes {
		list[i] = [4]int{b.Min.X, b.Min.Y, b.Dx(), b.Dy()}
	}
	ms := float64(r.total.Microseconds()) / 1000 / float64(r.count)
	m := map[string]any{"type": "faces", "count": len(boxes), "boxes": list,
		"detect_ms": math.Round(ms*10) / 10, "detections": r.count}
	*r = faceReport{next: now.Add(time.Second)}
	return m
}

// detector is one session's face-detection loop and what it keeps between
// detections.
type detector struct {
	det   *facedetect.Detector
	st    *demoState
	cam   *tracks.VideoIn
	frame tracks.VideoFrame // reused by LatestInto
	found []image.Rectangle
	last  faceSet   // published boxes
	seen  time.Time // when a detection last found a face
	rep   faceReport
}

// detectFaces is the session's detector goroutine (run by Session.Go): it
// detects on each new webcam picture, at most detectRate times a second,
// until ctx ends. A cascade that cannot load ends the session with the
// reason.
func (d *demo) detectFaces(ctx context.Context, s *engine.Session, cam *tracks.VideoIn) error {
	det, err := facedetect.Open(d.cascade)
	if err != nil {
		return err
	}
	defer det.Close()
	dt := &detector{det: det, st: d.state(s), cam: cam, found: make([]image.Rectangle, 0, facedetect.MaxFaces),
		rep: faceReport{next: time.Now().Add(time.Second)}}
	tick := time.NewTicker(time.Second / detectRate)
	defer tick.Stop()
	var seen uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n := cam.Stats().Delivered
		if n == seen || !cam.LatestInto(&dt.frame) {
			continue
		}
		seen = n
		if err := dt.detect(); err != nil {
			return err
		}
		if now := time.Now(); dt.rep.due(now) {
			_ = s.Send(dt.rep.message(now, dt.last.slice()))
		}
	}
}

// detect runs the cascade on dt.frame and publishes the boxes.
func (dt *detector) detect() error {
	minSize, scale := dt.st.detectorSettings()
	f := fitCamera(dt.frame.Width, dt.frame.Height)
	p := detectorParams(dt.frame.Width, f, minSize, scale)
	t0 := time.Now()
	found, err := dt.det.Detect(dt.found[:0], dt.frame.Pix, dt.frame.Width, dt.frame.Height, p)
	if err != nil {
		return err
	}
	now := time.Now()
	dt.rep.add(now.Sub(t0))
	dt.found = found
	if len(found) == 0 && now.Sub(dt.seen) < faceHold {
		return nil // keep the last boxes a little longer
	}
	if len(found) > 0 {
		dt.seen = now
	}
	dt.last.n = len(found)
	for i, r := range found {
		dt.last.boxes[i] = f.toOutput(r)
	}
	dt.st.setFaces(&dt.last)
	return nil
}
