package yuv

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether Conv may use rgbToI420AVX2; hasAVX512 whether
// it may use rgbToI420AVX512 (AVX-512 with the byte permutes of VBMI and
// the dot products of VNNI: Ice Lake and later Xeons, AMD Zen 4 and later).
var (
	hasAVX2   = cpu.X86.HasAVX2
	hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512VNNI
)

// rgbToI420AVX2 converts n groups of 16 pixels of the RGB24 rows a and b
// (48n bytes each) into 16n luma samples of ya and yb and 8n chroma
// samples of u and v, with k's coefficients (Conv's arithmetic). It
// reads and writes nothing outside those bytes, and prefetches the bytes
// ahead bytes after those it reads (the next row pair's).
//
//go:noescape
func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *consts, ahead int)

// rgbToI420AVX512 is rgbToI420AVX2 for n groups of 32 pixels (96n bytes
// of each row, 32n luma samples of each row, 16n chroma samples), with
// the same bytes out, and the same prefetch (a prefetch never faults).
//
//go:noescape
func rgbToI420AVX512(a, b, ya, yb, u, v *byte, n int, k *consts512, ahead int)
