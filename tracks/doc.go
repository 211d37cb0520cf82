// Package tracks declares a model's media tracks (VideoOut, AudioOut,
// VideoIn, AudioIn) and the frame types that cross them. It is pure Go: no
// cgo, no codec, no transport.
package tracks
