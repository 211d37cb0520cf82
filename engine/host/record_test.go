package host

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
)

// TestRecordingOptions: the flags, and FRAMEWIRE_RECORDINGS_DIR when
// -recordings is not given.
func TestRecordingOptions(t *testing.T) {
	dir := t.TempDir()
	o, err := Parse("m", []string{"-recordings", dir, "-recording-retention", "10s", "-recording-max-bytes", "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Recordings != (RecordingOptions{Dir: dir, Retention: 10 * time.Second, MaxBytes: 1000}) {
		t.Fatalf("%+v", o.Recordings)
	}
	env := t.TempDir()
	t.Setenv(RecordingsDirEnv, env)
	o, _ = Parse("m", nil)
	if o.Recordings.Retention != 300*time.Second {
		t.Fatalf("default retention %v", o.Recordings.Retention)
	}
	s, err := o.Recordings.open(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dir() != env {
		t.Fatalf("store in %s, want $%s = %s", s.Dir(), RecordingsDirEnv, env)
	}
}

// TestRecordingFromModelConfig: the model's config file switches
// recording on for the wiring; a misspelt key in the block is an error
// naming it, and a file without the block records nothing.
func TestRecordingFromModelConfig(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	recs, err := RecordingOptions{Dir: t.TempDir()}.open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer recs.Close()
	for _, c := range []struct {
		yaml    string
		enabled bool
		cs      int
		err     string
	}{
		{"recording:\n  enabled: true\n  chunk_seconds: 2\n", true, 2, ""},
		{"other: 1\n", false, 0, ""},
		{"recording:\n  enabled: true\n  chunk_secs: 2\n", false, 0, "chunk_secs"},
		{"recording:\n  enabled: true\n  video_track: nope\n", false, 0, `"nope"`},
	} {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		m := enginetest.GreyModel(64, 64)
		m.Config = path
		eng, wired, err := loadRecording(m, log, deviceSetup{}, recs)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want one naming %s", c.yaml, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		rc := wired.RecordingConfig()
		if rc.Enabled != c.enabled || c.enabled && rc.ChunkSeconds != c.cs {
			t.Errorf("%q: %+v", c.yaml, rc)
		}
		_ = eng.Close()
	}
}
