// The project's kernels (gpu/kernels/kernels.cu) compiled for the host,
// and the launcher that runs one over a whole grid. Each kernel's
// parameter sizes and which parameters are pointers come from its C++
// prototype, so cuModuleLoadData checks the PTX's .entry signature
// against the source the PTX was built from.
#define FW_CUDA_HOST 1
#include "../kernels/kernels.cu"

#include <cstring>
#include <type_traits>
#include <utility>

extern "C" {
#include "cudaemu.h"
}

thread_local fw_emu_dim3 fw_emu_thread_idx, fw_emu_block_idx, fw_emu_block_dim;

namespace {

template <typename... A> struct signature {
	static constexpr int n = sizeof...(A);
	static constexpr unsigned char sizes[] = {(unsigned char)sizeof(A)...};
	static constexpr unsigned char ptrs[] = {(unsigned char)std::is_pointer<A>::value...};
};

template <typename... A> constexpr signature<A...> signature_of(void (*)(A...)) { return {}; }

// offset of parameter i: parameters are packed at their natural alignment,
// as emu's check_params lays them out.
template <typename... A> size_t offset(size_t i) {
	static constexpr size_t sz[] = {sizeof(A)...};
	size_t off = 0;
	for (size_t j = 0;; j++) {
		off = (off + sz[j] - 1) / sz[j] * sz[j];
		if (j == i) return off;
		off += sz[j];
	}
}

template <typename T> T load(const unsigned char *p, size_t off) {
	T v;
	std::memcpy(&v, p + off, sizeof v);
	return v;
}

template <typename... A, size_t... I> void invoke(void (*f)(A...), const unsigned char *p, std::index_sequence<I...>) {
	f(load<A>(p, offset<A...>(I))...);
}

template <typename... A> void call(void (*f)(A...), const unsigned char *p) { invoke(f, p, std::index_sequence_for<A...>{}); }

#define KERNEL(fn) \
	{#fn, decltype(signature_of(fn))::n, decltype(signature_of(fn))::sizes, decltype(signature_of(fn))::ptrs}

} // namespace

extern "C" const struct emu_kernel emu_kernels[] = {KERNEL(fw_rgb_to_nv12), KERNEL(fw_nv12_to_rgb)};
extern "C" const int emu_nkernels = 2;

static void run_one(int k, const unsigned char *params) {
	switch (k) {
	case 0: call(fw_rgb_to_nv12, params); break;
	case 1: call(fw_nv12_to_rgb, params); break;
	}
}

// emu_run_kernel runs kernel k once for every thread of the grid, on the
// calling thread (a stream's worker).
extern "C" void emu_run_kernel(int k, const unsigned grid[3], const unsigned block[3], const unsigned char *params) {
	fw_emu_block_dim = {block[0], block[1], block[2]};
	for (unsigned bz = 0; bz < grid[2]; bz++)
		for (unsigned by = 0; by < grid[1]; by++)
			for (unsigned bx = 0; bx < grid[0]; bx++) {
				fw_emu_block_idx = {bx, by, bz};
				for (unsigned tz = 0; tz < block[2]; tz++)
					for (unsigned ty = 0; ty < block[1]; ty++)
						for (unsigned tx = 0; tx < block[0]; tx++) {
							fw_emu_thread_idx = {tx, ty, tz};
							run_one(k, params);
						}
			}
}

// emu_kernel_footprint: the bytes each kernel touches through its pointer
// parameters for a launch covering its whole picture (as package gpu's
// launchers size the grid), from the index arithmetic of kernels.cu.
extern "C" void emu_kernel_footprint(int k, const unsigned char *params, size_t out[]) {
	auto ll = [&](int i) { return load<long long>(params, 8 * (size_t)i); }; // every parameter is 8 bytes
	auto span = [](long long rows, long long pitch, long long last) {
		return rows <= 0 || last <= 0 ? (size_t)0 : (size_t)((rows - 1) * pitch + last);
	};
	switch (k) {
	case 0: { // fw_rgb_to_nv12(src, src_pitch, bpp, w, h, y, y_pitch, uv, uv_pitch, ow, oh)
		long long bpp = ll(2), w = ll(3), h = ll(4), ow = ll(9), oh = ll(10);
		out[0] = span(h, ll(1), (w - 1) * bpp + 3);
		out[5] = span(oh, ll(6), ow);
		out[7] = span(oh / 2, ll(8), ow);
		break;
	}
	case 1: { // fw_nv12_to_rgb(y, y_pitch, uv, uv_pitch, w, h, dst, dst_pitch, bpp)
		long long w = ll(4), h = ll(5), bpp = ll(8);
		out[0] = span(h, ll(1), w);
		out[2] = span((h + 1) / 2, ll(3), ((w - 1) & ~1LL) + 2);
		out[6] = span(h, ll(7), w * bpp);
		break;
	}
	}
}
