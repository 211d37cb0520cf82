package peer

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// nal is a NAL unit of type typ (nal_ref_idc 3) with n bytes of payload
// after its header, drawn from r. Payload bytes never make a start code
// (no 0 after a 0), as an encoder's emulation prevention guarantees.
func nal(r *rand.Rand, typ byte, n int) []byte {
	b := make([]byte, 1+n)
	b[0] = 0x60 | typ
	for i := 1; i < len(b); i++ {
		b[i] = byte(r.IntN(256))
		if b[i] == 0 && b[i-1] == 0 {
			b[i] = 1
		}
	}
	if b[len(b)-1] == 0 {
		b[len(b)-1] = 7
	}
	return b
}

// annexB joins units with start codes, 4-byte ones where four is set.
func annexB(four []bool, units ...[]byte) []byte {
	var au []byte
	for i, u := range units {
		if four[i%len(four)] {
			au = append(au, 0)
		}
		au = append(au, 0, 0, 1)
		au = append(au, u...)
	}
	return au
}

type capture struct{ pkts []rtp.Packet }

func (c *capture) write(p *rtp.Packet) error {
	q := *p
	q.Payload = bytes.Clone(p.Payload)
	c.pkts = append(c.pkts, q)
	return nil
}

// The engine's packetizer sends exactly what pion's H264Payloader and
// packetizer send for the access units encoders emit (SPS, PPS and an IDR
// of several slices; P frames of one or more slices; access unit
// delimiters; 3- and 4-byte start codes; units around the FU-A threshold),
// with consecutive sequence numbers, one timestamp an access unit advanced
// by its ticks, and the marker bit on each access unit's last packet.
func TestH264PacketizerMatchesPion(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 50, rtpPayloadMax - 2, rtpPayloadMax - 1, rtpPayloadMax, 2 * (rtpPayloadMax - 2), 2*(rtpPayloadMax-2) + 1, 9000, 40000}
	var aus [][]byte
	for i := range 200 {
		var units [][]byte
		if r.IntN(3) == 0 {
			units = append(units, nal(r, nalAUD, 1))
		}
		typ := byte(1)
		if i%10 == 0 {
			units = append(units, nal(r, nalSPS, 10+r.IntN(20)), nal(r, nalPPS, 3+r.IntN(5)))
			typ = 5
		}
		for range 1 + r.IntN(3) {
			size := sizes[r.IntN(len(sizes))]
			if r.IntN(2) == 0 {
				size = 1 + r.IntN(6000)
			}
			units = append(units, nal(r, typ, size))
		}
		aus = append(aus, annexB([]bool{r.IntN(2) == 0, r.IntN(2) == 0}, units...))
	}
	const ticks = 3000
	ref := rtp.NewPacketizer(rtpPayloadMax+12, 96, 0, &codecs.H264Payloader{}, rtp.NewFixedSequencer(100), 90000)
	z := newH264Packetizer(100, 0)
	// pion's packetizer starts at a random timestamp; both count from
	// their first packet's.
	var refTS0 uint32
	var got capture
	for i, au := range aus {
		want := ref.Packetize(au, ticks)
		got.pkts = got.pkts[:0]
		if err := z.packetize(au, ticks, got.write); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			refTS0 = want[0].Timestamp
		}
		if len(got.pkts) != len(want) {
			t.Fatalf("access unit %d (%d bytes): %d packets, pion sends %d", i, len(au), len(got.pkts), len(want))
		}
		for k, w := range want {
			g := got.pkts[k]
			if !bytes.Equal(g.Payload, w.Payload) {
				t.Fatalf("access unit %d packet %d: payload of %d bytes differs from pion's %d", i, k, len(g.Payload), len(w.Payload))
			}
			if g.Marker != w.Marker || g.SequenceNumber != w.SequenceNumber || g.Timestamp != w.Timestamp-refTS0 {
				t.Fatalf("access unit %d packet %d: marker %v seq %d ts %d; pion %v %d %d", i, k,
					g.Marker, g.SequenceNumber, g.Timestamp, w.Marker, w.SequenceNumber, w.Timestamp-refTS0)
			}
			if g.Version != 2 || len(g.Payload) > rtpPayloadMax {
				t.Fatalf("access unit %d packet %d: version %d, %d-byte payload (at most %d)", i, k, g.Version, len(g.Payload), rtpPayloadMax)
			}
		}
	}
}

// An SPS or PPS without the other, or the two ending an access unit, are
// still sent (pion held them back for a later sample), and the access
// unit's last packet has the marker bit.
func TestH264PacketizerLoneParameterSets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sps, pps, idr := nal(r, nalSPS, 12), nal(r, nalPPS, 4), nal(r, 5, 3000)
	cases := []struct {
		name  string
		au    []byte
		wants [][]byte // NAL units the depacketized stream holds, in order
	}{
		{"SPS alone before the slice", annexB([]bool{true}, sps, idr), [][]byte{sps, idr}},
		{"PPS alone before the slice", annexB([]bool{true}, pps, idr), [][]byte{pps, idr}},
		{"SPS and PPS ending the unit", annexB([]bool{true}, idr, sps, pps), [][]byte{idr, sps, pps}},
		{"only SPS and PPS", annexB([]bool{false}, sps, pps), [][]byte{sps, pps}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got capture
			z := newH264Packetizer(0, 0)
			if err := z.packetize(c.au, 3000, got.write); err != nil {
				t.Fatal(err)
			}
			checkDepacketized(t, got.pkts, c.wants)
		})
	}
}

// checkDepacketized depacketizes pkts with pion's H264Packet and checks
// that they make one access unit of exactly the units in wants.
func checkDepacketized(t *testing.T, pkts []rtp.Packet, wants [][]byte) {
	t.Helper()
	var d codecs.H264Packet
	var stream []byte
	for i, p := range pkts {
		if p.Marker != (i == len(pkts)-1) {
			t.Fatalf("packet %d of %d: marker %v", i, len(pkts), p.Marker)
		}
		b, err := d.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		stream = append(stream, b...)
	}
	want := annexB([]bool{true}, wants...)
	if !bytes.Equal(stream, want) {
		t.Fatalf("depacketized %d bytes differ from the %d expected", len(stream), len(want))
	}
}

// FuzzH264Packetizer: any input is cut into packets of at most
// rtpPayloadMax bytes that pion's depacketizer turns back into the input's
// NAL units (parameter sets aside, whose order the STAP-A may change),
// with the marker bit on the last packet only.
func FuzzH264Packetizer(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	f.Add(annexB([]bool{true}, nal(r, 5, 4000), nal(r, 1, 10)))
	f.Add(annexB([]bool{false, true}, nal(r, nalAUD, 1), nal(r, 1, rtpPayloadMax), nal(r, 1, rtpPayloadMax+1)))
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{0x65, 1, 2, 3})
	f.Fuzz(func(t *testing.T, au []byte) {
		var units [][]byte
		for _, n := range splitNALs(nil, au) {
			if len(n) == 0 {
				continue
			}
			switch typ := n[0] & 0x1f; {
			case typ == nalSPS || typ == nalPPS:
				return // the STAP-A may reorder parameter sets
			case typ == nalAUD || typ == nalFiller:
				continue // dropped
			case typ == 0 || typ > 23:
				return // unspecified or aggregation types: not a unit a depacketizer takes whole
			}
			units = append(units, n)
		}
		var got capture
		if err := newH264Packetizer(0, 0).packetize(au, 3000, got.write); err != nil {
			t.Fatal(err)
		}
		for i, p := range got.pkts {
			if len(p.Payload) > rtpPayloadMax || p.SequenceNumber != uint16(i) {
				t.Fatalf("packet %d: %d bytes, seq %d", i, len(p.Payload), p.SequenceNumber)
			}
		}
		if len(units) == 0 {
			if len(got.pkts) != 0 {
				t.Fatalf("%d packets for an access unit without NAL units", len(got.pkts))
			}
			return
		}
		checkDepacketized(t, got.pkts, units)
	})
}

// Packetizing an H.264 access unit allocates nothing in steady state,
// however many packets it makes.
func TestH264PacketizerZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	au := annexB([]bool{true}, nal(r, nalSPS, 12), nal(r, nalPPS, 4), nal(r, 5, 30000), nal(r, 5, 800))
	z := newH264Packetizer(0, 0)
	n := 0
	write := func(*rtp.Packet) error { n++; return nil }
	step := func() { _ = z.packetize(au, 3000, write) }
	step()
	if a := testing.AllocsPerRun(100, step); a != 0 {
		t.Fatalf("%v allocations per access unit (%d packets); want 0", a, n/101)
	}
}

// BenchmarkOutputWriteSample writes 640×360-sized H.264 access units (7
// packets) through an output bound to a connected pion peer: packetizing,
// the interceptors (NACK history, TWCC, congestion control, reports),
// SRTP and the loopback socket write, the whole send path of a frame. It
// reports pion's allocations along with the engine's (none).
//
//	go test -run '^$' -bench OutputWriteSample -benchmem ./engine/peer/
func BenchmarkOutputWriteSample(b *testing.B) {
	client := newClient(b)
	client.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := r.Read(buf); err != nil {
				return
			}
		}
	})
	o, _ := offer(b, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := answerVideo(b, client, o, out, Handlers{})
	defer func() {
		p.Close()
		_ = client.Close()
	}()
	r := rand.New(rand.NewPCG(9, 10))
	au := annexB([]bool{true}, nal(r, 1, 8000))
	// A joining viewer gets nothing before a keyframe (wiredWriter).
	if err := out.WriteSample(annexB([]bool{true}, nal(r, 5, 8000)), time.Second/30, time.Now(), true); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := out.WriteSample(au, time.Second/30, time.Now(), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64((len(au)+rtpPayloadMax-1)/rtpPayloadMax), "ns/packet")
}
