package y4m_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/framewire/framewire/engine/enginetest/y4m"
)

// Reading a stream's frames as packed RGB24 until io.EOF.
func Example() {
	stream := []byte("YUV4MPEG2 W2 H2 F30:1 C420\nFRAME\n\xeb\xeb\xeb\xeb\x80\x80")
	r, err := y4m.NewReader(bytes.NewReader(stream))
	if err != nil {
		panic(err)
	}
	var rgb []byte
	for {
		rgb, err = r.Next(rgb) // reuses rgb
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%dx%d frame, first pixel %v\n", r.Width, r.Height, rgb[:3])
	}
	// Output:
	// 2x2 frame, first pixel [255 255 255]
}
