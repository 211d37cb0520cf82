// Package pipeline carries one output track's media from the track's
// queue to the wire: pacer → colour conversion → encoder → Sink, and one
// input track's media from the wire to the track: decoder → latest
// buffer.
//
// An output track gets one pipeline per session, whatever the number of
// peers: it encodes once and its Sink (engine/peer's Output, over a pion
// RTP track) fans the packets out.
//
// Lifecycle: NewVideo (or NewAudio) builds a pipeline without touching
// native resources; Run drives it on the calling goroutine (and, for
// audio, one goroutine of its own that it waits for) until ctx ends or
// the source fails, then closes its encoder and returns. RunVideo does both
// in one call. RequestKeyframe, SetBitrate and Stats may
// be called from any goroutine at any time, before, during or after Run.
//
// Timing follows a Clock (the system clock unless the config supplies a
// fake): at a declared rate a frame that arrives on rate leaves at once
// and only early frames (bursts, batches, a backlog) are smoothed to the
// rate; for rate 0 each emitted batch is spread over the model's measured
// push interval; after a stall the pacer never bursts to catch up. Audio
// leaves as a continuous stream of 20 ms Opus frames, silence filling any
// gap, its latency trimmed back to the playout target after a stall.
// Every video frame's time from Emit to each stage (dequeued, paced,
// converted, encoded, handed to the sink, written to the socket) is kept
// in VideoStats.Stages. In steady state a frame costs no Go allocation
// from the track's queue to the Sink.
package pipeline
