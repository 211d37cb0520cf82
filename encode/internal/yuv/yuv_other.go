//go:build !amd64

package yuv

// hasAVX2 and hasAVX512 are false off amd64: Conv converts in Go.
const (
	hasAVX2   = false
	hasAVX512 = false
)

func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *consts, ahead int) {
	panic("encode: no AVX2 kernel on this architecture")
}

func rgbToI420AVX512(a, b, ya, yb, u, v *byte, n int, k *consts512, ahead int) {
	panic("encode: no AVX-512 kernel on this architecture")
}
