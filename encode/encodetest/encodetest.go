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
