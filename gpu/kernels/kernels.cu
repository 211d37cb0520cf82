// Framewire colour-conversion kernels: BT.709, limited ("TV") range, the
// matrix the decoder side assumes. Fixed-point with 16 fractional bits; the
// pure-Go reference in ../ref_test.go uses the same integers, so kernel and
// reference agree exactly.
//
// Regenerate kernels.ptx with `go generate ./gpu` (clang-14, see gen.sh).
// Every parameter is 8 bytes (pointers and long long), so a launcher that
// reads 8 bytes per argument cannot misread one.
#include "fw_cuda.h"

// fw_rgb_to_nv12 converts one packed RGB24 (bpp 3) or RGBA (bpp 4, alpha
// ignored) picture of w x h pixels into NV12 of ow x oh (ow, oh even, >= w,
// h; pixels past the source edge repeat the last column/row). One thread per
// 2x2 block: four luma samples and one chroma pair from the block's mean.
extern "C" __global__ void fw_rgb_to_nv12(const u8 *__restrict__ src, long long src_pitch, long long bpp,
                                          long long w, long long h,
                                          u8 *__restrict__ y, long long y_pitch,
                                          u8 *__restrict__ uv, long long uv_pitch,
                                          long long ow, long long oh) {
	int bx = fw_block_x(), by = fw_block_y();
	int ox0 = 2 * bx, oy0 = 2 * by;
	if (ox0 >= (int)ow || oy0 >= (int)oh)
		return;
	int sr = 0, sg = 0, sb = 0;
#pragma unroll
	for (int dy = 0; dy < 2; dy++) {
#pragma unroll
		for (int dx = 0; dx < 2; dx++) {
			int ox = ox0 + dx, oy = oy0 + dy;
			int sx = fw_min(ox, (int)w - 1), sy = fw_min(oy, (int)h - 1);
			const u8 *p = src + sy * src_pitch + sx * bpp;
			int r = p[0], g = p[1], b = p[2];
			y[oy * y_pitch + ox] = (u8)fw_clamp255((11966 * r + 40254 * g + 4064 * b + (16 << 16) + (1 << 15)) >> 16);
			sr += r;
			sg += g;
			sb += b;
		}
	}
	int cb = (-6596 * sr - 22189 * sg + 28784 * sb + (128 << 18) + (1 << 17)) >> 18;
	int cr = (28784 * sr - 26145 * sg - 2639 * sb + (128 << 18) + (1 << 17)) >> 18;
	u8 *c = uv + by * uv_pitch + ox0;
	c[0] = (u8)fw_clamp255(cb);
	c[1] = (u8)fw_clamp255(cr);
}

// fw_nv12_to_rgb converts a w x h NV12 picture to packed RGB24 (bpp 3) or
// RGBA (bpp 4, alpha 255). One thread per pixel; chroma is replicated
// (nearest) from the 2x2 block the pixel belongs to.
extern "C" __global__ void fw_nv12_to_rgb(const u8 *__restrict__ y, long long y_pitch,
                                          const u8 *__restrict__ uv, long long uv_pitch,
                                          long long w, long long h,
                                          u8 *__restrict__ dst, long long dst_pitch, long long bpp) {
	int x = fw_block_x(), row = fw_block_y();
	if (x >= (int)w || row >= (int)h)
		return;
	int l = 76309 * ((int)y[row * y_pitch + x] - 16) + (1 << 15);
	const u8 *c = uv + (row >> 1) * uv_pitch + (x & ~1);
	int u = (int)c[0] - 128, v = (int)c[1] - 128;
	u8 *p = dst + row * dst_pitch + x * bpp;
	p[0] = (u8)fw_clamp255((l + 117489 * v) >> 16);
	p[1] = (u8)fw_clamp255((l - 13975 * u - 34925 * v) >> 16);
	p[2] = (u8)fw_clamp255((l + 138438 * u) >> 16);
	if (bpp == 4)
		p[3] = 255;
}
