package peer

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine/enginetest/loopback"
)

// lossyNet is pion's network whose UDP sockets lose, on the way in, the
// first copy of every tenth RTP media packet (by sequence number, read
// from the unencrypted header): the loss a network causes, before SRTP.
type lossyNet struct {
	*stdnet.Net
	d *dropper
}

type dropper struct {
	mu      sync.Mutex
	seen    map[uint16]bool
	dropped map[uint16]bool
}

func (n lossyNet) ListenUDP(network string, a *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, a)
	if err != nil {
		return nil, err
	}
	return &lossyConn{UDPConn: c, d: n.d}, nil
}

type lossyConn struct {
	*net.UDPConn
	d *dropper
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		// RTP (RFC 7983: first byte 128-191), not RTCP (types 192-223).
		if err != nil || n < 12 || b[0] < 128 || b[0] > 191 || b[1] >= 192 && b[1] <= 223 {
			return n, addr, err
		}
		seq := binary.BigEndian.Uint16(b[2:4])
		c.d.mu.Lock()
		drop := !c.d.seen[seq] && seq%10 == 3
		c.d.seen[seq] = true
		if drop {
			c.d.dropped[seq] = true
		}
		c.d.mu.Unlock()
		if !drop {
			return n, addr, err
		}
	}
}

// The engine's NACK responder answers a real pion client's NACKs: with
// every tenth packet lost on its first trip, the client still ends up
// with every packet of every access unit, each lost one retransmitted
// from the kept history.
func TestNackResponderRepairsLoss(t *testing.T) {
	defer goleak.VerifyNone(t)
	d := &dropper{seen: map[uint16]bool{}, dropped: map[uint16]bool{}}
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	client := loopback.NewT(t, loopback.Options{Net: lossyNet{std, d}})
	var mu sync.Mutex
	got := map[uint16]bool{}
	client.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			got[p.SequenceNumber] = true
			mu.Unlock()
		}
	})
	o, _ := offer(t, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := answerVideo(t, client, o, out, Handlers{})
	defer p.Close()
	defer client.Close()
	r := rand.New(rand.NewPCG(11, 12))
	first := out.h264.seq
	// A keyframe opens the viewer's stream, then P frames of 5 packets.
	for i := range 60 {
		typ, key := byte(1), i == 0
		if key {
			typ = 5
		}
		if err := out.WriteSample(annexB([]bool{true}, nal(r, typ, 5000)), time.Second/30, time.Now(), key); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	last := out.h264.seq // one past the last checked
	deadline := time.Now().Add(5 * time.Second)
	for {
		// More frames after the checked ones: the client notices a loss
		// only when a later packet arrives.
		if err := out.WriteSample(annexB([]bool{true}, nal(r, 1, 5000)), time.Second/30, time.Now(), false); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		missing := 0
		for s := first; s != last; s++ {
			if !got[s] {
				missing++
			}
		}
		mu.Unlock()
		d.mu.Lock()
		dropped := len(d.dropped)
		d.mu.Unlock()
		if missing == 0 {
			if dropped < 20 {
				t.Fatalf("only %d packets dropped of %d: the test did not exercise NACKs", dropped, int(last-first))
			}
			t.Logf("%d packets sent, %d lost on their first trip, all repaired", int(last-first), dropped)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d packets never arrived (%d dropped once): NACKs not answered", missing, int(last-first), dropped)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type countWriter struct{ seqs []uint16 }

func (w *countWriter) Write(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
	w.seqs = append(w.seqs, h.SequenceNumber)
	return 0, nil
}

// A packet NACKed again within an RTT (plus 5 ms) of its retransmission
// is not sent a second time; after that it is. Retransmissions stay
// within the target bitrate over the window; keeping a packet allocates
// nothing.
func TestNackResponderSuppressesAndLimits(t *testing.T) {
	now := time.Unix(1000, 0)
	bps, limited := 0, false
	r := &nackResponder{streams: map[uint32]*sentHistory{}, now: func() time.Time { return now },
		target: func() (int, bool) { return bps, limited }}
	var w countWriter
	info := &interceptor.StreamInfo{SSRC: 7, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	send := r.BindLocalStream(info, &w)
	payload := make([]byte, 1000)
	hdr := &rtp.Header{Version: 2, SSRC: 7}
	for seq := range uint16(100) {
		hdr.SequenceNumber = seq
		if _, err := send.Write(hdr, payload, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.seqs = nil
	nackOf := func(seqs ...uint16) *rtcp.TransportLayerNack {
		return &rtcp.TransportLayerNack{MediaSSRC: 7, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
	}
	r.resend(nackOf(5, 6))
	r.resend(nackOf(5))
	if len(w.seqs) != 2 || w.seqs[0] != 5 || w.seqs[1] != 6 {
		t.Fatalf("resent %v; want [5 6] once (the second NACK came within the RTT)", w.seqs)
	}
	now = now.Add(10 * time.Millisecond)
	r.resend(nackOf(5))
	if len(w.seqs) != 3 {
		t.Fatalf("resent %v; want 5 again 10 ms later (RTT unknown: 5 ms)", w.seqs)
	}
	// 80 kbit/s: 5,000 bytes a 500 ms window, five 1,012-byte packets.
	bps, limited = 80_000, true
	w.seqs = nil
	seqs := make([]uint16, 0, 40)
	for s := range uint16(40) {
		seqs = append(seqs, 50+s)
	}
	r.resend(nackOf(seqs...))
	if len(w.seqs) == 0 || len(w.seqs) > 5 {
		t.Fatalf("resent %d packets at 80 kbit/s; want 1 to 5", len(w.seqs))
	}
	hdr.SequenceNumber = 200
	if n := testing.AllocsPerRun(100, func() { _, _ = send.Write(hdr, payload, nil) }); n != 0 {
		t.Fatalf("%v allocations to keep a packet; want 0", n)
	}
}

// Two goroutines answering the same NACK at once (pion hands a compound
// RTCP packet to every sender it names) resend each packet once, and the
// race detector finds nothing shared unguarded.
func TestNackResponderConcurrentReaders(t *testing.T) {
	r := &nackResponder{streams: map[uint32]*sentHistory{}, now: time.Now,
		target: func() (int, bool) { return 0, false }}
	var mu sync.Mutex
	var sent []uint16
	w := interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		time.Sleep(20 * time.Microsecond) // a socket write: the readers overlap
		if len(p) != 1100 || p[0] != byte(h.SequenceNumber) {
			t.Errorf("packet %d resent with another's payload", h.SequenceNumber)
		}
		mu.Lock()
		sent = append(sent, h.SequenceNumber)
		mu.Unlock()
		return 0, nil
	})
	info := &interceptor.StreamInfo{SSRC: 9, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	send := r.BindLocalStream(info, w)
	payload := make([]byte, 1100)
	for seq := range uint16(64) {
		payload[0] = byte(seq)
		_, _ = send.Write(&rtp.Header{Version: 2, SSRC: 9, SequenceNumber: seq}, payload, nil)
	}
	mu.Lock()
	sent = nil
	mu.Unlock()
	seqs := make([]uint16, 64)
	for i := range seqs {
		seqs[i] = uint16(i)
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: 9, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { r.resend(nack) })
	}
	wg.Wait()
	if len(sent) != 64 {
		t.Fatalf("%d packets resent for 64 NACKed by two readers at once; want each once", len(sent))
	}
}
