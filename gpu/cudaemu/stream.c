// Emulated CUDA driver: streams that run their work on a worker thread
// after a deliberate delay, and events. Ordering follows the driver's
// documented rules: operations of a stream run in order; cuStreamWaitEvent
// orders a stream after an event's work; the legacy default stream (NULL)
// waits for all blocking streams of its context and they wait for it;
// non-blocking streams (CU_STREAM_NON_BLOCKING) are ordered with nothing.
#include "cudaemu.h"
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct CUstream_st {
	CUcontext ctx;
	unsigned flags;
	int legacy;
	int destroyed;
	uint64_t enq, done; // sequence numbers: queued, completed
	emu_op *head, *tail;
	int stop;
	pthread_t th;
	CUstream next; // the context's streams
};

struct CUevent_st {
	CUcontext ctx;
	unsigned flags; // CU_EVENT_* it was created with
	CUstream s; // the stream of the last record, NULL before any
	uint64_t seq;
	int destroyed;
	struct CUevent_st *next;
};

static CUstream streams;
static struct CUevent_st *events;

// delay is how long each operation waits on its worker before it runs
// (FW_CUDAEMU_DELAY_US, default 200 µs): long enough that work nobody
// waited for is visibly not done yet.
static long delay_us(void) {
	static long d = -1;
	if (d < 0) {
		const char *e = getenv("FW_CUDAEMU_DELAY_US");
		d = e ? atol(e) : 200;
	}
	return d;
}

static int deps_done(const emu_op *op) {
	for (int i = 0; i < op->ndeps; i++)
		if (op->deps[i].s->done < op->deps[i].seq) return 0;
	return 1;
}

static void *worker(void *arg) {
	CUstream s = arg;
	pthread_mutex_lock(&emu_mu);
	for (;;) {
		while (!s->head && !s->stop) pthread_cond_wait(&emu_cv, &emu_mu);
		if (!s->head) break;
		emu_op *op = s->head;
		while (!deps_done(op)) pthread_cond_wait(&emu_cv, &emu_mu);
		int dead = s->ctx->fault != 0; // a faulted context runs nothing more
		pthread_mutex_unlock(&emu_mu);
		if (op->run && !dead) {
			struct timespec ts = {0, delay_us() * 1000};
			nanosleep(&ts, NULL);
			op->run(op);
		}
		pthread_mutex_lock(&emu_mu);
		s->head = op->next;
		if (!s->head) s->tail = NULL;
		s->done = op->seq;
		free(op);
		pthread_cond_broadcast(&emu_cv);
	}
	pthread_mutex_unlock(&emu_mu);
	return NULL;
}

CUstream emu_stream_new(CUcontext ctx, unsigned flags, int legacy) {
	CUstream s = calloc(1, sizeof *s);
	s->ctx = ctx;
	s->flags = flags;
	s->legacy = legacy;
	pthread_mutex_lock(&emu_mu);
	s->next = streams;
	streams = s;
	pthread_mutex_unlock(&emu_mu);
	pthread_create(&s->th, NULL, worker, s);
	return s;
}

// emu_stream_free waits for s's work, stops its worker and marks it
// destroyed. The structure stays (operations of other streams may still
// name it in their dependencies; a stale handle must fail, not crash).
void emu_stream_free(CUstream s) {
	if (!s) return;
	pthread_mutex_lock(&emu_mu);
	s->stop = 1;
	pthread_cond_broadcast(&emu_cv);
	pthread_mutex_unlock(&emu_mu);
	pthread_join(s->th, NULL);
	pthread_mutex_lock(&emu_mu);
	s->destroyed = 1;
	pthread_mutex_unlock(&emu_mu);
}

CUstream emu_stream_resolve(CUstream s, CUresult *r) {
	CUcontext c = emu_current(r);
	if (!c) return NULL;
	if (s == NULL || s == CU_STREAM_LEGACY) return c->legacy;
	if (s == CU_STREAM_PER_THREAD) {
		emu_log("the per-thread default stream is not emulated");
		*r = CUDA_ERROR_NOT_SUPPORTED;
		return NULL;
	}
	pthread_mutex_lock(&emu_mu);
	CUstream x = streams;
	while (x && x != s) x = x->next;
	int bad = !x || x->destroyed || x->stop;
	CUcontext sc = x ? x->ctx : NULL;
	pthread_mutex_unlock(&emu_mu);
	if (bad) {
		emu_fail("stream %p is not a live stream (destroyed or never created)", (void *)s);
		*r = CUDA_ERROR_INVALID_HANDLE;
		return NULL;
	}
	if (sc != c) {
		emu_fail("stream %p belongs to another context than the current one", (void *)s);
		*r = CUDA_ERROR_INVALID_HANDLE;
		return NULL;
	}
	return s;
}

emu_op *emu_op_new(void (*run)(emu_op *)) {
	emu_op *op = calloc(1, sizeof *op);
	op->run = run;
	return op;
}

static void add_dep(emu_op *op, CUstream s, uint64_t seq) {
	if (seq == 0 || s->done >= seq) return;
	if (op->ndeps == 8) {
		emu_fail("an operation waits for more than 8 streams (emulator limit)");
		return;
	}
	op->deps[op->ndeps].s = s;
	op->deps[op->ndeps].seq = seq;
	op->ndeps++;
}

uint64_t emu_enqueue(CUstream s, emu_op *op) {
	pthread_mutex_lock(&emu_mu);
	CUstream legacy = s->ctx->legacy;
	if (s->legacy) {
		for (CUstream x = streams; x; x = x->next)
			if (x != s && x->ctx == s->ctx && !x->destroyed && !(x->flags & CU_STREAM_NON_BLOCKING)) add_dep(op, x, x->enq);
	} else if (!(s->flags & CU_STREAM_NON_BLOCKING) && legacy) {
		add_dep(op, legacy, legacy->enq);
	}
	op->seq = ++s->enq;
	if (s->tail) s->tail->next = op;
	else s->head = op;
	s->tail = op;
	pthread_cond_broadcast(&emu_cv);
	pthread_mutex_unlock(&emu_mu);
	return op->seq;
}

// ---- host waits. The driver waits for the device as the context's
// scheduling flags say: CU_CTX_SCHED_SPIN spins on a core,
// CU_CTX_SCHED_YIELD spins yielding the core, CU_CTX_SCHED_BLOCKING_SYNC
// blocks the thread; CU_CTX_SCHED_AUTO (0) spins while the process has no
// more active contexts than the host has cores (always, for one context)
// and yields otherwise. An event created with CU_EVENT_BLOCKING_SYNC makes
// cuEventSynchronize block whatever the context's flags. The emulator
// waits the same way (a spinning wait really burns its core) and counts
// each wait that had to wait, by kind (cudaemu_stat), so a test can
// assert that no wait of ours spins.
enum { SCHED_MASK = 7, SCHED_SPIN = 1, SCHED_YIELD = 2, SCHED_BLOCKING = 4, EVENT_BLOCKING_SYNC = 1 };
long long emu_waits_spin, emu_waits_yield, emu_waits_blocking, emu_spin_ns;

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int wait_mode(CUcontext c, int blocking_event) {
	if (blocking_event) return SCHED_BLOCKING;
	unsigned f = c->flags & SCHED_MASK;
	if (f == SCHED_BLOCKING || f == SCHED_YIELD) return (int)f;
	return SCHED_SPIN; // SPIN, or AUTO with fewer contexts than cores (the emulator's case)
}

// wait_locked waits until s has completed seq, in mode. Caller holds
// emu_mu (released while blocked or spinning).
static void wait_locked(CUstream s, uint64_t seq, int mode) {
	if (s->done >= seq) return;
	if (mode == SCHED_BLOCKING) {
		emu_waits_blocking++;
		while (s->done < seq) pthread_cond_wait(&emu_cv, &emu_mu);
		return;
	}
	if (mode == SCHED_YIELD) emu_waits_yield++;
	else emu_waits_spin++;
	long long t0 = now_ns();
	while (s->done < seq) {
		pthread_mutex_unlock(&emu_mu);
		if (mode == SCHED_YIELD) sched_yield();
		else
			for (volatile int i = 0; i < 1000; i++) {
			}
		pthread_mutex_lock(&emu_mu);
	}
	if (mode == SCHED_SPIN) emu_spin_ns += now_ns() - t0;
}

void emu_wait(CUstream s, uint64_t seq) {
	pthread_mutex_lock(&emu_mu);
	wait_locked(s, seq, wait_mode(s->ctx, 0));
	pthread_mutex_unlock(&emu_mu);
}

void emu_ctx_sync(CUcontext ctx) {
	pthread_mutex_lock(&emu_mu);
	int mode = wait_mode(ctx, 0);
	for (CUstream x = streams; x; x = x->next)
		if (x->ctx == ctx) wait_locked(x, x->enq, mode);
	pthread_mutex_unlock(&emu_mu);
}

void emu_stream_reclaim(CUcontext ctx) {
	for (;;) {
		pthread_mutex_lock(&emu_mu);
		CUstream x = streams;
		while (x && !(x->ctx == ctx && !x->legacy && !x->destroyed && !x->stop)) x = x->next;
		for (struct CUevent_st *e = events; e; e = e->next)
			if (e->ctx == ctx) e->destroyed = 1;
		pthread_mutex_unlock(&emu_mu);
		if (!x) return;
		emu_stream_free(x);
	}
}

int emu_stream_leaks(CUcontext ctx) {
	int n = 0;
	for (CUstream x = streams; x; x = x->next)
		if (x->ctx == ctx && !x->legacy && !x->destroyed) {
			emu_log("leak: stream %p never destroyed", (void *)x);
			n++;
		}
	for (struct CUevent_st *e = events; e; e = e->next)
		if (e->ctx == ctx && !e->destroyed) {
			emu_log("leak: event %p never destroyed", (void *)e);
			n++;
		}
	return n;
}

CUresult cuStreamCreate(CUstream *out, unsigned flags) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	if (!out || flags > CU_STREAM_NON_BLOCKING) return CUDA_ERROR_INVALID_VALUE;
	*out = emu_stream_new(c, flags, 0);
	return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream *out, unsigned flags, int prio) {
	(void)prio;
	return cuStreamCreate(out, flags);
}

CUresult cuStreamDestroy_v2(CUstream s) {
	CUresult r;
	if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) return CUDA_ERROR_INVALID_HANDLE;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	emu_stream_free(st);
	return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream s) { return cuStreamDestroy_v2(s); }

CUresult cuStreamSynchronize(CUstream s) {
	CUresult r;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	// A marker queued now completes after all the work before it,
	// including the legacy stream's implicit dependencies.
	uint64_t seq = emu_enqueue(st, emu_op_new(NULL));
	emu_wait(st, seq);
	return emu_sticky(st->ctx); // a kernel that faulted meanwhile
}

CUresult cuStreamQuery(CUstream s) {
	CUresult r;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	pthread_mutex_lock(&emu_mu);
	int done = st->done == st->enq;
	CUresult fault = st->ctx->fault;
	pthread_mutex_unlock(&emu_mu);
	if (fault) return fault;
	return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

static struct CUevent_st *event_of(CUevent e, CUresult *r) {
	CUcontext c = emu_current(r);
	if (!c) return NULL;
	pthread_mutex_lock(&emu_mu);
	struct CUevent_st *x = events;
	while (x && x != e) x = x->next;
	int bad = !x || x->destroyed;
	pthread_mutex_unlock(&emu_mu);
	if (bad) {
		emu_fail("event %p is not a live event (destroyed or never created)", (void *)e);
		*r = CUDA_ERROR_INVALID_HANDLE;
		return NULL;
	}
	return x;
}

CUresult cuEventCreate(CUevent *out, unsigned flags) {
	CUresult r;
	CUcontext c = emu_current(&r);
	if (!c) return r;
	if (!out) return CUDA_ERROR_INVALID_VALUE;
	struct CUevent_st *e = calloc(1, sizeof *e);
	e->ctx = c;
	e->flags = flags;
	pthread_mutex_lock(&emu_mu);
	e->next = events;
	events = e;
	pthread_mutex_unlock(&emu_mu);
	*out = e;
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e) {
	CUresult r;
	struct CUevent_st *x = event_of(e, &r);
	if (!x) return r;
	pthread_mutex_lock(&emu_mu);
	x->destroyed = 1;
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e) { return cuEventDestroy_v2(e); }

CUresult cuEventRecord(CUevent e, CUstream s) {
	CUresult r;
	struct CUevent_st *x = event_of(e, &r);
	if (!x) return r;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	uint64_t seq = emu_enqueue(st, emu_op_new(NULL));
	pthread_mutex_lock(&emu_mu);
	x->s = st;
	x->seq = seq;
	pthread_mutex_unlock(&emu_mu);
	return CUDA_SUCCESS;
}

CUresult cuEventRecordWithFlags(CUevent e, CUstream s, unsigned flags) {
	(void)flags;
	return cuEventRecord(e, s);
}

CUresult cuEventSynchronize(CUevent e) {
	CUresult r;
	struct CUevent_st *x = event_of(e, &r);
	if (!x) return r;
	pthread_mutex_lock(&emu_mu);
	if (x->s) wait_locked(x->s, x->seq, wait_mode(x->ctx, x->flags & EVENT_BLOCKING_SYNC));
	CUresult fault = x->ctx->fault;
	pthread_mutex_unlock(&emu_mu);
	return fault; // a kernel that faulted meanwhile, or CUDA_SUCCESS
}

CUresult cuEventQuery(CUevent e) {
	CUresult r;
	struct CUevent_st *x = event_of(e, &r);
	if (!x) return r;
	pthread_mutex_lock(&emu_mu);
	int done = !x->s || x->s->done >= x->seq;
	pthread_mutex_unlock(&emu_mu);
	return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned flags) {
	(void)flags;
	CUresult r;
	struct CUevent_st *x = event_of(e, &r);
	if (!x) return r;
	CUstream st = emu_stream_resolve(s, &r);
	if (!st) return r;
	emu_op *op = emu_op_new(NULL);
	pthread_mutex_lock(&emu_mu);
	if (x->s) add_dep(op, x->s, x->seq);
	pthread_mutex_unlock(&emu_mu);
	emu_enqueue(st, op);
	return CUDA_SUCCESS;
}
