// Package yuv converts packed RGB24 pictures into limited-range I420 of
// the same size, with AVX-512 or AVX2 on amd64: the conversion in front of
// package encode's encoders.
package yuv

import (
	"encoding/binary"
	"math"
	"sync"
)

// Conv converts packed RGB24 into limited-range I420 of the same size
// in integer fixed point (coefficients × 2^14, BT.709 or BT.601, as
// swscale's): Y per pixel, U and V from the mean of each 2×2 block, so a
// one-pixel coloured line keeps half its chroma on whichever row or column
// it lies (swscale's bilinear path keeps 0.37 of it on a row, and taking
// one row's chroma in two keeps none on the other). On amd64 it converts
// 32 columns of a row pair per step with AVX-512 (VBMI and VNNI), 16 with
// AVX2, the rest in Go with the same arithmetic, so all give identical
// bytes. The AVX-512 kernel takes 0.20 ms for a 1280×720 picture in the
// caches against AVX2's 0.28; from memory, as a node's pictures mostly
// are, both wait on the loads alike. It is read-only after For returns
// it: safe for concurrent use.
type Conv struct {
	y, u, v [3]int32 // × 2^14, for R, G, B
	simd    consts
	simd512 consts512
}

// consts are rgbToI420AVX2's constants, consts512 rgbToI420AVX512's (see
// yuv_amd64.s for their layouts).
type (
	consts    [256]byte
	consts512 [896]byte
)

// Kernels, from slowest: a level says which Conv may use.
const (
	levelGo     = iota // Go alone
	levelAVX2          // rgbToI420AVX2, then Go for the last columns
	levelAVX512        // rgbToI420AVX512, then as levelAVX2
)

// best is the fastest level this machine runs.
var best = func() int {
	switch {
	case hasAVX512 && hasAVX2:
		return levelAVX512
	case hasAVX2:
		return levelAVX2
	}
	return levelGo
}()

const (
	yuvFrac = 14                       // fractional bits of the coefficients
	yuvOffY = 16<<yuvFrac + 1<<13      // Y offset plus half a step
	yuvOffC = 128<<(yuvFrac+2) + 1<<15 // U, V offset of a 4-pixel sum plus half a step
)

// The converters of the two matrices, built once and shared.
var (
	yuv709 = sync.OnceValue(func() *Conv { return newConv(true) })
	yuv601 = sync.OnceValue(func() *Conv { return newConv(false) })
)

// For returns the shared converter of BT.709 (bt709) or BT.601.
func For(bt709 bool) *Conv {
	if bt709 {
		return yuv709()
	}
	return yuv601()
}

func newConv(bt709 bool) *Conv {
	kr, kb := 0.299, 0.114
	if bt709 {
		kr, kb = 0.2126, 0.0722
	}
	kg := 1 - kr - kb
	const ys, cs, one = 219.0 / 255, 224.0 / 255, 1 << yuvFrac
	q := func(f float64) int32 { return int32(math.Round(f * one)) }
	k := &Conv{
		y: [3]int32{q(ys * kr), q(ys * kg), q(ys * kb)},
		u: [3]int32{q(-cs * kr / (2 * (1 - kb))), q(-cs * kg / (2 * (1 - kb))), q(cs / 2)},
		v: [3]int32{q(cs / 2), q(-cs * kg / (2 * (1 - kr))), q(-cs * kb / (2 * (1 - kr)))},
	}
	s := &k.simd
	// Shuffles: lane L holds pixels 2L and 2L+1 of the four loaded (at
	// byte 0, or byte 4 for M1) as 16-bit [R G B 0].
	for m, base := range []int{0, 4} {
		for i := range 32 {
			lane, j, word, hi := i/16, (i%16)/8, (i%8)/2, i%2
			b := byte(0x80)
			if word < 3 && hi == 0 {
				b = byte(base + 3*(2*lane+j) + word)
			}
			s[32*m+i] = b
		}
	}
	for c, coef := range [][3]int32{k.y, k.u, k.v} {
		for w := range 16 {
			var x int32
			if w%4 < 3 {
				x = coef[w%4]
			}
			binary.LittleEndian.PutUint16(s[64+32*c+2*w:], uint16(int16(x)))
		}
	}
	for d := range 8 {
		binary.LittleEndian.PutUint32(s[160+4*d:], yuvOffY)
		binary.LittleEndian.PutUint32(s[192+4*d:], yuvOffC)
	}
	copy(s[224:], []byte{0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15})
	copy(s[240:], []byte{0, 8, 2, 10, 4, 12, 6, 14, 1, 9, 3, 11, 5, 13, 7, 15})
	k.simd512 = newConsts512(k)
	return k
}

// newConsts512 lays out rgbToI420AVX512's constants for k's coefficients.
func newConsts512(k *Conv) consts512 {
	var s consts512
	for i := range 16 {
		// Pixel i as the dword [R G B R]; the fourth byte's coefficient is 0.
		copy(s[4*i:], []byte{byte(3 * i), byte(3*i + 1), byte(3*i + 2), byte(3 * i)})
		for c := range 3 {
			// c = hi·2^7 + lo with lo in [0, 127]: two byte dot products
			// give the 14-bit product exactly.
			s[64+4*i+c] = byte(int8(k.y[c] >> 7))
			s[128+4*i+c] = byte(k.y[c] & 127)
		}
		binary.LittleEndian.PutUint32(s[192+4*i:], yuvOffY)
		binary.LittleEndian.PutUint32(s[832+4*i:], yuvOffC)
	}
	for c := range 3 {
		// Word j holds colour c of pixel j of 32: pixels 0–15 are the
		// first register's 48 bytes, 16–31 the second's (index bit 6).
		for j := range 32 {
			x := 3*j + c
			if j >= 16 {
				x = 64 + 3*(j-16) + c
			}
			s[256+64*c+2*j] = byte(x)
		}
		for w := range 32 {
			binary.LittleEndian.PutUint16(s[448+64*c+2*w:], uint16(int16(k.u[c])))
			binary.LittleEndian.PutUint16(s[640+64*c+2*w:], uint16(int16(k.v[c])))
		}
	}
	return s
}

// Fast reports whether Convert runs a SIMD kernel here (AVX2, or AVX-512
// where the machine has it). Without one, Convert is Go (about 3 ms for
// 1280×720 against swscale's 1.3–1.7 ms), so callers convert with swscale
// instead.
func Fast() bool { return best > levelGo }

// Convert converts w×h (both even) RGB24 rows of src (row stride stride)
// into the I420 planes y, u and v (row strides ys, us, vs). Every slice
// must hold its rows (the last one at least its w or w/2 bytes).
func (k *Conv) Convert(src []byte, stride, w, h int, y []byte, ys int, u []byte, us int, v []byte, vs int) {
	k.convert(src, stride, w, h, y, ys, u, us, v, vs, best)
}

// convert converts w×h (both even) RGB24 rows of src (row stride stride)
// into the I420 planes y, u and v (row strides ys, us, vs), with the
// kernels level allows: 32 columns a step with AVX-512, 16 with AVX2, the
// rest in Go.
func (k *Conv) convert(src []byte, stride, w, h int, y []byte, ys int, u []byte, us int, v []byte, vs int, level int) {
	wide, groups := 0, 0
	if level >= levelAVX512 {
		wide = w / 32
	}
	if level >= levelAVX2 {
		groups = (w - 32*wide) / 16
	}
	for row := 0; row < h; row += 2 {
		a := src[row*stride : row*stride+3*w]
		b := src[(row+1)*stride : (row+1)*stride+3*w]
		ya := y[row*ys : row*ys+w]
		yb := y[(row+1)*ys : (row+1)*ys+w]
		ur := u[row/2*us : row/2*us+w/2]
		vr := v[row/2*vs : row/2*vs+w/2]
		if wide > 0 {
			rgbToI420AVX512(&a[0], &b[0], &ya[0], &yb[0], &ur[0], &vr[0], wide, &k.simd512, 2*stride)
			a, b, ya, yb, ur, vr = a[96*wide:], b[96*wide:], ya[32*wide:], yb[32*wide:], ur[16*wide:], vr[16*wide:]
		}
		if groups > 0 {
			rgbToI420AVX2(&a[0], &b[0], &ya[0], &yb[0], &ur[0], &vr[0], groups, &k.simd, 2*stride)
		}
		k.blocks(a[48*groups:], b[48*groups:], ya[16*groups:], yb[16*groups:], ur[8*groups:], vr[8*groups:])
	}
}

// blocks converts two RGB rows a and b, 2×2 pixels at a time, with the
// AVX2 kernel's arithmetic.
func (k *Conv) blocks(a, b, ya, yb, u, v []byte) {
	luma := func(p []byte) byte {
		return clamp8((k.y[0]*int32(p[0]) + k.y[1]*int32(p[1]) + k.y[2]*int32(p[2]) + yuvOffY) >> yuvFrac)
	}
	for len(a) >= 6 && len(b) >= 6 && len(ya) >= 2 && len(yb) >= 2 && len(u) >= 1 && len(v) >= 1 {
		ya[0], ya[1], yb[0], yb[1] = luma(a[0:3]), luma(a[3:6]), luma(b[0:3]), luma(b[3:6])
		r := int32(a[0]) + int32(a[3]) + int32(b[0]) + int32(b[3])
		g := int32(a[1]) + int32(a[4]) + int32(b[1]) + int32(b[4])
		bl := int32(a[2]) + int32(a[5]) + int32(b[2]) + int32(b[5])
		u[0] = clamp8((k.u[0]*r + k.u[1]*g + k.u[2]*bl + yuvOffC) >> (yuvFrac + 2))
		v[0] = clamp8((k.v[0]*r + k.v[1]*g + k.v[2]*bl + yuvOffC) >> (yuvFrac + 2))
		a, b, ya, yb, u, v = a[6:], b[6:], ya[2:], yb[2:], u[1:], v[1:]
	}
}

// clamp8 saturates x to a byte, as the kernel's packs do.
func clamp8(x int32) byte { return byte(min(max(x, 0), 255)) }
