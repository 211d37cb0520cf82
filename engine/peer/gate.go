package peer

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Per-connection gates (the control channel's pause_track/resume_track).
// A paused output is unbound from this peer's sender (pion's
// RTPSender.ReplaceTrack(nil)): the shared encoder and every other viewer
// go on untouched, and the writing goroutine does no work for this viewer
// at all, so the fan-out's per-frame cost (and its zero allocations) is
// the same. Resuming binds the output again: the new binding starts gated
// like a joining viewer (nothing until a keyframe's first packet) and asks
// the encoder for a keyframe through the shared throttle, so the first
// frame the viewer gets after a resume decodes. A paused viewer's
// congestion estimate leaves the fan-out's bitrate policy until it
// resumes.

// gate is one output's pause state on one peer. paused changes under
// Peer.gateMu only; onBitrate reads it without.
type gate struct {
	sender *webrtc.RTPSender
	out    *Output
	paused atomic.Bool
}

// SetPaused pauses (true) or resumes (false) output track name for this
// peer alone. Pausing a paused track or resuming a running one is a no-op.
// A name that is not one of the peer's outputs gets ErrUnknownTrack,
// naming the ones it has. It may block briefly while the output writes a
// sample; it is safe for concurrent use, but not from a Handlers callback
// that pion runs while holding the sender (none does).
func (p *Peer) SetPaused(name string, paused bool) error {
	p.gateMu.Lock()
	defer p.gateMu.Unlock()
	g := p.gates[name]
	if g == nil {
		names := make([]string, 0, len(p.gates))
		for n := range p.gates {
			names = append(names, n)
		}
		sort.Strings(names)
		have := "no output track"
		if len(names) > 0 {
			have = "output tracks " + strings.Join(names, ", ")
		}
		return fmt.Errorf("%w: %q (this connection receives %s)", ErrUnknownTrack, name, have)
	}
	if g.paused.Load() == paused {
		return nil
	}
	if p.closing.Load() {
		return ErrClosed
	}
	if paused {
		if err := g.sender.ReplaceTrack(nil); err != nil {
			return fmt.Errorf("peer: pause %q: %w", name, err)
		}
		g.paused.Store(true)
		// While paused this viewer's estimate does not count in the
		// encoder's target (it receives nothing to estimate with).
		g.out.forgetViewer(p)
		return nil
	}
	if err := g.sender.ReplaceTrack(g.out.track); err != nil {
		return fmt.Errorf("peer: resume %q: %w", name, err)
	}
	g.paused.Store(false)
	if g.out.kind == KindVideo {
		g.out.RequestKeyframe()
		if bps := p.bitrate.Load(); bps > 0 {
			p.onBitrate(int(bps))
		}
	}
	return nil
}

// Paused reports whether output track name is paused on this peer.
func (p *Peer) Paused(name string) bool {
	p.gateMu.Lock()
	defer p.gateMu.Unlock()
	g := p.gates[name]
	return g != nil && g.paused.Load()
}

// SendControl sends one text frame on the client's "control" channel. It
// returns ErrChannelNotOpen when the client has none open. It does not
// block on the network.
func (p *Peer) SendControl(text []byte) error {
	if len(text) > p.maxMsg {
		return fmt.Errorf("%w: %d bytes, client accepts at most %d", ErrMessageTooLarge, len(text), p.maxMsg)
	}
	dc := p.ctlDC.Load()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrChannelNotOpen
	}
	if err := dc.SendText(string(text)); err != nil {
		return fmt.Errorf("peer: send control: %w", err)
	}
	return nil
}
