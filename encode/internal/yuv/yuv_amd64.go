package yuv

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether Conv may use rgbToI420AVX2.
var hasAVX2 = cpu.X86.HasAVX2

// rgbToI420AVX2 converts n groups of 16 pixels of the RGB24 rows a and b
// (48n bytes each) into 16n luma samples of ya and yb and 8n chroma
// samples of u and v, with k's coefficients (Conv's arithmetic). It
// reads and writes nothing outside those bytes.
//
//go:noescape
func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *consts)
