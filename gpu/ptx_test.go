package gpu

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed kernels/kernels.ptx is exactly what clang-14 makes of
// kernels/kernels.cu, so the embedded PTX never drifts from its source.
func TestCommittedPTXMatchesSource(t *testing.T) {
	if _, err := exec.LookPath("clang-14"); err != nil {
		t.Skip("clang-14 not installed (apt-get install clang-14): cannot regenerate the PTX to compare")
	}
	if _, err := os.Stat("kernels/kernels.cu"); err != nil {
		t.Skip("kernels/kernels.cu is not beside the test binary (a packaged gpu-check run): nothing to compare")
	}
	out := filepath.Join(t.TempDir(), "kernels.ptx")
	cmd := exec.Command("sh", "kernels/gen.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernels/gen.sh: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("kernels/kernels.ptx")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatal("kernels/kernels.ptx is stale: run `go generate ./gpu` and commit the result")
	}
	for _, entry := range []string{kernelRGBToNV12, kernelNV12ToRGB} {
		if !bytes.Contains(committed, []byte(".entry "+entry+"(")) {
			t.Errorf("PTX has no entry point %s", entry)
		}
	}
}
