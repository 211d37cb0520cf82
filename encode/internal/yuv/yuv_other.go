//go:build !amd64

package yuv

// hasAVX2 is false off amd64: Conv converts in Go.
const hasAVX2 = false

func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *consts) {
	panic("encode: no AVX2 kernel on this architecture")
}
