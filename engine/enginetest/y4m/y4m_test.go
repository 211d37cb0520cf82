package y4m

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestReader reads a 4×2 two-frame stream: white then a mid-grey with a
// red chroma, and fails on a 4:4:4 stream and a truncated frame.
func TestReader(t *testing.T) {
	frame := func(y, u, v byte) []byte {
		b := []byte("FRAME\n")
		b = append(b, bytes.Repeat([]byte{y}, 8)...)
		b = append(b, u, u, v, v)
		return b
	}
	stream := append([]byte("YUV4MPEG2 W4 H2 F30:1 Ip A1:1 C420jpeg\n"), frame(235, 128, 128)...)
	stream = append(stream, frame(126, 128, 240)...)
	r, err := NewReader(bytes.NewReader(stream))
	if err != nil || r.Width != 4 || r.Height != 2 {
		t.Fatalf("NewReader: %+v, %v", r, err)
	}
	rgb, err := r.Next(nil)
	if err != nil || len(rgb) != 24 || rgb[0] != 255 || rgb[1] != 255 || rgb[2] != 255 {
		t.Fatalf("frame 1: %v, %v; want white", rgb, err)
	}
	rgb, err = r.Next(rgb)
	if err != nil || rgb[0] < 200 || rgb[1] > 80 || rgb[2] > 130 {
		t.Fatalf("frame 2: %v, %v; want red", rgb[:3], err)
	}
	if _, err := r.Next(rgb); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte("YUV4MPEG2 W4 H2 C444\n"))); err == nil {
		t.Error("a 4:4:4 stream: no error")
	}
	r, _ = NewReader(bytes.NewReader(stream[:50]))
	if _, err := r.Next(nil); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a truncated frame: %v, want an error other than io.EOF", err)
	}
}
