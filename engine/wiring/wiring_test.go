package wiring_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	eng, err := engine.New(enginetest.GreyModel(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

var mainVideo = enginetest.MainVideo

// slowCloseDevice is a device encoder whose Close waits for release: the
// output's pipeline run does not finish until then.
type slowCloseDevice struct {
	closing chan struct{}
	release chan struct{}
	once    sync.Once
}

func newSlowCloseDevice() *slowCloseDevice {
	return &slowCloseDevice{closing: make(chan struct{}), release: make(chan struct{})}
}

func (d *slowCloseDevice) Encode(tracks.DeviceFrame, int64, []byte) (int, bool, error) {
	return 0, false, errors.New("no device in this test")
}
func (d *slowCloseDevice) RequestKeyframe() {}
func (d *slowCloseDevice) SetBitrate(int)   {}
func (d *slowCloseDevice) Close() error {
	d.once.Do(func() {
		close(d.closing)
		<-d.release
	})
	return nil
}

// A reconnect whose offer drops the output's codec restarts its pipeline
// with the offered one. Prepare does not wait for the previous run to stop
// (its device encoder's Close blocks here), and Stats answers meanwhile;
// once the old run has stopped, the new one encodes VP8.
func TestRestartDoesNotWaitForThePreviousRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	first := newSlowCloseDevice()
	var opened atomic.Int32
	w, err := wiring.New(newEngine(t), wiring.Config{Backend: encode.BackendX264, DeviceEncoder: func(string) (wiring.DeviceEncoder, error) {
		if opened.Add(1) == 1 {
			return first, nil
		}
		d := newSlowCloseDevice()
		close(d.release)
		return d, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Engine().Stop("test over")
	outs, err := s.Prepare(enginetest.VideoOffer(t, webrtc.MimeTypeH264), mainVideo)
	if err != nil {
		t.Fatal(err)
	}
	if c := outs["main_video"].Codec(); c != peer.CodecH264 {
		t.Fatalf("first output sends %s; want H.264", c)
	}
	enginetest.Eventually(t, 10*time.Second, "the H.264 pipeline encodes", func() bool {
		st := w.Stats()
		return len(st) == 1 && len(st[0].Video) == 1 && st[0].Video[0].Encoded > 0
	})
	prepared := make(chan error, 1)
	go func() {
		outs, err := s.Prepare(enginetest.VideoOffer(t, webrtc.MimeTypeVP8), mainVideo)
		if err == nil && outs["main_video"].Codec() != peer.CodecVP8 {
			err = errors.New("the restarted output does not send VP8")
		}
		prepared <- err
	}()
	select {
	case err := <-prepared:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prepare waits for the previous pipeline to stop")
	}
	<-first.closing // the old run is stopping and waits in Close
	if st := w.Stats(); len(st) != 1 || len(st[0].Video) != 1 {
		t.Fatalf("Stats during the restart: %+v; want one session, one video output", st)
	}
	close(first.release)
	enginetest.Eventually(t, 10*time.Second, "the restarted pipeline encodes VP8", func() bool {
		st := w.Stats()
		return len(st) == 1 && len(st[0].Video) == 1 && st[0].Video[0].Backend == string(encode.BackendVP8) && st[0].Video[0].Encoded > 0
	})
}

// New rejects what cannot work, saying what was expected.
func TestNewRejectsBadInput(t *testing.T) {
	if _, err := wiring.New(nil, wiring.Config{}); err == nil || !strings.Contains(err.Error(), "engine.New") {
		t.Errorf("New(nil): %v", err)
	}
	eng := newEngine(t)
	if _, err := wiring.New(eng, wiring.Config{Backend: encode.BackendVP8}); err == nil || !strings.Contains(err.Error(), "libx264") {
		t.Errorf("Backend VP8: %v", err)
	}
	if _, err := wiring.New(eng, wiring.Config{VideoBitrate: -1}); err == nil || !strings.Contains(err.Error(), "negative bitrate") {
		t.Errorf("negative bitrate: %v", err)
	}
	w, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	if err != nil {
		t.Fatal(err)
	}
	if w.Backend() != encode.BackendX264 || w.Engine() != eng {
		t.Fatalf("Backend %q Engine %p", w.Backend(), w.Engine())
	}
}

// Every goroutine the wiring starts belongs to the engine session:
// stopping the session leaves none behind and Stats forgets it.
func TestStopLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w, err := wiring.New(newEngine(t), wiring.Config{Backend: encode.BackendX264})
	if err != nil {
		t.Fatal(err)
	}
	s := enginetest.StartVideo(t, w)
	enginetest.Eventually(t, 10*time.Second, "frames encoded", func() bool {
		st := w.Stats()
		return len(st) == 1 && len(st[0].Video) == 1 && st[0].Video[0].Encoded > 2
	})
	s.Engine().Stop("test over")
	if n := len(w.Stats()); n != 0 {
		t.Fatalf("Stats lists %d sessions after Stop; want 0", n)
	}
	if _, err := s.Prepare(enginetest.RecvOffer(t, peer.KindVideo), mainVideo); !errors.Is(err, engine.ErrSessionEnded) {
		t.Fatalf("Prepare on an ended session: %v; want engine.ErrSessionEnded", err)
	}
}
