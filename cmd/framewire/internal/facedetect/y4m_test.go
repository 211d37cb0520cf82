package facedetect

import (
	"errors"
	"io"
	"testing"

	"github.com/framewire/framewire/engine/enginetest/y4m"
)

// y4mFrames reads every nth frame of the face video (y4m.FaceVideo) as
// packed RGB24, and returns them with the number of frames in the file.
func y4mFrames(t testing.TB, nth int) (frames [][]byte, total, w, h int) {
	t.Helper()
	r := y4m.OpenFaceVideo(t)
	var (
		buf []byte
		err error
	)
	for ; ; total++ {
		buf, err = r.Next(buf)
		if errors.Is(err, io.EOF) {
			return frames, total, r.Width, r.Height
		}
		if err != nil {
			t.Fatalf("face video: frame %d: %v", total, err)
		}
		if total%nth == 0 {
			frames = append(frames, append([]byte(nil), buf...))
		}
	}
}
