package peer

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestOutputWireTime: an output's WireTime is zero until a packet leaves,
// and right after WriteSample returns on a connected peer it is when that
// sample's last packet came back from the interceptors and the socket
// write: inside the WriteSample call. The client receives what was sent.
func TestOutputWireTime(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	got := make(chan int, 1024)
	client.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			if p.Marker {
				got <- len(p.Payload)
			}
		}
	})
	o, _ := offer(t, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	au := []byte{0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00}
	if err := out.WriteSample(au, time.Second/30, time.Now(), true); err != nil || !out.WireTime().IsZero() {
		t.Fatalf("before a peer: WriteSample %v, WireTime %v; want nil and zero", err, out.WireTime())
	}
	ready := make(chan struct{})
	p, answer, err := testConfig().Answer(context.Background(), Binding{
		Offer: o, Mapping: videoMapping, Outputs: map[string]*Output{"main_video": out},
		Handlers: Handlers{OnReady: func(*Peer) { close(ready) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnReady within 10 s")
	}
	deadline := time.After(10 * time.Second)
	for received := false; !received; {
		before := time.Now()
		if err := out.WriteSample(au, time.Second/30, time.Now(), true); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if wt := out.WireTime(); wt.Before(before.Round(0)) || wt.After(after.Round(0)) {
			t.Fatalf("WireTime %v outside the WriteSample call [%v, %v]", wt, before, after)
		}
		select {
		case <-got:
			received = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("the client received nothing within 10 s")
		}
	}
	_ = client.Close()
}
