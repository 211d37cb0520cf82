package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// The Python models' end-to-end tests: `python3 -m framewire serve` (the
// package of cmd/libframewire over the real libframewire.so, built by
// `make python`) serves the tracks page's examples and a test model, and
// the real SDK 2.9.0 in headless Chromium drives them exactly as it
// drives the Go demo in TestBrowserSDK.

const (
	pythonBin = "/usr/bin/python3" // Debian's, which has numpy and torch
	pyDir     = "../libframewire/python"
)

// needPython skips (or fails under FRAMEWIRE_E2E) without the package's
// library or Debian's interpreter.
func needPython(t *testing.T) {
	t.Helper()
	for _, p := range []string{pythonBin, filepath.Join(pyDir, "framewire", "_lib", "libframewire.so")} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("FRAMEWIRE_E2E") != "" {
				t.Fatalf("%s missing (run `make python`): %v", p, err)
			}
			t.Skipf("%s missing; run `make python` for the Python tests", p)
		}
	}
}

var servingLine = regexp.MustCompile(`serving model \S+ on (http://[0-9a-z.:]+)`)

// startPython serves model file (relative to the package dir) with
// `python3 -m framewire serve` and the given flags, returns its base URL
// and its stderr so far, and on cleanup stops it with SIGTERM and checks
// that it exits 0 without an ERROR line.
func startPython(t *testing.T, model string, args ...string) (string, *enginetest.SyncBuffer) {
	t.Helper()
	abs, _ := filepath.Abs(pyDir)
	cmd := exec.Command(pythonBin, append([]string{"-m", "framewire", "serve", filepath.Join(abs, model), "-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+abs, "PYTHONUNBUFFERED=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr enginetest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- strings.Replace(m[1], "localhost", "127.0.0.1", 1):
				default:
				}
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("python3 -m framewire serve %s: %v after SIGTERM; stderr:\n%s", model, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("python3 -m framewire serve %s did not stop within 20 s of SIGTERM", model)
		}
		if s := stderr.String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("serve %s logged an error:\n%s", model, s)
		} else if t.Failed() {
			t.Logf("serve %s stderr:\n%s", model, s)
		}
	})
	select {
	case u := <-urls:
		return u, &stderr
	case err := <-done:
		t.Fatalf("serve %s exited early: %v\n%s", model, err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve %s did not start within 30 s\n%s", model, stderr.String())
	}
	return "", nil
}
