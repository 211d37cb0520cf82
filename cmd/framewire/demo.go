package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// The built-in demo model, "framewire-demo", declared with package engine
// like any model: animated stripes that move at 30 fps, a bouncing square,
// and the client's webcam (when published) shown as a large inset with the
// stripes' hue blended into it.
//
// Commands (the SDK's ReactorController renders them):
//
//	set_color    hue (number 0..360), mode (string: stripes | solid | checker)
//	set_speed    speed (number 0..10)
//	inspect_file file (an upload): answers {type:"file_info", name, size, sha256}
//
// While webcam frames arrive the model sends {type:"webcam", width, height,
// frames} once per second.

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

// demoModel declares the demo model. Each call returns a model with its
// own state (one Engine per declaration).
func demoModel() engine.Model {
	d := &demo{}
	return engine.Model{
		Name: "framewire-demo",
		Tracks: []tracks.Spec{
			tracks.VideoOutput("main_video", tracks.Default(), tracks.Rate(demoFPS)),
			tracks.VideoInput("webcam"),
		},
		Commands: []engine.CommandDef{
			engine.Command("set_color", "Colour and pattern of the picture", d.setColor),
			engine.Command("set_speed", "Animation speed", d.setSpeed),
			engine.Command("inspect_file", "Report an uploaded file's size and SHA-256", d.inspectFile),
		},
		New: func(engine.Config) (engine.Runner, error) { return d, nil },
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
type demo struct{}

// sessionState is each session's demoState, made on first use (a command
// may run before RunSession does) and dropped when the session ends.
var sessionState = engine.NewSessionValue(func(*engine.Session) *demoState {
	return &demoState{hue: 200, mode: "stripes", speed: 3}
})

// demoState is one session's state: what commands change and the draw
// loop reads.
type demoState struct {
	mu    sync.Mutex
	hue   float64
	mode  string
	speed float64
}

func (s *demoState) get() (hue float64, mode string, speed float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hue, s.mode, s.speed
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

// RunSession is the demo's generation loop: it draws at 30 fps into
// main_video, with the latest webcam picture as an inset, until the
// session stops. Once a second, while webcam frames arrive, it tells the
// client what it sees. The loop allocates nothing per frame.
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
	img := make([]byte, demoW*demoH*3)
	var camFrame tracks.VideoFrame // reused by LatestInto
	var view webcamFrame
	tick := time.NewTicker(time.Second / demoFPS)
	defer tick.Stop()
	var reported uint64
	nextReport := time.Now().Add(time.Second)
	pos := 0.0
	for i := int64(0); ; i++ {
		var now time.Time
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick.C:
		}
		hue, mode, speed := st.get()
		pos += speed * 2
		var cp *webcamFrame
		if cam.LatestInto(&camFrame) {
			view.pix, view.w, view.h = camFrame.Pix, camFrame.Width, camFrame.Height
			cp = &view
		}
		draw(img, i, pos, hue, mode, cp)
		if err := out.Emit(img, demoH, demoW, 3); err != nil {
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

// webcamFrame is the latest webcam picture the model has seen.
type webcamFrame struct {
	pix  []byte
	w, h int
}

// draw renders frame number i into img (demoW x demoH RGB24). cam, when
// non-nil, is drawn as an inset. It does not allocate.
func draw(img []byte, i int64, pos float64, hue float64, mode string, cam *webcamFrame) {
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
	// A white square bouncing left and right: motion even in "solid" mode.
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
	if cam == nil || cam.w == 0 {
		return
	}
	// Webcam inset: 320x180 at the top right, nearest neighbour, tinted.
	const iw, ih, ix, iy = 320, 180, demoW - 320 - 16, 16
	for y := 0; y < ih; y++ {
		sy := y * cam.h / ih
		for x := 0; x < iw; x++ {
			sx := x * cam.w / iw
			s := cam.pix[(sy*cam.w+sx)*3:]
			d := img[((iy+y)*demoW+ix+x)*3:]
			d[0] = byte((int(s[0])*3 + int(r)) / 4)
			d[1] = byte((int(s[1])*3 + int(g)) / 4)
			d[2] = byte((int(s[2])*3 + int(b)) / 4)
		}
	}
}

func fileInfo(name, mime string, data []byte) map[string]any {
	sum := sha256.Sum256(data)
	return map[string]any{"type": "file_info", "name": name, "mime_type": mime, "size": len(data), "sha256": hex.EncodeToString(sum[:])}
}
