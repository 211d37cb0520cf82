package front_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "0123456789abcdef0123456789abcdef-test"

// Echo is the command the test model answers.
type Echo struct {
	Text string `json:"text"`
}

// Inspect reads an upload.
type Inspect struct {
	File engine.File `json:"file"`
}

// testModel is the grey model with two commands: echo sends its text
// back, inspect reports an upload's size.
func testModel() engine.Model {
	m := enginetest.GreyModel(64, 48)
	m.Name = "grey"
	m.Commands = []engine.CommandDef{
		engine.Command("echo", "Sends the text back", func(s *engine.Session, p Echo) error {
			return s.Send(map[string]any{"type": "echo", "text": p.Text})
		}),
		engine.Command("inspect", "Reports an upload", func(s *engine.Session, p Inspect) error {
			return s.Send(map[string]any{"type": "file", "size": len(p.File.Data), "name": p.File.Name})
		}),
	}
	return m
}

// env is an in-process deployment: a real Redis, real HTTP servers for the
// fronts and nodes, real engines.
type env struct {
	t      *testing.T
	redis  *registrytest.Redis
	rdb    *redis.Client
	store  *registry.Store
	issuer *auth.Issuer
	fronts []*httptest.Server
	nodes  []*testNode
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type testNode struct {
	n      *node.Node
	srv    *httptest.Server
	rdb    *redis.Client // the node's own connection to Redis
	cancel context.CancelFunc
	done   chan struct{}
}

type envOptions struct {
	fronts, nodes, capacity int
	front                   func(i int, c *front.Config)
	node                    func(*node.Config)
	// wrap, when set, wraps each node's HTTP handler.
	wrap func(http.Handler) http.Handler
	// wiring, when set, adjusts each node's wiring (recording: clips_test.go).
	wiring func(*wiring.Config)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	r := registrytest.Start(t)
	rdb := r.Client(t)
	e := &env{t: t, redis: r, rdb: rdb, store: registry.New(rdb, "")}
	var err error
	if e.issuer, err = auth.NewIssuer([]byte(secret)); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseKeys("acme:acme-key-0123456789\nother:other-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	t.Cleanup(e.close)
	for i := range o.nodes {
		e.addNode(t, fmt.Sprintf("node-%d", i), o)
	}
	for i := range o.fronts {
		cfg := front.Config{Store: e.store, Issuer: e.issuer, Keys: keys, Janitor: 100 * time.Millisecond}
		if o.front != nil {
			o.front(i, &cfg)
		}
		f, err := front.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.fronts = append(e.fronts, httptest.NewServer(f))
		e.wg.Add(1)
		go func() { defer e.wg.Done(); _ = f.Run(ctx) }()
	}
	return e
}

func (e *env) addNode(t *testing.T, id string, o envOptions) *testNode {
	eng, err := engine.New(testModel(), engine.WithMaxSessions(o.capacity))
	if err != nil {
		t.Fatal(err)
	}
	wc := wiring.Config{Backend: encode.BackendX264}
	if o.wiring != nil {
		o.wiring(&wc)
	}
	w, err := wiring.New(eng, wc)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{done: make(chan struct{}), rdb: e.redis.Client(t)}
	var h http.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { tn.n.ServeHTTP(rw, r) })
	if o.wrap != nil {
		h = o.wrap(h)
	}
	tn.srv = httptest.NewServer(h)
	cfg := node.Config{ID: id, Addr: tn.srv.URL, Capacity: o.capacity, Store: registry.New(tn.rdb, ""), Issuer: e.issuer,
		Heartbeat: 100 * time.Millisecond, TTL: 500 * time.Millisecond, DrainTimeout: 2 * time.Second,
		Protocol: protocol.Config{Peer: peerConfig()}}
	if o.node != nil {
		o.node(&cfg)
	}
	if tn.n, err = node.New(w, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() {
		defer close(tn.done)
		_ = tn.n.Run(ctx)
		tn.srv.Close()
		_ = eng.Close()
	}()
	enginetest.Eventually(t, 5*time.Second, "node registered", func() bool {
		ok, _ := e.store.HasModel(context.Background(), "grey")
		return ok
	})
	e.nodes = append(e.nodes, tn)
	return tn
}

// kill makes node tn die as a kill -9 does, as far as the others see:
// its address refuses connections and its heartbeat stops, with nothing
// cleaned up. (Its sessions' goroutines end at stop.)
func (tn *testNode) kill() {
	tn.srv.CloseClientConnections()
	tn.srv.Close()
	_ = tn.rdb.Close()
}

// stop ends node tn's Run (a drain) and waits for it.
func (tn *testNode) stop() {
	tn.cancel()
	<-tn.done
}

func (e *env) close() {
	for _, tn := range e.nodes {
		tn.stop()
	}
	e.cancel()
	e.wg.Wait()
	for _, f := range e.fronts {
		f.Close()
	}
}

// token mints a token of account through /tokens on front 0.
func (e *env) token(account string) string {
	e.t.Helper()
	code, body := enginetest.Do(e.t, e.fronts[0].URL, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": account + "-key-0123456789"})
	if code != 200 {
		e.t.Fatalf("tokens: %d %s", code, body)
	}
	var r struct {
		JWT string `json:"jwt"`
	}
	_ = json.Unmarshal(body, &r)
	return r.JWT
}

func apiHeaders(tok string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + tok}
	for k, v := range enginetest.APIHeaders {
		h[k] = v
	}
	return h
}

var createBody = `{"model":{"name":"grey"},"client_info":{"sdk_version":"2.9.0","sdk_type":"js"},"supported_transports":[{"protocol":"webrtc","version":"1.0"}]}`

type sessionDoc struct {
	SessionID         string               `json:"session_id"`
	State             string               `json:"state"`
	Cluster           string               `json:"cluster"`
	SelectedTransport map[string]string    `json:"selected_transport"`
	Capabilities      *engine.Capabilities `json:"capabilities"`
	raw               map[string]any
}

func (e *env) create(base, tok string) sessionDoc {
	e.t.Helper()
	code, body := enginetest.Do(e.t, base, "POST", "/sessions", createBody, apiHeaders(tok))
	if code != 201 {
		e.t.Fatalf("POST /sessions: %d %s", code, body)
	}
	return decode(e.t, body)
}

func decode(t testing.TB, body []byte) sessionDoc {
	t.Helper()
	var d sessionDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	_ = json.Unmarshal(body, &d.raw)
	for k, v := range d.raw {
		if v == nil {
			t.Errorf("field %q is null: %s", k, body)
		}
	}
	return d
}

func (e *env) get(base, tok, sid string) (int, sessionDoc) {
	e.t.Helper()
	code, body := enginetest.Do(e.t, base, "GET", "/sessions/"+sid, nil, apiHeaders(tok))
	if code != 200 {
		return code, sessionDoc{}
	}
	return code, decode(e.t, body)
}

// waitReady polls like the SDK until capabilities and selected_transport
// are both present.
func (e *env) waitReady(base, tok, sid string, within time.Duration) sessionDoc {
	e.t.Helper()
	var d sessionDoc
	enginetest.Eventually(e.t, within, "session "+sid+" ready", func() bool {
		var code int
		code, d = e.get(base, tok, sid)
		if code != 200 || registry.Terminal(d.State) {
			e.t.Fatalf("poll: %d %+v", code, d)
		}
		return d.Capabilities != nil && d.SelectedTransport != nil
	})
	return d
}

func peerConfig() peer.Config { return peer.Config{Loopback: true, Interfaces: []string{"lo"}} }

func fatalIf(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
