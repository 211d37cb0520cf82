// Package peer is Framewire's WebRTC transport: one pion PeerConnection per
// connected client, always the answerer, non-trickle (every local candidate is
// in the answer).
//
// The lifecycle has two levels. An [Output] is created once per session and
// per model output track; it owns the pion TrackLocalStaticRTP that the
// encode pipeline writes to (it implements the pipeline's Sink: H.264 is
// packetized by the engine without allocating, VP8 and Opus by pion's
// payloaders) and survives reconnects. A [Peer] is created for each offer (the first connect and every
// reconnect): [Config.Answer] builds the PeerConnection, binds the session's
// outputs to the offer's m-sections by mid (never by m-line order), receives
// the client's input tracks and its "data" channel, and returns the answer.
// Closing the Peer leaves the outputs untouched, so the next Peer re-adds them.
//
// Feedback flows back to the encoder through the [Control] an Output holds:
// PLI/FIR become RequestKeyframe, pion's GCC estimator (one per connection)
// drives SetBitrate. NACKs are answered by pion's NACK responder.
package peer
