package y4m

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FaceVideo returns the absolute path of the face video `make test`
// prepares (.ci/deps.sh facevideo): Debian opencv-doc's Megamind.avi as
// 720×528 yuv420p Y4M, in testdata/megamind.y4m under $BUILD (the Makefile
// exports it) or else the build folder of the module the test runs in. A
// missing file skips t, or fails it when FRAMEWIRE_E2E is set.
func FaceVideo(t testing.TB) string {
	t.Helper()
	build := os.Getenv("BUILD")
	var err error
	if build == "" {
		build, err = moduleBuild()
	}
	p := ""
	if err == nil {
		if p, err = filepath.Abs(filepath.Join(build, "testdata", "megamind.y4m")); err == nil {
			_, err = os.Stat(p)
		}
	}
	if err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("face video missing (run `.ci/deps.sh facevideo` or `make test`): %v", err)
		}
		t.Skipf("face video missing; `.ci/deps.sh facevideo` (run by make test) makes it: %v", err)
	}
	return p
}

// OpenFaceVideo opens FaceVideo's file and returns its reader, positioned
// at the first frame; the file is closed when t ends. It skips or fails t
// as FaceVideo does, and fails it when the file cannot be read as Y4M.
func OpenFaceVideo(t testing.TB) *Reader {
	t.Helper()
	p := FaceVideo(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return r
}

// moduleBuild is the build folder beside the go.mod found from the
// working directory upwards (a test runs in its package's directory).
func moduleBuild() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "build"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
