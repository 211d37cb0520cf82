// Emulated CUDA driver: device and pinned memory, real host memory kept in
// a checked registry, and the copies between them.
#include "cudaemu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// An allocation: [ptr, ptr+n) inside an mmap'd region whose next page is
// inaccessible, so a kernel that runs past the end faults at once.
struct alloc {
	uintptr_t ptr;
	size_t n;
	void *region;
	size_t rlen;
	int kind; // EMU_DEVICE or EMU_PINNED
	CUcontext ctx;
	struct alloc *next;
};

static struct alloc *live;
// Freed allocations stay inaccessible (PROT_NONE) for a while, so a late
// access faults and a second free is named a double free.
enum { QUARANTINE = 256 };
static struct alloc *freed[QUARANTINE];
static int freed_next;
static size_t device_bytes;

static const char *kind_name(int k) { return k == EMU_DEVICE ? "device" : "pinned host"; }

static struct alloc *find(uintptr_t p) {
	for (struct alloc *a = live; a; a = a->next)
		if (p >= a->ptr && p < a->ptr + a->n) return a;
	return NULL;
}

static CUresult emu_alloc(uintptr_t *out, size_t n, int kind) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	if (!out || n == 0) return CUDA_ERROR_INVALID_VALUE;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (n + 255) / 256 * 256;
	size_t pages = (body + page - 1) / page * page;
	void *region = mmap(NULL, pages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
	mprotect((char *)region + pages, page, PROT_NONE);
	struct alloc *a = calloc(1, sizeof *a);
	a->ptr = (uintptr_t)region + pages - body; // 256-aligned, ends at the guard page
	a->n = n;
	a->region = region;
	a->rlen = pages + page;
	a->kind = kind;
	a->ctx = c;
	memset((void *)a->ptr, 0xA5, n); // uninitialised memory is not zero on a GPU either
	pthread_mutex_lock(&emu_mu);
	a->next = live;
	live = a;
	if (kind == EMU_DEVICE) device_bytes += n;
	pthread_mutex_unlock(&emu_mu);
	*out = a->ptr;
	return CUDA_SUCCESS;
}

static CUresult emu_free(const char *op, uintptr_t p, int kind) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	if (p == 0) return CUDA_SUCCESS;
	emu_ctx_sync(c); // freeing memory waits for the device, as the driver does
	pthread_mutex_lock(&emu_mu);
	struct alloc **pp = &live;
	while (*pp && (*pp)->ptr != p) pp = &(*pp)->next;
	struct alloc *a = *pp;
	if (!a || a->kind != kind) {
		int twice = 0;
		for (int i = 0; i < QUARANTINE; i++)
			if (freed[i] && freed[i]->ptr == p) twice = 1;
		pthread_mutex_unlock(&emu_mu);
		if (twice) emu_fail("%s(0x%lx): double free of %s memory", op, (unsigned long)p, kind_name(kind));
		else if (a) emu_fail("%s(0x%lx): the pointer is %s memory", op, (unsigned long)p, kind_name(a->kind));
		else emu_fail("%s(0x%lx): not the start of a live %s allocation", op, (unsigned long)p, kind_name(kind));
		return CUDA_ERROR_INVALID_VALUE;
	}
	*pp = a->next;
	if (kind == EMU_DEVICE) device_bytes -= a->n;
	mprotect(a->region, a->rlen, PROT_NONE);
	struct alloc *old = freed[freed_next];
	freed[freed_next] = a;
	freed_next = (freed_next + 1) % QUARANTINE;
	pthread_mutex_unlock(&emu_mu);
	if (old) {
		munmap(old->region, old->rlen);
		free(old);
	}
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
	uintptr_t u;
	CUresult r = emu_alloc(&u, n, EMU_DEVICE);
	if (r == CUDA_SUCCESS) *p = u;
	return r;
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned elem) {
	(void)elem;
	if (!pitch) return CUDA_ERROR_INVALID_VALUE;
	*pitch = (w + 511) / 512 * 512;
	return cuMemAlloc_v2(p, *pitch * h);
}

CUresult cuMemFree_v2(CUdeviceptr p) { return emu_free("cuMemFree", (uintptr_t)p, EMU_DEVICE); }

CUresult cuMemHostAlloc(void **p, size_t n, unsigned flags) {
	(void)flags;
	uintptr_t u;
	CUresult r = emu_alloc(&u, n, EMU_PINNED);
	if (r == CUDA_SUCCESS) *p = (void *)u;
	return r;
}

CUresult cuMemAllocHost_v2(void **p, size_t n) { return cuMemHostAlloc(p, n, 0); }

CUresult cuMemFreeHost(void *p) { return emu_free("cuMemFreeHost", (uintptr_t)p, EMU_PINNED); }

CUresult cuMemGetInfo_v2(size_t *freeb, size_t *total) {
	CUresult r;
	if (!emu_current(&r)) return r;
	pthread_mutex_lock(&emu_mu);
	*total = (size_t)8 << 30;
	*freeb = *total - device_bytes;
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

int emu_range_why(uintptr_t p, size_t n, int kind, CUcontext ctx, char *why, size_t len) {
	pthread_mutex_lock(&emu_mu);
	struct alloc *a = find(p);
	int ok = a && (a->kind & kind) && n <= a->n - (p - a->ptr) && (!ctx || a->ctx == ctx);
	uintptr_t base = a ? a->ptr : 0;
	size_t an = a ? a->n : 0;
	int other = a && ctx && a->ctx != ctx;
	pthread_mutex_unlock(&emu_mu);
	if (ok) return 1;
	if (other)
		snprintf(why, len, "[0x%lx, +%zu) is memory of another context", (unsigned long)p, n);
	else if (a)
		snprintf(why, len, "[0x%lx, +%zu) runs past the end of the %zu-byte allocation at 0x%lx", (unsigned long)p, n, an, (unsigned long)base);
	else
		snprintf(why, len, "0x%lx (%zu bytes) is not in any live %s allocation", (unsigned long)p, n, kind == EMU_DEVICE ? "device" : "device or pinned");
	return 0;
}

int emu_range(const char *op, uintptr_t p, size_t n, int kind) {
	char why[256];
	if (emu_range_why(p, n, kind, NULL, why, sizeof why)) return 1;
	emu_fail("%s: %s", op, why);
	return 0;
}

void emu_mem_reclaim(CUcontext ctx) {
	pthread_mutex_lock(&emu_mu);
	for (struct alloc **pp = &live; *pp;) {
		struct alloc *a = *pp;
		if (a->ctx != ctx) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		if (a->kind == EMU_DEVICE) device_bytes -= a->n;
		munmap(a->region, a->rlen);
		free(a);
	}
	pthread_mutex_unlock(&emu_mu);
}

// cuPointerGetAttributes answers for any address, as the driver does: an
// address outside every allocation gets the null values (no context,
// memory type 0, an empty range) and CUDA_SUCCESS. Supported: CONTEXT (1),
// MEMORY_TYPE (2), DEVICE_POINTER (3), HOST_POINTER (4), DEVICE_ORDINAL
// (9), RANGE_START_ADDR (11), RANGE_SIZE (12), MAPPED (13).
CUresult cuPointerGetAttributes(unsigned n, int *attrs, void **data, CUdeviceptr ptr) {
	if (!emu_initialized()) return CUDA_ERROR_NOT_INITIALIZED;
	if (!attrs || !data) return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&emu_mu);
	struct alloc *a = find((uintptr_t)ptr);
	struct alloc x = a ? *a : (struct alloc){0};
	pthread_mutex_unlock(&emu_mu);
	for (unsigned i = 0; i < n; i++) {
		void *d = data[i];
		if (!d) continue;
		switch (attrs[i]) {
		case 1: *(CUcontext *)d = x.ctx; break;
		case 2: *(unsigned *)d = a ? (x.kind == EMU_DEVICE ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST) : 0; break;
		case 3: *(CUdeviceptr *)d = a ? ptr : 0; break;
		case 4: *(void **)d = a && x.kind == EMU_PINNED ? (void *)(uintptr_t)ptr : NULL; break;
		case 9: *(int *)d = a ? 0 : -1; break;
		case 11: *(CUdeviceptr *)d = x.ptr; break;
		case 12: *(size_t *)d = x.n; break;
		case 13: *(int *)d = a != NULL; break;
		default:
			emu_log("cuPointerGetAttributes: attribute %d is not emulated", attrs[i]);
			return CUDA_ERROR_NOT_SUPPORTED;
		}
	}
	return CUDA_SUCCESS;
}

int emu_is_pinned(const void *p, size_t n) {
	pthread_mutex_lock(&emu_mu);
	struct alloc *a = find((uintptr_t)p);
	int ok = a && a->kind == EMU_PINNED && n <= a->n - ((uintptr_t)p - a->ptr);
	pthread_mutex_unlock(&emu_mu);
	return ok;
}

size_t emu_device_bytes(void) { return device_bytes; }

int emu_mem_leaks(CUcontext ctx) {
	int n = 0;
	for (struct alloc *a = live; a; a = a->next)
		if (a->ctx == ctx) {
			emu_log("leak: %zu bytes of %s memory at 0x%lx", a->n, kind_name(a->kind), (unsigned long)a->ptr);
			n++;
		}
	return n;
}

int emu_leaks(CUcontext ctx) { return emu_mem_leaks(ctx) + emu_stream_leaks(ctx) + emu_module_leaks(ctx); }

// ---- copies. A synchronous copy runs on the legacy default stream and
// returns when done; an asynchronous one is queued on its stream. Copies
// to or from pageable (non-pinned) host memory are synchronous, as in the
// driver.

static void run_copy(emu_op *op) { memcpy(op->dst, op->src, op->n); }

static CUresult copy(const char *op, void *dst, const void *src, size_t n, int dkind, int skind, CUstream s, int async) {
	CUresult r;
	CUcontext cx = emu_current(&r);
	if (!cx) return r;
	if (n == 0) return CUDA_SUCCESS;
	if (dkind && !emu_range(op, (uintptr_t)dst, n, dkind)) return CUDA_ERROR_INVALID_VALUE;
	if (skind && !emu_range(op, (uintptr_t)src, n, skind)) return CUDA_ERROR_INVALID_VALUE;
	CUstream st = emu_stream_resolve(async ? s : NULL, &r);
	if (!st) return r;
	emu_op *o = emu_op_new(run_copy);
	o->dst = dst;
	o->src = src;
	o->n = n;
	uint64_t seq = emu_enqueue(st, o);
	int host_pageable = (!dkind && !emu_is_pinned(dst, n)) || (!skind && !emu_is_pinned(src, n));
	if (!async || host_pageable) {
		emu_wait(st, seq);
		return emu_sticky(cx);
	}
	return CUDA_SUCCESS;
}

#define DEV EMU_DEVICE
#define ANY (EMU_DEVICE | EMU_PINNED)

CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *h, size_t n) { return copy("cuMemcpyHtoD", (void *)d, h, n, DEV, 0, NULL, 0); }
CUresult cuMemcpyDtoH_v2(void *h, CUdeviceptr d, size_t n) { return copy("cuMemcpyDtoH", h, (void *)d, n, 0, DEV, NULL, 0); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy("cuMemcpyDtoD", (void *)d, (void *)s, n, DEV, DEV, NULL, 0); }
CUresult cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy("cuMemcpy", (void *)d, (void *)s, n, ANY, ANY, NULL, 0); }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *h, size_t n, CUstream s) { return copy("cuMemcpyHtoDAsync", (void *)d, h, n, DEV, 0, s, 1); }
CUresult cuMemcpyDtoHAsync_v2(void *h, CUdeviceptr d, size_t n, CUstream s) { return copy("cuMemcpyDtoHAsync", h, (void *)d, n, 0, DEV, s, 1); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) { return copy("cuMemcpyDtoDAsync", (void *)d, (void *)src, n, DEV, DEV, s, 1); }
CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) { return copy("cuMemcpyAsync", (void *)d, (void *)src, n, ANY, ANY, s, 1); }

static void run_copy2d(emu_op *op) {
	const CUDA_MEMCPY2D *c = &op->copy2d;
	const char *src = c->srcMemoryType == CU_MEMORYTYPE_HOST ? (const char *)c->srcHost : (const char *)(uintptr_t)c->srcDevice;
	char *dst = c->dstMemoryType == CU_MEMORYTYPE_HOST ? (char *)c->dstHost : (char *)(uintptr_t)c->dstDevice;
	src += c->srcY * c->srcPitch + c->srcXInBytes;
	dst += c->dstY * c->dstPitch + c->dstXInBytes;
	for (size_t row = 0; row < c->Height; row++) memcpy(dst + row * c->dstPitch, src + row * c->srcPitch, c->WidthInBytes);
}

// check2d checks every row of one side of a 2D copy.
static int check2d(const char *op, int type, uintptr_t base, size_t x, size_t y, size_t pitch, size_t w, size_t h) {
	if (type == CU_MEMORYTYPE_HOST) return 1;
	if (type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED) {
		emu_log("%s: memory type %d (arrays) is not emulated", op, type);
		return 0;
	}
	if (h > 0 && pitch < w && h > 1) {
		emu_fail("%s: pitch %zu smaller than the row of %zu bytes", op, pitch, w);
		return 0;
	}
	for (size_t row = 0; row < h; row++)
		if (!emu_range(op, base + (y + row) * pitch + x, w, ANY)) return 0;
	return 1;
}

static CUresult copy2d(const char *op, const CUDA_MEMCPY2D *c, CUstream s, int async) {
	CUresult r;
	CUcontext cx = emu_current(&r);
	if (!cx) return r;
	if (!c) return CUDA_ERROR_INVALID_VALUE;
	if (!check2d(op, c->srcMemoryType, (uintptr_t)c->srcDevice, c->srcXInBytes, c->srcY, c->srcPitch, c->WidthInBytes, c->Height) ||
	    !check2d(op, c->dstMemoryType, (uintptr_t)c->dstDevice, c->dstXInBytes, c->dstY, c->dstPitch, c->WidthInBytes, c->Height))
		return CUDA_ERROR_INVALID_VALUE;
	CUstream st = emu_stream_resolve(async ? s : NULL, &r);
	if (!st) return r;
	emu_op *o = emu_op_new(run_copy2d);
	o->copy2d = *c;
	uint64_t seq = emu_enqueue(st, o);
	if (!async || c->srcMemoryType == CU_MEMORYTYPE_HOST || c->dstMemoryType == CU_MEMORYTYPE_HOST) {
		emu_wait(st, seq);
		return emu_sticky(cx);
	}
	return CUDA_SUCCESS;
}

CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *c) { return copy2d("cuMemcpy2D", c, NULL, 0); }
CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *c) { return copy2d("cuMemcpy2DUnaligned", c, NULL, 0); }
CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, CUstream s) { return copy2d("cuMemcpy2DAsync", c, s, 1); }

static void run_memset(emu_op *op) { memset(op->dst, (int)op->kernel, op->n); }

static CUresult memset8(CUdeviceptr d, unsigned char v, size_t n, CUstream s, int async) {
	CUresult r;
	if (!emu_current(&r)) return r;
	if (n == 0) return CUDA_SUCCESS;
	if (!emu_range("cuMemsetD8", (uintptr_t)d, n, DEV)) return CUDA_ERROR_INVALID_VALUE;
	CUstream st = emu_stream_resolve(async ? s : NULL, &r);
	if (!st) return r;
	emu_op *o = emu_op_new(run_memset);
	o->dst = (void *)(uintptr_t)d;
	o->n = n;
	o->kernel = v;
	uint64_t seq = emu_enqueue(st, o);
	if (!async) emu_wait(st, seq);
	return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return memset8(d, v, n, NULL, 0); }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset8(d, v, n, s, 1); }
