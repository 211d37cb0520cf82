package host

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/wiring"
)

// RecordingOptions are where and how long recordings are kept; whether a
// session records is the model's choice (`recording:` in its config
// file).
type RecordingOptions struct {
	// Dir is the recordings directory (-recordings, else
	// FRAMEWIRE_RECORDINGS_DIR, else a temporary directory removed at
	// exit).
	Dir string
	// Retention is how long a finished recording stays (-recording-retention).
	Retention time.Duration
	// MaxBytes is the disk budget of every recording together
	// (-recording-max-bytes; 0 = none).
	MaxBytes int64
}

// RecordingsDirEnv names the recordings directory when -recordings is not
// given.
const RecordingsDirEnv = "FRAMEWIRE_RECORDINGS_DIR"

func (r *RecordingOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&r.Dir, "recordings", "", "directory for session recordings (when the model's config has recording: enabled: true), one folder per recording; default $"+RecordingsDirEnv+", else a temporary directory removed at exit")
	fs.DurationVar(&r.Retention, "recording-retention", 300*time.Second, "keep a finished recording this long")
	fs.Int64Var(&r.MaxBytes, "recording-max-bytes", 0, "disk budget of all recordings together in bytes; the oldest finished recordings go first (0: no budget)")
}

// open opens the recordings store.
func (r RecordingOptions) open(log *slog.Logger) (*record.Store, error) {
	dir := r.Dir
	if dir == "" {
		dir = os.Getenv(RecordingsDirEnv)
	}
	if r.Retention < 0 || r.MaxBytes < 0 {
		return nil, fmt.Errorf("-recording-retention %v / -recording-max-bytes %d: want non-negative values", r.Retention, r.MaxBytes)
	}
	return record.OpenStore(record.StoreConfig{Dir: dir, Retention: r.Retention, MaxBytes: r.MaxBytes, Logger: log})
}

// recordingConfig reads the model's `recording:` block into wc (with the
// store recs) when it turns recording on.
func recordingConfig(eng *engine.Engine, recs *record.Store, wc *wiring.Config, log *slog.Logger) error {
	if recs == nil {
		return nil
	}
	rc, err := record.ParseConfig(eng.Config().Bytes())
	if err != nil {
		return fmt.Errorf("model %q: %w", eng.ModelName(), err)
	}
	if rc.Enabled {
		wc.Recording, wc.Recordings = rc, recs
		log.Info("sessions are recorded", "dir", recs.Dir(), "chunk_seconds", rc.ChunkSeconds, "retention", recs.Retention())
	}
	return nil
}
