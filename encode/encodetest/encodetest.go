// Package encodetest holds helpers for tests that compare decoded pictures
// with what was encoded. It is pure Go and imports nothing of Framewire's,
// so any package's tests (internal or external) can use it.
package encodetest

import "math"

// PSNR returns the peak signal-to-noise ratio of b against a, in dB, over
// 8-bit samples (len(a) of them; b must be at least as long). Identical
// inputs give +Inf.
func PSNR(a, b []byte) float64 {
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a))/se)
}

// Scene draws frame i of a moving test picture into pix (packed RGB24,
// w×h): gradients, a moving box and a checker texture, so encoders have
// real work and motion. The same (w, h, i) always draws the same picture.
func Scene(pix []byte, w, h, i int) {
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := (y*w + x) * 3
			r := byte((x + 2*i) * 255 / (w + 64))
			g := byte((y + i) * 255 / (h + 32))
			b := byte(((x/8+y/8+i/4)%2)*60 + 90)
			if x >= (i*7)%w && x < (i*7)%w+w/6 && y > h/3 && y < h/2 {
				r, g, b = 240, 240, 30
			}
			pix[o], pix[o+1], pix[o+2] = r, g, b
		}
	}
}
