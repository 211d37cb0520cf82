package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/framewire/framewire/cmd/framewire/internal/facedetect"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// The built-in demo model, "framewire-demo", declared with package engine
// like any model: a face filter. Once the client publishes its webcam the
// model shows it (fitted into 640×360, the animated pattern around it),
// finds the faces in it with OpenCV's frontal-face Haar cascade (faces.go,
// on its own goroutine) and hides or boxes each one (filter.go). Without a
// webcam it draws the pattern: animated stripes that move at 30 fps and a
// bouncing square.
//
// Commands (the SDK's ReactorController renders them):
//
//	set_filter   mode (string: boxes | blur | pixelate | off)
//	set_detector min_size (integer 20..200, output pixels), scale (number 1.05..1.5)
//	set_color    hue (number 0..360), mode (string: stripes | solid | checker):
//	             the pattern, and the colour of the boxes
//	set_speed    speed (number 0..10)
//	inspect_file file (an upload): answers {type:"file_info", name, size, sha256}
//
// While webcam frames arrive the model sends {type:"webcam", width, height,
// frames} and {type:"faces", count, boxes: [[x, y, w, h], …] (output
// pixels), detect_ms, detections} once per second.

const (
	demoW, demoH = 640, 360
	demoFPS      = 30
)

// SetColor is set_color's parameters.
type SetColor struct {
	Hue  float64 `json:"hue" min:"0" max:"360" description:"hue in degrees"`
	Mode string  `json:"mode" enum:"stripes,solid,checker" default:"stripes" description:"pattern"`
}

// SetSpeed is set_speed's parameters.
type SetSpeed struct {
	Speed float64 `json:"speed" min:"0" max:"10" description:"pixels per frame / 2"`
}

// InspectFile is inspect_file's parameters.
type InspectFile struct {
	File engine.File `json:"file" description:"any file"`
}

// demoConfig is the demo model's config: recording on (clips).
//
//go:embed demo.yml
var demoConfig []byte

// demoModel declares the demo model. Each call returns a model with its
// own state (one Engine per declaration).
func demoModel() engine.Model {
	d := &demo{cascade: facedetect.DefaultCascade}
	return engine.Model{
		Name:       "framewire-demo",
		ConfigData: demoConfig,
		Tracks: []tracks.Spec{
			tracks.VideoOutput("main_video", tracks.Default(), tracks.Rate(demoFPS)),
			tracks.VideoInput("webcam"),
		},
		Commands: []engine.CommandDef{
			engine.Command("set_filter", "What to draw over each face found in the webcam", d.setFilter),
			engine.Command("set_detector", "Face detector settings", d.setDetector),
			engine.Command("set_color", "Colour and pattern of the picture", d.setColor),
			engine.Command("set_speed", "Animation speed", d.setSpeed),
			engine.Command("inspect_file", "Report an uploaded file's size and SHA-256", d.inspectFile),
		},
		New: d.load,
	}
}

// demoCommands is the capabilities' command list (name, description and
// flat parameter schema of each), in declaration order.
var demoCommands = func() []map[string]any {
	var list []map[string]any
	for _, c := range demoModel().Commands {
		list = append(list, map[string]any{"name": c.Name(), "description": c.Description(), "schema": c.Schema()})
	}
	return list
}()

// demo is the loaded model: one per Engine, serving every session.
type demo struct {
	cascade string // the face cascade's file
}

// load checks that the face cascade loads, so that a missing opencv-data
// stops the server at start with the reason; each session loads its own.
func (d *demo) load(engine.Config) (engine.Runner, error) {
	det, err := facedetect.Open(d.cascade)
	if err != nil {
		return nil, err
	}
	return d, det.Close()
}

// sessionState is each session's demoState, made on first use (a command
// may run before RunSession does) and dropped when the session ends.
var sessionState = engine.NewSessionValue(func(*engine.Session) *demoState {
	return &demoState{hue: 200, mode: "stripes", speed: 3, filter: filterPixelate, minSize: 60, scale: 1.1}
})

// demoState is one session's state: what commands change and the draw
// loop reads.
type demoState struct {
	mu      sync.Mutex
	hue     float64
	mode    string
	speed   float64
	filter  string
	minSize int
	scale   float64
	faces   faceSet // the detector's latest boxes
}

// look is what one frame draws: demoState's values, copied under its lock.
type look struct {
	hue    float64
	mode   string
	speed  float64
	filter string
	faces  faceSet
}

// getInto copies the state the draw loop reads into l.
func (s *demoState) getInto(l *look) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.hue, l.mode, l.speed, l.filter, l.faces = s.hue, s.mode, s.speed, s.filter, s.faces
}

// detectorSettings returns set_detector's values.
func (s *demoState) detectorSettings() (minSize int, scale float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minSize, s.scale
}

// setFaces publishes the detector's boxes.
func (s *demoState) setFaces(f *faceSet) {
	s.mu.Lock()
	s.faces = *f
	s.mu.Unlock()
}

// state returns session s's state.
func (d *demo) state(s *engine.Session) *demoState { return sessionState.Get(s) }

func (d *demo) setColor(s *engine.Session, p SetColor) error {
	st := d.state(s)
	st.mu.Lock()
	st.hue, st.mode = p.Hue, p.Mode
	st.mu.Unlock()
	return s.Send(map[string]any{"type": "color_set", "hue": p.Hue, "mode": p.Mode})
}

func (d *demo) setSpeed(s *engine.Session, p SetSpeed) error {
	st := d.state(s)
	st.mu.Lock()
	st.speed = p.Speed
	st.mu.Unlock()
	return s.Send(map[string]any{"type": "speed_set", "speed": p.Speed})
}

func (d *demo) inspectFile(s *engine.Session, p InspectFile) error {
	return s.Send(fileInfo(p.File.Name, p.File.MimeType, p.File.Data))
}

// RunSession is the demo's generation loop: it starts the session's face
// detector, then draws at 30 fps into main_video until the session stops:
// the pattern and, once the webcam is published, its latest picture with
// the filter over the detector's last boxes. Once a second, while webcam
// frames arrive, it tells the client what it sees. The loop allocates
// nothing per frame.
func (d *demo) RunSession(ctx context.Context, s *engine.Session) error {
	st := d.state(s)
	out, err := s.VideoOut("main_video")
	if err != nil {
		return err
	}
	cam, err := s.VideoIn("webcam")
	if err != nil {
		return err
	}
	if err := s.Go(func(ctx context.Context) error { return d.detectFaces(ctx, s, cam) }); err != nil {
		return nil // the session is ending
	}
	fr := &framer{img: make([]byte, demoW*demoH*3), scratch: make([]byte, demoW*demoH*3)}
	tick := time.NewTicker(time.Second / demoFPS)
	defer tick.Stop()
	var reported uint64
	nextReport := time.Now().Add(time.Second)
	for i := int64(0); ; i++ {
		var now time.Time
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick.C:
		}
		cp := fr.draw(i, st, cam)
		if err := out.Emit(fr.img, demoH, demoW, 3); err != nil {
			if errors.Is(err, tracks.ErrClosed) {
				return nil // the session is ending
			}
			return err
		}
		if cp != nil && now.After(nextReport) {
			nextReport = now.Add(time.Second)
			if n := cam.Stats().Delivered; n != reported {
				reported = n
				_ = s.Send(map[string]any{"type": "webcam", "width": cp.w, "height": cp.h, "frames": n})
			}
		}
	}
}

// framer is the draw loop's picture and what it reuses from frame to frame.
type framer struct {
	img, scratch []byte            // the output picture; the blur's
	camFrame     tracks.VideoFrame // reused by LatestInto
	view         webcamFrame
	look         look
	pos          float64 // the pattern's offset
}

// draw renders frame number i into fr.img and returns the webcam picture
// it drew (nil before the webcam's first).
func (fr *framer) draw(i int64, st *demoState, cam *tracks.VideoIn) *webcamFrame {
	st.getInto(&fr.look)
	l := &fr.look
	fr.pos += l.speed * 2
	drawPattern(fr.img, i, fr.pos, l.hue, l.mode)
	if !cam.LatestInto(&fr.camFrame) {
		return nil
	}
	fr.view.pix, fr.view.w, fr.view.h = fr.camFrame.Pix, fr.camFrame.Width, fr.camFrame.Height
	drawCamera(fr.img, &fr.view, fitCamera(fr.view.w, fr.view.h))
	r, g, b := hueRGB(l.hue)
	applyFilter(fr.img, fr.scratch, l.filter, l.faces.slice(), [3]byte{r, g, b})
	return &fr.view
}

// hueRGB converts a hue (degrees) at full saturation and value to RGB.
func hueRGB(h float64) (r, g, b byte) {
	h = math.Mod(h, 360)
	if h < 0 {
		h += 360
	}
	x := 1 - math.Abs(math.Mod(h/60, 2)-1)
	var rf, gf, bf float64
	switch {
	case h < 60:
		rf, gf = 1, x
	case h < 120:
		rf, gf = x, 1
	case h < 180:
		gf, bf = 1, x
	case h < 240:
		gf, bf = x, 1
	case h < 300:
		rf, bf = x, 1
	default:
		rf, bf = 1, x
	}
	return byte(rf * 255), byte(gf * 255), byte(bf * 255)
}

// webcamFrame is the latest webcam picture the model has seen: packed
// RGB24, w×h.
type webcamFrame struct {
	pix  []byte
	w, h int
}

// drawPattern renders frame number i of the pattern into img (demoW x
// demoH RGB24): stripes, checker or solid in hue, and a white square
// bouncing left and right (motion even in "solid" mode). It does not
// allocate.
func drawPattern(img []byte, i int64, pos float64, hue float64, mode string) {
	r, g, b := hueRGB(hue)
	off := int(pos)
	for y := 0; y < demoH; y++ {
		row := img[y*demoW*3 : (y+1)*demoW*3]
		for x := 0; x < demoW; x++ {
			on := true
			switch mode {
			case "stripes":
				on = ((x+y+off)/32)%2 == 0
			case "checker":
				on = ((x+off)/40+(y/40))%2 == 0
			}
			p := row[x*3 : x*3+3]
			if on {
				p[0], p[1], p[2] = r, g, b
			} else {
				p[0], p[1], p[2] = r/4, g/4, b/4
			}
		}
	}
	span := demoW - 60
	bx := int(i*6) % (2 * span)
	if bx > span {
		bx = 2*span - bx
	}
	for y := demoH - 80; y < demoH-20; y++ {
		for x := bx; x < bx+60; x++ {
			p := img[(y*demoW+x)*3:]
			p[0], p[1], p[2] = 255, 255, 255
		}
	}
}

func fileInfo(name, mime string, data []byte) map[string]any {
	sum := sha256.Sum256(data)
	return map[string]any{"type": "file_info", "name": name, "mime_type": mime, "size": len(data), "sha256": hex.EncodeToString(sum[:])}
}
