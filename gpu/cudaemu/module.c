// Emulated CUDA driver: modules from the project's PTX, and kernel
// launches that run the same kernels.cu compiled for the host.
#include "cudaemu.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

enum { MAX_ENTRIES = 16, MAX_PARAMS = 32 };

struct CUfunc_st {
	char name[128];
	int nparams;
	unsigned char sizes[MAX_PARAMS];
	int kernel; // index in emu_kernels
	struct CUmod_st *mod;
};

struct CUmod_st {
	CUcontext ctx;
	int unloaded;
	int nfuncs;
	struct CUfunc_st funcs[MAX_ENTRIES];
	struct CUmod_st *next;
};

static struct CUmod_st *modules;

static int param_size(const char *type) {
	if (!strncmp(type, ".u64", 4) || !strncmp(type, ".s64", 4) || !strncmp(type, ".b64", 4) || !strncmp(type, ".f64", 4)) return 8;
	if (!strncmp(type, ".u32", 4) || !strncmp(type, ".s32", 4) || !strncmp(type, ".b32", 4) || !strncmp(type, ".f32", 4)) return 4;
	if (!strncmp(type, ".u16", 4) || !strncmp(type, ".s16", 4) || !strncmp(type, ".b16", 4)) return 2;
	if (!strncmp(type, ".u8", 3) || !strncmp(type, ".s8", 3) || !strncmp(type, ".b8", 3)) return 1;
	return 0;
}

// parse_entry reads one ".entry NAME( .param .TYPE NAME, ... )" starting
// at p (just past ".entry"); it returns the position after ')' or NULL.
static const char *parse_entry(const char *p, struct CUfunc_st *f) {
	while (*p == ' ' || *p == '\t') p++;
	size_t n = strcspn(p, "( \t\n");
	if (n == 0 || n >= sizeof f->name) return NULL;
	memcpy(f->name, p, n);
	f->name[n] = 0;
	const char *end = strchr(p, ')');
	if (!end) return NULL;
	for (const char *q = strstr(p, ".param"); q && q < end; q = strstr(q + 6, ".param")) {
		const char *t = q + 6;
		while (*t == ' ' || *t == '\t') t++;
		int sz = param_size(t);
		if (sz == 0 || f->nparams == MAX_PARAMS) return NULL;
		f->sizes[f->nparams++] = (unsigned char)sz;
	}
	return end + 1;
}

// check_entry matches a PTX entry against the host build of the kernel:
// same name, same parameter count and sizes.
static int check_entry(struct CUfunc_st *f) {
	for (int k = 0; k < emu_nkernels; k++) {
		const struct emu_kernel *h = &emu_kernels[k];
		if (strcmp(h->name, f->name) != 0) continue;
		if (h->nparams != f->nparams) {
			emu_log("cuModuleLoadData: PTX entry %s has %d parameters, kernels.cu has %d", f->name, f->nparams, h->nparams);
			return 0;
		}
		for (int i = 0; i < f->nparams; i++)
			if (h->sizes[i] != f->sizes[i]) {
				emu_log("cuModuleLoadData: parameter %d of %s is %d bytes in the PTX, %d in kernels.cu", i, f->name, f->sizes[i], h->sizes[i]);
				return 0;
			}
		f->kernel = k;
		return 1;
	}
	emu_log("cuModuleLoadData: PTX entry %s is not a kernel of kernels.cu (the emulator runs only those)", f->name);
	return 0;
}

CUresult cuModuleLoadData(CUmodule *out, const void *image) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
	const char *ptx = image;
	if (!strstr(ptx, ".version") || !strstr(ptx, ".target")) {
		emu_log("cuModuleLoadData: the image is not PTX text (no .version/.target)");
		return CUDA_ERROR_INVALID_IMAGE;
	}
	struct CUmod_st *m = calloc(1, sizeof *m);
	m->ctx = c;
	for (const char *p = strstr(ptx, ".entry"); p; p = strstr(p, ".entry")) {
		struct CUfunc_st *f = &m->funcs[m->nfuncs];
		if (m->nfuncs == MAX_ENTRIES || !(p = parse_entry(p + 6, f)) || !check_entry(f)) {
			free(m);
			return CUDA_ERROR_INVALID_PTX;
		}
		f->mod = m;
		m->nfuncs++;
	}
	if (m->nfuncs == 0) {
		free(m);
		emu_log("cuModuleLoadData: the PTX has no .entry");
		return CUDA_ERROR_INVALID_PTX;
	}
	pthread_mutex_lock(&emu_mu);
	m->next = modules;
	modules = m;
	pthread_mutex_unlock(&emu_mu);
	*out = m;
	return CUDA_SUCCESS;
}

static struct CUmod_st *live_module(CUmodule m, const char *op) {
	pthread_mutex_lock(&emu_mu);
	struct CUmod_st *x = modules;
	while (x && x != m) x = x->next;
	int ok = x && !x->unloaded;
	pthread_mutex_unlock(&emu_mu);
	if (!ok) emu_fail("%s: module %p is not loaded", op, (void *)m);
	return ok ? x : NULL;
}

CUresult cuModuleUnload(CUmodule m) {
	CUresult r;
	if (!emu_current(&r)) return r;
	struct CUmod_st *x = live_module(m, "cuModuleUnload");
	if (!x) return CUDA_ERROR_INVALID_HANDLE;
	emu_ctx_sync(x->ctx);
	pthread_mutex_lock(&emu_mu);
	x->unloaded = 1; // kept: a stale CUfunction must fail, not crash
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *out, CUmodule m, const char *name) {
	CUresult r;
	if (!emu_current(&r)) return r;
	if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
	struct CUmod_st *x = live_module(m, "cuModuleGetFunction");
	if (!x) return CUDA_ERROR_INVALID_HANDLE;
	for (int i = 0; i < x->nfuncs; i++)
		if (strcmp(x->funcs[i].name, name) == 0) {
			*out = &x->funcs[i];
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_FOUND;
}

void emu_module_reclaim(CUcontext ctx) {
	pthread_mutex_lock(&emu_mu);
	for (struct CUmod_st *m = modules; m; m = m->next)
		if (m->ctx == ctx) m->unloaded = 1;
	pthread_mutex_unlock(&emu_mu);
}

int emu_module_leaks(CUcontext ctx) {
	int n = 0;
	for (struct CUmod_st *m = modules; m; m = m->next)
		if (m->ctx == ctx && !m->unloaded) {
			emu_log("leak: module with entry %s never unloaded", m->funcs[0].name);
			n++;
		}
	return n;
}

// run_kernel runs the kernel, or, when its launch named memory it may not
// touch, faults instead: the context's sticky fault, as a GPU's memory
// protection would raise it when the kernel ran.
static void run_kernel(emu_op *op) {
	if (op->fault[0]) {
		emu_ctx_fault(op->ctx, CUDA_ERROR_ILLEGAL_ADDRESS, op->fault);
		return;
	}
	pthread_mutex_lock(&emu_mu);
	if (++emu_kernels_running > emu_kernels_running_max) emu_kernels_running_max = emu_kernels_running;
	pthread_mutex_unlock(&emu_mu);
	emu_run_kernel(op->kernel, op->grid, op->block, op->params);
	pthread_mutex_lock(&emu_mu);
	emu_kernels_running--;
	pthread_mutex_unlock(&emu_mu);
}

// emu_fault_armed makes the next kernel launch fault when it runs
// (cudaemu_inject_fault). Guarded by emu_mu.
int emu_fault_armed;

// cudaemu_inject_fault arms a sticky illegal-address fault for the next
// kernel launched in any context, for tests of what follows a fault that
// no check could prevent (gpu.EmulatorInjectFault).
void cudaemu_inject_fault(void) {
	pthread_mutex_lock(&emu_mu);
	emu_fault_armed = 1;
	pthread_mutex_unlock(&emu_mu);
}

// Kernels running at once on the streams' workers, and the most since the
// last read of cudaemu_stat("max_concurrent_kernels"). Guarded by emu_mu.
int emu_kernels_running, emu_kernels_running_max;

// check_params copies the launch's parameters (sizes from the PTX entry)
// into op and checks that everything the kernel will touch through each
// pointer parameter (its footprint, from the kernel's own arguments) lies
// in one live device or pinned allocation of the launching context. A
// violation is not a launch error, as in the driver: the kernel faults
// when it runs (op->fault) and poisons the context.
static int check_params(struct CUfunc_st *f, void **args, emu_op *op) {
	const struct emu_kernel *h = &emu_kernels[f->kernel];
	size_t off = 0;
	for (int i = 0; i < f->nparams; i++) {
		if (!args[i]) {
			emu_fail("cuLaunchKernel(%s): parameter %d is NULL (want %d parameters)", f->name, i, f->nparams);
			return 0;
		}
		off = (off + f->sizes[i] - 1) / f->sizes[i] * f->sizes[i];
		if (off + f->sizes[i] > 256) return 0;
		memcpy(op->params + off, args[i], f->sizes[i]);
		off += f->sizes[i];
	}
	size_t span[MAX_PARAMS] = {0};
	emu_kernel_footprint(f->kernel, op->params, span);
	off = 0;
	for (int i = 0; i < f->nparams; i++) {
		off = (off + f->sizes[i] - 1) / f->sizes[i] * f->sizes[i];
		uintptr_t p;
		memcpy(&p, op->params + off, sizeof p);
		off += f->sizes[i];
		char why[256];
		if (!h->ptrs[i] || op->fault[0] || emu_range_why(p, span[i] ? span[i] : 1, EMU_DEVICE | EMU_PINNED, op->ctx, why, sizeof why))
			continue;
		snprintf(op->fault, sizeof op->fault, "kernel %s, pointer parameter %d: %s", f->name, i, why);
	}
	return 1;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream s, void **args, void **extra) {
	CUresult r;
	CUcontext cx = emu_current(&r);
	if (!cx) return r;
	if (!f || live_module(f->mod, "cuLaunchKernel") == NULL) return CUDA_ERROR_INVALID_HANDLE;
	if (extra) {
		emu_log("cuLaunchKernel: the extra parameter form is not emulated");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	if (!args && f->nparams > 0) return CUDA_ERROR_INVALID_VALUE;
	if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535) return CUDA_ERROR_INVALID_VALUE;
	if ((unsigned long)bx * by * bz > 1024 || shared > 48 * 1024) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	emu_op *op = emu_op_new(run_kernel);
	op->ctx = cx;
	if (!check_params(f, args, op)) {
		free(op);
		return CUDA_ERROR_INVALID_VALUE;
	}
	pthread_mutex_lock(&emu_mu);
	if (emu_fault_armed && !op->fault[0]) {
		emu_fault_armed = 0;
		snprintf(op->fault, sizeof op->fault, "kernel %s: a fault injected by cudaemu_inject_fault (a stand-in for a model's faulting kernel)", f->name);
	}
	pthread_mutex_unlock(&emu_mu);
	op->kernel = f->kernel;
	op->grid[0] = gx, op->grid[1] = gy, op->grid[2] = gz;
	op->block[0] = bx, op->block[1] = by, op->block[2] = bz;
	emu_enqueue(st, op);
	return CUDA_SUCCESS;
}
