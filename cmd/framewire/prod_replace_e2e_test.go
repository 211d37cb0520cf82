package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
)

// TestBrowserSDKProductionNodeLost: the real SDK 2.9.0 in Chromium is
// ready on a node that then dies (kill -9 of its process); once the SDK
// noticed (status disconnected), its reconnect() re-places the session on
// the other node through the front:
// the same session id, status ready again, video again (the model state
// restarts, as the contract allows).
func TestBrowserSDKProductionNodeLost(t *testing.T) {
	needBrowser(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rd := registrytest.Start(t)
	store := registry.New(rd.Client(t), "")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	secret := []byte("browser-test-secret-0123456789abcdef")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	nodeArgs := []string{"-mode", "node", "-redis", rd.Addr, "-jwt-secret-file", secretFile, "-capacity", "1",
		"-heartbeat", "200ms", "-ttl", "1s", "-reconnect-window", "5s", "-drain-timeout", "2s", "-interfaces", "lo", "-log-level", "error"}

	// Node A: the real binary, a process to kill.
	bin := filepath.Join(dir, "framewire")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portA := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a := exec.Command(bin, append([]string{"-addr", fmt.Sprint("127.0.0.1:", portA), "-node-id", "node-a"}, nodeArgs...)...)
	a.Stderr = os.Stderr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	aDone := make(chan struct{})
	go func() { _ = a.Wait(); close(aDone) }()
	t.Cleanup(func() { _ = a.Process.Kill(); <-aDone })
	waitTrue(t, 20*time.Second, "node A registered", func() bool {
		nodes, _ := store.Nodes(context.Background())
		return len(nodes) == 1
	})
	frontURL, _ := startFront(t, store, secret, "framewire-demo", log)
	jwt := mintToken(t, frontURL)

	eval, ctx := openHarnessWithin(t, 90*time.Second)
	var readyMs float64
	eval("connect(jwt)", fmt.Sprintf(`fw.connect(%q, "framewire-demo", %q)`, frontURL, jwt), &readyMs)
	var sid string
	eval("session id", `fw.sessionId()`, &sid)
	var f struct {
		FPS float64 `json:"fps"`
	}
	eval("main_video frames", `fw.frames(1500)`, &f)
	if x, err := store.Session(context.Background(), sid); err != nil || x.Node != "node-a" {
		t.Fatalf("session on %q (%v), want node-a", x.Node, err)
	}

	// Node B: in this process, started once the session is on A.
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags(append([]string{"-node-id", "node-b"}, nodeArgs...))
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopB := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveNode(bctx, lnB, o, log) }()
	t.Cleanup(func() {
		stopB()
		if err := <-served; err != nil {
			t.Errorf("serveNode: %v", err)
		}
	})
	waitTrue(t, 10*time.Second, "node B registered", func() bool {
		nodes, _ := store.Nodes(context.Background())
		return len(nodes) == 2
	})

	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-aDone
	// The SDK notices the lost peer by itself (its status leaves ready);
	// by then node A's registration has lapsed (this front runs no
	// janitor, so the session is still bound to A: the front re-places it
	// because A is not live).
	waitTrue(t, 30*time.Second, "SDK status disconnected", func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fw.state.statuses[fw.state.statuses.length-1]`))
		return err == nil && v == "disconnected"
	})
	if nodes, _ := store.Nodes(context.Background()); len(nodes) != 1 {
		t.Errorf("live nodes when the SDK noticed: %+v, want node-b alone", nodes)
	}
	var reMs float64
	eval("reconnect() after the node died", `fw.reconnect()`, &reMs)
	var sid2 string
	eval("session id", `fw.sessionId()`, &sid2)
	if sid2 != sid {
		t.Errorf("reconnect changed the session %q → %q", sid, sid2)
	}
	eval("frames after reconnect", `fw.frames(1500)`, &f)
	t.Logf("reconnect() after node A's kill -9: ready on another node in %.0f ms; %.1f fps", reMs, f.FPS)
	if f.FPS < 5 {
		t.Errorf("main_video after the re-placement at %.1f fps", f.FPS)
	}
	if x, err := store.Session(context.Background(), sid); err != nil || x.Node != "node-b" || registry.Terminal(x.State) {
		t.Errorf("re-placed session: %+v (%v), want it live on node-b", x, err)
	}
	eval("disconnect()", `fw.disconnect()`, nil)
	waitTrue(t, 5*time.Second, "session CLOSED after disconnect()", func() bool {
		x, err := store.Session(context.Background(), sid)
		return err == nil && x.State == registry.StateClosed
	})
}
