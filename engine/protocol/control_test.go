package protocol

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
)

// gateViewer is an rtpViewer with a "control" channel (as SDK ≥ 2.12
// opens): it counts main_video's RTP packets and, once marked, records
// whether the next packet starts a keyframe.
type gateViewer struct {
	*rtpViewer
	ctl     *webrtc.DataChannel
	open    chan struct{}
	pkts    atomic.Int64
	mark    atomic.Bool  // record the next packet
	keyNext atomic.Int32 // 1: it started a keyframe, 2: it did not
	replies chan map[string]any
}

func dialGateViewer(t testing.TB, base, sid string, cid int) *gateViewer {
	t.Helper()
	v := &gateViewer{rtpViewer: &rtpViewer{pc: newPC(t, clientOptions{})}, open: make(chan struct{}), replies: make(chan map[string]any, 16)}
	var err error
	if v.ctl, err = v.pc.CreateDataChannel("control", nil); err != nil {
		t.Fatal(err)
	}
	v.ctl.OnOpen(func() { close(v.open) })
	v.ctl.OnMessage(func(m webrtc.DataChannelMessage) {
		var r map[string]any
		if json.Unmarshal(m.Data, &r) == nil {
			v.replies <- r
		}
	})
	if _, err := v.pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	x, err := v.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	v.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		vp8 := tr.Codec().MimeType == webrtc.MimeTypeVP8
		v.done.Add(1)
		go func() {
			defer v.done.Done()
			var last uint32
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				v.pkts.Add(1)
				if v.mark.Load() && v.keyNext.Load() == 0 {
					k := int32(2)
					if keyStart(vp8, p.Payload) {
						k = 1
					}
					v.keyNext.Store(k)
				}
				if p.Timestamp != last {
					last = p.Timestamp
					v.frames.Add(1)
				}
			}
		}()
	})
	offerMainVideo(t, base, sid, cid, v.pc, x)
	select {
	case <-v.open:
	case <-time.After(10 * time.Second):
		t.Fatal("the control channel did not open")
	}
	return v
}

// send sends msg on the control channel.
func (v *gateViewer) send(t testing.TB, msg string) {
	t.Helper()
	if err := v.ctl.SendText(msg); err != nil {
		t.Fatal(err)
	}
}

// expectError waits for the next control-channel reply and checks that it
// is an error about request naming each of want.
func (v *gateViewer) expectError(t testing.TB, request string, want ...string) {
	t.Helper()
	select {
	case r := <-v.replies:
		data, _ := r["data"].(map[string]any)
		msg, _ := data["message"].(string)
		if r["type"] != "notification" || r["event"] != "error" || data["request"] != request {
			t.Fatalf("reply %v; want a notification error about %s", r, request)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Fatalf("error message %q does not name %q", msg, w)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no error reply to a bad %s", request)
	}
}

// keyStart reports whether an RTP payload is the first packet of a
// keyframe: H.264 an IDR slice or SPS (alone, first in a STAP-A, or the
// start of an FU-A), VP8 the start of a key frame.
func keyStart(vp8 bool, b []byte) bool {
	if vp8 {
		if len(b) < 2 || b[0]&0x10 == 0 { // S: start of partition
			return false
		}
		i := 1
		if b[0]&0x80 != 0 { // X: extension byte, then what it announces
			x := b[1]
			i = 2
			if x&0x80 != 0 { // I: picture id
				i++
				if len(b) > 2 && b[2]&0x80 != 0 {
					i++
				}
			}
			if x&0x40 != 0 {
				i++
			}
			if x&0x30 != 0 {
				i++
			}
		}
		return len(b) > i && b[i]&1 == 0
	}
	if len(b) < 2 {
		return false
	}
	switch b[0] & 0x1f {
	case 5, 7:
		return true
	case 24: // STAP-A: 2-byte size, then the first NAL
		return len(b) > 3 && (b[3]&0x1f == 7 || b[3]&0x1f == 5)
	case 28: // FU-A
		return b[1]&0x80 != 0 && b[1]&0x1f == 5
	}
	return false
}

// connPaused reports whether connection cid's peer has main_video paused.
func connPaused(vs *viewerServer, sid string, cid int) bool {
	vs.srv.mu.Lock()
	ss := vs.srv.sessions[sid]
	vs.srv.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	var p *peer.Peer
	if c := ss.conns[cid]; c != nil {
		p = c.peer
	}
	ss.mu.Unlock()
	return p != nil && p.Paused("main_video")
}

const (
	pauseMain  = `{"type":"notification","event":"pause_track","data":{"name":"main_video"}}`
	resumeMain = `{"type":"notification","event":"resume_track","data":{"name":"main_video"}}`
)

// Contract §2.3: pause_track and resume_track on a connection's control
// channel gate that connection alone. Both viewers stream at once; a
// resume of a running track is a no-op; a paused viewer gets no packet of
// the track while the other goes on; bad names get an error reply and
// change nothing; after a resume the first packet starts a keyframe.
func TestPauseResumeTrack(t *testing.T) {
	cfg := testConfig()
	cfg.PingTimeout = time.Minute // the viewers send no pings
	vs := newViewerServer(t, testW, testH, cfg)
	d := enginetest.Start(t, vs.URL)
	aID, bID := vs.register(t, d.SessionID), vs.register(t, d.SessionID)
	a := dialGateViewer(t, vs.URL, d.SessionID, aID)
	defer a.close()
	b := dialGateViewer(t, vs.URL, d.SessionID, bID)
	defer b.close()
	more := func(v *gateViewer, n int64, what string) {
		t.Helper()
		f := v.frames.Load()
		enginetest.Eventually(t, 10*time.Second, what, func() bool { return v.frames.Load() >= f+n })
	}
	more(a, 10, "viewer a streams without resume_track")
	more(b, 10, "viewer b streams without resume_track")

	a.send(t, resumeMain)
	more(a, 10, "viewer a streams on after resuming a running track")

	a.send(t, pauseMain)
	enginetest.Eventually(t, 10*time.Second, "viewer a paused", func() bool { return connPaused(vs, d.SessionID, aID) })
	more(b, 5, "viewer b streams while a pauses") // lets packets in flight to a land
	p1 := a.pkts.Load()
	more(b, 30, "viewer b streams for a second while a is paused")
	if got := a.pkts.Load() - p1; got != 0 {
		t.Fatalf("paused viewer a got %d packets of main_video in a second", got)
	}

	// A pause of a paused track is a no-op (no reply: the next reply is
	// the bad request's); bad names are answered and change nothing.
	a.send(t, pauseMain)
	a.send(t, `{"type":"notification","event":"resume_track","data":{"name":"nope"}}`)
	a.expectError(t, "resume_track", `"nope"`, "main_video")
	a.send(t, `{"type":"notification","event":"pause_track","data":{}}`)
	a.expectError(t, "pause_track", "data.name")
	b.send(t, `{"type":"notification","event":"pause_track","data":{"name":"webcam"}}`) // an input, not an output
	b.expectError(t, "pause_track", `"webcam"`)
	if !connPaused(vs, d.SessionID, aID) || connPaused(vs, d.SessionID, bID) {
		t.Fatal("a bad request changed a gate")
	}
	more(b, 10, "viewer b streams after the bad requests")
	if got := a.pkts.Load() - p1; got != 0 {
		t.Fatalf("paused viewer a got %d packets after the bad requests", got)
	}

	a.mark.Store(true)
	a.send(t, resumeMain)
	more(a, 10, "viewer a streams after resume_track")
	if a.keyNext.Load() != 1 {
		t.Fatal("viewer a's first packet after resume_track does not start a keyframe")
	}
	select {
	case r := <-a.replies:
		t.Fatalf("unexpected control reply %v", r)
	default:
	}
}
