// Package enginetest holds helpers shared by the tests of the engine's
// packages and of programs linking it: polling with a deadline, a test
// context, and real pion offers. Nothing here stands in for a component
// under test; the offers come from a real pion PeerConnection.
package enginetest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// GreyModel declares a model that emits flat grey w×h frames at 30 fps
// into main_video (no rate declared) and has a webcam input it ignores: a
// real producer for tests of the media path.
func GreyModel(w, h int) engine.Model {
	return engine.Model{
		Name:   "grey",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video"), tracks.VideoInput("webcam")},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				out, err := s.VideoOut("main_video")
				if err != nil {
					return err
				}
				img := tracks.NewImage(w, h)
				for i := range img.Pix {
					img.Pix[i] = 128
				}
				tick := time.NewTicker(time.Second / 30)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-tick.C:
					}
					if out.EmitImage(ctx, img) != nil {
						return nil
					}
				}
			}), nil
		},
	}
}

// Eventually polls cond every 10 ms until it holds, failing the test with
// what when within passes first.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		<-tick.C
	}
}

// Holds checks cond every 10 ms for d, failing the test with what the
// first time it does not hold: the check that something stays true, as
// Eventually is the wait for it to become true.
func Holds(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if !cond() {
			t.Fatalf("%s: stopped holding within %s", what, d)
		}
		if time.Now().After(end) {
			return
		}
		<-tick.C
	}
}

// Context returns a context cancelled after within or when the test ends.
func Context(t testing.TB, within time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	return ctx
}

// RecvOffer returns a real pion offer with one recvonly m-section per kind
// in kinds (mids "0", "1", … in order) and the "data" channel, as the SDK
// makes for a model's outputs, already parsed.
func RecvOffer(t testing.TB, kinds ...peer.Kind) *peer.Offer {
	t.Helper()
	return recvOffer(t, webrtc.NewPeerConnection, kinds)
}

// VideoOffer returns a real pion offer with one recvonly video m-section
// (mid "0") that offers only the codec named by mime (webrtc.MimeTypeH264,
// webrtc.MimeTypeVP8), and the "data" channel.
func VideoOffer(t testing.TB, mime string) *peer.Offer {
	t.Helper()
	var codec webrtc.RTPCodecParameters
	switch mime {
	case webrtc.MimeTypeH264:
		codec = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: mime, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}
	case webrtc.MimeTypeVP8:
		codec = webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}}
	default:
		t.Fatalf("enginetest.VideoOffer(%q): want webrtc.MimeTypeH264 or webrtc.MimeTypeVP8", mime)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(codec, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me))
	return recvOffer(t, api.NewPeerConnection, []peer.Kind{peer.KindVideo})
}

func recvOffer(t testing.TB, newPC func(webrtc.Configuration) (*webrtc.PeerConnection, error), kinds []peer.Kind) *peer.Offer {
	t.Helper()
	pc, err := newPC(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range kinds {
		kind := webrtc.RTPCodecTypeVideo
		if k == peer.KindAudio {
			kind = webrtc.RTPCodecTypeAudio
		}
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := peer.ParseOffer(o.SDP)
	if err != nil {
		t.Fatal(err)
	}
	return offer
}

// MainVideo maps mid "0" of an offer to the output main_video.
var MainVideo = []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}

// StartVideo starts a session of w and runs its main_video output into an
// unbound peer output negotiated from a real H.264-capable offer: the
// pipeline really paces, converts and encodes; what a peer would carry is
// dropped. The session is stopped when the test ends.
func StartVideo(t testing.TB, w *wiring.Wiring) *wiring.Session {
	t.Helper()
	s, err := w.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Engine().Stop("test over") })
	if _, err := s.Prepare(RecvOffer(t, peer.KindVideo), MainVideo); err != nil {
		t.Fatal(err)
	}
	return s
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes: a log handler's
// (slog writes from pion's and the session's goroutines) or a child
// process's output copier. The zero value is ready.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
