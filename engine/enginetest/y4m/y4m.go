// Package y4m reads YUV4MPEG2 (Y4M) video, 4:2:0, as packed RGB24 frames:
// the face video the demo's tests play (Megamind.avi converted by
// .ci/deps.sh facevideo), read without FFmpeg.
package y4m

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reader reads one Y4M stream's frames in order. It is not safe for
// concurrent use.
type Reader struct {
	r *bufio.Reader
	// Width and Height are the frames' size, from the stream header.
	Width, Height int
	yuv           []byte
}

// NewReader reads the stream header from r. Only 4:2:0 streams (C420*,
// or no C tag) are accepted.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	header, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "YUV4MPEG2 ") {
		return nil, fmt.Errorf("y4m: not a Y4M stream (header %.40q): %v", header, err)
	}
	y := &Reader{r: br}
	for _, tok := range strings.Fields(header)[1:] {
		switch tok[0] {
		case 'W':
			y.Width, _ = strconv.Atoi(tok[1:])
		case 'H':
			y.Height, _ = strconv.Atoi(tok[1:])
		case 'C':
			if !strings.HasPrefix(tok, "C420") {
				return nil, fmt.Errorf("y4m: colour space %s; want 4:2:0", tok)
			}
		}
	}
	if y.Width < 1 || y.Height < 1 {
		return nil, fmt.Errorf("y4m: header %q has no size", strings.TrimSpace(header))
	}
	cw, ch := (y.Width+1)/2, (y.Height+1)/2
	y.yuv = make([]byte, y.Width*y.Height+2*cw*ch)
	return y, nil
}

// Next reads the next frame into rgb (reusing it when large enough) as
// packed RGB24, Width*Height*3 bytes, BT.601 limited range, and returns
// it. At the end of the stream it returns io.EOF.
func (y *Reader) Next(rgb []byte) ([]byte, error) {
	line, err := y.r.ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		return rgb, io.EOF
	}
	if err != nil || !strings.HasPrefix(line, "FRAME") {
		return rgb, fmt.Errorf("y4m: frame header %.20q: %v", line, err)
	}
	if _, err := io.ReadFull(y.r, y.yuv); err != nil {
		return rgb, fmt.Errorf("y4m: frame: %w", err)
	}
	if n := y.Width * y.Height * 3; cap(rgb) >= n {
		rgb = rgb[:n]
	} else {
		rgb = make([]byte, n)
	}
	toRGB(rgb, y.yuv, y.Width, y.Height)
	return rgb, nil
}

// toRGB converts one 4:2:0 planar picture to packed RGB24.
func toRGB(rgb, yuv []byte, w, h int) {
	cw := (w + 1) / 2
	u, v := yuv[w*h:], yuv[w*h+cw*((h+1)/2):]
	for row := 0; row < h; row++ {
		for x := 0; x < w; x++ {
			c := (int(yuv[row*w+x]) - 16) * 298
			d, e := int(u[(row/2)*cw+x/2])-128, int(v[(row/2)*cw+x/2])-128
			p := rgb[(row*w+x)*3 : (row*w+x)*3+3]
			p[0] = clamp8((c + 409*e + 128) >> 8)
			p[1] = clamp8((c - 100*d - 208*e + 128) >> 8)
			p[2] = clamp8((c + 516*d + 128) >> 8)
		}
	}
}

func clamp8(v int) byte { return byte(max(0, min(255, v))) }
