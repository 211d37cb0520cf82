package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// leakModes are the ways a client leaves, rotated over the cycles.
var leakModes = []string{"stop", "close", "vanish", "kill"}

// procSample is the server process's resources, read from its /metrics.
type procSample struct {
	goroutines, threads, fds int
	rssMB                    float64
}

var metricLine = regexp.MustCompile(`(?m)^(go_goroutines|go_threads|process_open_fds|process_resident_memory_bytes) (\S+)$`)

func sample(t *testing.T, base string) procSample {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s procSample
	for _, m := range metricLine.FindAllStringSubmatch(string(raw), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "go_goroutines":
			s.goroutines = int(v)
		case "go_threads":
			s.threads = int(v)
		case "process_open_fds":
			s.fds = int(v)
		case "process_resident_memory_bytes":
			s.rssMB = v / (1 << 20)
		}
	}
	return s
}

// server is a running framewire process.
type server struct {
	base     string
	pid      int
	logBytes *atomic.Int64 // bytes it wrote to stderr
}

// startBinary builds and runs the real framewire binary on a free
// loopback port; see runBinary.
func startBinary(t *testing.T, args ...string) server {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "framewire")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return runBinary(t, bin, append([]string{"-log-level", "error"}, args...)...)
}

// countWriter counts what is written to it.
type countWriter struct{ n *atomic.Int64 }

func (c countWriter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// runBinary runs the framewire binary bin on a free loopback port, its log
// counted, not kept. It is stopped with SIGTERM (and waited for) when the
// test ends.
func runBinary(t *testing.T, bin string, args ...string) server {
	t.Helper()
	srv := server{logBytes: new(atomic.Int64)}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-interfaces", "lo"}, args...)...)
	cmd.Stderr = countWriter{srv.logBytes}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	port := regexp.MustCompile(`localhost:(\d+)/`).FindStringSubmatch(line)
	if err != nil || port == nil {
		t.Fatalf("framewire printed %q (%v); want its URL", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // returns when the process exits
	srv.base, srv.pid = "http://127.0.0.1:"+port[1], cmd.Process.Pid
	return srv
}

// TestLeakClientProcess is the client of one leak cycle, run in a child
// process by TestLeakCycles: it connects like the SDK, sees video, pings
// every 200 ms, prints "ready" and then does what stdin says ("stop":
// stop_session, then close; "close": close the peer without it). The
// parent may instead stop (SIGSTOP) or kill (SIGKILL) it.
func TestLeakClientProcess(t *testing.T) {
	base := os.Getenv("FRAMEWIRE_LEAK_CLIENT")
	if base == "" {
		t.Skip("run by TestLeakCycles")
	}
	_, c := enginetest.Connect(t, base, enginetest.ClientOptions{})
	c.WaitFrames(3, 10*time.Second)
	stop := make(chan struct{})
	c.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = c.DC.SendText(`{"scope":"runtime","data":{"type":"ping","data":{}}}`)
			}
		}
	})
	fmt.Println("ready")
	cmd, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(cmd) == "stop" {
		enginetest.Do(t, base, "POST", "/stop_session", nil, enginetest.APIHeaders)
	}
	close(stop)
	c.Close()
	http.DefaultClient.CloseIdleConnections()
}

// leakCycle runs one client process against base and makes it leave the
// way mode says, then waits until the server has no session.
func leakCycle(t *testing.T, base, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLeakClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FRAMEWIRE_LEAK_CLIENT="+base)
	var stderr strings.Builder // the client's decoder complains about a stream cut mid-frame
	cmd.Stderr = &stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.Contains(line, "ready") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("%s cycle: client process printed %q; want ready\n%s", mode, line, stderr.String())
	}
	switch mode {
	case "stop", "close":
		fmt.Fprintln(in, mode)
	case "vanish": // the client goes silent: the ping timeout finds out
		_ = cmd.Process.Signal(syscall.SIGSTOP)
		waitTrue(t, 30*time.Second, "vanished client's session ended", func() bool { return getStats(t, base).Server.State == "ready" })
		_ = cmd.Process.Kill()
	case "kill":
		_ = cmd.Process.Kill()
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if err := cmd.Wait(); err != nil && (mode == "stop" || mode == "close") {
		t.Errorf("%s cycle: client process: %v\n%s", mode, err, stderr.String())
	}
	waitTrue(t, 30*time.Second, mode+" cycle: the session ended", func() bool { return getStats(t, base).Server.State == "ready" })
}

// TestLeakCycles runs connect → stream → leave cycles against the real
// binary, rotating clean stop_session, abrupt peer close, a vanished
// client and kill -9 of the client process, and bounds the server's
// goroutines, threads, file descriptors and RSS after a warm-up. make test
// runs 8 cycles; make leak runs FRAMEWIRE_LEAK_CYCLES (100).
func TestLeakCycles(t *testing.T) {
	cycles := 8
	if n, err := strconv.Atoi(os.Getenv("FRAMEWIRE_LEAK_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	if testing.Short() {
		t.Skip("-short")
	}
	base := startBinary(t, "-ping-timeout", "1s", "-orphan-grace", "1s").base
	warm := max(cycles/10, 4)
	var ref procSample
	began := time.Now()
	t.Logf("%6s %-7s %10s %7s %5s %8s", "cycle", "mode", "goroutines", "threads", "fds", "rss MB")
	for i := 1; i <= cycles; i++ {
		mode := leakModes[(i-1)%len(leakModes)]
		leakCycle(t, base, mode)
		s := sample(t, base)
		if i == warm {
			ref = s
		}
		if i <= warm || i%max(cycles/10, 1) == 0 || i == cycles {
			t.Logf("%6d %-7s %10d %7d %5d %8.1f", i, mode, s.goroutines, s.threads, s.fds, s.rssMB)
		}
	}
	end := sample(t, base)
	t.Logf("%d cycles in %s", cycles, time.Since(began).Round(time.Second))
	if end.goroutines > ref.goroutines+10 || end.fds > ref.fds+10 || end.threads > ref.threads+8 || end.rssMB > ref.rssMB+64 {
		t.Errorf("after warm-up (cycle %d) %+v, at the end %+v: want at most +10 goroutines, +10 fds, +8 threads, +64 MB RSS", warm, ref, end)
	}
}
