package front_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
)

// TestCORSAndTokens covers checklist items 1–3: preflights on every
// route (and the presigned target), Access-Control-Allow-Origin on every
// answer, and every form of the token route.
func TestCORSAndTokens(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1})
	base := e.fronts[0].URL
	for _, p := range []string{"/tokens", "/sessions", "/sessions/x", "/sessions/x/transport/webrtc/sdp_params", "/sessions/x/uploads", "/uploads/x/y", "//sessions"} {
		req, _ := http.NewRequest("OPTIONS", base+p, nil)
		req.Header.Set("Origin", enginetest.Origin)
		req.Header.Set("Access-Control-Request-Method", "DELETE")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") == "" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Reactor-WebRTC-Version") {
			t.Errorf("OPTIONS %s: %d %v", p, resp.StatusCode, h)
		}
	}
	forms := []struct {
		method, header, body string
	}{
		{"POST", "Reactor-API-Key", ""}, {"POST", "Reactor-API-Key", "null"}, {"POST", "X-API-Key", "{}"},
		{"GET", "Reactor-API-Key", ""}, {"GET", "X-API-Key", ""}, {"POST", "Reactor-API-Key", `{"expires_after": 99999999}`},
	}
	for _, f := range forms {
		var body any
		if f.body != "" {
			body = f.body
		}
		code, out := enginetest.Do(t, base, f.method, "/tokens", body, map[string]string{f.header: "acme-key-0123456789"})
		var r struct {
			JWT       string  `json:"jwt"`
			ExpiresAt float64 `json:"expires_at"`
		}
		_ = json.Unmarshal(out, &r)
		if code != 200 || r.JWT == "" || r.ExpiresAt < float64(time.Now().Unix()) || r.ExpiresAt > float64(time.Now().Add(6*time.Hour+time.Second).Unix()) {
			t.Errorf("%+v: %d %s", f, code, out)
		}
	}
	if code, _ := enginetest.Do(t, base, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": "wrong-key-0123456789"}); code != 401 {
		t.Errorf("bad key: %d, want 401", code)
	}
	if code, _ := enginetest.Do(t, base, "POST", "/tokens", nil, nil); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
}

// forge signs a token with key for account, expiring at exp.
func forge(t *testing.T, key, account string, exp time.Time) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: "framewire", Subject: account, ExpiresAt: jwt.NewNumericDate(exp)}).SignedString([]byte(key))
	fatalIf(t, err)
	return s
}

// TestCreateRules covers items 4–6 and the `//` path: bad, expired and
// foreign-deployment tokens get 401 and create nothing; an unknown model
// 404; versions; an apiUrl with a trailing slash still works.
func TestCreateRules(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1})
	base := e.fronts[0].URL
	for name, tok := range map[string]string{
		"missing":      "",
		"garbage":      "not-a-jwt",
		"expired":      forge(t, secret, "acme", time.Now().Add(-time.Minute)),
		"other secret": forge(t, "another-deployment-secret-0123456789", "acme", time.Now().Add(time.Hour)),
		"none alg-ish": forge(t, secret, "", time.Now().Add(time.Hour)),
	} {
		code, body := enginetest.Do(t, base, "POST", "/sessions", createBody, apiHeaders(tok))
		if code != 401 || len(body) == 0 {
			t.Errorf("%s token: %d %s, want 401 with a body", name, code, body)
		}
	}
	if keys, _ := e.store.Keys(t.Context(), "sess:*"); len(keys) != 0 {
		t.Fatalf("refused creates left sessions: %v", keys)
	}
	tok := e.token("acme")
	if code, _ := enginetest.Do(t, base, "POST", "/sessions", strings.Replace(createBody, "grey", "nope", 1), apiHeaders(tok)); code != 404 {
		t.Errorf("unknown model: %d, want 404", code)
	}
	h := apiHeaders(tok)
	h["Reactor-API-Version"] = "2"
	if code, _ := enginetest.Do(t, base, "POST", "/sessions", createBody, h); code != 501 {
		t.Errorf("version 2: %d, want 501", code)
	}
	delete(h, "Reactor-API-Version")
	code, body := enginetest.Do(t, base, "POST", "//sessions", createBody, h)
	if code != 201 {
		t.Fatalf("POST //sessions without version header: %d %s", code, body)
	}
	d := decode(t, body)
	for _, k := range []string{"session_id", "state", "cluster", "model", "server_info"} {
		if d.raw[k] == nil {
			t.Errorf("create answer lacks %s: %s", k, body)
		}
	}
	if code, _ := enginetest.Do(t, base, "DELETE", "//sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 200 {
		t.Errorf("DELETE //sessions/…: %d", code)
	}
}

// TestQueue covers items 8, 11, 12, 21 and 29 on a node with one slot:
// pending answers omit capabilities; a deleted queued session leaves the
// queue and the next is placed once the slot frees; an unpolled session
// is closed; one past the placement deadline is CLOSED; the quota answers
// 429; nothing leaks.
func TestQueue(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1, front: func(_ int, c *front.Config) {
		c.PlacementDeadline, c.PollGap, c.MaxPerAccount = 3*time.Second, 1500*time.Millisecond, 4
	}})
	base, tok := e.fronts[0].URL, e.token("acme")
	s1 := e.create(base, tok)
	e.waitReady(base, tok, s1.SessionID, 5*time.Second)
	s2, s3, s4 := e.create(base, tok), e.create(base, tok), e.create(base, tok)
	if code, _ := enginetest.Do(t, base, "POST", "/sessions", createBody, apiHeaders(tok)); code != 429 {
		t.Fatalf("fifth live session: %d, want 429", code)
	}
	if _, d := e.get(base, tok, s2.SessionID); d.State != registry.StatePending || d.raw["capabilities"] != nil || d.raw["selected_transport"] != nil {
		t.Fatalf("queued session: %+v", d.raw)
	}
	// s3 is deleted while queued; s4 is never polled.
	if code, _ := enginetest.Do(t, base, "DELETE", "/sessions/"+s3.SessionID, nil, apiHeaders(tok)); code != 200 {
		t.Fatalf("DELETE queued: %d", code)
	}
	if code, d := e.get(base, tok, s3.SessionID); code == 200 && d.State != registry.StateClosed {
		t.Fatalf("deleted queued session: %+v", d.raw)
	}
	enginetest.Do(t, base, "DELETE", "/sessions/"+s1.SessionID, nil, apiHeaders(tok))
	e.waitReady(base, tok, s2.SessionID, 3*time.Second)
	// s5 queues behind s2 and is polled until the deadline closes it.
	s5 := e.create(base, tok)
	deadline := time.Now().Add(5 * time.Second)
	state := ""
	for time.Now().Before(deadline) && state != registry.StateClosed {
		_, d := e.get(base, tok, s5.SessionID)
		if d.Capabilities != nil {
			t.Fatal("s5 placed on a full node")
		}
		state = d.State
		time.Sleep(200 * time.Millisecond) // the SDK's poll cadence
	}
	if state != registry.StateClosed {
		t.Fatalf("s5 after the placement deadline: %s, want CLOSED", state)
	}
	if _, d := e.get(base, tok, s4.SessionID); d.State != registry.StateClosed {
		t.Fatalf("never-polled s4: %+v, want CLOSED", d.raw)
	}
	if q, _ := e.store.Queue(t.Context(), "grey"); len(q) != 0 {
		t.Fatalf("queue not empty: %v", q)
	}
	enginetest.Do(t, base, "DELETE", "/sessions/"+s2.SessionID, nil, apiHeaders(tok))
	enginetest.Eventually(t, 3*time.Second, "slot freed", func() bool {
		n, _ := e.store.Nodes(t.Context())
		return len(n) == 1 && n[0].Used == 0
	})
}

// TestOwnership covers items 16 and 31: another account's token gets 404
// on every route of a session; the owner's expired token still works on
// it.
func TestOwnership(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1})
	base, tok, other := e.fronts[0].URL, e.token("acme"), e.token("other")
	d := e.create(base, tok)
	e.waitReady(base, tok, d.SessionID, 5*time.Second)
	sid := d.SessionID
	for _, r := range [][2]string{{"GET", "/sessions/" + sid}, {"GET", "/sessions/" + sid + "/transport/webrtc/ice_servers"},
		{"POST", "/sessions/" + sid + "/uploads"}, {"GET", "/sessions/" + sid + "/transport/webrtc/sdp_params"}, {"DELETE", "/sessions/" + sid}} {
		if code, _ := enginetest.Do(t, base, r[0], r[1], nil, apiHeaders(other)); code != 404 {
			t.Errorf("%s %s with another account's token: %d, want 404", r[0], r[1], code)
		}
	}
	// The node checks too, when reached without the front.
	addr := e.nodes[0].srv.URL
	if code, _ := enginetest.Do(t, addr, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, apiHeaders(other)); code != 404 {
		t.Errorf("node, foreign token: %d, want 404", code)
	}
	if code, _ := enginetest.Do(t, addr, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, apiHeaders("bad")); code != 401 {
		t.Errorf("node, bad token: %d, want 401", code)
	}
	expired := forge(t, secret, "acme", time.Now().Add(-time.Hour))
	if code, body := enginetest.Do(t, base, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, apiHeaders(expired)); code != 200 {
		t.Errorf("owner's expired token on the session: %d %s, want 200", code, body)
	}
	if code, _ := enginetest.Do(t, base, "DELETE", "/sessions/"+sid, `{"reason":"done"}`, apiHeaders(expired)); code != 200 {
		t.Errorf("owner's expired token, DELETE with a reason body: %d", code)
	}
}

// TestPrefix covers item 30: the front mounted under /reactor.
func TestPrefix(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1, front: func(_ int, c *front.Config) { c.Prefix = "/reactor" }})
	base, tok := e.fronts[0].URL+"/reactor", ""
	code, body := enginetest.Do(t, base, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": "acme-key-0123456789"})
	var r struct{ JWT string }
	_ = json.Unmarshal(body, &r)
	tok = r.JWT
	if code != 200 {
		t.Fatalf("tokens: %d", code)
	}
	d := e.create(base, tok)
	rd := e.waitReady(base, tok, d.SessionID, 5*time.Second)
	c := enginetest.Dial(t, base, d.SessionID, rd.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	c.WaitReady()
	if code, _ := enginetest.Do(t, e.fronts[0].URL, "GET", "/sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 404 {
		t.Errorf("without the prefix: %d, want 404", code)
	}
	enginetest.Do(t, base, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok))
}

// TestNodeTimers covers items 22 and 25: a bound session that gets no
// offer is closed after the reconnect window; a session is closed at the
// maximum duration; both free their slot.
func TestNodeTimers(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 2, node: func(c *node.Config) {
		c.Protocol.OrphanGrace = time.Second
		c.MaxDuration = 2 * time.Second
	}})
	base, tok := e.fronts[0].URL, e.token("acme")
	idle := e.create(base, tok)
	e.waitReady(base, tok, idle.SessionID, 5*time.Second)
	busy := e.create(base, tok)
	rd := e.waitReady(base, tok, busy.SessionID, 5*time.Second)
	c := enginetest.Dial(t, base, busy.SessionID, rd.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
	c.WaitReady()
	closed := func(sid string) func() bool {
		return func() bool { code, d := e.get(base, tok, sid); return code == 404 || d.State == registry.StateClosed }
	}
	enginetest.Eventually(t, 3*time.Second, "offerless session closed", closed(idle.SessionID))
	enginetest.Eventually(t, 4*time.Second, "session closed at its maximum duration", closed(busy.SessionID))
	if code, _ := enginetest.Do(t, base, "PUT", "/sessions/"+busy.SessionID+"/transport/webrtc/sdp_params", "{}", apiHeaders(tok)); code != 404 {
		t.Errorf("PUT sdp_params after the end: %d, want 404", code)
	}
	enginetest.Eventually(t, 2*time.Second, "slots freed", func() bool {
		n, _ := e.store.Nodes(t.Context())
		return len(n) == 1 && n[0].Used == 0
	})
}

// TestDrainAndCapacity: a node refuses client tokens on its placement
// route (401) and sessions beyond its capacity (503); a
// draining node takes no new placement, its running session ends within
// the drain bound and it leaves the registry; new sessions go to another
// node.
func TestDrainAndCapacity(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1, node: func(c *node.Config) { c.DrainTimeout = time.Second }})
	base, tok := e.fronts[0].URL, e.token("acme")
	d := e.create(base, tok)
	e.waitReady(base, tok, d.SessionID, 5*time.Second)
	if code, _ := enginetest.Do(t, e.nodes[0].srv.URL, "POST", "/node/sessions", `{"session_id":"x"}`, apiHeaders(tok)); code != 401 {
		t.Fatalf("a client token started a session on a node directly: %d, want 401", code)
	}
	nodeTok, err := e.issuer.MintForNode("acme", time.Minute)
	fatalIf(t, err)
	if code, body := enginetest.Do(t, e.nodes[0].srv.URL, "POST", "/node/sessions", `{"session_id":"x"}`, apiHeaders(nodeTok)); code != 503 {
		t.Fatalf("start on a full node: %d %s, want 503", code, body)
	}
	second := e.addNode(t, "node-extra", envOptions{capacity: 1})
	start := time.Now()
	e.nodes[0].stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("drain took %s, bound 1 s", took)
	}
	if _, g := e.get(base, tok, d.SessionID); g.State != registry.StateClosed {
		t.Fatalf("session on the drained node: %+v", g.raw)
	}
	d2 := e.create(base, tok)
	rd := e.waitReady(base, tok, d2.SessionID, 5*time.Second)
	if !strings.HasSuffix(rd.Cluster, "/node-extra") {
		t.Fatalf("placed on %s, want node-extra", rd.Cluster)
	}
	nodes, _ := e.store.Nodes(context.Background())
	if len(nodes) != 1 || nodes[0].ID != "node-extra" {
		t.Fatalf("registry after the drain: %+v", nodes)
	}
	_ = second
}

// TestDeadNodeSkipped: a registered node that no longer answers (its
// registration not yet expired, with free slots) is skipped at once and
// the session lands on a live node; its lease is released.
func TestDeadNodeSkipped(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // a port nothing listens on
	if err := e.store.Register(t.Context(), registry.Node{ID: "dead", Addr: dead.URL, Model: "grey", Capacity: 50}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	base, tok := e.fronts[0].URL, e.token("acme")
	start := time.Now()
	d := e.create(base, tok)
	r := e.waitReady(base, tok, d.SessionID, 3*time.Second)
	if !strings.HasSuffix(r.Cluster, "/node-0") {
		t.Fatalf("placed on %s", r.Cluster)
	}
	t.Logf("placed past the dead node in %s", time.Since(start).Round(time.Millisecond))
	nodes, _ := e.store.Nodes(t.Context())
	for _, n := range nodes {
		if n.ID == "dead" && n.Used != 0 {
			t.Errorf("dead node keeps a lease: %+v", n)
		}
	}
	enginetest.Do(t, base, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok))
}

// TestICEAndUploadURLs covers items 13 and 27's refusals: the node's STUN
// and TURN servers reach the client through the front in the SDK's shape
// (credentials on TURN only); a presigned URL that expired or whose
// signature was tampered with is refused.
func TestICEAndUploadURLs(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1,
		front: func(_ int, c *front.Config) { c.UploadTTL = 300 * time.Millisecond },
		node: func(c *node.Config) {
			c.Protocol.Peer.ICEServers = []peer.ICEServer{{URLs: []string{"stun:stun.example.org:3478"}},
				{URLs: []string{"turn:turn.example.org:3478"}, Username: "u", Credential: "p"}}
		}})
	base, tok := e.fronts[0].URL, e.token("acme")
	d := e.create(base, tok)
	e.waitReady(base, tok, d.SessionID, 5*time.Second)
	code, body := enginetest.Do(t, base, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, apiHeaders(tok))
	want := `{"ice_servers":[{"uris":["stun:stun.example.org:3478"]},{"uris":["turn:turn.example.org:3478"],"credentials":{"password":"p","username":"u"}}]}`
	if code != 200 || strings.TrimSpace(string(body)) != want {
		t.Fatalf("ice_servers: %d %s\nwant %s", code, body, want)
	}
	_, body = enginetest.Do(t, base, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "a", "size": 1, "mime_type": "text/plain"}, apiHeaders(tok))
	var slot struct {
		URL string `json:"presigned_url"`
	}
	_ = json.Unmarshal(body, &slot)
	put := func(u string) int {
		req, _ := http.NewRequest("PUT", u, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(strings.Replace(slot.URL, "sig=", "sig=0", 1)); code != 403 {
		t.Errorf("tampered signature: %d, want 403", code)
	}
	time.Sleep(400 * time.Millisecond) // the URL's lifetime
	if code := put(slot.URL); code != 403 {
		t.Errorf("expired URL: %d, want 403", code)
	}
	enginetest.Do(t, base, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok))
}

// TestQueueFIFO: sessions are placed in creation order; a later session's
// polls do not overtake an earlier one when a slot frees.
func TestQueueFIFO(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 2, nodes: 1, capacity: 1, front: func(_ int, c *front.Config) { c.Janitor = time.Hour }})
	a, b, tok := e.fronts[0].URL, e.fronts[1].URL, e.token("acme")
	s1 := e.create(a, tok)
	e.waitReady(a, tok, s1.SessionID, 5*time.Second)
	s2, s3 := e.create(a, tok), e.create(b, tok)
	enginetest.Do(t, a, "DELETE", "/sessions/"+s1.SessionID, nil, apiHeaders(tok))
	if _, d := e.get(b, tok, s3.SessionID); d.State != registry.StatePending {
		t.Fatalf("the later session overtook the earlier one: %+v", d.raw)
	}
	e.waitReady(b, tok, s2.SessionID, 3*time.Second)
	enginetest.Do(t, a, "DELETE", "/sessions/"+s2.SessionID, nil, apiHeaders(tok))
	e.waitReady(a, tok, s3.SessionID, 3*time.Second)
	enginetest.Do(t, a, "DELETE", "/sessions/"+s3.SessionID, nil, apiHeaders(tok))
}
