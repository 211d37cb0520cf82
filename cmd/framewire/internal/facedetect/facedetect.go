// Package facedetect finds frontal faces in RGB24 pictures with OpenCV's
// Haar cascade: Debian's opencv-data and libopencv-objdetect 4.6, through a
// small C++ shim of our own (shim.cc; gocv's versions do not match Debian's
// OpenCV). Only the demo model imports it, so the engine's packages never
// link OpenCV.
//
// A Detector is one loaded cascade with its scratch pictures: Open it, call
// Detect from one goroutine at a time, Close it.
package facedetect

/*
#cgo CXXFLAGS: -std=c++17 -I/usr/include/opencv4
#cgo LDFLAGS: -lopencv_objdetect -lopencv_imgproc -lopencv_core
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"os"
	"unsafe"
)

// DefaultCascade is opencv-data's frontal-face cascade.
const DefaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// MaxFaces is the most faces one Detect call returns.
const MaxFaces = 32

// ErrClosed is returned by Detect on a closed Detector.
var ErrClosed = errors.New("facedetect: detector closed")

// Detector is a loaded cascade. It is not safe for concurrent use: Detect
// reuses the detector's scratch pictures. The zero value is unusable; make
// one with Open.
type Detector struct {
	c   *C.fd_cascade
	out [4 * MaxFaces]C.int
	err [256]C.char
}

// Open loads the cascade file at path (DefaultCascade for faces). The
// caller must call Close.
func Open(path string) (*Detector, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("facedetect: %w (Debian: apt-get install opencv-data)", err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	d := &Detector{}
	d.c = C.fd_open(cpath, &d.err[0], C.int(len(d.err)))
	if d.c == nil {
		return nil, fmt.Errorf("facedetect: %s: %s (Debian: apt-get install opencv-data)", path, C.GoString(&d.err[0]))
	}
	return d, nil
}

// Close frees the cascade. It is idempotent.
func (d *Detector) Close() error {
	if d.c != nil {
		C.fd_close(d.c)
		d.c = nil
	}
	return nil
}

// Params tunes one detection. The zero value is OpenCV's defaults on the
// full-size picture.
type Params struct {
	// Downscale is the detection picture's size over the input's, in
	// (0, 1]; 0 means 1. Smaller is faster and misses small faces: the
	// cascade's window is 24×24 pixels of the detection picture.
	Downscale float64
	// MinSize is the smallest face looked for, in input pixels.
	MinSize int
	// ScaleFactor is how much the window grows per step (> 1; 0 means 1.1).
	ScaleFactor float64
	// MinNeighbors is how many overlapping hits make a face (0 means 3).
	MinNeighbors int
}

// Detect finds faces in rgb, a w×h packed RGB24 picture (w*3 bytes a row),
// appends at most MaxFaces of them to dst, in rgb's pixels and clipped to
// the picture, and returns dst. It does not keep rgb.
func (d *Detector) Detect(dst []image.Rectangle, rgb []byte, w, h int, p Params) ([]image.Rectangle, error) {
	if d.c == nil {
		return dst, ErrClosed
	}
	if w < 1 || h < 1 || len(rgb) < w*h*3 {
		return dst, fmt.Errorf("facedetect: %d bytes for a %dx%d RGB24 picture; want %d", len(rgb), w, h, w*h*3)
	}
	p = p.withDefaults()
	n := C.fd_detect(d.c, (*C.uchar)(unsafe.Pointer(&rgb[0])), C.int(w), C.int(h), C.int(w*3),
		C.double(p.Downscale), C.double(p.ScaleFactor), C.int(p.MinNeighbors), C.int(p.MinSize),
		&d.out[0], MaxFaces, &d.err[0], C.int(len(d.err)))
	if n < 0 {
		return dst, fmt.Errorf("facedetect: %s", C.GoString(&d.err[0]))
	}
	bounds := image.Rect(0, 0, w, h)
	for i := 0; i < int(min(n, MaxFaces)); i++ {
		o := d.out[4*i : 4*i+4]
		r := image.Rect(int(o[0]), int(o[1]), int(o[0]+o[2]), int(o[1]+o[3])).Intersect(bounds)
		if !r.Empty() {
			dst = append(dst, r)
		}
	}
	return dst, nil
}

func (p Params) withDefaults() Params {
	if p.Downscale <= 0 || p.Downscale > 1 {
		p.Downscale = 1
	}
	if p.ScaleFactor <= 1 {
		p.ScaleFactor = 1.1
	}
	if p.MinNeighbors <= 0 {
		p.MinNeighbors = 3
	}
	if p.MinSize < 0 {
		p.MinSize = 0
	}
	return p
}
