package peer

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// nackHistory is how many of a stream's last packets the NACK responder
// keeps for retransmission: pion's default, over a second at 8 Mbit/s.
const nackHistory = 1024

// sentSlotSize bounds a kept packet (header with extensions and payload);
// the engine's are at most about 1,240 bytes. A larger one is sent but
// cannot be retransmitted.
const sentSlotSize = 1500

// nackResponderFactory makes the engine's NACK responder, which replaces
// pion's (nack.ResponderInterceptor) with the same answers: a packet the
// receiver reports lost is written again through the rest of the chain
// (TWCC, congestion control, SRTP) unless it was resent less than an RTT
// (from the receiver reports) plus 5 ms ago, and retransmissions stay
// within the congestion controller's target bitrate over a 500 ms window
// (pion's rule, copied). Streams that did not negotiate "nack" feedback
// are left alone; retransmission streams (RTX) are not negotiated here.
//
// What differs is the cost of keeping the packets: each stream's last
// nackHistory packets are marshalled into one array allocated when the
// stream is bound, without pointers, so keeping a packet allocates
// nothing and the collector has nothing in it to scan. pion's copied
// each packet into a pooled object with a cloned header (two allocations
// a packet), and in the capacity benchmark it cost about as much again
// as the congestion controller.
type nackResponderFactory struct {
	log *slog.Logger
	// target reports the congestion controller's target bitrate, false
	// before it runs (then retransmissions are not limited, as pion's).
	target func() (int, bool)
}

func (f nackResponderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackResponder{log: f.log, target: f.target, streams: map[uint32]*sentHistory{}, now: time.Now}, nil
}

type nackResponder struct {
	interceptor.NoOp
	log     *slog.Logger
	target  func() (int, bool)
	now     func() time.Time
	rate    resendRate
	mu      sync.Mutex
	streams map[uint32]*sentHistory
}

// sentHistory is one local stream's kept packets.
type sentHistory struct {
	writer interceptor.RTPWriter
	mu     sync.Mutex // guards slots, rtt and rttSamples
	slots  []sentSlot
	rtt    time.Duration
	rttN   int64
}

// sentSlot is one kept packet, marshalled; n is 0 for none.
type sentSlot struct {
	seq    uint16
	n      uint16
	resent int64 // UnixNano of the last retransmission, 0 for none
	buf    [sentSlotSize]byte
}

func supportsNack(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// BindLocalStream keeps each packet of a stream that negotiated NACK
// before passing it on.
func (r *nackResponder) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !supportsNack(info) {
		return w
	}
	h := &sentHistory{writer: w, slots: make([]sentSlot, nackHistory)}
	r.mu.Lock()
	r.streams[info.SSRC] = h
	r.mu.Unlock()
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(hdr *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if hdr.SSRC == ssrc {
			h.keep(hdr, payload)
		}
		return w.Write(hdr, payload, a)
	})
}

// keep marshals the packet into its sequence number's slot.
func (h *sentHistory) keep(hdr *rtp.Header, payload []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.slots[int(hdr.SequenceNumber)%len(h.slots)]
	s.n = 0
	if hdr.MarshalSize()+len(payload) > len(s.buf) {
		return
	}
	n, err := hdr.MarshalTo(s.buf[:])
	if err != nil {
		return
	}
	n += copy(s.buf[n:], payload)
	s.seq, s.n, s.resent = hdr.SequenceNumber, uint16(n), 0
}

// UnbindLocalStream forgets the stream's packets.
func (r *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

// Close forgets every stream.
func (r *nackResponder) Close() error {
	r.mu.Lock()
	clear(r.streams)
	r.mu.Unlock()
	return nil
}

// BindRTCPReader answers the NACKs and notes the round-trip times of the
// reports the receiver sends, after the inner interceptors read them.
func (r *nackResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = make(interceptor.Attributes)
		}
		pkts, err := attr.GetRTCPPackets(b[:n])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				r.noteRTT(p.Reports)
			case *rtcp.SenderReport:
				r.noteRTT(p.Reports)
			case *rtcp.TransportLayerNack:
				r.resend(p)
			}
		}
		return n, attr, nil
	})
}

// noteRTT folds each report's round trip (RFC 3550 6.4.1: now − LSR −
// DLSR, in 1/65536 s) into its stream's mean.
func (r *nackResponder) noteRTT(reports []rtcp.ReceptionReport) {
	now := ntp32(r.now())
	for _, rep := range reports {
		r.mu.Lock()
		h := r.streams[rep.SSRC]
		r.mu.Unlock()
		if h == nil || rep.LastSenderReport == 0 {
			continue
		}
		if d := now - rep.LastSenderReport - rep.Delay; d < 1<<31 {
			h.mu.Lock()
			h.rttN++
			h.rtt += (time.Duration(d)*time.Second/(1<<16) - h.rtt) / time.Duration(h.rttN)
			h.mu.Unlock()
		}
	}
}

// ntp32 is the middle 32 bits of t's 64-bit NTP timestamp.
func ntp32(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}

// resend writes again the kept packets nack lists, in order, until the
// retransmission budget runs out. It may run on several goroutines at
// once (pion hands a compound RTCP packet to the reader of every sender
// it names): each copies a packet out under the stream's lock, and the
// resend time noted there keeps a second reader from sending it again.
func (r *nackResponder) resend(nack *rtcp.TransportLayerNack) {
	r.mu.Lock()
	h := r.streams[nack.MediaSSRC]
	r.mu.Unlock()
	if h == nil {
		return
	}
	var buf [sentSlotSize]byte
	var pkt rtp.Packet
	for i := range nack.Nacks {
		limited := false
		nack.Nacks[i].Range(func(seq uint16) bool {
			now := r.now()
			h.mu.Lock()
			s := &h.slots[int(seq)%len(h.slots)]
			n := int(s.n)
			if n == 0 || s.seq != seq || s.resent != 0 && now.UnixNano()-s.resent < int64(h.rtt+5*time.Millisecond) {
				h.mu.Unlock()
				return true
			}
			if bps, ok := r.target(); ok && !r.rate.allow(now, n, bps) {
				h.mu.Unlock()
				limited = true
				return false
			}
			s.resent = now.UnixNano()
			copy(buf[:], s.buf[:n])
			h.mu.Unlock()
			if err := pkt.Unmarshal(buf[:n]); err != nil {
				return true
			}
			if _, err := h.writer.Write(&pkt.Header, pkt.Payload, nil); err != nil {
				r.log.Warn("nack: resend failed", "seq", seq, "err", err)
			}
			return true
		})
		if limited {
			return
		}
	}
}

// resendWindow is the retransmission budget's window in milliseconds.
const resendWindow = 500

// resendRate keeps retransmissions within the target bitrate over the
// last resendWindow milliseconds: pion's nack.retransmissionRate, copied
// (it is unexported there).
type resendRate struct {
	sync.Mutex
	start   time.Time
	first   int64
	last    int64
	bytes   int64
	samples int64
	buckets [resendWindow]struct{ bytes, samples int64 }
}

func (r *resendRate) allow(now time.Time, size, targetBitrate int) bool {
	r.Lock()
	defer r.Unlock()
	if r.start.IsZero() {
		r.start = now
	}
	elapsed := max(now.Sub(r.start).Milliseconds(), r.last)
	for tick := r.last + 1; tick <= min(elapsed, r.last+resendWindow); tick++ {
		bucket := &r.buckets[tick%resendWindow]
		r.bytes -= bucket.bytes
		r.samples -= bucket.samples
		bucket.bytes, bucket.samples = 0, 0
	}
	r.last = elapsed
	// Bound startup bursts while allowing one packet at low rates.
	budget := float64(max(targetBitrate, 0)) * resendWindow / 8000
	window := min(elapsed-r.first+1, resendWindow)
	switch {
	case r.samples == 0:
		r.first = elapsed
	case float64(r.bytes)+float64(size) > budget:
		return false
	case window > 1 && (r.samples > 1 || window == resendWindow):
		rate := math.Round(float64(r.bytes) * 8000 / float64(window))
		addition := int64(size) * 8000 / resendWindow
		if rate+float64(addition) > float64(max(targetBitrate, 0)) {
			return false
		}
	}
	bucket := &r.buckets[elapsed%resendWindow]
	bucket.bytes += int64(size)
	bucket.samples++
	r.bytes += int64(size)
	r.samples++
	return true
}
