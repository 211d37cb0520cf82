package main

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sync"
)

// The built-in demo model, "framewire-demo": animated stripes that move at
// 30 fps, a bouncing square, and the client's webcam (when published) shown
// as a large inset with the stripes' hue blended into it.
//
// Commands (the SDK's ReactorController renders them):
//
//	set_color   hue (number 0..360), mode (string: stripes | solid | checker)
//	set_speed   speed (number 0..10)
//	inspect_file file (an upload): answers {type:"file_info", name, size, sha256}
//
// While webcam frames arrive the model sends {type:"webcam", width, height,
// frames} once per second.

const (
	demoW, demoH = 640, 360
	demoFPS      = 30
)

// demoState is what commands change and the draw loop reads.
type demoState struct {
	mu    sync.Mutex
	hue   float64
	mode  string
	speed float64
}

func newDemoState() *demoState { return &demoState{hue: 200, mode: "stripes", speed: 3} }

func (s *demoState) get() (hue float64, mode string, speed float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hue, s.mode, s.speed
}

// demoCommands is the capabilities' command list (flat parameter schema).
var demoCommands = []map[string]any{
	{"name": "set_color", "description": "Colour and pattern of the picture", "schema": map[string]any{
		"hue":  map[string]any{"type": "number", "minimum": 0, "maximum": 360, "required": true, "description": "hue in degrees"},
		"mode": map[string]any{"type": "string", "enum": []string{"stripes", "solid", "checker"}, "required": false, "default": "stripes", "description": "pattern"},
	}},
	{"name": "set_speed", "description": "Animation speed", "schema": map[string]any{
		"speed": map[string]any{"type": "number", "minimum": 0, "maximum": 10, "required": true, "description": "pixels per frame / 2"},
	}},
	{"name": "inspect_file", "description": "Report an uploaded file's size and SHA-256", "schema": map[string]any{
		"file": map[string]any{"type": "file", "required": true, "description": "any file"},
	}},
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
	n    int64
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
