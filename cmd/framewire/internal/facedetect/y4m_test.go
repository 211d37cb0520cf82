package facedetect

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/framewire/framewire/engine/enginetest/y4m"
)

// y4mFrames reads every nth frame of the Y4M file at path as packed RGB24,
// and returns them with the number of frames in the file.
func y4mFrames(t testing.TB, path string, nth int) (frames [][]byte, total, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := y4m.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for ; ; total++ {
		buf, err = r.Next(buf)
		if errors.Is(err, io.EOF) {
			return frames, total, r.Width, r.Height
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, total, err)
		}
		if total%nth == 0 {
			frames = append(frames, append([]byte(nil), buf...))
		}
	}
}
