package encode

/*
#include <libavutil/frame.h>
*/
import "C"

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// yuvTables convert packed RGB24 to limited-range YUV without
// multiplications: each channel's table holds, for every 8-bit value, its
// contribution to Y, U and V in fixed point (tableFrac fractional bits),
// packed in three 21-bit lanes of one uint64 (Y in bits 0–20, U in 21–41,
// V in 42–62). One pixel's Y, U and V are then the sum of three loads,
// and a 2×2 block's chroma the sum of four such words. Each table carries
// a share of the offsets (16 or 128, and half a step for rounding) chosen
// so that every entry's lanes are non-negative: partial sums only grow,
// and a lane of a four-pixel sum stays under 4 × 241 × 2^10 < 2^21, so no
// lane ever carries into the next.
type yuvTables struct{ r, g, b [256]uint64 }

const (
	tableFrac = 10 // fractional bits of each lane
	laneShift = 21 // bits per lane
)

// The tables of the two matrices, built once and shared (read-only) by
// every converter.
var (
	tables709 = sync.OnceValue(func() *yuvTables { return newYUVTables(colour{bt709: true}) })
	tables601 = sync.OnceValue(func() *yuvTables { return newYUVTables(colour{}) })
)

// tablesFor returns the shared tables of cs, or nil when cs is full range
// (which swscale converts).
func tablesFor(cs colour) *yuvTables {
	switch {
	case cs.fullRange:
		return nil
	case cs.bt709:
		return tables709()
	}
	return tables601()
}

// newYUVTables builds the tables of cs's matrix (BT.709 or BT.601) into
// limited (MPEG) range, the coefficients swscale uses for the same matrix.
func newYUVTables(cs colour) *yuvTables {
	kr, kb := 0.299, 0.114
	if cs.bt709 {
		kr, kb = 0.2126, 0.0722
	}
	kg := 1 - kr - kb
	const ys, cscale = 219.0 / 255, 224.0 / 255
	// Rows: Y, U, V; columns: R, G, B.
	coef := [3][3]float64{
		{ys * kr, ys * kg, ys * kb},
		{-cscale * kr / (2 * (1 - kb)), -cscale * kg / (2 * (1 - kb)), cscale / 2},
		{cscale / 2, -cscale * kg / (2 * (1 - kr)), -cscale * kb / (2 * (1 - kr))},
	}
	const one = 1 << tableFrac
	// The offset of each lane, plus half a step so the final shift rounds:
	// per pixel for Y; for U and V a quarter of the block's half step, as
	// four pixels are summed before shifting by two more bits.
	offset := [3]int64{16*one + one/2, 128*one + one/2, 128*one + one/2}
	var t yuvTables
	tabs := [3]*[256]uint64{&t.r, &t.g, &t.b}
	for lane := range 3 {
		// Negative coefficients get a bias of their most negative entry;
		// the channel with the positive coefficient takes the rest of the
		// offset (which stays non-negative for both matrices).
		var bias [3]int64
		rest := offset[lane]
		for ch := range 3 {
			if coef[lane][ch] < 0 {
				bias[ch] = -int64(math.Round(coef[lane][ch] * 255 * one))
				rest -= bias[ch]
			}
		}
		for ch := range 3 {
			if coef[lane][ch] >= 0 {
				bias[ch] = rest
				rest = 0
			}
		}
		for ch := range 3 {
			for v := range 256 {
				e := int64(math.Round(coef[lane][ch]*float64(v)*one)) + bias[ch]
				tabs[ch][v] |= uint64(e) << (laneShift * lane)
			}
		}
	}
	return &t
}

// convertRows converts a w×h RGB24 picture (row stride stride) into
// planes: I420 (u and v separate, row strides uStride and vStride) or,
// when nv12, NV12 (uv interleaved in u, v unused). Chroma is the mean of each 2×2 block, so a
// one-pixel line keeps its colour whichever row or column it is on. w and
// h must be even; every slice must hold its rows.
func (t *yuvTables) convertRows(src []byte, stride, w, h int, y []byte, yStride int, u []byte, uStride int, v []byte, vStride int, nv12 bool) {
	for row := 0; row < h; row += 2 {
		a := src[row*stride : row*stride+3*w]
		b := src[(row+1)*stride : (row+1)*stride+3*w]
		ya := y[row*yStride : row*yStride+w]
		yb := y[(row+1)*yStride : (row+1)*yStride+w]
		ur := row / 2 * uStride
		if nv12 {
			t.blockRowNV12(a, b, ya, yb, u[ur:ur+w])
		} else {
			vr := row / 2 * vStride
			t.blockRow(a, b, ya, yb, u[ur:ur+w/2], v[vr:vr+w/2])
		}
	}
}

// blockRow converts two RGB rows a and b into luma rows ya, yb and one
// row of chroma into u and v (I420). It reads four pixels of each row at
// a time with two loads and writes each row's four luma samples and the
// two blocks' U and V with one store each; a last block of two pixels
// (width 2 mod 4) goes byte by byte.
func (t *yuvTables) blockRow(a, b, ya, yb, u, v []byte) {
	for len(a) >= 12 && len(b) >= 12 && len(ya) >= 4 && len(yb) >= 4 && len(u) >= 2 && len(v) >= 2 {
		a0, a1 := binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint32(a[8:])
		b0, b1 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:])
		wa0 := t.r[byte(a0)] + t.g[byte(a0>>8)] + t.b[byte(a0>>16)]
		wa1 := t.r[byte(a0>>24)] + t.g[byte(a0>>32)] + t.b[byte(a0>>40)]
		wa2 := t.r[byte(a0>>48)] + t.g[byte(a0>>56)] + t.b[byte(a1)]
		wa3 := t.r[byte(a1>>8)] + t.g[byte(a1>>16)] + t.b[byte(a1>>24)]
		wb0 := t.r[byte(b0)] + t.g[byte(b0>>8)] + t.b[byte(b0>>16)]
		wb1 := t.r[byte(b0>>24)] + t.g[byte(b0>>32)] + t.b[byte(b0>>40)]
		wb2 := t.r[byte(b0>>48)] + t.g[byte(b0>>56)] + t.b[byte(b1)]
		wb3 := t.r[byte(b1>>8)] + t.g[byte(b1>>16)] + t.b[byte(b1>>24)]
		binary.LittleEndian.PutUint32(ya, luma4(wa0, wa1, wa2, wa3))
		binary.LittleEndian.PutUint32(yb, luma4(wb0, wb1, wb2, wb3))
		s0, s1 := wa0+wa1+wb0+wb1, wa2+wa3+wb2+wb3
		binary.LittleEndian.PutUint16(u, uint16(byte(s0>>uShift))|uint16(byte(s1>>uShift))<<8)
		binary.LittleEndian.PutUint16(v, uint16(byte(s0>>vShift))|uint16(byte(s1>>vShift))<<8)
		a, b, ya, yb, u, v = a[12:], b[12:], ya[4:], yb[4:], u[2:], v[2:]
	}
	if len(a) >= 6 && len(b) >= 6 && len(ya) >= 2 && len(yb) >= 2 && len(u) >= 1 && len(v) >= 1 {
		w0 := t.r[a[0]] + t.g[a[1]] + t.b[a[2]]
		w1 := t.r[a[3]] + t.g[a[4]] + t.b[a[5]]
		w2 := t.r[b[0]] + t.g[b[1]] + t.b[b[2]]
		w3 := t.r[b[3]] + t.g[b[4]] + t.b[b[5]]
		ya[0], ya[1] = byte(w0>>tableFrac), byte(w1>>tableFrac)
		yb[0], yb[1] = byte(w2>>tableFrac), byte(w3>>tableFrac)
		s := w0 + w1 + w2 + w3
		u[0], v[0] = byte(s>>uShift), byte(s>>vShift)
	}
}

// The shifts that take a 2×2 block's sum of table words to its mean U and
// V: the lane, its fraction and the division by four.
const (
	uShift = laneShift + tableFrac + 2
	vShift = 2*laneShift + tableFrac + 2
)

// luma4 packs the Y of four table words into one little-endian word.
func luma4(w0, w1, w2, w3 uint64) uint32 {
	return uint32(byte(w0>>tableFrac)) | uint32(byte(w1>>tableFrac))<<8 | uint32(byte(w2>>tableFrac))<<16 | uint32(byte(w3>>tableFrac))<<24
}

// blockRowNV12 is blockRow writing interleaved chroma into uv (NV12).
func (t *yuvTables) blockRowNV12(a, b, ya, yb, uv []byte) {
	for len(a) >= 6 && len(b) >= 6 && len(ya) >= 2 && len(yb) >= 2 && len(uv) >= 2 {
		w0 := t.r[a[0]] + t.g[a[1]] + t.b[a[2]]
		w1 := t.r[a[3]] + t.g[a[4]] + t.b[a[5]]
		w2 := t.r[b[0]] + t.g[b[1]] + t.b[b[2]]
		w3 := t.r[b[3]] + t.g[b[4]] + t.b[b[5]]
		ya[0], ya[1] = byte(w0>>tableFrac), byte(w1>>tableFrac)
		yb[0], yb[1] = byte(w2>>tableFrac), byte(w3>>tableFrac)
		s := w0 + w1 + w2 + w3
		uv[0], uv[1] = byte(s>>uShift), byte(s>>vShift)
		a, b, ya, yb, uv = a[6:], b[6:], ya[2:], yb[2:], uv[2:]
	}
}

// framePlane is plane i of f (linesize × rows bytes of C memory) and its
// linesize. The slice is valid while f's buffer is.
func framePlane(f *astiav.Frame, i, rows int) ([]byte, int) {
	cf := cFrame(f)
	stride := int(cf.linesize[i])
	return unsafe.Slice((*byte)(unsafe.Pointer(cf.data[i])), stride*rows), stride
}

// toFrame converts img (w×h, both even) into f's planes (I420 or NV12).
func (t *yuvTables) toFrame(img Image, f *astiav.Frame, nv12 bool) {
	w, h := img.Width, img.Height
	y, ys := framePlane(f, 0, h)
	u, us := framePlane(f, 1, h/2)
	var v []byte
	var vs int
	if !nv12 {
		v, vs = framePlane(f, 2, h/2)
	}
	t.convertRows(img.Pix, img.RowStride(), w, h, y, ys, u, us, v, vs, nv12)
}
