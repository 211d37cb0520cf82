package peer

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

type countControl struct{ keys, rate atomic.Int64 }

func (c *countControl) RequestKeyframe() { c.keys.Add(1) }
func (c *countControl) SetBitrate(b int) { c.rate.Store(int64(b)) }

// Many viewers' keyframe requests within one interval reach the encoder
// once at once, and once more (held) after the interval.
func TestFanoutKeyframeThrottle(t *testing.T) {
	o, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	var c countControl
	o.SetControl(&c)
	t0 := time.Now()
	for range 20 {
		o.fan.requestKeyframe(t0, o.forwardKeyframe)
	}
	if got := c.keys.Load(); got != 1 {
		t.Fatalf("20 requests in one instant forwarded %d keyframe requests; want 1", got)
	}
	o.fan.flushHeld(t0.Add(KeyframeInterval/2), o.forwardKeyframe)
	if got := c.keys.Load(); got != 1 {
		t.Fatalf("held request forwarded before the interval: %d", got)
	}
	o.fan.flushHeld(t0.Add(KeyframeInterval), o.forwardKeyframe)
	if got := c.keys.Load(); got != 2 {
		t.Fatalf("held request not forwarded after the interval: %d forwarded", got)
	}
	o.fan.flushHeld(t0.Add(3*KeyframeInterval), o.forwardKeyframe)
	if got := c.keys.Load(); got != 2 {
		t.Fatalf("a request was forwarded twice: %d", got)
	}
	if st := o.Fanout(); st.KeyframeRequests != 20 || st.KeyframesForwarded != 2 {
		t.Fatalf("stats %+v; want 20 requests, 2 forwarded", st)
	}
}

// The encoder follows the lowest viewer estimate, never below the floor,
// and the viewers left when one goes.
func TestFanoutBitrateLowestWithFloor(t *testing.T) {
	o, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	var c countControl
	o.SetControl(&c)
	a, b := &Peer{}, &Peer{}
	o.viewerBitrate(a, 3_000_000, 300_000)
	o.viewerBitrate(b, 1_000_000, 300_000)
	if got := c.rate.Load(); got != 1_000_000 {
		t.Fatalf("target %d; want the lowest estimate 1000000", got)
	}
	o.viewerBitrate(b, 100_000, 300_000)
	if got := c.rate.Load(); got != 300_000 {
		t.Fatalf("target %d; want the floor 300000", got)
	}
	o.forgetViewer(b)
	if got := c.rate.Load(); got != 3_000_000 {
		t.Fatalf("target %d after the slow viewer left; want 3000000", got)
	}
	o.forgetViewer(a)
	if got := c.rate.Load(); got != 3_000_000 {
		t.Fatalf("target %d with no viewer; want the last one kept", got)
	}
}

type nopWriter struct{ exts, n int }

func (w *nopWriter) WriteRTP(h *rtp.Header, _ []byte) (int, error) {
	w.exts += len(h.Extensions)
	w.n++
	return 1, nil
}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }

// A viewer's write adds its extensions, takes them off again (the next
// viewer may number them differently) and allocates nothing.
func TestWiredWriterPerViewerZeroAllocs(t *testing.T) {
	o, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	o.capture.Store(time.Now().UnixNano())
	var sink nopWriter
	viewers := make([]*wiredWriter, 8)
	for i := range viewers {
		viewers[i] = &wiredWriter{TrackLocalWriter: &sink, out: o, playoutID: uint8(1 + i%3), captureID: uint8(4 + i%3)}
	}
	h := &rtp.Header{Version: 2, Timestamp: 1}
	payload := make([]byte, 1200)
	write := func() {
		h.Timestamp += 3000
		for _, w := range viewers {
			_, _ = w.WriteRTP(h, payload)
			if len(h.Extensions) != 0 {
				t.Fatalf("viewer left %d extensions on the shared header", len(h.Extensions))
			}
		}
	}
	write() // grows the extension slice once
	if n := testing.AllocsPerRun(200, write); n != 0 {
		t.Fatalf("%v allocations per frame for %d viewers; want 0", n, len(viewers))
	}
	if sink.exts == 0 {
		t.Fatal("no viewer's packet carried its extensions")
	}
}

var _ webrtc.TrackLocalWriter = (*nopWriter)(nil)

// A viewer joining mid-stream gets nothing until a keyframe's first
// packet; a viewer already watching gets every packet.
func TestJoiningViewerStartsAtKeyframe(t *testing.T) {
	o, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	var old, joined nopWriter
	watching := &wiredWriter{TrackLocalWriter: &old, out: o}
	joining := &wiredWriter{TrackLocalWriter: &joined, out: o, gated: true}
	seq := uint16(0)
	au := func(key bool, packets int) {
		o.auKey.Store(key)
		o.auSeq.Store(-1)
		for i := range packets {
			h := &rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq / 3), Marker: i == packets-1}
			seq++
			_, _ = watching.WriteRTP(h, []byte{1})
			if i == 0 && seq == 1 {
				continue // the joining viewer binds after the first packet
			}
			_, _ = joining.WriteRTP(h, []byte{1})
		}
	}
	count := func(w *wiredWriter) int { return int(w.TrackLocalWriter.(*nopWriter).n) }
	au(true, 3)  // a keyframe, joined in its middle: withheld
	au(false, 3) // a delta frame: withheld
	if n := count(joining); n != 0 {
		t.Fatalf("joining viewer got %d packets before a keyframe", n)
	}
	au(true, 3) // the next keyframe: from its first packet on
	au(false, 3)
	if n := count(joining); n != 6 {
		t.Fatalf("joining viewer got %d packets; want the keyframe's and the next frame's 6", n)
	}
	if n := count(watching); n != 12 {
		t.Fatalf("watching viewer got %d packets; want all 12", n)
	}
}

type droppingWriter struct{ nopWriter }

// WriteRTP drops (0, nil) until the first call's packet is gone, like
// pion's SRTP writer before DTLS is up.
func (w *droppingWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.n++
	if w.n == 1 {
		return 0, nil
	}
	return 1, nil
}

// A keyframe the transport dropped (not connected yet) does not open the
// gate: the viewer waits for the next one.
func TestGateStaysClosedWhenKeyframeDropped(t *testing.T) {
	o, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	var sink droppingWriter
	w := &wiredWriter{TrackLocalWriter: &sink, out: o, gated: true}
	for seq, key := range []bool{true, false, true} {
		o.auKey.Store(key)
		o.auSeq.Store(-1)
		_, _ = w.WriteRTP(&rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: uint32(seq)}, []byte{1})
	}
	if sink.n != 2 || w.gated {
		t.Fatalf("%d writes reached the transport, gated %v; want the dropped keyframe, then the next keyframe opening the gate", sink.n, w.gated)
	}
}
