package peer

import (
	"fmt"
	"sort"
	"strings"

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
// frame the viewer gets after a resume decodes.

// gate is one output's pause state on one peer; guarded by Peer.gateMu.
type gate struct {
	sender *webrtc.RTPSender
	out    *Output
	paused bool
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
	if g.paused == paused {
		return nil
	}
	if p.closing.Load() {
		return ErrClosed
	}
	if paused {
		if err := g.sender.ReplaceTrack(nil); err != nil {
			return fmt.Errorf("peer: pause %q: %w", name, err)
		}
		g.paused = true
		return nil
	}
	if err := g.sender.ReplaceTrack(g.out.track); err != nil {
		return fmt.Errorf("peer: resume %q: %w", name, err)
	}
	g.paused = false
	if g.out.kind == KindVideo {
		g.out.RequestKeyframe()
	}
	return nil
}

// Paused reports whether output track name is paused on this peer.
func (p *Peer) Paused(name string) bool {
	p.gateMu.Lock()
	defer p.gateMu.Unlock()
	g := p.gates[name]
	return g != nil && g.paused
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
