// Host build of the project's CUDA kernels for the emulated driver: maps
// what gpu/kernels/fw_cuda.h takes from the device (the qualifiers and the
// threadIdx / blockIdx / blockDim special registers) onto plain C++ and
// thread-local variables that the emulator's launcher sets for each
// thread of the grid (kernels_host.cc). Included by fw_cuda.h when
// FW_CUDA_HOST is defined.
#pragma once

#define __global__
#define __device__
#define __forceinline__ inline

struct fw_emu_dim3 {
	unsigned x, y, z;
};
// threadIdx, blockIdx and blockDim of the thread being run.
extern thread_local fw_emu_dim3 fw_emu_thread_idx, fw_emu_block_idx, fw_emu_block_dim;

static inline int __nvvm_read_ptx_sreg_tid_x() { return (int)fw_emu_thread_idx.x; }
static inline int __nvvm_read_ptx_sreg_tid_y() { return (int)fw_emu_thread_idx.y; }
static inline int __nvvm_read_ptx_sreg_ctaid_x() { return (int)fw_emu_block_idx.x; }
static inline int __nvvm_read_ptx_sreg_ctaid_y() { return (int)fw_emu_block_idx.y; }
static inline int __nvvm_read_ptx_sreg_ntid_x() { return (int)fw_emu_block_dim.x; }
static inline int __nvvm_read_ptx_sreg_ntid_y() { return (int)fw_emu_block_dim.y; }
