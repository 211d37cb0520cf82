package facedetect

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/framewire/framewire/engine/enginetest/y4m"
)

// megamindY4M is the face video `make test` prepares (.ci/deps.sh
// facevideo): Debian opencv-doc's Megamind.avi as yuv420p Y4M, under
// $BUILD (the Makefile exports it) or the repository's build/.
func megamindY4M(t testing.TB) string {
	t.Helper()
	build := os.Getenv("BUILD")
	if build == "" {
		build = filepath.Join("..", "..", "..", "..", "build")
	}
	p := filepath.Join(build, "testdata", "megamind.y4m")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("%s missing (run `.ci/deps.sh facevideo` or `make test`): %v", p, err)
		}
		t.Skipf("%s missing; `.ci/deps.sh facevideo` (run by make test) makes it", p)
	}
	return p
}

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
