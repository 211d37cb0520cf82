package peer

import (
	"bytes"
	"encoding/binary"

	"github.com/pion/rtp"
)

// rtpPayloadMax is the largest RTP payload an output sends: pion's
// outbound MTU (1200 bytes, kept clear of tunnels' and TURN's overhead on
// the way to a browser) less the 12-byte fixed header, as pion's sample
// track packetizes.
const rtpPayloadMax = 1200 - 12

// H.264 NAL unit types and RTP payload structures (RFC 6184) the
// packetizer reads or writes.
const (
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalFiller = 12
	nalSTAPA  = 24
	nalFUA    = 28
	stapAHead = 0x78 // F=0, NRI=3, type 24: pion's header for SPS+PPS
)

// h264Packetizer splits Annex-B H.264 access units into RTP packets as
// pion's codecs.H264Payloader does (RFC 6184 non-interleaved mode: access
// unit delimiters and filler dropped, SPS and PPS aggregated into one
// STAP-A before the next NAL unit, units over rtpPayloadMax fragmented
// into FU-A, the marker bit on the access unit's last packet), without
// allocating in steady state: a NAL unit that fits is sent from the
// caller's buffer, FU-A and STAP-A payloads are built in one reused
// buffer, and one packet header is reused. Its payloads are valid only
// during the write call, which suffices because pion's write path is
// synchronous: the NACK responder copies what it keeps, SRTP encrypts into
// its own buffer, and the congestion controller's pacer is gcc's no-op
// one (see newAPI).
//
// Three cases pion handles differently, all outside what encoders emit:
// an SPS or PPS without the other is sent alone before the next NAL unit,
// or with the marker bit when it ends the access unit (pion kept it, still
// pointing into a buffer the caller may have reused, for a later sample);
// and an SPS and PPS too large for one STAP-A are sent one by one (pion
// dropped both).
//
// It is not safe for concurrent use; Output serializes its calls.
type h264Packetizer struct {
	seq  uint16 // sequence number of the next packet
	ts   uint32 // RTP timestamp of the next access unit
	pkt  rtp.Packet
	exts [4]rtp.Extension // the header's extension slice: room for the viewers' and TWCC's
	nals [][]byte         // the access unit's NAL units, reused
	buf  [rtpPayloadMax]byte
}

func newH264Packetizer(seq uint16, ts uint32) *h264Packetizer {
	z := &h264Packetizer{seq: seq, ts: ts}
	z.pkt.Version = 2
	z.pkt.Extensions = z.exts[:0]
	return z
}

// rtpClock turns sample durations into RTP clock ticks, carrying the
// fraction of a tick to the next sample as pion's sample track does, so
// 30 fps at 90 kHz or odd durations do not drift.
type rtpClock struct {
	rate float64 // ticks a second
	rem  float64
}

// ticks returns how many whole ticks d seconds last, plus the fraction
// carried.
func (c *rtpClock) ticks(seconds float64) uint32 {
	cur := seconds*c.rate + c.rem
	n := uint32(cur)
	c.rem = cur - float64(n)
	return n
}

// splitNALs appends au's NAL units to dst[:0] as pion's emitNalus finds
// them: everything before the first 3-byte start code is skipped (all of
// au is one unit when it has none), and a unit ends where the next start
// code begins, less the leading zero of a 4-byte one.
func splitNALs(dst [][]byte, au []byte) [][]byte {
	dst = dst[:0]
	start := bytes.Index(au, []byte{0, 0, 1})
	if start < 0 {
		return append(dst, au)
	}
	offset := 3
	for start < len(au) {
		end := bytes.Index(au[start+offset:], []byte{0, 0, 1})
		if end < 0 {
			return append(dst, au[start+offset:])
		}
		next := start + offset + end
		four := au[next-1] == 0
		if four {
			next--
		}
		dst = append(dst, au[start+offset:next])
		start, offset = next, 3
		if four {
			offset = 4
		}
	}
	return dst
}

// packetize writes au, which lasts ticks of the RTP clock, as RTP
// packets through write, and returns the first error write returned (the
// packets after it are still written, as pion's sample track does).
func (z *h264Packetizer) packetize(au []byte, ticks uint32, write func(*rtp.Packet) error) error {
	a := auWriter{z: z, ts: z.ts, write: write}
	z.ts += ticks
	z.nals = splitNALs(z.nals, au)
	// The last NAL unit that gets a packet, for the marker bit.
	last := -1
	for i, n := range z.nals {
		if len(n) > 0 && n[0]&0x1f != nalAUD && n[0]&0x1f != nalFiller {
			last = i
		}
	}
	for i, n := range z.nals {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case nalAUD, nalFiller:
			continue
		case nalSPS, nalPPS:
			if n[0]&0x1f == nalSPS {
				a.sps = n
			} else {
				a.pps = n
			}
			if i == last {
				a.params(true)
			}
			continue
		}
		if a.sps != nil || a.pps != nil {
			a.params(false)
		}
		a.unit(n, i == last)
	}
	return a.err
}

// auWriter is one access unit's packetization: its timestamp, the SPS
// and PPS waiting for the next NAL unit, and the first write error.
type auWriter struct {
	z        *h264Packetizer
	ts       uint32
	write    func(*rtp.Packet) error
	sps, pps []byte
	err      error
}

// send writes one packet of payload.
func (a *auWriter) send(payload []byte, marker bool) {
	z := a.z
	z.pkt.SequenceNumber, z.pkt.Timestamp, z.pkt.Marker = z.seq, a.ts, marker
	z.pkt.Payload = payload
	z.seq++
	if err := a.write(&z.pkt); err != nil && a.err == nil {
		a.err = err
	}
}

// unit sends one NAL unit whole or as FU-A fragments.
func (a *auWriter) unit(n []byte, marker bool) {
	if len(n) <= rtpPayloadMax {
		a.send(n, marker)
		return
	}
	buf := &a.z.buf
	indicator, typ := n[0]&0x60|nalFUA, n[0]&0x1f
	rest := n[1:]
	for off := 0; off < len(rest); {
		size := min(rtpPayloadMax-2, len(rest)-off)
		hdr := typ
		if off == 0 {
			hdr |= 0x80
		} else if off+size == len(rest) {
			hdr |= 0x40
		}
		buf[0], buf[1] = indicator, hdr
		copy(buf[2:], rest[off:off+size])
		off += size
		a.send(buf[:2+size], marker && off == len(rest))
	}
}

// params sends the pending SPS and PPS: as one STAP-A when both are
// there and fit, else each alone.
func (a *auWriter) params(marker bool) {
	sps, pps := a.sps, a.pps
	a.sps, a.pps = nil, nil
	if sps != nil && pps != nil && 1+2+len(sps)+2+len(pps) <= rtpPayloadMax {
		b := append(a.z.buf[:0], stapAHead)
		b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
		b = append(b, sps...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
		b = append(b, pps...)
		a.send(b, marker)
		return
	}
	if sps != nil {
		a.unit(sps, marker && pps == nil)
	}
	if pps != nil {
		a.unit(pps, marker)
	}
}
