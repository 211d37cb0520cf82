// Package encode holds Framewire's codecs: video encoders (libx264,
// h264_nvenc, libvpx VP8) and decoders (FFmpeg h264 and vp8) over
// go-astiav and the project's own FFmpeg 7.1 build, with colour conversion
// between packed RGB24 and the codecs' planar formats (swscale, and
// AVX-512 and AVX2 kernels for same-size RGB24 → I420,
// encode/internal/yuv).
//
// Every encoder and decoder is owned by one goroutine (it is not safe for
// concurrent use), converts and codes without allocating Go memory in
// steady state, and has one idempotent Close that frees its native memory.
// The package knows nothing about sessions, tracks or transports: the
// engine drives it through small interfaces of its own.
package encode
