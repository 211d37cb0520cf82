package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/engine/enginetest"
)

// publisher is a viewer that sends webcam and has a "control" channel.
type publisher struct {
	*enginetest.Client
	id      int
	ctl     *webrtc.DataChannel
	replies chan map[string]any
}

// live is the number of open connections once it is connected.
func dialPublisher(t *testing.T, vs *viewerServer, d enginetest.Descriptor, live int) *publisher {
	t.Helper()
	id := vs.register(t, d.SessionID)
	c := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "POST", clientOptions{ConnectionID: id})
	c.WaitReady()
	vs.expectEvent(t, fmt.Sprintf("connected %d %d", id, live))
	p := &publisher{Client: c, id: id, replies: make(chan map[string]any, 16)}
	open := make(chan struct{})
	var err error
	if p.ctl, err = c.PC.CreateDataChannel("control", nil); err != nil {
		t.Fatal(err)
	}
	p.ctl.OnOpen(func() { close(open) })
	p.ctl.OnMessage(func(m webrtc.DataChannelMessage) {
		var r map[string]any
		if json.Unmarshal(m.Data, &r) == nil {
			p.replies <- r
		}
	})
	select {
	case <-open:
	case <-time.After(10 * time.Second):
		t.Fatal("the control channel did not open")
	}
	return p
}

// request sends a v0 control notification event about track name.
func (p *publisher) request(t *testing.T, event, name string) {
	t.Helper()
	msg := fmt.Sprintf(`{"type":"notification","event":%q,"data":{"name":%q}}`, event, name)
	if name == "" {
		msg = fmt.Sprintf(`{"type":"notification","event":%q,"data":{}}`, event)
	}
	if err := p.ctl.SendText(msg); err != nil {
		t.Fatal(err)
	}
}

// reply waits for the next control-channel reply.
func (p *publisher) reply(t *testing.T) map[string]any {
	t.Helper()
	select {
	case r := <-p.replies:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no control reply")
		return nil
	}
}

func (p *publisher) expectGranted(t *testing.T, name string) {
	t.Helper()
	r := p.reply(t)
	data, _ := r["data"].(map[string]any)
	if r["type"] != "notification" || r["event"] != "publish_granted" || data["name"] != name {
		t.Fatalf("reply %v; want publish_granted for %s", r, name)
	}
}

// expectError checks the next reply is an error about request with code
// (when not empty) and a message naming each of want.
func (p *publisher) expectError(t *testing.T, request, code string, want ...string) map[string]any {
	t.Helper()
	r := p.reply(t)
	data, _ := r["data"].(map[string]any)
	msg, _ := data["message"].(string)
	if r["type"] != "notification" || r["event"] != "error" || data["request"] != request || (data["code"] != nil || code != "") && data["code"] != code {
		t.Fatalf("reply %v; want an error about %s with code %q", r, request, code)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("error message %q does not name %q", msg, w)
		}
	}
	return data
}

// Contract §2.7, item 33: publisher arbitration. An implicit holder (the
// first to deliver frames, no claim) loses webcam to a granted
// publish_track; a second claim is refused with publish_refused naming the
// holder; bad names are answered and change nothing; unpublish_track and
// the holder dropping free the track for the next deliverer or claimant.
// The viewers are told apart by their pictures' sizes at the model.
func TestPublishTrackArbitration(t *testing.T) {
	cfg := testConfig()
	cfg.PingTimeout = time.Minute // the viewers send no pings
	vs := newViewerServer(t, testW, testH, cfg)
	d := enginetest.Start(t, vs.URL)
	stop := make(chan struct{})
	defer close(stop)
	const small, large = 160<<16 | 120, 320<<16 | 240
	feeds := func(wh int, what string) {
		t.Helper()
		enginetest.Eventually(t, 10*time.Second, what, func() bool { return vs.webcamWH() == wh })
		enginetest.Holds(t, 500*time.Millisecond, what, func() bool {
			got := vs.webcamWH()
			if got != wh {
				t.Logf("%s: the model got a %dx%d webcam frame", what, got>>16, got&0xffff)
			}
			return got == wh
		})
	}

	a := dialPublisher(t, vs, d, 1)
	a.PublishWebcam("webcam", 160, 120, stop)
	feeds(small, "a holds webcam implicitly")

	b := dialPublisher(t, vs, d, 2)
	bStop := make(chan struct{})
	b.PublishWebcam("webcam", 320, 240, bStop)
	b.WaitFrames(10, 10*time.Second)
	if got := vs.webcamWH(); got != small {
		t.Fatalf("b's frames reached the model without a claim: %dx%d", got>>16, got&0xffff)
	}
	b.request(t, "publish_track", "webcam")
	b.expectGranted(t, "webcam")
	feeds(large, "b's granted claim takes webcam from a")

	c := dialPublisher(t, vs, d, 3)
	c.request(t, "publish_track", "webcam")
	if data := c.expectError(t, "publish_track", "publish_refused", "webcam", fmt.Sprint(b.id)); data["holder"] != float64(b.id) {
		t.Fatalf("refusal %v; want holder %d", data, b.id)
	}
	c.request(t, "publish_track", "nope")
	c.expectError(t, "publish_track", "", `"nope"`, "webcam")
	c.request(t, "publish_track", "main_video") // an output, not an input
	c.expectError(t, "publish_track", "", `"main_video"`)
	c.request(t, "unpublish_track", "")
	c.expectError(t, "unpublish_track", "", "data.name")
	c.request(t, "unpublish_track", "webcam") // not the holder: a no-op
	a.request(t, "publish_track", "webcam")
	a.expectError(t, "publish_track", "publish_refused", fmt.Sprint(b.id))
	feeds(large, "the refusals and bad requests change nothing")

	// b stops sending and unpublishes: a, still delivering, takes webcam
	// back implicitly.
	close(bStop)
	b.request(t, "unpublish_track", "webcam")
	feeds(small, "b's unpublish frees webcam for a, the next deliverer")

	cStop := make(chan struct{})
	c.PublishWebcam("webcam", 256, 144, cStop)
	c.request(t, "publish_track", "webcam")
	c.expectGranted(t, "webcam")
	feeds(256<<16|144, "c's granted claim takes webcam from a")
	close(cStop)
	c.Close()
	vs.expectEvent(t, fmt.Sprintf("disconnected %d 2", c.id))
	feeds(small, "c dropping frees webcam for a")

	b.request(t, "publish_track", "webcam")
	b.expectGranted(t, "webcam")
	a.request(t, "publish_track", "webcam")
	a.expectError(t, "publish_track", "publish_refused", fmt.Sprint(b.id))
	select {
	case r := <-b.replies:
		t.Fatalf("unexpected control reply %v", r)
	default:
	}
}

// The per-sample input gate does not allocate: held, refused, and free
// (for a connection that is gone).
func TestPublishInputGateAllocs(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	d := enginetest.Start(t, vs.URL)
	vs.srv.mu.Lock()
	ss := vs.srv.sessions[d.SessionID]
	vs.srv.mu.Unlock()
	mine, other := &conn{id: 9998}, &conn{id: 9999} // not the session's: never claim implicitly
	gate := ss.inputGate(mine, "webcam")
	ss.mu.Lock()
	cl := ss.claimLocked("webcam")
	ss.mu.Unlock()
	for _, tc := range []struct {
		name   string
		holder *conn
		want   bool
	}{{"held", mine, true}, {"refused", other, false}, {"free", nil, false}} {
		cl.holder.Store(tc.holder)
		if got := gate(); got != tc.want { // also logs the change, once
			t.Fatalf("%s: gate %v; want %v", tc.name, got, tc.want)
		}
		if n := testing.AllocsPerRun(1000, func() { gate() }); n != 0 {
			t.Fatalf("%s: %v allocations per sample", tc.name, n)
		}
	}
	cl.holder.Store(nil)
}
