// Package tracks declares a model's media tracks and carries the frames that
// cross them. It is pure Go: no cgo, no codec, no transport.
//
// A track is a named channel between a model and the client. A model
// declares its tracks as Specs (VideoOutput, AudioOutput, VideoInput,
// AudioInput, each with an optional Rate and Default); Resolve applies the
// Reactor rules: no tracks means one VideoOut named "main_video", and the
// default track is the one marked Default, else the first VideoOut. The name
// is the identifier on both sides: the model's lookups and the client's
// track names use the same string, unchanged.
//
// Each session gets a Set of live tracks built with NewSet:
//
//   - *VideoOut: the model calls Emit with (H, W, 3) or (N, H, W, 3) packed
//     RGB24 (or nil for a 1280×720 black frame), or EmitDevice with a GPU
//     frame; the media pipeline calls Next and releases each frame.
//   - *AudioOut: Emit / EmitFloat32 with mono (N) or planar (C, N) PCM (nil
//     for 20 ms of silence); the pipeline calls Next.
//   - *VideoIn / *AudioIn: the transport calls Deliver; the model reads the
//     freshest data with Latest (a copy), LatestInto or Borrow; a model
//     that must see every frame consumes a MediaQueue (OnMedia).
//
// Lifecycle: NewSet → Emit/Next/Deliver/Latest from any goroutine →
// Set.Close at session end, after which Emit, Next and Deliver return
// ErrClosed. Output queues are bounded; by default a full queue drops its
// oldest frame and counts it, so Emit never waits for the network.
// Frames obtained from Next, Borrow or a MediaBundle are borrowed and must be
// released; steady-state Emit and Deliver allocate nothing.
package tracks
