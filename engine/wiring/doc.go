// Package wiring binds one engine session to its WebRTC peers: each output
// track the client negotiates gets a media pipeline (package pipeline)
// writing into a peer output (package peer), and each track the client
// sends is decoded into the session's input track. Every goroutine it
// starts runs under the session's errgroup (engine.Session.Go), so stopping
// the session waits for all of them; none is owned by the transport.
//
// The three routes through the engine, each package entered once:
//
//	video out: tracks.VideoOut.Emit → pipeline.Video (pace, convert, encode)
//	           → peer.Output (pion track, RTP) → the client
//	webcam in: the client → peer.Inbound (jitter buffer, depacketize)
//	           → wiring receive loop → pipeline.VideoReceiver (decode)
//	           → tracks.VideoIn (Latest)
//	commands:  the client's data channel → package protocol (envelope)
//	           → engine.Session.Dispatch (validate, one queue) → handler
//
// Package protocol uses a Wiring to start sessions and to prepare each
// offer's binding; a program that speaks its own signalling can do the
// same with packages peer and wiring alone.
package wiring
