package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets a test run the launcher's choice in a fresh process, where
// the dynamic loader reads the LD_LIBRARY_PATH the test set.
func TestMain(m *testing.M) {
	if os.Getenv("FW_LAUNCH_HELPER") == "1" {
		os.Setenv("FRAMEWIRE_LAUNCH_DRYRUN", "1")
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func launch(t *testing.T, env ...string) (build, log string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"FW_LAUNCH_HELPER=1"}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), stderr.String()
}

// One image serves on any host (defect 3): the launcher picks the cuda
// build where cuInit succeeds (the emulated driver of gpu/cudaemu) and the
// CPU build, saying why, where the driver is missing or finds no device.
func TestLauncherChoosesTheBuildThatCanRun(t *testing.T) {
	emu, _ := filepath.Abs("../../build/cudaemu")
	if _, err := os.Stat(filepath.Join(emu, "libcuda.so.1")); err != nil {
		t.Skip("the emulated driver is not built (make cudaemu)")
	}
	if b, log := launch(t, "LD_LIBRARY_PATH="+emu); b != "cuda" || !strings.Contains(log, "cuInit succeeded") {
		t.Errorf("with a driver and a device: %s (%s), want cuda", b, log)
	}
	if b, log := launch(t, "LD_LIBRARY_PATH="+emu, "FW_CUDAEMU_NO_DEVICE=1"); b != "cpu" || !strings.Contains(log, "cuInit failed") {
		t.Errorf("driver without a device: %s (%s), want cpu and the cuInit error", b, log)
	}
	if b, log := launch(t, "LD_LIBRARY_PATH="+emu, "FRAMEWIRE_BUILD=cpu"); b != "cpu" || !strings.Contains(log, "FRAMEWIRE_BUILD") {
		t.Errorf("forced cpu: %s (%s)", b, log)
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libcuda.so.1"); err == nil {
		return // a real driver here: the no-driver case cannot be shown
	}
	if b, log := launch(t, "LD_LIBRARY_PATH="+t.TempDir()); b != "cpu" || !strings.Contains(log, "libcuda.so.1 does not load") {
		t.Errorf("no driver: %s (%s), want cpu and why", b, log)
	}
}
