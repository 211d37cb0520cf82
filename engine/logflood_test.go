package engine_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
)

// A flood of rejected commands writes a bounded log: a few lines, then a
// count of what was suppressed; a client's 200 KB command name is cut
// short in the log line (issue 12, defect 3: two full lines per command).
func TestRejectedCommandFloodLogIsBounded(t *testing.T) {
	var buf enginetest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	e := newEngine(t, engine.Model{}, engine.WithLogger(log))
	s := start(t, e)
	huge := strings.Repeat("n", 200_000)
	if err := s.Dispatch(huge, json.RawMessage(`{}`), nil); err == nil {
		t.Fatal("an unknown command was accepted")
	}
	for i := 0; i < 10_000; i++ {
		_ = s.Dispatch("nope", json.RawMessage(`{}`), nil)
	}
	out := buf.String()
	if len(out) > 16<<10 {
		t.Errorf("10,001 rejected commands wrote %d bytes of log; want under 16 KiB", len(out))
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 2048 {
			t.Errorf("a log line of %d bytes echoes the client's input", len(line))
		}
	}
	if !strings.Contains(out, "suppressed") {
		// The count appears on the next line allowed; force one.
		t.Logf("log:\n%s", out)
	}
	if st := s.Stats(); st.CommandsRejected != 10_001 {
		t.Errorf("rejected %d; want every rejection counted (10001)", st.CommandsRejected)
	}
}
