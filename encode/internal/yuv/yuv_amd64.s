#include "textflag.h"

// Constants (yuvConsts, 256 bytes): the shuffles that spread 4 packed
// RGB24 pixels into 16-bit [R G B 0] words (2 pixels per 128-bit lane),
// the Y/U/V coefficients as 16-bit words, the offsets with rounding, and
// the byte orders that undo the lane interleaving.
#define M0 0
#define M1 32
#define CY 64
#define CU 96
#define CV 128
#define OY 160
#define OC 192
#define SY 224
#define SC 240

// GROUP converts 4 pixels of rows a (SI) and b (DI) at byte offset off:
// YA and YB get the luma products (per pixel two dwords), H1 the partial
// chroma sums of the 2×2 blocks [U pairs, V pairs].
#define GROUP(off, M, YA, YB, H1) \
	VBROADCASTI128 off(SI), Y0; \
	VBROADCASTI128 off(DI), Y1; \
	VPSHUFB M, Y0, Y0; \
	VPSHUFB M, Y1, Y1; \
	VPMADDWD Y13, Y0, YA; \
	VPMADDWD Y13, Y1, YB; \
	VPADDW Y1, Y0, Y0; \
	VPMADDWD Y12, Y0, Y1; \
	VPMADDWD Y11, Y0, Y0; \
	VPHADDD Y0, Y1, H1

// LUMA finishes 16 luma samples from the two halves LO and HI and stores
// them at dst.
#define LUMA(LO, HI, XLO, dst) \
	VPADDD OY(R12), LO, LO; \
	VPADDD OY(R12), HI, HI; \
	VPSRAD $14, LO, LO; \
	VPSRAD $14, HI, HI; \
	VPACKUSDW HI, LO, LO; \
	VPACKUSWB LO, LO, LO; \
	VPERMQ $0x08, LO, LO; \
	VPSHUFB SY(R12), XLO, XLO; \
	VMOVDQU XLO, (dst)

// func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *yuvConsts)
TEXT ·rgbToI420AVX2(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ ya+16(FP), R8
	MOVQ yb+24(FP), R9
	MOVQ u+32(FP), R10
	MOVQ v+40(FP), R11
	MOVQ n+48(FP), CX
	MOVQ k+56(FP), R12
	TESTQ CX, CX
	JLE done
	VMOVDQU M0(R12), Y15
	VMOVDQU M1(R12), Y14
	VMOVDQU CY(R12), Y13
	VMOVDQU CU(R12), Y12
	VMOVDQU CV(R12), Y11

loop:
	// Both source rows from 16 groups ahead: the model's picture is
	// usually cold (a node converts dozens of sessions' pictures between
	// its encodes), and the prefetcher alone leaves the loads waiting.
	PREFETCHT0 768(SI)
	PREFETCHT0 768(DI)
	GROUP(0, Y15, Y2, Y3, Y4)
	GROUP(12, Y15, Y5, Y6, Y7)
	VPHADDD Y5, Y2, Y2
	VPHADDD Y6, Y3, Y3
	VPHADDD Y7, Y4, Y4
	GROUP(24, Y15, Y5, Y6, Y7)
	GROUP(32, Y14, Y8, Y9, Y10)
	VPHADDD Y8, Y5, Y5
	VPHADDD Y9, Y6, Y6
	VPHADDD Y10, Y7, Y7
	LUMA(Y2, Y5, X2, R8)
	LUMA(Y3, Y6, X3, R9)
	VPADDD OC(R12), Y4, Y4
	VPADDD OC(R12), Y7, Y7
	VPSRAD $16, Y4, Y4
	VPSRAD $16, Y7, Y7
	VPACKUSDW Y7, Y4, Y4
	VPACKUSWB Y4, Y4, Y4
	VPERMQ $0x08, Y4, Y4
	VPSHUFB SC(R12), X4, X4
	VMOVQ X4, (R10)
	VPEXTRQ $1, X4, (R11)
	ADDQ $48, SI
	ADDQ $48, DI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $8, R10
	ADDQ $8, R11
	DECQ CX
	JNZ loop
	VZEROUPPER

done:
	RET
