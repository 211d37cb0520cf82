// Emulated CUDA driver: initialisation, errors, the device, contexts.
#include "cudaemu.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t emu_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t emu_cv = PTHREAD_COND_INITIALIZER;

static int initialized;
static struct CUctx_st primary = {.device = 0, .primary = 1};

// The calling thread's context stack (cuCtxPushCurrent/PopCurrent); the
// top is its current context.
static __thread CUcontext stack[32];
static __thread int depth;

void emu_log(const char *fmt, ...) {
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "cudaemu: %s\n", buf);
}

void emu_fail(const char *fmt, ...) {
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "cudaemu: FAIL: %s\n", buf);
	const char *mode = getenv("FW_CUDAEMU_ON_ERROR");
	if (mode && strcmp(mode, "log") == 0) return;
	fprintf(stderr, "cudaemu: aborting so the test fails here (FW_CUDAEMU_ON_ERROR=log only logs)\n");
	abort();
}

int emu_initialized(void) { return initialized; }

CUresult cuInit(unsigned flags) {
	if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
	const char *fail = getenv("FW_CUDAEMU_NO_DEVICE");
	if (fail && *fail) return CUDA_ERROR_NO_DEVICE; // a host whose driver finds no GPU
	initialized = 1;
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v) {
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	*v = 11080;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (!n) return CUDA_ERROR_INVALID_VALUE;
	*n = 1;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (!d) return CUDA_ERROR_INVALID_VALUE;
	if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}

#define CHECK_DEV(d)                                            \
	do {                                                    \
		if (!initialized) return CUDA_ERROR_NOT_INITIALIZED; \
		if ((d) != 0) return CUDA_ERROR_INVALID_DEVICE;   \
	} while (0)

CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	CHECK_DEV(d);
	if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
	// FW_CUDAEMU_DEVICE_NAME: a test that must see the code paths of a
	// real device (which skip the emulator's own assertions) names it.
	const char *as = getenv("FW_CUDAEMU_DEVICE_NAME");
	snprintf(name, (size_t)len, "%s", as && *as ? as : "cudaemu (emulated on the CPU, not a GPU)");
	return CUDA_SUCCESS;
}

static const size_t total_mem = (size_t)8 << 30;

CUresult cuDeviceTotalMem_v2(size_t *n, CUdevice d) {
	CHECK_DEV(d);
	if (!n) return CUDA_ERROR_INVALID_VALUE;
	*n = total_mem;
	return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice d) {
	CHECK_DEV(d);
	*major = 8;
	*minor = 0;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d) {
	CHECK_DEV(d);
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	switch (attr) {
	case 1: *v = 1024; break;             // MAX_THREADS_PER_BLOCK
	case 2: case 3: *v = 1024; break;     // MAX_BLOCK_DIM_X, _Y
	case 4: *v = 64; break;               // MAX_BLOCK_DIM_Z
	case 5: *v = 0x7fffffff; break;       // MAX_GRID_DIM_X
	case 6: case 7: *v = 65535; break;    // MAX_GRID_DIM_Y, _Z
	case 14: *v = 512; break;             // TEXTURE_ALIGNMENT
	case 16: *v = 1; break;               // MULTIPROCESSOR_COUNT
	case 19: *v = 1; break;               // CAN_MAP_HOST_MEMORY
	case 41: *v = 1; break;               // UNIFIED_ADDRESSING
	case 51: *v = 32; break;              // TEXTURE_PITCH_ALIGNMENT
	case 75: *v = 8; break;               // COMPUTE_CAPABILITY_MAJOR
	case 76: *v = 0; break;               // COMPUTE_CAPABILITY_MINOR
	default: *v = 0;
	}
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(unsigned char uuid[16], CUdevice d) {
	CHECK_DEV(d);
	memcpy(uuid, "fw-cudaemu-dev-0", 16);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(unsigned char uuid[16], CUdevice d) { return cuDeviceGetUuid(uuid, d); }

// ---- contexts

CUcontext emu_current(CUresult *r) {
	if (!initialized) {
		*r = CUDA_ERROR_NOT_INITIALIZED;
		return NULL;
	}
	CUcontext c = depth > 0 ? stack[depth - 1] : NULL;
	if (!c) {
		*r = CUDA_ERROR_INVALID_CONTEXT;
		return NULL;
	}
	pthread_mutex_lock(&emu_mu);
	int active = c->active;
	CUresult fault = c->fault;
	pthread_mutex_unlock(&emu_mu);
	if (!active) {
		*r = CUDA_ERROR_CONTEXT_IS_DESTROYED;
		return NULL;
	}
	if (fault) {
		*r = fault;
		return NULL;
	}
	*r = CUDA_SUCCESS;
	return c;
}

void emu_ctx_fault(CUcontext c, CUresult fault, const char *why) {
	pthread_mutex_lock(&emu_mu);
	int first = c->fault == 0;
	if (first) {
		c->fault = fault;
		c->faults++;
		snprintf(c->fault_why, sizeof c->fault_why, "%s", why);
	}
	pthread_mutex_unlock(&emu_mu);
	if (first)
		emu_log("sticky fault (CUresult %d) in context %p: %s; every call in this context now fails until it is destroyed", fault, (void *)c, why);
}

CUresult emu_sticky(CUcontext c) {
	pthread_mutex_lock(&emu_mu);
	CUresult r = c->fault;
	pthread_mutex_unlock(&emu_mu);
	return r;
}

static void activate(CUcontext c) {
	pthread_mutex_lock(&emu_mu);
	c->flags_at_activation = c->flags;
	c->activations++;
	pthread_mutex_unlock(&emu_mu);
	c->active = 1;
	c->legacy = emu_stream_new(c, CU_STREAM_DEFAULT, 1);
}

// deactivate drains the context's work, reports what it still holds
// (emu_fail) and destroys it. Caller does not hold emu_mu.
static void deactivate(CUcontext c, const char *why) {
	emu_ctx_sync(c);
	if (emu_sticky(c)) { // the driver frees a poisoned context's resources with it
		emu_stream_reclaim(c);
		emu_module_reclaim(c);
		emu_mem_reclaim(c);
	}
	pthread_mutex_lock(&emu_mu);
	c->fault = 0;
	c->fault_why[0] = 0;
	int leaks = emu_leaks(c);
	c->active = 0;
	CUstream legacy = c->legacy;
	c->legacy = NULL;
	pthread_mutex_unlock(&emu_mu);
	emu_stream_free(legacy);
	if (leaks) emu_fail("%s: %d allocation(s), stream(s), event(s) or module(s) still live (listed above)", why, leaks);
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *out, CUdevice d) {
	CHECK_DEV(d);
	if (!out) return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&emu_mu);
	int first = primary.refs++ == 0;
	pthread_mutex_unlock(&emu_mu);
	if (first) activate(&primary);
	*out = &primary;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice d) {
	CHECK_DEV(d);
	pthread_mutex_lock(&emu_mu);
	if (primary.refs == 0) {
		pthread_mutex_unlock(&emu_mu);
		emu_fail("cuDevicePrimaryCtxRelease: the primary context of device %d is not retained (release without retain)", d);
		return CUDA_ERROR_INVALID_CONTEXT;
	}
	int last = --primary.refs == 0;
	pthread_mutex_unlock(&emu_mu);
	if (last) deactivate(&primary, "cuDevicePrimaryCtxRelease released the primary context");
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { return cuDevicePrimaryCtxRelease(d); }

CUresult cuDevicePrimaryCtxGetState(CUdevice d, unsigned *flags, int *active) {
	CHECK_DEV(d);
	if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&emu_mu);
	*flags = primary.flags;
	*active = primary.refs > 0;
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

// cuDevicePrimaryCtxSetFlags: the documented behaviour of the original
// entry point: flags cannot change while the context is active.
CUresult cuDevicePrimaryCtxSetFlags(CUdevice d, unsigned flags) {
	CHECK_DEV(d);
	pthread_mutex_lock(&emu_mu);
	CUresult r = CUDA_SUCCESS;
	if (primary.refs > 0 && primary.flags != flags) r = CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE;
	else primary.flags = flags;
	pthread_mutex_unlock(&emu_mu);
	return r;
}

// cuDevicePrimaryCtxSetFlags_v2 (CUDA 11+) may change the flags of an
// active context.
CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice d, unsigned flags) {
	CHECK_DEV(d);
	pthread_mutex_lock(&emu_mu);
	primary.flags = flags;
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset(CUdevice d) {
	emu_log("cuDevicePrimaryCtxReset is not emulated");
	(void)d;
	return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice d) { return cuDevicePrimaryCtxReset(d); }

CUresult cuCtxCreate_v2(CUcontext *out, unsigned flags, CUdevice d) {
	CHECK_DEV(d);
	if (!out || depth == 32) return CUDA_ERROR_INVALID_VALUE;
	CUcontext c = calloc(1, sizeof *c);
	c->flags = flags;
	activate(c);
	stack[depth++] = c;
	*out = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext c) {
	if (!c || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
	for (int i = 0; i < depth; i++)
		if (stack[i] == c) stack[i] = NULL;
	deactivate(c, "cuCtxDestroy destroyed a context");
	return CUDA_SUCCESS; // c stays allocated: a stale handle must fail, not crash
}

CUresult cuCtxGetCurrent(CUcontext *out) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (!out) return CUDA_ERROR_INVALID_VALUE;
	*out = depth > 0 ? stack[depth - 1] : NULL;
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext c) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (!c) {
		if (depth > 0) depth--;
		return CUDA_SUCCESS;
	}
	if (depth == 0) depth = 1;
	stack[depth - 1] = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext c) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (!c || depth == 32) return CUDA_ERROR_INVALID_VALUE;
	stack[depth++] = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *out) {
	if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
	if (depth == 0) return CUDA_ERROR_INVALID_CONTEXT;
	CUcontext c = stack[--depth];
	if (out) *out = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *d) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	*d = c->device;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetFlags(unsigned *flags) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	*flags = c->flags;
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	emu_ctx_sync(c);
	return emu_sticky(c); // a kernel that faulted meanwhile
}

CUresult cuCtxSetLimit(int limit, size_t value) {
	(void)limit;
	(void)value;
	CUresult r;
	return emu_current(&r) ? CUDA_SUCCESS : r;
}

// cudaemu_stat reports a counter of the emulator by name, for tests
// (gpu.EmulatorStat): "primary_flags" (the primary context's flags now),
// "primary_fault" (its sticky fault, 0 when none), "primary_faults",
// "primary_flags_at_retain" (its flags when it last became active: the
// scheduling policy its waits follow), "primary_activations", and the host
// waits that had to wait by how: "waits_spin", "waits_yield",
// "waits_blocking", "spin_us" (time spent spinning),
// "max_concurrent_kernels" (the most kernels running at once on different
// streams since the last read of it); -1 for an unknown name.
long long cudaemu_stat(const char *name) {
	long long v = -1;
	pthread_mutex_lock(&emu_mu);
	if (!strcmp(name, "primary_flags")) v = primary.flags;
	else if (!strcmp(name, "primary_flags_at_retain")) v = primary.flags_at_activation;
	else if (!strcmp(name, "primary_activations")) v = primary.activations;
	else if (!strcmp(name, "waits_spin")) v = emu_waits_spin;
	else if (!strcmp(name, "waits_yield")) v = emu_waits_yield;
	else if (!strcmp(name, "waits_blocking")) v = emu_waits_blocking;
	else if (!strcmp(name, "spin_us")) v = emu_spin_ns / 1000;
	else if (!strcmp(name, "primary_fault")) v = primary.fault;
	else if (!strcmp(name, "primary_faults")) v = primary.faults;
	else if (!strcmp(name, "max_concurrent_kernels")) { // reading restarts the count
		v = emu_kernels_running_max;
		emu_kernels_running_max = emu_kernels_running;
	}
	pthread_mutex_unlock(&emu_mu);
	return v;
}

// ---- errors

static const struct { int code; const char *name, *text; } errors[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
	{100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	{400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	{500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	{600, "CUDA_ERROR_NOT_READY", "device not ready"},
	{700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	{701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	{708, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE", "primary context active"},
	{709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
	{801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported (by the emulated driver)"},
	{999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

CUresult cuGetErrorString(CUresult e, const char **s) {
	if (!s) return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (errors[i].code == e) {
			*s = errors[i].text;
			return CUDA_SUCCESS;
		}
	*s = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult e, const char **s) {
	if (!s) return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (errors[i].code == e) {
			*s = errors[i].name;
			return CUDA_SUCCESS;
		}
	*s = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}
