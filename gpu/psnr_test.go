package gpu

import "math"

// psnr returns the peak signal-to-noise ratio of b against a in dB (+Inf
// when identical).
func psnr(a, b []byte) float64 {
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
