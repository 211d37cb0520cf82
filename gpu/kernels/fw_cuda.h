// Minimal device-side declarations for compiling Framewire's kernels with
// clang -x cuda -nocudainc -nocudalib: no CUDA toolkit headers are needed
// (the driver's cuda.h is host-only). Only what kernels.cu uses.
#pragma once

#ifdef FW_CUDA_HOST
// The host build the emulated driver runs (../cudaemu).
#include "../cudaemu/cuda_host.h"
#else
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __forceinline__ __inline__ __attribute__((always_inline))
#endif

typedef unsigned char u8;

static __device__ __forceinline__ int fw_block_x(void) { return __nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() + __nvvm_read_ptx_sreg_tid_x(); }
static __device__ __forceinline__ int fw_block_y(void) { return __nvvm_read_ptx_sreg_ctaid_y() * __nvvm_read_ptx_sreg_ntid_y() + __nvvm_read_ptx_sreg_tid_y(); }
static __device__ __forceinline__ int fw_clamp255(int v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }
static __device__ __forceinline__ int fw_min(int a, int b) { return a < b ? a : b; }
