package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
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

// The image's entry point on a host without a driver: the real launcher
// starts the real CPU server, which serves (GET /health) until SIGTERM;
// the log says why the CPU build was chosen.
func TestLauncherServesWithoutADriver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libcuda.so.1"); err == nil {
		t.Skip("a real driver here: the no-driver case cannot be shown")
	}
	dir := t.TempDir()
	for out, pkg := range map[string]string{"framewire": ".", "framewire-cpu": "../framewire"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(filepath.Join(dir, "framewire"), "-addr", addr)
	srv.Env = append(os.Environ(), "LD_LIBRARY_PATH="+t.TempDir())
	var logs enginetest.SyncBuffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the launched server did not serve /health within 30 s: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a separate process's port: nothing to wait on
	}
	if !strings.Contains(logs.String(), "starting the cpu build") || !strings.Contains(logs.String(), "libcuda.so.1 does not load") {
		t.Errorf("the log does not say which build started and why:\n%s", logs.String())
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("the server did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
	}
}
