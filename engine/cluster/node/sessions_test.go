package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/redis/go-redis/v9"
)

// Echo is the test model's command: it sends its text back.
type Echo struct {
	Text string `json:"text"`
}

// testNode is a node on a real Redis, served over HTTP with the routes
// the framewire command adds (/framewire/stats, /metrics).
type testNode struct {
	t      *testing.T
	n      *node.Node
	w      *wiring.Wiring
	store  *registry.Store
	rdb    *redis.Client
	issuer *auth.Issuer
	url    string
}

func startNode(t *testing.T, capacity int, pcfg protocol.Config) *testNode {
	t.Helper()
	rdb := registrytest.Start(t).Client(t)
	m := enginetest.GreyModel(64, 48)
	m.Commands = []engine.CommandDef{
		engine.Command("echo", "Sends the text back", func(s *engine.Session, p Echo) error {
			return s.Send(map[string]any{"type": "echo", "text": p.Text})
		}),
	}
	eng, err := engine.New(m, engine.WithMaxSessions(capacity))
	if err != nil {
		t.Fatal(err)
	}
	w, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	if err != nil {
		_ = eng.Close()
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{t: t, w: w, store: registry.New(rdb, ""), rdb: rdb, issuer: issuer}
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	tn.url = hs.URL
	pcfg.Peer = peer.Config{Loopback: true, Interfaces: []string{"lo"}}
	tn.n, err = node.New(w, node.Config{ID: "n1", Addr: hs.URL, Capacity: capacity, Store: tn.store, Issuer: issuer,
		Heartbeat: 100 * time.Millisecond, TTL: 500 * time.Millisecond, DrainTimeout: time.Second, Protocol: pcfg,
		EndedTTL: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom, err := metrics.Handler(w, tn.n.Server())
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /framewire/stats", metrics.StatsHandler(w, tn.n.Server(), nil))
	mux.Handle("GET /metrics", prom)
	mux.Handle("/", tn.n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tn.n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done // drained: every session ended, the server closed
		hs.Close()
		_ = eng.Close()
	})
	enginetest.Eventually(t, 5*time.Second, "node registered", func() bool {
		nodes, err := tn.store.Nodes(context.Background())
		return err == nil && len(nodes) == 1
	})
	return tn
}

// place does what a front does to place session sid: reserve a slot in
// Redis, POST /node/sessions with a placement token. It returns the
// status and body.
func (tn *testNode) place(sid string) (int, []byte) {
	tn.t.Helper()
	ctx := context.Background()
	if _, _, err := tn.store.Reserve(ctx, "grey", sid, time.Minute); err != nil {
		tn.t.Logf("reserve %s: %v (the node decides)", sid, err)
	}
	tok, err := tn.issuer.MintForNode("acme", time.Minute)
	if err != nil {
		tn.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", tn.url+"/node/sessions", strings.NewReader(`{"session_id":"`+sid+`"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tn.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (tn *testNode) clientToken() string {
	tok, _, err := tn.issuer.Mint("acme", time.Minute)
	if err != nil {
		tn.t.Fatal(err)
	}
	return tok
}

func (tn *testNode) get(path string) []byte {
	tn.t.Helper()
	resp, err := http.Get(tn.url + path)
	if err != nil {
		tn.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tn.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// A node of capacity 3 runs three sessions at once on its one protocol
// server, each reached by the front's id with its own client and its own
// commands; the JSON stats list all three with their detail and /metrics
// counts them without a session label; a fourth placement is refused
// with a clean 503 while the three go on.
func TestNodeRunsCapacitySessionsAtOnce(t *testing.T) {
	tn := startNode(t, 3, protocol.Config{})
	caps := []engine.TrackCap{{Name: "main_video", Kind: "video", Direction: "recvonly"}, {Name: "webcam", Kind: "video", Direction: "sendonly"}}
	tok := tn.clientToken()
	clients := map[string]*enginetest.Client{}
	for i := range 3 {
		sid := fmt.Sprintf("front-session-%d", i)
		code, body := tn.place(sid)
		if code != http.StatusCreated {
			t.Fatalf("place %s: %d %s", sid, code, body)
		}
		var rep node.StartReply
		if err := json.Unmarshal(body, &rep); err != nil || rep.SessionID != sid || rep.NodeSessionID == "" {
			t.Fatalf("place %s: reply %s (%v)", sid, body, err)
		}
		c := enginetest.Dial(t, tn.url, sid, caps, "POST", enginetest.ClientOptions{Token: tok})
		c.WaitReady()
		clients[sid] = c
	}
	// Each session answers its own command, on its own channel.
	for sid, c := range clients {
		c.Command("echo", map[string]any{"text": "hello " + sid}, nil)
	}
	for sid, c := range clients {
		got := c.Expect("application", "echo", 10*time.Second)
		if got["text"] != "hello "+sid {
			t.Errorf("session %s got %v, want its own echo", sid, got)
		}
	}
	for _, c := range clients {
		c.WaitFrames(3, 10*time.Second)
	}

	code, body := tn.place("front-session-3")
	var detail struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &detail); code != http.StatusServiceUnavailable || err != nil || !strings.Contains(detail.Detail, "3 of 3") {
		t.Errorf("fourth placement: %d %s, want 503 with a JSON detail saying 3 of 3", code, body)
	}

	var doc metrics.Stats
	enginetest.Eventually(t, 5*time.Second, "stats list the three sessions streaming", func() bool {
		if err := json.Unmarshal(tn.get("/framewire/stats"), &doc); err != nil {
			t.Fatal(err)
		}
		streaming := 0
		for _, s := range doc.Sessions {
			if _, ok := clients[s.ID]; ok && s.State == "streaming" && s.Commands == 1 {
				streaming++
			}
		}
		return len(doc.Sessions) == 3 && streaming == 3
	})
	if doc.Server.States["streaming"] != 3 || doc.Server.State != "serving" {
		t.Errorf("stats server %+v, want 3 streaming", doc.Server)
	}
	text := string(tn.get("/metrics"))
	for _, want := range []string{`framewire_live_sessions 3`, `framewire_session_state{state="streaming"} 3`, `framewire_commands_total{outcome="run"} 3`} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for sid := range clients {
		if strings.Contains(text, sid) {
			t.Errorf("/metrics names session %s: labels must stay bounded", sid)
		}
	}
	if st := tn.n.Stats(); st.Running != 3 || st.Refused != 1 || st.Started != 3 {
		t.Errorf("node stats %+v, want 3 running, 3 started, 1 refused", st)
	}
}

// Uploads held on several sessions of a node at once share the one
// process-wide budget (protocol.Config.UploadMemory): with 8 MiB, two
// 3 MiB uploads on two sessions fit and a third, on a third session, is
// refused with 507 and a clear error. Before, every session had its own
// protocol server and so its own budget: a node of capacity N could hold
// N times it.
func TestNodeUploadBudgetIsPerProcess(t *testing.T) {
	const budget, size = 8 << 20, 3 << 20
	tn := startNode(t, 3, protocol.Config{UploadMemory: budget})
	tok := tn.clientToken()
	rss0 := rssBytes(t)
	payload := bytes.Repeat([]byte{7}, size)
	put := func(sid string) (int, string) {
		t.Helper()
		hdr := map[string]string{"Authorization": "Bearer " + tok}
		for k, v := range enginetest.APIHeaders {
			hdr[k] = v
		}
		code, body := enginetest.Do(t, tn.url, "POST", "/sessions/"+sid+"/uploads", map[string]any{"name": "a.bin", "size": size, "mime_type": "application/octet-stream"}, hdr)
		if code != http.StatusCreated {
			t.Fatalf("upload slot on %s: %d %s", sid, code, body)
		}
		var slot struct {
			ID string `json:"presigned_id"`
		}
		if err := json.Unmarshal(body, &slot); err != nil {
			t.Fatal(err)
		}
		exp := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		q := url.Values{"exp": {exp}, "sig": {tn.issuer.Sign("upload", sid, slot.ID, exp)}}
		req, _ := http.NewRequest("PUT", tn.url+"/sessions/"+sid+"/uploads/"+slot.ID+"?"+q.Encode(), bytes.NewReader(payload))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sids := []string{"s-a", "s-b", "s-c"}
	for _, sid := range sids {
		if code, body := tn.place(sid); code != http.StatusCreated {
			t.Fatalf("place %s: %d %s", sid, code, body)
		}
	}
	// The uploads' bytes stay held by their sessions (no command consumed
	// them), so the first two hold 6 MiB of the 8 at once.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, sid := range sids[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = put(sid)
		}()
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("uploads within the budget: %v, want 200 200", codes)
	}
	code, body := put(sids[2])
	if code != http.StatusInsufficientStorage || !strings.Contains(body, "upload memory ("+strconv.Itoa(budget)+" bytes) is in use") {
		t.Errorf("third session's upload: %d %s, want 507 naming the server's upload memory", code, body)
	}
	st := tn.n.Server().Stats()
	if st.UploadMemory != 2*size {
		t.Errorf("upload memory in use %d, want %d (two uploads)", st.UploadMemory, 2*size)
	}
	held := int64(0)
	for _, si := range tn.n.Server().Sessions() {
		held += si.UploadBytes
	}
	if held != 2*size {
		t.Errorf("sessions hold %d upload bytes, want %d", held, 2*size)
	}
	if rss0 > 0 {
		t.Logf("RSS %d MiB before the uploads, %d MiB holding %d MiB of uploads (budget %d MiB)", rss0>>20, rssBytes(t)>>20, (2*size)>>20, budget>>20)
	}
}

// rssBytes reads the process's resident set size (Linux), 0 elsewhere.
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// The record of a session the node ended lives the node's EndedTTL in
// Redis (it was a fixed minute whatever the configuration).
func TestNodeEndedRecordTTL(t *testing.T) {
	tn := startNode(t, 1, protocol.Config{})
	ctx := context.Background()
	x := registry.Session{ID: "ended-session", Account: "acme", Model: "grey", Created: time.Now(), Deadline: time.Now().Add(time.Minute)}
	if err := tn.store.CreateSession(ctx, x, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.store.Bind(ctx, x, "n1", tn.url, "{}", time.Hour); err != nil {
		t.Fatal(err)
	}
	if code, body := tn.place("ended-session"); code != http.StatusCreated {
		t.Fatalf("place: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, tn.url+"/node/sessions/ended-session", nil)
	req.Header.Set("Authorization", "Bearer "+tn.clientToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	ttl := tn.rdb.PTTL(ctx, "fw:sess:ended-session").Val()
	if ttl <= 0 || ttl > 7*time.Second {
		t.Errorf("ended record's TTL %s, want the node's EndedTTL (7 s)", ttl)
	}
}
