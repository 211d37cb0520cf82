package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// Concurrent start_session calls behave as if they came one after another:
// every caller gets a session, the newest one stays and every other one has
// ended (issue 12, defect 7: they used to get 409).
func TestConcurrentStartNewestWins(t *testing.T) {
	for _, n := range []int{2, 5, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ts := newTestServer(t, testConfig())
			var wg sync.WaitGroup
			codes := make([]int, n)
			ids := make([]string, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, raw := ts.do(t, "POST", "/start_session", "{}", apiHdr)
					codes[i] = code
					var d descriptor
					_ = json.Unmarshal(raw, &d)
					ids[i] = d.SessionID
				}()
			}
			wg.Wait()
			cur := ts.srv.currentSession()
			if cur == nil {
				t.Fatal("no session after concurrent starts")
			}
			for i, c := range codes {
				if c != http.StatusOK {
					t.Errorf("start %d answered %d, want 200", i, c)
				}
			}
			if st := ts.eng.Engine().Stats(); st.SessionsStarted != uint64(n) || st.SessionsRunning != 1 {
				t.Errorf("engine started %d sessions with %d active; want %d and 1", st.SessionsStarted, st.SessionsRunning, n)
			}
			// The survivor works.
			c := ts.dial(t, cur.id, ts.eng.caps.Tracks, "POST")
			c.WaitReady()
		})
	}
}

// Only allowed origins may drive the server from a browser; JSON routes
// need application/json, so a browser must preflight (defect 4).
func TestExposureOriginsAndContentType(t *testing.T) {
	cfg := testConfig()
	ts := newTestServer(t, cfg)
	d := ts.start(t)
	req := func(method, path, origin, ctype, body string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		r, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(raw)
	}
	// A simple (unpreflighted) text/plain start from any page is refused.
	if resp, body := req("POST", "/start_session", "", "text/plain", "{}", nil); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/json") {
		t.Errorf("text/plain start_session: %d %s; want 415 naming application/json", resp.StatusCode, body)
	}
	// stop_session from a foreign page is refused and the session lives.
	if resp, body := req("POST", "/stop_session", "https://evil.example", "", "", nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "evil.example") {
		t.Errorf("foreign stop_session: %d %s; want 403 naming the origin", resp.StatusCode, body)
	}
	if ts.srv.currentSession() == nil || ts.srv.currentSession().id != d.SessionID {
		t.Fatal("a foreign page stopped the session")
	}
	// A foreign preflight gets neither CORS nor Private Network Access.
	pna := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true"}
	resp, _ := req("OPTIONS", "/start_session", "https://evil.example", "", "", pna)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Private-Network") != "" {
		t.Errorf("foreign preflight: %d %v; want 403 without CORS or PNA", resp.StatusCode, resp.Header)
	}
	// localhost development origins and the server's own origin are allowed.
	for _, o := range []string{"http://localhost:5173", "http://127.0.0.1:3000", ts.URL} {
		resp, _ := req("OPTIONS", "/start_session", o, "", "", pna)
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != o || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
			t.Errorf("preflight from %s: %d %v", o, resp.StatusCode, resp.Header)
		}
	}
	// DNS rebinding: a page on evil.example whose name resolves to this
	// loopback server is not the server's own page.
	rebound := strings.Replace(ts.URL, "127.0.0.1", "evil.example", 1)
	r, _ := http.NewRequest("POST", ts.URL+"/stop_session", nil)
	r.Host = strings.TrimPrefix(rebound, "http://")
	r.Header.Set("Origin", rebound)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("DNS-rebound stop_session: %v %v; want 403", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	// A configured allow-list admits its origins (and no others).
	cfg.AllowedOrigins = []string{"https://app.example"}
	ts2 := newTestServer(t, cfg)
	ts = ts2
	if resp, body := req("POST", "/start_session", "https://app.example", "application/json", "{}", nil); resp.StatusCode != 200 {
		t.Errorf("allowed origin start: %d %s", resp.StatusCode, body)
	}
	if resp, _ := req("POST", "/start_session", "https://evil.example", "application/json", "{}", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("origin outside the list: %d, want 403", resp.StatusCode)
	}
}

// An oversized JSON body is answered 400, even to a client that waits for
// 100-continue, instead of a reset connection (defect 8).
func TestOversizedBodyAnswered(t *testing.T) {
	ts := newTestServer(t, testConfig())
	for _, expect := range []bool{false, true} {
		body := bytes.Repeat([]byte(" "), 8<<20)
		r, _ := http.NewRequest("POST", ts.URL+"/start_session", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", enginetest.Origin)
		if expect {
			r.Header.Set("Expect", "100-continue")
		}
		tr := &http.Transport{ExpectContinueTimeout: time.Minute}
		resp, err := (&http.Client{Transport: tr}).Do(r)
		if err != nil {
			t.Fatalf("expect=%v: %v; want a 400", expect, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "larger than") {
			t.Errorf("expect=%v: %d %s; want 400 saying the body is too large", expect, resp.StatusCode, raw)
		}
	}
}

// An empty track_mapping is refused; presigned_url does not echo Host
// (defect 9).
func TestEmptyMappingAndPresignedURL(t *testing.T) {
	cfg := testConfig()
	ts := newTestServer(t, cfg)
	d := ts.start(t)
	_, good := offerFor(t, d.Capabilities.Tracks)
	good["track_mapping"] = []any{}
	code, raw := ts.do(t, "POST", "/sessions/"+d.SessionID+"/transport/webrtc/sdp_params", good, rtcHdr)
	if code != 400 || !strings.Contains(string(raw), "track_mapping is empty") {
		t.Errorf("empty track_mapping: %d %s; want 400", code, raw)
	}
	slotURL := func(ts *testServer, hdr map[string]string) string {
		t.Helper()
		h := map[string]string{}
		for k, v := range apiHdr {
			h[k] = v
		}
		for k, v := range hdr {
			h[k] = v
		}
		b, _ := json.Marshal(map[string]any{"name": "a", "size": 1, "mime_type": "x"})
		r, _ := http.NewRequest("POST", ts.URL+"/sessions/"+ts.srv.currentSession().id+"/uploads", bytes.NewReader(b))
		for k, v := range h {
			r.Header.Set(k, v)
		}
		if hdr["Origin"] == "" {
			r.Header.Set("Origin", enginetest.Origin)
		}
		if host := hdr["Host"]; host != "" {
			r.Host = host
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var slot map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&slot)
		return slot["presigned_url"]
	}
	// A foreign Host never names the upload URL (the HTTP server in
	// front, engine/httpserve, also refuses it on loopback:
	// TestLoopbackServerRefusesForeignHost in package host); X-Forwarded-*
	// without TrustForwardedHeaders is ignored.
	if u := slotURL(ts, map[string]string{"Host": "evil.example", "X-Forwarded-Proto": "https"}); !strings.HasPrefix(u, ts.URL+"/uploads/") {
		t.Errorf("presigned_url %q follows a foreign Host; want the listener's %s", u, ts.URL)
	}
	if u := slotURL(ts, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}); !strings.HasPrefix(u, ts.URL+"/uploads/") {
		t.Errorf("presigned_url %q follows X-Forwarded-*; want the listener's %s", u, ts.URL)
	}
	// The server's own page (Origin = the Host it reached) gets its origin:
	// behind a port mapping the listener's address is not reachable.
	own := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	if u := slotURL(ts, map[string]string{"Host": strings.TrimPrefix(own, "http://"), "Origin": own}); !strings.HasPrefix(u, own+"/uploads/") {
		t.Errorf("presigned_url %q for the server's own page at %s", u, own)
	}
	cfg.PublicURL = "https://fw.example/base/"
	ts2 := newTestServer(t, cfg)
	ts2.start(t)
	if u := slotURL(ts2, nil); !strings.HasPrefix(u, "https://fw.example/base/uploads/") {
		t.Errorf("presigned_url %q ignores PublicURL", u)
	}
	cfg.PublicURL, cfg.TrustForwardedHeaders = "", true
	ts3 := newTestServer(t, cfg)
	ts3.start(t)
	if u := slotURL(ts3, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example"}); !strings.HasPrefix(u, "https://proxy.example/uploads/") {
		t.Errorf("presigned_url %q ignores trusted forwarded headers", u)
	}
}

// heldPut starts a PUT of size bytes to url, writes first bytes of it
// and keeps the connection open without the rest. The returned channel
// gets the status line (or the read error) once the server answers.
func heldPut(t *testing.T, url string, size, first int) (net.Conn, <-chan string) {
	t.Helper()
	hostPath := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(hostPath, "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT /%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", path, host, size)
	if _, err := conn.Write(make([]byte, first)); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		got <- line
	}()
	return conn, got
}

// Upload memory follows the bytes that arrived, is bounded process-wide,
// and a session's PUTs in flight end with it; a body has a deadline
// (defect 1).
func TestUploadMemoryBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxUploadSize = 64 << 20
	cfg.UploadMemory = 1 << 20
	ts := newTestServer(t, cfg)
	d := ts.start(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	slot := createUpload(t, ts, d.SessionID, "big", 64<<20)
	_, held := heldPut(t, slot["presigned_url"], 64<<20, 1024)
	ss := ts.srv.currentSession()
	eventually(t, 5*time.Second, "the PUT is being received", func() bool {
		ss.uploads.mu.Lock()
		defer ss.uploads.mu.Unlock()
		return len(ss.uploads.inflight) == 1
	})
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("heap grew %d MB for 1 KiB of a 64 MB upload; want allocation as bytes arrive", grew>>20)
	}
	// Past the process-wide upload memory the PUT is refused.
	slot2 := createUpload(t, ts, d.SessionID, "b2", 2<<20)
	r, _ := http.NewRequest("PUT", slot2["presigned_url"], bytes.NewReader(make([]byte, 2<<20)))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(raw), "upload memory") {
		t.Errorf("PUT beyond the upload memory: %d %s; want 507", resp.StatusCode, raw)
	}
	// Replacing the session ends the held PUT.
	ts.start(t)
	select {
	case line := <-held:
		if !strings.Contains(line, "410") && !strings.HasPrefix(line, "error") {
			t.Errorf("held PUT of a replaced session answered %q; want 410 or a closed connection", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a replaced session's PUT in flight is still held")
	}
	// A PUT slower than the minimum rate is cut off.
	cfg.UploadMinRate, cfg.UploadGrace = 1<<30, time.Millisecond
	ts2 := newTestServer(t, cfg)
	d2 := ts2.start(t)
	slot3 := createUpload(t, ts2, d2.SessionID, "slow", 8<<20)
	_, slow := heldPut(t, slot3["presigned_url"], 8<<20, 10)
	select {
	case <-slow:
	case <-time.After(10 * time.Second):
		t.Fatal("a held PUT body has no deadline")
	}
}

// A session that ends tells its client why before the peer closes, for
// every takeover (defect 5: sessionEnded reached the client in 7 of 20).
func TestSessionEndedDeliveredBeforeClose(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	for i := range 10 {
		// The server can only talk once it has seen the channel open too.
		eventually(t, 5*time.Second, "the server sees the client", func() bool { return ts.srv.Stats().State == "streaming" })
		d := ts.start(t) // takes the previous session over
		m := c.Expect("runtime", "sessionEnded", 5*time.Second)
		if data, _ := m["data"].(map[string]any); data == nil || !strings.Contains(fmt.Sprint(data["reason"]), "replaced") {
			t.Fatalf("takeover %d: sessionEnded %v; want the reason", i, m)
		}
		c.Close()
		c = ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
		c.WaitReady()
	}
}

// An inbound data-channel message above the advertised max-message-size
// (262144) is refused, counted and logged, and the channel stays alive
// (defect 6: it used to close the channel silently).
func TestOversizedInboundMessageRefused(t *testing.T) {
	ts := newTestServer(t, testConfig())
	ts.client.SendMaxMessageSize = 1 << 20
	_, c := ts.connectClient(t)
	for i, n := range []int{262144 + 1, 300_000, 1000_000} {
		before := ts.srv.Stats().DroppedMessages
		c.SendJSON(map[string]any{"scope": "application", "data": map[string]any{"type": "blob", "data": map[string]any{"blob": strings.Repeat("x", n)}}})
		eventually(t, 5*time.Second, fmt.Sprintf("message %d of %d bytes counted as dropped", i, n), func() bool { return ts.srv.Stats().DroppedMessages > before })
		c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities"}})
		c.Expect("runtime", "modelCapabilities", 5*time.Second)
	}
	// Exactly at the limit still arrives.
	blob := strings.Repeat("y", 262144-100)
	c.Command("blob", map[string]any{"blob": blob}, nil)
	if m := c.Expect("application", "blob", 5*time.Second); m["size"] != float64(len(blob)) {
		t.Errorf("message under the limit: %v", m)
	}
}

// A client message too large to ever be received (above the SCTP receive
// window, 2 MiB) no longer leaves a silently dead channel until the ping
// timeout: the stall is seen within a liveness tick, counted and logged,
// the client is told (MESSAGE_TOO_LARGE, on the server's direction, which
// still works) and the peer is orphaned for a reconnect. Over a real pion
// peer; the ping timeout is long so that only this path can end the peer.
func TestDataChannelMessageTooLargeToReceive(t *testing.T) {
	var logs enginetest.SyncBuffer
	cfg := testConfig()
	cfg.PingTimeout, cfg.OrphanGrace = 30*time.Second, 20*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ts := newTestServer(t, cfg)
	ts.client.SendMaxMessageSize = 8 << 20
	d, c := ts.connectClient(t)
	eventually(t, 5*time.Second, "streaming", func() bool { return ts.srv.Stats().State == "streaming" })
	defer func() {
		if t.Failed() {
			t.Logf("stats %+v\n%s", ts.srv.Stats(), logs.String())
		}
	}()

	// 1.5 MB: above the old 1 MiB window, which stalled silently; now
	// read, dropped, counted and logged, and the channel stays alive.
	c.SendJSON(map[string]any{"scope": "application", "data": map[string]any{"type": "blob", "data": map[string]any{"blob": strings.Repeat("x", 1500_000)}}})
	eventually(t, 5*time.Second, "1.5 MB message counted", func() bool { return ts.srv.Stats().OversizedMessages == 1 })
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestCapabilities"}})
	c.Expect("runtime", "modelCapabilities", 5*time.Second)

	// 3 MiB: can never be reassembled.
	start := time.Now()
	c.SendJSON(map[string]any{"scope": "application", "data": map[string]any{"type": "blob", "data": map[string]any{"blob": strings.Repeat("x", 3<<20)}}})
	m := c.Expect("runtime", "error", 10*time.Second)
	data, _ := m["data"].(map[string]any)
	if data == nil || data["code"] != "MESSAGE_TOO_LARGE" || !strings.Contains(fmt.Sprint(data["message"]), "262144") {
		t.Errorf("error to the sender: %v; want MESSAGE_TOO_LARGE naming the limit", m)
	}
	eventually(t, 10*time.Second, "the peer orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("orphaned after %s; the ping timeout is 30 s, the check should be within a few ticks", d)
	}
	// A peer's counts join the server's totals once its Close returned.
	eventually(t, 5*time.Second, "both messages counted", func() bool {
		st := ts.srv.Stats()
		return st.OversizedMessages == 2 && st.DroppedMessages >= 2
	})
	for _, want := range []string{"above the advertised max-message-size dropped", "stalled on a message larger than the receive window"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// The session survives for a reconnect.
	c.Close()
	ts.dial(t, d.SessionID, d.Capabilities.Tracks, "PUT").WaitReady()
}
