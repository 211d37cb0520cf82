package peer

import (
	"testing"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
)

// IsKeyframe agrees with the encoder on real libx264 and libvpx output:
// the first picture and a requested one are keyframes, the others not.
func TestIsKeyframe(t *testing.T) {
	for _, tc := range []struct {
		backend encode.Backend
		codec   Codec
	}{{encode.BackendX264, CodecH264}, {encode.BackendVP8, CodecVP8}} {
		t.Run(string(tc.codec), func(t *testing.T) {
			enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: tc.backend, Width: 160, Height: 120})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			img := encode.Image{Pix: make([]byte, 160*120*3), Width: 160, Height: 120}
			out := make([]byte, 1<<20)
			keys := 0
			for i := range 12 {
				if i == 8 {
					enc.RequestKeyframe()
				}
				encodetest.Scene(img.Pix, 160, 120, i)
				n, key, err := enc.Encode(img, int64(i)*3000, out)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					continue
				}
				if got := IsKeyframe(tc.codec, out[:n]); got != key {
					t.Errorf("picture %d: IsKeyframe %v, the encoder says %v", i, got, key)
				}
				if key {
					keys++
				}
			}
			if keys != 2 {
				t.Errorf("%d keyframes, want the first and the requested one", keys)
			}
		})
	}
	if IsKeyframe(CodecH264, []byte{0, 0, 1}) || IsKeyframe(CodecVP8, nil) || IsKeyframe(CodecOpus, []byte{0}) {
		t.Error("truncated or audio samples taken for keyframes")
	}
}
