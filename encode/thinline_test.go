package encode

import (
	"math"
	"testing"

	"github.com/framewire/framewire/encode/internal/yuv"
	"github.com/framewire/framewire/tracks"
)

// TestConverterThinLine draws a one-pixel green line across a grey
// picture, on each row and column phase of a 2×2 chroma block, and checks
// that the chroma of the block holding it moves towards green by at least
// 0.45 of what a solid green block gets with package yuv's 2×2 mean (0.5
// on either phase), 0.3 with swscale's bilinear path (used without AVX2:
// 0.37 for a row, 0.5 for a column). Taking the chroma of one row in two
// gives 0 on half the rows, which made the face filter's one-pixel green
// boxes grey (issue 23).
func TestConverterThinLine(t *testing.T) {
	const w, h = 64, 32
	c, err := NewConverter(PixelI420)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	grey, green := [3]byte{128, 128, 128}, [3]byte{0, 255, 0}
	// chroma converts the picture with the green pixels on and returns
	// its U and V planes (w/2 × h/2 each).
	chroma := func(on func(x, y int) bool) (u, v []byte) {
		img := tracks.NewImage(w, h)
		for y := range h {
			for x := range w {
				px := grey
				if on(x, y) {
					px = green
				}
				copy(img.Pix[y*img.Stride+3*x:], px[:])
			}
		}
		if err := c.Convert(img, w, h); err != nil {
			t.Fatal(err)
		}
		b, err := c.picture().Data().Bytes(1)
		if err != nil {
			t.Fatal(err)
		}
		return b[w*h : w*h+w*h/4], b[w*h+w*h/4:]
	}
	dist := func(u, v []byte, cx, cy int) float64 {
		du, dv := float64(u[cy*w/2+cx])-128, float64(v[cy*w/2+cx])-128
		return math.Sqrt(du*du + dv*dv)
	}
	want := 0.3
	if yuv.Fast() {
		want = 0.45
	}
	u, v := chroma(func(int, int) bool { return true })
	solid := dist(u, v, 3, 3)
	for phase := range 2 {
		row := 10 + phase
		u, v = chroma(func(_, y int) bool { return y == row })
		if d := dist(u, v, 5, row/2) / solid; d < want {
			t.Errorf("horizontal line on row %d: chroma moved %.2f of a solid green block's, want >= %.2f", row, d, want)
		}
		col := 20 + phase
		u, v = chroma(func(x, _ int) bool { return x == col })
		if d := dist(u, v, col/2, 4) / solid; d < want {
			t.Errorf("vertical line on column %d: chroma moved %.2f of a solid green block's, want >= %.2f", col, d, want)
		}
	}
}
