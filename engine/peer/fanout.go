package peer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Fan-out policy. One Output is encoded once and bound to every viewer
// (Peer) of its session: the Output packetizes each access unit once and
// pion's RTP track writes the same packets to every binding, each through that
// viewer's own interceptors (NACK responder, TWCC, sender reports) and
// SRTP socket. A write to one viewer never waits for another: pion's
// socket writes do not block on a slow receiver (a full socket buffer
// drops the packet, which that viewer's NACK or PLI then repairs), so a
// viewer that cannot keep up degrades alone and is dropped when its
// connection fails or its data channel falls silent (the protocol's
// liveness check).
//
// Shared decisions:
//
//   - Keyframes. A request (PLI/FIR from any viewer, a viewer joining) is
//     forwarded to the encoder at once unless one was forwarded less than
//     KeyframeInterval ago; then it is held and forwarded by the first
//     sample written after the interval. Requests from many viewers thus
//     coalesce into at most one keyframe per interval, and a joining
//     viewer waits at most one interval for its first keyframe.
//   - Bitrate. The encoder's target is the lowest congestion-controller
//     estimate among the bound viewers, but never below the floor
//     (Config.MinBitrate, shared among the peer's video outputs): one
//     viewer on a bad link may not pull everyone below a watchable rate;
//     it gets the floor-rate stream and repairs its losses itself, or is
//     lost. With no viewer left the last target stays.

// KeyframeInterval is the shortest time between two keyframe requests an
// Output forwards to its encoder.
const KeyframeInterval = 250 * time.Millisecond

// fanout is an Output's shared per-viewer state.
type fanout struct {
	lastKey atomic.Int64 // UnixNano of the last request forwarded
	heldKey atomic.Bool  // a request arrived within the interval

	mu    sync.Mutex
	rates map[*Peer]int // each viewer's share of its estimate
	floor int
	keyFw atomic.Uint64 // requests forwarded
	keyRq atomic.Uint64 // requests received
}

// requestKeyframe applies the keyframe throttle at now; forward is called
// when the request goes to the encoder.
func (f *fanout) requestKeyframe(now time.Time, forward func()) {
	f.keyRq.Add(1)
	last := f.lastKey.Load()
	if now.UnixNano()-last < int64(KeyframeInterval) {
		f.heldKey.Store(true)
		return
	}
	if !f.lastKey.CompareAndSwap(last, now.UnixNano()) {
		f.heldKey.Store(true) // a concurrent request won this slot
		return
	}
	f.heldKey.Store(false)
	f.keyFw.Add(1)
	forward()
}

// flushHeld forwards a held request once the interval passed. It runs on
// the writing goroutine, once per sample; it does not allocate.
func (f *fanout) flushHeld(now time.Time, forward func()) {
	if !f.heldKey.Load() || now.UnixNano()-f.lastKey.Load() < int64(KeyframeInterval) {
		return
	}
	f.requestKeyframe(now, forward)
	f.keyRq.Add(^uint64(0)) // not a new request
}

// setRate records viewer p's estimate share and returns the encoder's new
// target: max(floor, min over viewers).
func (f *fanout) setRate(p *Peer, bps, floor int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rates == nil {
		f.rates = map[*Peer]int{}
	}
	f.rates[p] = bps
	f.floor = floor
	return f.targetLocked()
}

// forget drops viewer p and returns the target for the viewers left (0
// when none is left: keep the current one).
func (f *fanout) forget(p *Peer) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rates[p]; !ok {
		return 0
	}
	delete(f.rates, p)
	return f.targetLocked()
}

func (f *fanout) targetLocked() int {
	low := 0
	for _, r := range f.rates {
		if low == 0 || r < low {
			low = r
		}
	}
	if low == 0 {
		return 0
	}
	return max(low, f.floor)
}

// FanoutStats is a snapshot of an Output's shared decisions.
type FanoutStats struct {
	Viewers            int // viewers with a bitrate estimate
	KeyframeRequests   uint64
	KeyframesForwarded uint64
	TargetBitrate      int // the encoder target the viewers' estimates give (0: none yet)
}

// Fanout returns the output's fan-out counters.
func (o *Output) Fanout() FanoutStats {
	o.fan.mu.Lock()
	defer o.fan.mu.Unlock()
	return FanoutStats{Viewers: len(o.fan.rates), KeyframeRequests: o.fan.keyRq.Load(), KeyframesForwarded: o.fan.keyFw.Load(), TargetBitrate: o.fan.targetLocked()}
}
