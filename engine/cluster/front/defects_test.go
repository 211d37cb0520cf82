package front_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/enginetest"
)

// TestQuotaAtomic: 30 simultaneous POST /sessions of one account with a
// quota of 2 create exactly 2 sessions; the 28 others get 429 with a
// reason, and Redis holds 2 sessions.
func TestQuotaAtomic(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 2, nodes: 1, capacity: 1, front: func(_ int, c *front.Config) { c.MaxPerAccount = 2 }})
	tok := e.token("acme")
	codes := make([]int, 30)
	bodies := make([]string, 30)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", e.fronts[i%2].URL+"/sessions", strings.NewReader(createBody))
			for k, v := range apiHeaders(tok) {
				req.Header.Set(k, v)
			}
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[i], bodies[i] = resp.StatusCode, string(b)
		})
	}
	close(start)
	wg.Wait()
	n := map[int]int{}
	for i, c := range codes {
		n[c]++
		if c == http.StatusTooManyRequests && !strings.Contains(bodies[i], "limit is 2") {
			t.Errorf("429 body %q does not say why", bodies[i])
		}
	}
	if n[http.StatusCreated] != 2 || n[http.StatusTooManyRequests] != 28 {
		t.Fatalf("answers %v, want 2 × 201 and 28 × 429", n)
	}
	if keys, _ := e.store.Keys(context.Background(), "sess:*"); len(keys) != 2 {
		t.Fatalf("Redis holds %d sessions, want 2", len(keys))
	}
}

// TestDeleteWhileStarting: a DELETE that arrives while the node is still
// starting the session reaches the node once its start answers: the
// model session ends there at once (not after the 30 s without an offer)
// and its slot is free.
func TestDeleteWhileStarting(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(h http.Handler) http.Handler { // a node slow to answer its starts
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/node/sessions" {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			once.Do(func() { close(started) })
			<-release
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1, wrap: slow})
	base, tok := e.fronts[0].URL, e.token("acme")
	created := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/sessions", strings.NewReader(createBody))
		for k, v := range apiHeaders(tok) {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			created <- 0
			return
		}
		resp.Body.Close()
		created <- resp.StatusCode
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the node was never asked to start the session")
	}
	keys, _ := e.store.Keys(context.Background(), "sess:*")
	if len(keys) != 1 {
		close(release)
		t.Fatalf("sessions %v", keys)
	}
	sid := keys[0][len(e.store.KeyPrefix()+"sess:"):]
	code, body := enginetest.Do(t, base, "DELETE", "/sessions/"+sid, nil, apiHeaders(tok))
	close(release)
	if code != 200 {
		t.Fatalf("DELETE while starting: %d %s", code, body)
	}
	if c := <-created; c != http.StatusCreated {
		t.Errorf("POST /sessions: %d", c)
	}
	n := e.nodes[0].n
	enginetest.Eventually(t, 3*time.Second, "the model session ended on the node", func() bool { return n.Stats().Running == 0 })
	if s := n.Stats(); s.Started != 1 || s.Ended != 1 {
		t.Errorf("node: %+v, want the session started and ended", s)
	}
	nodes, _ := e.store.Nodes(context.Background())
	if len(nodes) != 1 || nodes[0].Used != 0 {
		t.Errorf("slots after the delete: %+v", nodes)
	}
	if code, d := e.get(base, tok, sid); code == 200 && d.State != registry.StateClosed {
		t.Errorf("deleted session: %d %+v", code, d)
	}
}

// TestReplaceOnReconnect: the node of a streaming session dies (address
// gone, heartbeat stopped); the client's reconnect() (ice_servers, PUT
// sdp_params) re-places the session on the other node under the same
// session id, and media flows again.
func TestReplaceOnReconnect(t *testing.T) {
	for _, wait := range []bool{false, true} {
		name := "at once"
		if wait {
			name = "after it became INACTIVE"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{fronts: 2, nodes: 2, capacity: 1})
			a, b, tok := e.fronts[0].URL, e.fronts[1].URL, e.token("acme")
			d := e.create(a, tok)
			r := e.waitReady(a, tok, d.SessionID, 5*time.Second)
			c := enginetest.Dial(t, a, d.SessionID, r.Capabilities.Tracks, "POST", enginetest.ClientOptions{Token: tok})
			c.WaitReady()
			c.WaitFrames(5, 10*time.Second)
			victim := r.Cluster[strings.LastIndex(r.Cluster, "/")+1:]
			var dead *testNode
			for _, tn := range e.nodes {
				if tn.n.Stats().Running == 1 {
					dead = tn
				}
			}
			if dead == nil {
				t.Fatal("no node runs the session")
			}
			dead.kill()
			c.Close()
			if wait {
				enginetest.Eventually(t, 3*time.Second, "session INACTIVE", func() bool {
					_, g := e.get(b, tok, d.SessionID)
					return g.State == registry.StateInactive
				})
			}
			c2 := enginetest.Dial(t, b, d.SessionID, r.Capabilities.Tracks, "PUT", enginetest.ClientOptions{Token: tok})
			c2.WaitReady()
			c2.WaitFrames(5, 10*time.Second)
			code, g := e.get(a, tok, d.SessionID)
			if code != 200 || g.Capabilities == nil || registry.Terminal(g.State) || strings.HasSuffix(g.Cluster, "/"+victim) {
				t.Fatalf("re-placed session: %d %+v (lost node %s)", code, g, victim)
			}
			if code, _ := enginetest.Do(t, a, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 200 {
				t.Errorf("DELETE of the re-placed session: %d", code)
			}
			enginetest.Eventually(t, 3*time.Second, "slot freed", func() bool {
				nodes, _ := e.store.Nodes(context.Background())
				return len(nodes) == 1 && nodes[0].Used == 0
			})
		})
	}
}

// TestReplaceRefusedAfterClose: a session the server ended (CLOSED) is
// never re-placed: reconnect() gets 404.
func TestReplaceRefusedAfterClose(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1})
	base, tok := e.fronts[0].URL, e.token("acme")
	d := e.create(base, tok)
	e.waitReady(base, tok, d.SessionID, 5*time.Second)
	if code, _ := enginetest.Do(t, base, "DELETE", "/sessions/"+d.SessionID, nil, apiHeaders(tok)); code != 200 {
		t.Fatal(code)
	}
	if code, _ := enginetest.Do(t, base, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/ice_servers", nil, apiHeaders(tok)); code != 404 {
		t.Errorf("ice_servers of a deleted session: %d, want 404", code)
	}
}

// TestLifetimes: a bound session's record lives as long as its node's
// maximum duration (here 2 h, beyond the front's 30 min default), ended
// records as long as the front's EndedTTL, and the account's set of
// session ids forgets ended sessions with no quota configured.
func TestLifetimes(t *testing.T) {
	e := newEnv(t, envOptions{fronts: 1, nodes: 1, capacity: 1,
		node:  func(c *node.Config) { c.MaxDuration = 2 * time.Hour },
		front: func(_ int, c *front.Config) { c.EndedTTL = 7 * time.Second }})
	base, tok := e.fronts[0].URL, e.token("acme")
	ctx := context.Background()
	d := e.create(base, tok)
	e.waitReady(base, tok, d.SessionID, 5*time.Second)
	if ttl := e.rdb.PTTL(ctx, "fw:sess:"+d.SessionID).Val(); ttl < 2*time.Hour || ttl > 2*time.Hour+2*time.Minute {
		t.Errorf("bound record's TTL %s, want the node's 2 h maximum duration plus a minute", ttl)
	}
	if ttl := e.rdb.PTTL(ctx, "fw:acct:acme").Val(); ttl < 2*time.Hour {
		t.Errorf("account set's TTL %s, want at least its sessions' records'", ttl)
	}
	for range 3 { // queued behind d, deleted by the front
		x := e.create(base, tok)
		if code, _ := enginetest.Do(t, base, "DELETE", "/sessions/"+x.SessionID, nil, apiHeaders(tok)); code != 200 {
			t.Fatal(code)
		}
		if ttl := e.rdb.PTTL(ctx, "fw:sess:"+x.SessionID).Val(); ttl <= 0 || ttl > 7*time.Second {
			t.Errorf("deleted record's TTL %s, want EndedTTL (7 s)", ttl)
		}
	}
	last := e.create(base, tok)
	ids, _ := e.rdb.SMembers(ctx, "fw:acct:acme").Result()
	if len(ids) != 2 || !(ids[0] == d.SessionID || ids[1] == d.SessionID) || !(ids[0] == last.SessionID || ids[1] == last.SessionID) {
		t.Errorf("account set %v, want the two live sessions %s %s", ids, d.SessionID, last.SessionID)
	}
}
