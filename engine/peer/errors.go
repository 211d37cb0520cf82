package peer

import "errors"

var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("peer: closed")
	// ErrBadOffer is wrapped by Answer when the offer is not a usable SDP
	// offer or does not match the track mapping.
	ErrBadOffer = errors.New("peer: bad offer")
	// ErrNoCodec is wrapped when the offer has no codec this engine can send
	// or receive on an m-section (video: H.264 packetization-mode 1 or VP8;
	// audio: Opus).
	ErrNoCodec = errors.New("peer: no usable codec")
	// ErrMessageTooLarge is returned by Send for a message larger than the
	// client's a=max-message-size (64 KiB when its offer has none).
	ErrMessageTooLarge = errors.New("peer: data-channel message larger than the client accepts")
	// ErrInboundTooLarge is returned by InboundStalled when the client sent
	// a data-channel message too large to ever be received: its channel
	// is dead.
	ErrInboundTooLarge = errors.New("peer: the client sent a data-channel message too large to receive")
	// ErrChannelNotOpen is returned by Send before the client's "data"
	// channel is open or after it closed.
	ErrChannelNotOpen = errors.New("peer: data channel not open")
	// ErrUnknownTrack is returned by SetPaused for a name that is not one
	// of the peer's output tracks.
	ErrUnknownTrack = errors.New("peer: no such output track on this connection")
)
