package main

import (
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
)

// cluster is Redis + fronts + nodes as separate processes of the real
// binaries, like `make cluster`.
type cluster struct {
	t            *testing.T
	dir, bin     string
	redis        *registrytest.Redis
	store        *registry.Store
	fronts       []*proc
	nodes        map[string]*proc // by node id
	secret, keys string
}

type proc struct {
	name, url string
	cmd       *exec.Cmd
	done      chan struct{}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newCluster(t *testing.T, fronts, nodes int) *cluster {
	if os.Getenv("FRAMEWIRE_CLUSTER") == "" && os.Getenv("FRAMEWIRE_E2E") == "" {
		t.Skip("cluster fault tests build and run the binaries; set FRAMEWIRE_CLUSTER=1 (make cluster-test) or FRAMEWIRE_E2E=1 (make test)")
	}
	c := &cluster{t: t, dir: t.TempDir(), nodes: map[string]*proc{}}
	c.bin = filepath.Join(c.dir, "bin")
	buildBinaries(t, c.bin)
	c.redis = registrytest.Start(t)
	c.store = registry.New(c.redis.Client(t), "")
	c.secret = filepath.Join(c.dir, "secret")
	c.keys = filepath.Join(c.dir, "keys")
	must(t, os.WriteFile(c.secret, []byte("cluster-test-secret-0123456789abcdef"), 0o600))
	must(t, os.WriteFile(c.keys, []byte("acme:acme-key-0123456789\n"), 0o600))
	for range nodes {
		c.startNode()
	}
	for range fronts {
		port := freePort(t)
		c.fronts = append(c.fronts, c.start(fmt.Sprintf("front-%d", port), fmt.Sprintf("http://127.0.0.1:%d", port), filepath.Join(c.bin, "front"),
			"-addr", fmt.Sprint("127.0.0.1:", port), "-redis", c.redis.Addr, "-jwt-secret-file", c.secret, "-keys-file", c.keys,
			"-placement-deadline", "4s", "-poll-gap", "3s", "-janitor", "200ms"))
	}
	return c
}

// buildBinaries builds front and framewire into bin.
func buildBinaries(t *testing.T, bin string) {
	t.Helper()
	for _, b := range []string{"front", "framewire"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b), "../"+b).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, out)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) startNode() *proc {
	port := freePort(c.t)
	id := fmt.Sprintf("node-%d", port)
	p := c.start(id, fmt.Sprintf("http://127.0.0.1:%d", port), filepath.Join(c.bin, "framewire"), "-mode", "node",
		"-addr", fmt.Sprint("127.0.0.1:", port), "-node-id", id, "-redis", c.redis.Addr, "-jwt-secret-file", c.secret,
		"-capacity", "1", "-heartbeat", "300ms", "-ttl", "1s", "-drain-timeout", "2s", "-reconnect-window", "5s", "-interfaces", "lo")
	c.nodes[id] = p
	return p
}

// start runs a binary, logging into the test's directory, and waits for
// its /healthz; a cleanup stops it (SIGKILL) and waits.
func (c *cluster) start(name, url, bin string, args ...string) *proc {
	c.t.Helper()
	log, err := os.Create(filepath.Join(c.dir, name+".log"))
	must(c.t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	must(c.t, cmd.Start())
	p := &proc{name: name, url: url, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(p.done) }()
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if c.t.Failed() {
			b, _ := os.ReadFile(log.Name())
			c.t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 3000))
		}
	})
	enginetest.Eventually(c.t, 20*time.Second, name+" healthy", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *cluster) token() string {
	code, body := enginetest.Do(c.t, c.fronts[0].url, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": "acme-key-0123456789"})
	if code != 200 {
		c.t.Fatalf("tokens: %d %s", code, body)
	}
	var r struct{ JWT string }
	_ = json.Unmarshal(body, &r)
	return r.JWT
}

func hdr(tok string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + tok}
	for k, v := range enginetest.APIHeaders {
		h[k] = v
	}
	return h
}

const createBody = `{"model":{"name":"framewire-demo"},"client_info":{"sdk_version":"2.9.0","sdk_type":"js"},"supported_transports":[{"protocol":"webrtc","version":"1.0"}]}`

type doc struct {
	SessionID    string               `json:"session_id"`
	State        string               `json:"state"`
	Cluster      string               `json:"cluster"`
	Capabilities *engine.Capabilities `json:"capabilities"`
}

func (c *cluster) create(base, tok string) doc {
	c.t.Helper()
	// "//sessions": an apiUrl with a trailing slash, through the binary.
	code, body := enginetest.Do(c.t, base, "POST", "//sessions", createBody, hdr(tok))
	if code != 201 {
		c.t.Fatalf("POST /sessions: %d %s", code, body)
	}
	var d doc
	must(c.t, json.Unmarshal(body, &d))
	return d
}

func (c *cluster) get(base, tok, sid string) (int, doc) {
	code, body := enginetest.Do(c.t, base, "GET", "/sessions/"+sid, nil, hdr(tok))
	var d doc
	_ = json.Unmarshal(body, &d)
	return code, d
}

func (c *cluster) waitReady(base, tok, sid string, within time.Duration) doc {
	c.t.Helper()
	var d doc
	enginetest.Eventually(c.t, within, "session ready", func() bool {
		_, d = c.get(base, tok, sid)
		if registry.Terminal(d.State) {
			c.t.Fatalf("session %s ended while waiting: %+v", sid, d)
		}
		return d.Capabilities != nil
	})
	return d
}

// connect is the SDK's connect(): create, poll, dial, ready.
func (c *cluster) connect(base, tok string) (doc, *enginetest.Client) {
	c.t.Helper()
	d := c.create(base, tok)
	r := c.waitReady(base, tok, d.SessionID, 10*time.Second)
	cl := enginetest.Dial(c.t, base, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	cl.WaitReady()
	return r, cl
}

func nodeOf(d doc) string { return d.Cluster[strings.LastIndex(d.Cluster, "/")+1:] }

// TestCluster runs the production deployment as processes and breaks it:
// bad tokens, the SDK flow with a command reply, kill -9 of the node
// serving a session, kill -9 of a front, SIGTERM of a node, all nodes full.
func TestCluster(t *testing.T) {
	c := newCluster(t, 2, 3)
	a, b := c.fronts[0].url, c.fronts[1].url
	ctx := context.Background()

	t.Run("bad tokens", func(t *testing.T) {
		for _, tok := range []string{"", "garbage", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY21lIn0.x"} {
			if code, _ := enginetest.Do(t, a, "POST", "/sessions", createBody, hdr(tok)); code != 401 {
				t.Errorf("token %q: %d, want 401", tok, code)
			}
		}
		if keys, _ := c.store.Keys(ctx, "sess:*"); len(keys) != 0 {
			t.Errorf("refused creates left sessions: %v", keys)
		}
	})
	tok := c.token()
	d, cl := c.connect(a, tok)
	t.Run("flow", func(t *testing.T) {
		cl.WaitFrames(10, 10*time.Second)
		// An upload through the front's presigned URL, read by the model's
		// inspect_file command, whose reply is the command's answer.
		code, body := enginetest.Do(t, b, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "a.txt", "size": 5, "mime_type": "text/plain"}, hdr(tok))
		var slot struct {
			ID  string `json:"presigned_id"`
			URL string `json:"presigned_url"`
		}
		if json.Unmarshal(body, &slot); code/100 != 2 || slot.URL == "" {
			t.Fatalf("upload slot: %d %s", code, body)
		}
		req, _ := http.NewRequest("PUT", slot.URL, strings.NewReader("hello"))
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		ref := map[string]any{"upload_id": slot.ID, "name": "a.txt", "mime_type": "text/plain", "size": 5}
		cl.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "fileUploaded", "data": ref}})
		cl.Command("inspect_file", map[string]any{}, map[string]any{"file": ref})
		if m := cl.Expect("application", "file_info", 5*time.Second); m["size"] != float64(5) {
			t.Fatalf("inspect_file reply: %v", m)
		}
	})

	t.Run("clips", func(t *testing.T) { checkClips(t, a, b, tok, d, cl) }) // clips_cluster_test.go

	t.Run("metrics and probes", func(t *testing.T) {
		var node *proc
		for _, p := range c.nodes {
			node = p
		}
		for url, want := range map[string][]string{
			a + "/metrics":        {"framewire_front_sessions_created_total 1", "framewire_front_placements_total 1"},
			node.url + "/metrics": {"framewire_node_capacity 1", "framewire_node_sessions", "framewire_live_sessions"},
			a + "/readyz":         {"ready"},
			node.url + "/readyz":  {"ready"},
		} {
			resp, err := http.Get(url)
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range want {
				if resp.StatusCode != 200 || !strings.Contains(string(body), w) {
					t.Errorf("%s: %d, want %q in:\n%s", url, resp.StatusCode, w, tail(string(body), 500))
				}
			}
		}
	})

	t.Run("kill -9 node", func(t *testing.T) {
		victim := nodeOf(d)
		killed := time.Now()
		must(t, c.nodes[victim].cmd.Process.Signal(syscall.SIGKILL))
		<-c.nodes[victim].done
		delete(c.nodes, victim)
		cl.Close()
		start := time.Now()
		d2, cl2 := c.connect(b, tok) // the client's next connect()
		took := time.Since(start)
		if took > 5*time.Second {
			t.Errorf("next connect ready after %s, want < 5 s", took)
		}
		t.Logf("next connect ready on another node in %s", took.Round(time.Millisecond))
		if nodeOf(d2) == victim {
			t.Fatalf("placed on the dead node %s", victim)
		}
		cl2.WaitFrames(5, 10*time.Second)
		enginetest.Eventually(t, 3*time.Second, "dead node's state cleaned from Redis", func() bool {
			_, g := c.get(a, tok, d.SessionID)
			slots, _ := c.store.Keys(ctx, "slots:"+victim)
			nk, _ := c.store.Keys(ctx, "node:"+victim)
			return g.State == registry.StateInactive && len(slots) == 0 && len(nk) == 0
		})
		cleaned := time.Since(killed)
		t.Logf("cleaned %s after the kill (node TTL 1 s, janitor 200 ms)", cleaned.Round(10*time.Millisecond))
		if cleaned > 1500*time.Millisecond {
			t.Errorf("Redis cleaned %s after the kill, want within the TTL plus one sweep", cleaned)
		}
		// The lost session's reconnect() re-places it on the third node:
		// same session id, a new model session, media again.
		start = time.Now()
		cl3 := enginetest.Dial(t, a, d.SessionID, d.Capabilities.Tracks, "PUT", enginetest.ClientOptions{Token: tok})
		cl3.WaitReady()
		cl3.WaitFrames(5, 10*time.Second)
		t.Logf("reconnect() of the lost session ready in %s", time.Since(start).Round(time.Millisecond))
		if _, g := c.get(b, tok, d.SessionID); registry.Terminal(g.State) || nodeOf(g) == victim || nodeOf(g) == nodeOf(d2) {
			t.Errorf("re-placed session: %+v", g)
		}
		cl3.Close()
		if code, _ := enginetest.Do(t, b, "DELETE", "/sessions/"+d.SessionID, nil, hdr(tok)); code != 200 {
			t.Errorf("DELETE of the re-placed session: %d", code)
		}
		d, cl = d2, cl2
	})

	t.Run("kill -9 front", func(t *testing.T) {
		must(t, c.fronts[0].cmd.Process.Signal(syscall.SIGKILL))
		<-c.fronts[0].done
		code, g := c.get(b, tok, d.SessionID)
		if code != 200 || g.Capabilities == nil {
			t.Fatalf("other front for an existing session: %d %+v", code, g)
		}
		if code, _ := enginetest.Do(t, b, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, hdr(tok)); code != 200 {
			t.Fatalf("ice_servers via the other front: %d", code)
		}
	})

	t.Run("SIGTERM node", func(t *testing.T) {
		victim := nodeOf(d)
		start := time.Now()
		must(t, c.nodes[victim].cmd.Process.Signal(syscall.SIGTERM))
		enginetest.Eventually(t, 2*time.Second, "node /readyz 503 while draining", func() bool {
			resp, err := http.Get(c.nodes[victim].url + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 503
		})
		enginetest.Eventually(t, 2*time.Second, "node marked draining", func() bool {
			nodes, _ := c.store.Nodes(ctx)
			for _, n := range nodes {
				if n.ID == victim {
					return n.Draining
				}
			}
			return true
		})
		r3, cl3 := c.connect(b, tok)
		if nodeOf(r3) == victim {
			t.Fatal("placed on a draining node")
		}
		enginetest.Eventually(t, 4*time.Second, "running session ended within the drain bound", func() bool {
			_, g := c.get(b, tok, d.SessionID)
			return g.State == registry.StateClosed
		})
		select {
		case <-c.nodes[victim].done:
		case <-time.After(5 * time.Second):
			t.Fatal("node did not exit after draining")
		}
		t.Logf("drained and exited in %s", time.Since(start).Round(10*time.Millisecond))
		delete(c.nodes, victim)
		cl.Close()
		d, cl = r3, cl3
	})

	t.Run("all nodes full", func(t *testing.T) {
		// One node of capacity 1 is left, and d holds it.
		q := c.create(b, tok)
		code, g := c.get(b, tok, q.SessionID)
		if code != 200 || g.State != registry.StatePending || g.Capabilities != nil {
			t.Fatalf("queued: %d %+v", code, g)
		}
		enginetest.Eventually(t, 8*time.Second, "CLOSED at the placement deadline", func() bool {
			_, g := c.get(b, tok, q.SessionID)
			return g.State == registry.StateClosed
		})
		enginetest.Do(t, b, "DELETE", "/sessions/"+d.SessionID, nil, hdr(tok))
		enginetest.Eventually(t, 3*time.Second, "nothing leaks", func() bool {
			nodes, _ := c.store.Nodes(ctx)
			queue, _ := c.store.Queue(ctx, "framewire-demo")
			return len(nodes) == 1 && nodes[0].Used == 0 && len(queue) == 0
		})
	})
}

// TestClusterScript runs `make cluster`'s script (cluster.sh) with one
// front and two nodes, kill -9s one node and checks that the script
// reports it while Redis, the front and the other node go on serving (a
// new session is placed on the other node); then SIGTERM to the script
// stops every process it started. Its front listens on loopback only.
func TestClusterScript(t *testing.T) {
	if os.Getenv("FRAMEWIRE_CLUSTER") == "" && os.Getenv("FRAMEWIRE_E2E") == "" {
		t.Skip("cluster tests build and run the binaries; set FRAMEWIRE_CLUSTER=1 (make cluster-test) or FRAMEWIRE_E2E=1 (make test)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (make test installs it with .ci/deps.sh redis)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildBinaries(t, bin)
	fport, n1, n2, rport := freePort(t), freePort(t), freePort(t), freePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d", fport)
	out := filepath.Join(dir, "cluster.out")
	outf, err := os.Create(out)
	must(t, err)
	defer outf.Close()
	cmd := exec.Command("bash", "cluster.sh")
	cmd.Env = append(os.Environ(), "BIN="+bin, "DIR="+dir, "CAPACITY=1", fmt.Sprint("REDIS_PORT=", rport),
		fmt.Sprint("FRONT_PORTS=", fport), fmt.Sprintf("NODE_PORTS=%d %d", n1, n2))
	cmd.Stdout, cmd.Stderr = outf, outf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, killed whole if the test fails
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("--- cluster.sh output ---\n%s", b)
		}
	})
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, u := range []string{front + "/readyz", fmt.Sprintf("http://127.0.0.1:%d/readyz", n1), fmt.Sprintf("http://127.0.0.1:%d/readyz", n2)} {
		enginetest.Eventually(t, 30*time.Second, u+" ready", func() bool { return status(u) == 200 })
	}
	if b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("front-%d.log", fport))); !strings.Contains(string(b), fmt.Sprintf(`"addr":"127.0.0.1:%d"`, fport)) {
		t.Errorf("front does not listen on loopback only:\n%s", tail(string(b), 500))
	}

	victim := pidOf(t, fmt.Sprintf("node-%d", n1))
	must(t, syscall.Kill(victim, syscall.SIGKILL))
	enginetest.Eventually(t, 5*time.Second, "the script reports the node's exit", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), fmt.Sprintf("cluster: node-%d (pid %d) exited", n1, victim))
	})
	select {
	case err := <-exited:
		t.Fatalf("the script exited when one node died: %v", err)
	default:
	}
	if c := status(front + "/readyz"); c != 200 { // the front, and Redis behind it
		t.Errorf("front /readyz after the node's death: %d", c)
	}
	if c := status(fmt.Sprintf("http://127.0.0.1:%d/readyz", n2)); c != 200 {
		t.Errorf("other node /readyz: %d", c)
	}
	key, err := os.ReadFile(filepath.Join(dir, "api-keys"))
	must(t, err)
	code, body := enginetest.Do(t, front, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": strings.TrimSpace(strings.SplitN(string(key), ":", 2)[1])})
	if code != 200 {
		t.Fatalf("tokens: %d %s", code, body)
	}
	var tr struct{ JWT string }
	must(t, json.Unmarshal(body, &tr))
	c := &cluster{t: t}
	d := c.create(front, tr.JWT)
	r := c.waitReady(front, tr.JWT, d.SessionID, 15*time.Second)
	if nodeOf(r) != fmt.Sprintf("node-%d", n2) {
		t.Errorf("placed on %s, want the live node-%d", nodeOf(r), n2)
	}
	enginetest.Do(t, front, "DELETE", "/sessions/"+d.SessionID, nil, hdr(tr.JWT))

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		stopped = true
	case <-time.After(20 * time.Second):
		t.Fatal("the script did not stop within 20 s of SIGTERM")
	}
	enginetest.Eventually(t, 5*time.Second, "every process of the cluster stopped", func() bool {
		return syscall.Kill(-pgid, 0) == syscall.ESRCH
	})
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "cluster: stopping") {
		t.Errorf("no stop line:\n%s", b)
	}
}

// pidOf returns the pid of the process whose command line has the
// argument arg (a node id of this test).
func pidOf(t *testing.T, arg string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				var pid int
				if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil {
					return pid
				}
			}
		}
	}
	t.Fatalf("no process has the argument %q", arg)
	return 0
}
