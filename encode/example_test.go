package encode_test

import (
	"fmt"

	"github.com/framewire/framewire/encode"
)

// Encode one RGB picture with libx264 and decode it back.
func Example() {
	const w, h = 320, 240
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendX264, Width: w, Height: h})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enc.Close()
	dec, err := encode.NewVideoDecoder(encode.CodecH264)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dec.Close()

	pix := make([]byte, w*h*3) // packed RGB24, black
	out := make([]byte, 1<<20)
	n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, 0, out)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("keyframe:", key)
	_ = dec.Decode(out[:n], func(f encode.Frame) error {
		fw, fh := f.Size()
		fmt.Printf("decoded %dx%d\n", fw, fh)
		return nil
	})
	// Output:
	// keyframe: true
	// decoded 320x240
}
