package peer

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestSetPausedGatesOnePeer: pausing an output on a peer stops every
// write to it (the output's wire time stands still while samples are
// written), resuming a running or pausing a paused output is a no-op, an
// unknown name is ErrUnknownTrack, and a resume asks the encoder for a
// keyframe and sends nothing until one: the client's first packet after
// the resume starts it.
func TestSetPausedGatesOnePeer(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	var pkts atomic.Int64
	var mark atomic.Bool
	var first atomic.Int32 // NAL type of the first packet after mark, +1
	done := make(chan struct{})
	client.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		defer close(done)
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			pkts.Add(1)
			if mark.Load() && len(p.Payload) > 0 {
				first.CompareAndSwap(0, int32(p.Payload[0]&0x1f)+1)
			}
		}
	})
	o, _ := offer(t, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	ctl := &countControl{}
	out.SetControl(ctl)
	p, _ := answerVideo(t, client, o, out, Handlers{})
	defer p.Close()
	key := []byte{0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00}
	delta := []byte{0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x04}
	write := func(au []byte, k bool) {
		t.Helper()
		if err := out.WriteSample(au, time.Second/30, time.Now(), k); err != nil {
			t.Fatal(err)
		}
	}
	// Streaming at once: keyframes until the client has one, then deltas.
	deadline := time.Now().Add(10 * time.Second)
	for pkts.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client received nothing within 10 s")
		}
		write(key, true)
		time.Sleep(20 * time.Millisecond) // the writer's frame pace, not synchronisation
	}

	if err := p.SetPaused("nope", true); !errors.Is(err, ErrUnknownTrack) {
		t.Fatalf("SetPaused(nope): %v; want ErrUnknownTrack", err)
	}
	k0 := ctl.keys.Load()
	if err := p.SetPaused("main_video", false); err != nil || p.Paused("main_video") || ctl.keys.Load() != k0 {
		t.Fatalf("resume of a running track: %v, paused %v, keyframe requests %d → %d; want a no-op", err, p.Paused("main_video"), k0, ctl.keys.Load())
	}
	if err := p.SetPaused("main_video", true); err != nil || !p.Paused("main_video") {
		t.Fatalf("pause: %v, paused %v", err, p.Paused("main_video"))
	}
	if err := p.SetPaused("main_video", true); err != nil {
		t.Fatalf("second pause: %v", err)
	}
	wt := out.WireTime()
	for range 5 {
		write(delta, false)
		write(key, true)
	}
	if !out.WireTime().Equal(wt) {
		t.Fatal("a paused output's samples reached the peer's socket")
	}

	// Resume: a keyframe is asked for; deltas are withheld; the keyframe
	// goes out and is the client's first packet.
	mark.Store(true)
	if err := p.SetPaused("main_video", false); err != nil || p.Paused("main_video") {
		t.Fatalf("resume: %v, paused %v", err, p.Paused("main_video"))
	}
	// Within the throttle's interval the request is held and the first
	// sample after the interval forwards it.
	deadline = time.Now().Add(5 * time.Second)
	for ctl.keys.Load() == k0 {
		if time.Now().After(deadline) {
			t.Fatal("resume did not ask the encoder for a keyframe")
		}
		write(delta, false)
		time.Sleep(20 * time.Millisecond) // the writer's frame pace
	}
	if !out.WireTime().Equal(wt) {
		t.Fatal("after resume a delta frame was sent before a keyframe")
	}
	write(key, true)
	if out.WireTime().Equal(wt) {
		t.Fatal("the keyframe after resume was not sent")
	}
	deadline = time.Now().Add(10 * time.Second)
	for first.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client received nothing after resume")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if nal := first.Load() - 1; nal != 24 && nal != 7 && nal != 5 {
		t.Fatalf("the first packet after resume has NAL type %d; want the keyframe's (STAP-A of SPS/PPS, SPS or IDR)", nal)
	}
	_ = client.Close()
	<-done
}
