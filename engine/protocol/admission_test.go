package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Node mode (MaxSessions 2): two sessions run at once, each with its own
// client and its own state, through the same start path as
// /start_session; the third start is refused with a 503 whose JSON detail
// says why, and the running ones go on; a caller-chosen id is the
// session's id on every route, and a second start under it is refused.
func TestNodeModeAdmitsUpToMaxSessions(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessions = 2
	ts := newTestServer(t, cfg)
	a := startAnother(t, ts)
	id, err := ts.srv.Start(context.Background(), StartOptions{ID: "front-chosen-id"})
	if err != nil || id != "front-chosen-id" {
		t.Fatalf("Start with an id: %q, %v", id, err)
	}
	code, body := ts.do(t, "POST", "/start_session", map[string]any{}, apiHdr)
	if code != 503 || !strings.Contains(string(body), `"detail"`) || !strings.Contains(string(body), "2 of 2") {
		t.Errorf("third start: %d %s, want 503 with a JSON detail", code, body)
	}
	if _, err := ts.srv.Start(context.Background(), StartOptions{ID: "another"}); !errors.Is(err, ErrFull) {
		t.Errorf("Start beyond the limit: %v, want ErrFull", err)
	}
	ca := ts.dial(t, a.SessionID, a.Capabilities.Tracks, "POST")
	cb := ts.dial(t, id, a.Capabilities.Tracks, "POST")
	ca.WaitReady()
	cb.WaitReady()
	eventually(t, 5*time.Second, "both streaming", func() bool { return ts.srv.Stats().States["streaming"] == 2 })
	if st := ts.srv.Stats(); st.State != "serving" || len(ts.srv.Sessions()) != 2 {
		t.Errorf("stats %+v, sessions %v", st, ts.srv.Sessions())
	}
	ca.Command("set_color", map[string]any{"level": 10, "label": "red"}, nil)
	cb.Command("set_color", map[string]any{"level": 200, "label": "green"}, nil)
	engineID := map[string]string{}
	for _, si := range ts.srv.Sessions() {
		engineID[si.ID] = si.EngineID
	}
	for sid, level := range map[string]int32{a.SessionID: 10, id: 200} {
		st := ts.eng.model.state(engineID[sid])
		eventually(t, 5*time.Second, "each session runs its own command", func() bool { return st.cmds.Load() == 1 && st.level.Load() == level })
	}
	if code, body := ts.do(t, "POST", "/stop_session", nil, apiHdr); code != 400 {
		t.Errorf("stop_session in node mode: %d %s, want 400", code, body)
	}
	if _, err := ts.srv.Start(context.Background(), StartOptions{ID: id}); !errors.Is(err, ErrSessionExists) && !errors.Is(err, ErrFull) {
		t.Errorf("Start of a running id: %v", err)
	}
	if !ts.srv.End(id, "test") || ts.srv.SessionState(id) != "" {
		t.Error("End did not end the session")
	}
	if ts.srv.SessionState(a.SessionID) != "streaming" {
		t.Errorf("the other session: %q, want streaming", ts.srv.SessionState(a.SessionID))
	}
	if _, err := ts.srv.Start(context.Background(), StartOptions{ID: id}); err != nil {
		t.Errorf("Start after End freed a place: %v", err)
	}
}

// startAnother posts start_session without the local-mode check of
// ts.start (several sessions run here).
func startAnother(t *testing.T, ts *testServer) descriptor {
	t.Helper()
	code, body := ts.do(t, "POST", "/start_session", map[string]any{}, apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}
