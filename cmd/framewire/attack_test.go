package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// procStatus reads a field (VmRSS, Threads) of /proc/pid/status.
func procStatus(pid int, field string) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// TestAttacks measures issue 12's three attacks against a framewire
// binary: RSS under held 100 MB PUTs, FDs under held slow-body
// connections, log bytes under an unknown-command flood. It only reports
// (t.Log); run it against the binary before and after a change:
//
//	FRAMEWIRE_ATTACK_BIN=/path/to/framewire go test -count=1 -v -run '^TestAttacks$' ./cmd/framewire
//
// Without FRAMEWIRE_ATTACK_BIN it is skipped.
func TestAttacks(t *testing.T) {
	bin := os.Getenv("FRAMEWIRE_ATTACK_BIN")
	if bin == "" {
		t.Skip("set FRAMEWIRE_ATTACK_BIN to a framewire binary")
	}
	t.Run("held PUTs", func(t *testing.T) { attackUploads(t, runBinary(t, bin)) })
	t.Run("held connections", func(t *testing.T) { attackConns(t, runBinary(t, bin)) })
	t.Run("command flood", func(t *testing.T) { attackFlood(t, runBinary(t, bin)) })
}

// attackUploads: 4 rounds, each a new session with five 100 MB upload
// slots whose PUTs send all but the last byte and hold.
func attackUploads(t *testing.T, srv server) {
	const size = 100 << 20
	chunk := make([]byte, 1<<20)
	for round := 1; round <= 4; round++ {
		d := enginetest.Start(t, srv.base)
		var conns []net.Conn
		for range 5 {
			code, raw := enginetest.Do(t, srv.base, "POST", "/sessions/"+d.SessionID+"/uploads", map[string]any{"name": "x", "size": size, "mime_type": "x"}, enginetest.APIHeaders)
			var slot map[string]string
			if json.Unmarshal(raw, &slot) != nil || code/100 != 2 {
				t.Fatalf("slot: %d %s", code, raw)
			}
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			path := slot["presigned_url"][strings.Index(slot["presigned_url"], "/uploads/"):]
			fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, size)
			for sent := 0; sent < size-1; {
				n := min(len(chunk), size-1-sent)
				if _, err := conn.Write(chunk[:n]); err != nil {
					break // the server refused the rest (507) or cut it off
				}
				sent += n
			}
			conns = append(conns, conn)
		}
		t.Logf("round %d: RSS %s", round, procStatus(srv.pid, "VmRSS"))
	}
}

// attackConns: 5000 connections that send a POST's headers and one byte
// of its body, then hold.
func attackConns(t *testing.T, srv server) {
	before := openFDs(srv.pid)
	host := strings.TrimPrefix(srv.base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 5000 {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Logf("dial: %v", err)
			break
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /start_session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	}
	time.Sleep(2 * time.Second) // a measurement, not a test: let the accepts happen
	t0 := time.Now()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(srv.base + "/health")
	lat := time.Since(t0)
	if err == nil {
		resp.Body.Close()
	}
	t.Logf("%d held connections: server FDs %d → %d, threads %s, /health %v (%v)", len(conns), before, openFDs(srv.pid), procStatus(srv.pid, "Threads"), lat.Round(time.Millisecond), err)
}

// attackFlood: one SDK-flow client sends unknown commands for 3 s.
func attackFlood(t *testing.T, srv server) {
	_, c := enginetest.Connect(t, srv.base, enginetest.ClientOptions{})
	before := srv.logBytes.Load()
	msg := `{"scope":"application","data":{"type":"no_such_command","data":{}}}`
	sent := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if c.DC.BufferedAmount() > 1<<20 {
			time.Sleep(time.Millisecond)
			continue
		}
		if err := c.DC.SendText(msg); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	time.Sleep(time.Second) // let the server drain what was sent
	t.Logf("%d unknown commands in 3 s: %s bytes of log", sent, strconv.FormatInt(srv.logBytes.Load()-before, 10))
	c.Close()
}
