package peer

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine/enginetest/loopback"
)

// newClientWith is newClient with media, when set, registering more on
// the client's media engine (codecs and interceptors are the defaults).
func newClientWith(t testing.TB, media func(*webrtc.MediaEngine)) *webrtc.PeerConnection {
	t.Helper()
	return loopback.NewT(t, loopback.Options{Media: media})
}

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
	p, _ := answerVideo(t, client, o, out, Handlers{})
	defer p.Close()
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

// TestOutputLowLatencyExtensions: when the client's offer carries
// playout-delay and abs-capture-time, every video packet carries
// playout-delay min = max = 0 and the first packet of each frame the
// frame's capture time as a 64-bit NTP timestamp; a frame written without
// a capture time carries none.
func TestOutputLowLatencyExtensions(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClientWith(t, func(m *webrtc.MediaEngine) {
		for _, uri := range []string{playoutDelayURI, absCaptureTimeURI} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
				t.Fatal(err)
			}
		}
	})
	type pkt struct {
		ts            uint32
		playout, capt []byte
	}
	got := make(chan pkt, 4096)
	client.OnTrack(func(r *webrtc.TrackRemote, rx *webrtc.RTPReceiver) {
		var playoutID, captureID uint8
		for _, e := range rx.GetParameters().HeaderExtensions {
			switch e.URI {
			case playoutDelayURI:
				playoutID = uint8(e.ID)
			case absCaptureTimeURI:
				captureID = uint8(e.ID)
			}
		}
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			var k pkt
			k.ts = p.Timestamp
			if playoutID != 0 {
				k.playout = p.GetExtension(playoutID)
			}
			if captureID != 0 {
				k.capt = p.GetExtension(captureID)
			}
			got <- k
		}
	})
	o, _ := offer(t, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	p, answer := answerVideo(t, client, o, out, Handlers{})
	defer p.Close()
	if !strings.Contains(answer, playoutDelayURI) || !strings.Contains(answer, absCaptureTimeURI) {
		t.Fatalf("the answer does not accept the extensions:\n%s", answer)
	}
	// A keyframe big enough for several packets.
	au := append([]byte{0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65}, make([]byte, 4000)...)
	for i := range au[21:] {
		au[21+i] = byte(i%200 + 1)
	}
	capture := time.Date(2026, 11, 30, 12, 0, 0, 250_000_000, time.UTC)
	if err := out.WriteSample(au, time.Second/30, capture, true); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteSample(au, time.Second/30, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	var frames [][]pkt // packets grouped by RTP timestamp
	for done := false; !done; {
		select {
		case k := <-got:
			if n := len(frames); n == 0 || frames[n-1][0].ts != k.ts {
				frames = append(frames, nil)
			}
			frames[len(frames)-1] = append(frames[len(frames)-1], k)
		case <-time.After(500 * time.Millisecond):
			done = true
		}
	}
	if len(frames) != 2 || len(frames[0]) < 3 || len(frames[1]) < 3 {
		t.Fatalf("received %d frames (%v), want 2 of at least 3 packets", len(frames), frames)
	}
	for f, frame := range frames {
		for i, k := range frame {
			if string(k.playout) != "\x00\x00\x00" {
				t.Fatalf("frame %d packet %d: playout-delay %x, want 000000", f, i, k.playout)
			}
			if (i > 0 || f == 1) && k.capt != nil {
				t.Fatalf("frame %d packet %d carries abs-capture-time", f, i)
			}
		}
	}
	if len(frames[0][0].capt) != 8 {
		t.Fatalf("first packet: abs-capture-time %x, want 8 bytes", frames[0][0].capt)
	}
	ntp := binary.BigEndian.Uint64(frames[0][0].capt)
	at := time.Unix(int64(ntp>>32)-2208988800, int64((ntp&0xffffffff)*uint64(time.Second)>>32))
	if d := at.Sub(capture); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("abs-capture-time says %v, want %v", at, capture)
	}
	_ = client.Close()
}
