// Internal declarations of the emulated CUDA driver (see README.md).
//
// The emulator does not include cuda.h: cuda.h maps names such as
// cuMemAlloc to cuMemAlloc_v2 with macros, and the emulator must export
// the exact names programs resolve (FFmpeg's loader asks for
// "cuDevicePrimaryCtxRelease", a binary built against CUDA 11.8's cuda.h
// links "cuDevicePrimaryCtxRelease_v2"). The few types and values it needs
// are declared here with cuda.h's layouts and numbers.
#ifndef FW_CUDAEMU_H
#define FW_CUDAEMU_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_DEINITIALIZED = 4,
	CUDA_ERROR_NO_DEVICE = 100,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_IMAGE = 200,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_INVALID_PTX = 218,
	CUDA_ERROR_INVALID_HANDLE = 400,
	CUDA_ERROR_NOT_FOUND = 500,
	CUDA_ERROR_NOT_READY = 600,
	CUDA_ERROR_ILLEGAL_ADDRESS = 700,
	CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
	CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE = 708,
	CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
	CUDA_ERROR_NOT_SUPPORTED = 801,
	CUDA_ERROR_UNKNOWN = 999,
};

enum { CU_MEMORYTYPE_HOST = 1, CU_MEMORYTYPE_DEVICE = 2, CU_MEMORYTYPE_ARRAY = 3, CU_MEMORYTYPE_UNIFIED = 4 };
enum { CU_STREAM_DEFAULT = 0, CU_STREAM_NON_BLOCKING = 1 };
#define CU_STREAM_LEGACY ((CUstream)0x1)
#define CU_STREAM_PER_THREAD ((CUstream)0x2)

// cuda.h's CUDA_MEMCPY2D (the 64-bit, _v2 layout).
typedef struct {
	size_t srcXInBytes, srcY;
	int srcMemoryType;
	const void *srcHost;
	CUdeviceptr srcDevice;
	void *srcArray;
	size_t srcPitch;
	size_t dstXInBytes, dstY;
	int dstMemoryType;
	void *dstHost;
	CUdeviceptr dstDevice;
	void *dstArray;
	size_t dstPitch;
	size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;

// ---- the emulator's state

struct CUctx_st {
	int device;
	int primary;    // the device's primary context (else cuCtxCreate's)
	int refs;       // primary: retain count
	unsigned flags; // CU_CTX_* flags it was (or will be) created with
	unsigned flags_at_activation; // the flags when it last became active
	int activations;              // times it became active
	int active;     // live; every call on an inactive context fails
	CUstream legacy; // the legacy default stream, while active
	// A sticky fault (CUDA_ERROR_ILLEGAL_ADDRESS) poisons the context as
	// in the driver: every later call that uses it fails with fault until
	// it is destroyed (the primary context: released by every holder).
	CUresult fault;
	char fault_why[512];
	int faults; // sticky faults since the process started
};

// emu_mu guards every field of the structures below; emu_cv is broadcast
// whenever a stream finishes an operation or a queue changes.
extern pthread_mutex_t emu_mu;
extern pthread_cond_t emu_cv;

// emu_fail reports a misuse that the real driver would answer with an
// error our code may ignore (double free, copy out of range, leak) or
// with undefined behaviour, and aborts the process so the test fails
// where it happened. FW_CUDAEMU_ON_ERROR=log only logs.
void emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// emu_log writes one line to stderr, prefixed "cudaemu: ".
void emu_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// emu_current returns the calling thread's current context, or NULL with
// *r set to the driver's error (no context, a destroyed one, or the
// context's sticky fault).
CUcontext emu_current(CUresult *r);
int emu_initialized(void);

// Memory registry (memory.c).
enum { EMU_DEVICE = 1, EMU_PINNED = 2 };
// emu_range checks that [p, p+n) lies in one live allocation of kind
// (EMU_DEVICE, or EMU_PINNED|EMU_DEVICE for either); it calls emu_fail
// naming op otherwise. It returns 1 when the range is inside one.
int emu_range(const char *op, uintptr_t p, size_t n, int kind);
int emu_is_pinned(const void *p, size_t n);
// emu_range_why is emu_range without the failure: it returns 1 when
// [p, p+n) lies in one live allocation of kind belonging to ctx (any
// context when ctx is NULL), else 0 with the reason in why.
int emu_range_why(uintptr_t p, size_t n, int kind, CUcontext ctx, char *why, size_t len);
// emu_ctx_fault makes fault sticky in c (the first one wins) and logs why.
void emu_ctx_fault(CUcontext c, CUresult fault, const char *why);
// emu_sticky reports c's sticky fault (CUDA_SUCCESS when none).
CUresult emu_sticky(CUcontext c);
// Reclaiming a poisoned context's resources when it is destroyed: the
// driver frees them with it, nothing is reported as leaked.
void emu_mem_reclaim(CUcontext ctx);
void emu_stream_reclaim(CUcontext ctx);
void emu_module_reclaim(CUcontext ctx);
size_t emu_device_bytes(void);
// emu_leaks reports (and counts) every allocation, stream, event and
// module still live in ctx. Caller holds emu_mu.
int emu_leaks(CUcontext ctx);
int emu_mem_leaks(CUcontext ctx);

// Streams (stream.c).
typedef struct emu_op emu_op;
struct emu_op {
	void (*run)(emu_op *op); // NULL: a marker (event record, wait)
	emu_op *next;
	uint64_t seq;
	int ndeps;
	struct { CUstream s; uint64_t seq; } deps[8];
	// Operation arguments.
	void *dst;
	const void *src;
	size_t n;
	CUDA_MEMCPY2D copy2d;
	int kernel;
	CUcontext ctx;     // kernels: the launching context
	char fault[448];   // kernels: why running it faults ("" when it does not)
	unsigned grid[3], block[3];
	unsigned char params[256];
};
CUstream emu_stream_resolve(CUstream s, CUresult *r);
CUstream emu_stream_new(CUcontext ctx, unsigned flags, int legacy);
void emu_stream_free(CUstream s);
emu_op *emu_op_new(void (*run)(emu_op *));
// emu_enqueue queues op on s (after the dependencies the legacy default
// stream's semantics add) and returns its sequence number.
uint64_t emu_enqueue(CUstream s, emu_op *op);
// emu_wait blocks until s has completed op seq.
void emu_wait(CUstream s, uint64_t seq);
void emu_ctx_sync(CUcontext ctx);
int emu_stream_leaks(CUcontext ctx);
// Host waits that had to wait, by how (see stream.c), and the time spent
// spinning. Guarded by emu_mu.
extern long long emu_waits_spin, emu_waits_yield, emu_waits_blocking, emu_spin_ns;
// Kernels running at once, and the most since the last read (module.c).
extern int emu_kernels_running, emu_kernels_running_max;
// The next kernel launch faults when set (cudaemu_inject_fault).
extern int emu_fault_armed;
int emu_module_leaks(CUcontext ctx);

// Host kernels (kernels_host.cc).
struct emu_kernel {
	const char *name;
	int nparams;
	const unsigned char *sizes; // bytes per parameter
	const unsigned char *ptrs;  // 1 where the parameter is a device pointer
};
extern const struct emu_kernel emu_kernels[];
extern const int emu_nkernels;
void emu_run_kernel(int k, const unsigned grid[3], const unsigned block[3], const unsigned char *params);
// emu_kernel_footprint lists the byte ranges kernel k reads or writes
// through each pointer parameter for params (its launch arguments): out[i]
// for parameter i, 0 for a parameter that is not a pointer.
void emu_kernel_footprint(int k, const unsigned char *params, size_t out[]);

#endif
