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

// ARGS loads both kernels' arguments (a, b, ya, yb, u, v, n, k, ahead:
// the same signature) into SI, DI, R8–R12, CX and BX, and tests n.
#define ARGS \
	MOVQ ahead+64(FP), BX; \
	MOVQ a+0(FP), SI; \
	MOVQ b+8(FP), DI; \
	MOVQ ya+16(FP), R8; \
	MOVQ yb+24(FP), R9; \
	MOVQ u+32(FP), R10; \
	MOVQ v+40(FP), R11; \
	MOVQ n+48(FP), CX; \
	MOVQ k+56(FP), R12; \
	TESTQ CX, CX

// func rgbToI420AVX2(a, b, ya, yb, u, v *byte, n int, k *yuvConsts, ahead int)
TEXT ·rgbToI420AVX2(SB), NOSPLIT, $0-72
	ARGS
	JLE done
	VMOVDQU M0(R12), Y15
	VMOVDQU M1(R12), Y14
	VMOVDQU CY(R12), Y13
	VMOVDQU CU(R12), Y12
	VMOVDQU CV(R12), Y11

loop:
	// The same columns of the next row pair (ahead bytes on): the
	// model's picture is usually cold (a node converts dozens of
	// sessions' pictures between its encodes), and the prefetcher alone
	// leaves the loads waiting.
	PREFETCHT0 (SI)(BX*1)
	PREFETCHT0 (DI)(BX*1)
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

// Constants of rgbToI420AVX512 (consts512, 896 bytes): the index that
// spreads 16 packed RGB24 pixels into dwords [R G B R], the luma
// coefficients split into high (× 2^7) and low 7 bits as bytes [R G B 0],
// the luma offset, the indexes that gather R, G and B of 32 pixels (two
// registers of 16) as 16-bit words, the chroma coefficients as word
// pairs, and the chroma offset.
#define XL 0
#define YHI 64
#define YLO 128
#define XOY 192
#define XR 256
#define XG 320
#define XB 384
#define UR 448
#define UG 512
#define UB 576
#define VR 640
#define VG 704
#define VB 768
#define XOC 832

// LUMA512 finishes the 16 luma samples of the pixels spread in P (T and
// S are scratch) and stores them at dst.
#define LUMA512(P, T, S, dst) \
	VPXORD T, T, T; \
	VMOVDQA64 Z28, S; \
	VPDPBUSD Z30, P, T; \
	VPDPBUSD Z29, P, S; \
	VPSLLD $7, T, T; \
	VPADDD S, T, T; \
	VPSRAD $14, T, T; \
	VPMOVUSDB T, dst

// WORDS gathers one colour of 32 pixels as 16-bit words into D: the
// pixels of row a (Z0, Z1) and of row b (Z2, Z3) added. T is scratch.
#define WORDS(X, D, T) \
	VMOVDQA64 X, D; \
	VPERMI2B.Z Z1, Z0, K2, D; \
	VMOVDQA64 X, T; \
	VPERMI2B.Z Z3, Z2, K2, T; \
	VPADDW T, D, D

// CHROMA finishes 16 chroma samples from the word sums (Z7 R, Z8 G, Z9 B)
// with the coefficients CR, CG, CB into A and stores them at dst.
#define CHROMA(CR, CG, CB, A, dst) \
	VMOVDQA64 Z18, A; \
	VPDPWSSD CR, Z7, A; \
	VPDPWSSD CG, Z8, A; \
	VPDPWSSD CB, Z9, A; \
	VPSRAD $16, A, A; \
	VPMAXSD Z17, A, A; \
	VPMOVUSDB A, dst

// func rgbToI420AVX512(a, b, ya, yb, u, v *byte, n int, k *consts512, ahead int)
TEXT ·rgbToI420AVX512(SB), NOSPLIT, $0-72
	ARGS
	JLE done512
	MOVQ $0x0000ffffffffffff, AX
	KMOVQ AX, K1
	MOVQ $0x5555555555555555, AX
	KMOVQ AX, K2
	VMOVDQU64 XL(R12), Z31
	VMOVDQU64 YHI(R12), Z30
	VMOVDQU64 YLO(R12), Z29
	VMOVDQU64 XOY(R12), Z28
	VMOVDQU64 XR(R12), Z27
	VMOVDQU64 XG(R12), Z26
	VMOVDQU64 XB(R12), Z25
	VMOVDQU64 UR(R12), Z24
	VMOVDQU64 UG(R12), Z23
	VMOVDQU64 UB(R12), Z22
	VMOVDQU64 VR(R12), Z21
	VMOVDQU64 VG(R12), Z20
	VMOVDQU64 VB(R12), Z19
	VMOVDQU64 XOC(R12), Z18
	VPXORD Z17, Z17, Z17

loop512:
	// The same columns of the next row pair (ahead bytes on): a whole
	// row pair's work ahead of the loads, as a cold picture needs, and
	// two lines a row for the step's 96 bytes.
	PREFETCHT0 (SI)(BX*1)
	PREFETCHT0 64(SI)(BX*1)
	PREFETCHT0 (DI)(BX*1)
	PREFETCHT0 64(DI)(BX*1)
	// 32 pixels of each row, 16 a register: the masked loads read the
	// group's 96 bytes and nothing past them.
	VMOVDQU8.Z (SI), K1, Z0
	VMOVDQU8.Z 48(SI), K1, Z1
	VMOVDQU8.Z (DI), K1, Z2
	VMOVDQU8.Z 48(DI), K1, Z3
	VPERMB Z0, Z31, Z4
	VPERMB Z1, Z31, Z5
	VPERMB Z2, Z31, Z6
	VPERMB Z3, Z31, Z16
	LUMA512(Z4, Z10, Z11, (R8))
	LUMA512(Z5, Z12, Z13, 16(R8))
	LUMA512(Z6, Z14, Z15, (R9))
	LUMA512(Z16, Z10, Z11, 16(R9))
	WORDS(Z27, Z7, Z10)
	WORDS(Z26, Z8, Z11)
	WORDS(Z25, Z9, Z12)
	CHROMA(Z24, Z23, Z22, Z13, (R10))
	CHROMA(Z21, Z20, Z19, Z14, (R11))
	ADDQ $96, SI
	ADDQ $96, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $16, R10
	ADDQ $16, R11
	DECQ CX
	JNZ loop512
	VZEROUPPER

done512:
	RET
