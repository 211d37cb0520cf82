//go:build cuda

// C shim of package gpu: the CUDA driver calls gorgonia.org/cu lacks or
// makes awkward, and the FFmpeg glue. Declarations in shim_cuda.h.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE // RTLD_DEFAULT
#endif
#include "shim_cuda.h"
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cuda.h>
#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_cuda.h>
#include <libavutil/opt.h>

// ---- CUDA driver API: what gorgonia.org/cu lacks or gets wrong for us.
// Every function returns the CUresult (0 = success). Foreign handles
// (streams, events of other code) travel as uintptr_t.

const char *fw_cu_error(int r) {
	const char *s = NULL;
	if (cuGetErrorString((CUresult)r, &s) != CUDA_SUCCESS || s == NULL) return "unknown CUDA error";
	return s;
}

int fw_host_alloc(void **p, size_t n) { return cuMemHostAlloc(p, n, 0); }
int fw_host_free(void *p) { return cuMemFreeHost(p); }
// Our streams are non-blocking: they do not serialise against the legacy
// default stream, on which FFmpeg's NVDEC copies and other code of the
// process run. Ordering with a producer is explicit (fw_wait_producer).
int fw_stream_create(CUstream *s) { return cuStreamCreate(s, CU_STREAM_NON_BLOCKING); }
int fw_stream_destroy(CUstream s) { return cuStreamDestroy(s); }
// Our events are blocking-sync: cuEventSynchronize on them blocks the
// thread instead of spinning a core, whatever scheduling flags the primary
// context has (a model's CUDA runtime may have made it active first, with
// flags 0: spin). fw_stream_sync waits through one (ev, the stream's
// scratch event) for the same reason, not with cuStreamSynchronize.
int fw_stream_sync(CUstream s, CUevent ev) {
	int r = cuEventRecord(ev, s);
	if (r != CUDA_SUCCESS) return r;
	return cuEventSynchronize(ev);
}
int fw_event_create(CUevent *e) { return cuEventCreate(e, CU_EVENT_DISABLE_TIMING | CU_EVENT_BLOCKING_SYNC); }

// fw_sched_blocking_sync asks for CU_CTX_SCHED_BLOCKING_SYNC on device
// dev's primary context before it is retained, so every wait in it (ours,
// FFmpeg's NVDEC and NVENC calls, synchronous copies) blocks instead of
// spinning a core; other flag bits are kept. When the context is already
// active (retained first by a model's CUDA runtime) its flags are the
// owner's and are left alone: *applied is 0 and *flags the flags in force
// (our own waits still block, through blocking-sync events).
int fw_sched_blocking_sync(int dev, unsigned *flags, int *applied) {
	int active = 0;
	*applied = 0;
	int r = cuDevicePrimaryCtxGetState((CUdevice)dev, flags, &active);
	if (r != CUDA_SUCCESS || active) return r;
	unsigned want = (*flags & ~(unsigned)CU_CTX_SCHED_MASK) | CU_CTX_SCHED_BLOCKING_SYNC;
	r = cuDevicePrimaryCtxSetFlags((CUdevice)dev, want);
	if (r == CUDA_SUCCESS) {
		*flags = want;
		*applied = 1;
	}
	return r;
}
int fw_event_destroy(CUevent e) { return cuEventDestroy(e); }
int fw_event_sync(CUevent e) { return cuEventSynchronize(e); }
int fw_event_record(CUevent e, CUstream s) { return cuEventRecord(e, s); }

// fw_wait_producer makes s wait for a producer's writes: for its event ev
// when set, else for everything issued so far on its stream ps, else for
// everything issued so far on the legacy default stream (ps 0), through
// our event tmp: s is non-blocking and would not wait by itself.
int fw_wait_producer(CUstream s, CUevent tmp, uintptr_t ev, uintptr_t ps) {
	if (ev != 0) return cuStreamWaitEvent(s, (CUevent)ev, 0);
	int r = cuEventRecord(tmp, (CUstream)ps);
	if (r != CUDA_SUCCESS) return r;
	return cuStreamWaitEvent(s, tmp, 0);
}

// fw_signal_consumer makes a consumer's stream cs wait for everything
// issued so far on s, through our event tmp.
int fw_signal_consumer(CUstream s, CUevent tmp, uintptr_t cs) {
	int r = cuEventRecord(tmp, s);
	if (r != CUDA_SUCCESS) return r;
	return cuStreamWaitEvent((CUstream)cs, tmp, 0);
}

// fw_thread_cpu_ns reports the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID): what a wait on this thread costs in CPU.
long long fw_thread_cpu_ns(void) {
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// fw_ctx_current reports the calling thread's current context.
int fw_ctx_current(CUcontext *c) { return cuCtxGetCurrent(c); }

// fw_sticky reports the sticky error of the calling thread's current
// context (0 when it has none). A sticky error (an illegal address, a
// failed launch, a device-side assert) poisons the context: every later
// call in it returns that error until it is destroyed. cuStreamQuery of
// the legacy stream answers without waiting.
int fw_sticky(void) {
	int r = cuStreamQuery(CU_STREAM_LEGACY);
	switch (r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_MISALIGNED_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_LAUNCH_FAILED:
		return r;
	}
	return 0;
}

// fw_pointer_range asks the driver which allocation holds p
// (cuPointerGetAttributes: context, device, range). An address the driver
// does not know gets a NULL context and an empty range.
int fw_pointer_range(CUdeviceptr p, fw_ptr_info *pi) {
	CUpointer_attribute a[4] = {CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
	                            CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE};
	memset(pi, 0, sizeof *pi);
	pi->ordinal = -1;
	void *d[4] = {&pi->ctx, &pi->ordinal, &pi->start, &pi->size};
	return cuPointerGetAttributes(4, a, d, p);
}

// fw_pointer_check checks that [p, p+n) lies in one allocation of device
// ordinal want_dev made in context want (or context-less memory of that
// device: cuMemCreate/cuMemMap mappings report no context). It returns 0
// when it does, FW_PTR_UNKNOWN, FW_PTR_OTHER_CTX or FW_PTR_SHORT when not
// (fw_pointer_range then tells the details), or -CUresult.
int fw_pointer_check(CUdeviceptr p, size_t n, CUcontext want, int want_dev) {
	fw_ptr_info pi;
	int r = fw_pointer_range(p, &pi);
	if (r != CUDA_SUCCESS) return -r;
	if (pi.size == 0) return FW_PTR_UNKNOWN;
	if (pi.ctx != want && !(pi.ctx == NULL && pi.ordinal == want_dev)) return FW_PTR_OTHER_CTX;
	if (p < pi.start || n > pi.size - (size_t)(p - pi.start)) return FW_PTR_SHORT;
	return 0;
}

int fw_module_load(CUmodule *m, const char *ptx) { return cuModuleLoadData(m, ptx); }
int fw_module_unload(CUmodule m) { return cuModuleUnload(m); }
int fw_module_function(CUfunction *f, CUmodule m, const char *name) { return cuModuleGetFunction(f, m, name); }

int fw_dtoh_async(void *dst, CUdeviceptr src, size_t n, CUstream s) { return cuMemcpyDtoHAsync(dst, src, n, s); }
int fw_htod_async(CUdeviceptr dst, const void *src, size_t n, CUstream s) { return cuMemcpyHtoDAsync(dst, src, n, s); }

int fw_dtod_2d_async(CUdeviceptr dst, size_t dpitch, CUdeviceptr src, size_t spitch, size_t width, size_t height, CUstream s) {
	CUDA_MEMCPY2D c;
	memset(&c, 0, sizeof c);
	c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
	c.srcDevice = src;
	c.srcPitch = spitch;
	c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
	c.dstDevice = dst;
	c.dstPitch = dpitch;
	c.WidthInBytes = width;
	c.Height = height;
	return cuMemcpy2DAsync(&c, s);
}

// Kernel launches with exact parameter sizes: every parameter of the
// kernels is 8 bytes (pointer or long long), passed by address from this
// stack frame; nothing is allocated per launch.
int fw_launch_rgb_to_nv12(CUfunction f, CUstream s, CUdeviceptr src, long long src_pitch, long long bpp,
                                 long long w, long long h, CUdeviceptr y, long long y_pitch,
                                 CUdeviceptr uv, long long uv_pitch, long long ow, long long oh) {
	void *args[] = {&src, &src_pitch, &bpp, &w, &h, &y, &y_pitch, &uv, &uv_pitch, &ow, &oh};
	unsigned bx = 32, by = 8;
	unsigned gx = (unsigned)((ow / 2 + bx - 1) / bx), gy = (unsigned)((oh / 2 + by - 1) / by);
	return cuLaunchKernel(f, gx, gy, 1, bx, by, 1, 0, s, args, NULL);
}

int fw_launch_nv12_to_rgb(CUfunction f, CUstream s, CUdeviceptr y, long long y_pitch, CUdeviceptr uv,
                                 long long uv_pitch, long long w, long long h, CUdeviceptr dst,
                                 long long dst_pitch, long long bpp) {
	void *args[] = {&y, &y_pitch, &uv, &uv_pitch, &w, &h, &dst, &dst_pitch, &bpp};
	unsigned bx = 32, by = 8;
	unsigned gx = (unsigned)((w + bx - 1) / bx), gy = (unsigned)((h + by - 1) / by);
	return cuLaunchKernel(f, gx, gy, 1, bx, by, 1, 0, s, args, NULL);
}

// ---- FFmpeg: the CUDA hardware device on the primary context, encoders
// and the NVDEC decoder. Functions return an AVERROR (< 0) or >= 0.

// fw_hwdevice_create makes FFmpeg's CUDA device on the calling thread's
// current context: the device goroutine's, the primary context package gpu
// retained. AV_CUDA_USE_PRIMARY_CONTEXT is not used: FFmpeg wants the
// primary context created with CU_CTX_SCHED_BLOCKING_SYNC and answers
// ENOTSUP ("Primary context already active with incompatible flags") when
// it is already active with other flags, as it is when the CUDA runtime of
// a model in the same process retained it first (Open sets that flag only
// on a context not yet active). FFmpeg neither
// retains nor releases a current context: the Device owns its lifetime and
// frees this device context before releasing the primary context.
int fw_hwdevice_create(AVBufferRef **out, const char *ordinal) {
	return av_hwdevice_ctx_create(out, AV_HWDEVICE_TYPE_CUDA, ordinal, NULL, AV_CUDA_USE_CURRENT_CONTEXT);
}

// fw_hwdevice_on_stream makes an FFmpeg CUDA device context of its own
// for one decoder: the calling thread's current context (the primary
// context; FFmpeg neither retains nor destroys a context it did not
// create) with stream s, so NVDEC maps each decoded picture on the
// decoder's own stream (nvdec.c: vpp.output_stream is the device
// context's stream) instead of the legacy default stream, where it was
// ordered with every other session's work.
int fw_hwdevice_on_stream(AVBufferRef **out, CUstream s) {
	CUcontext c = NULL;
	if (cuCtxGetCurrent(&c) != CUDA_SUCCESS || !c) return AVERROR(EINVAL);
	AVBufferRef *ref = av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA);
	if (!ref) return AVERROR(ENOMEM);
	AVCUDADeviceContext *hw = ((AVHWDeviceContext *)ref->data)->hwctx;
	hw->cuda_ctx = c;
	hw->stream = s;
	int r = av_hwdevice_ctx_init(ref);
	if (r < 0) {
		av_buffer_unref(&ref);
		return r;
	}
	*out = ref;
	return 0;
}

void fw_buffer_unref(AVBufferRef **r) { av_buffer_unref(r); }

fw_enc *fw_enc_alloc(void) { return calloc(1, sizeof(fw_enc)); }

void fw_enc_free(fw_enc *e) {
	if (!e) return;
	avcodec_free_context(&e->cc);
	av_frame_free(&e->frame);
	av_frame_free(&e->slot[0]);
	av_frame_free(&e->slot[1]);
	av_packet_free(&e->pkt);
	av_buffer_unref(&e->frames);
	free(e);
}

static void fw_set_common(AVCodecContext *cc, int w, int h, int fps, long long bitrate) {
	cc->width = w;
	cc->height = h;
	cc->time_base = (AVRational){1, 90000};
	cc->framerate = (AVRational){fps, 1};
	cc->bit_rate = bitrate;
	cc->rc_max_rate = bitrate;
	cc->rc_buffer_size = (int)(bitrate / fps * 2);
	cc->max_b_frames = 0;
	cc->gop_size = -1;
	cc->profile = AV_PROFILE_H264_CONSTRAINED_BASELINE;
	cc->color_range = AVCOL_RANGE_MPEG;
	cc->colorspace = AVCOL_SPC_BT709;
	cc->color_primaries = AVCOL_PRI_BT709;
	cc->color_trc = AVCOL_TRC_BT709;
}

// fw_opts parses opts, the encoder's private options as package encode
// writes them (encode.CodecOptions): key \x1f value, pairs separated by
// \x1e (the values hold ':' and '=').
static int fw_opts(AVDictionary **o, const char *opts) { return av_dict_parse_string(o, opts, "\x1f", "\x1e", 0); }

// fw_nvenc_open opens h264_nvenc on a CUDA NV12 frames context of hwdev
// with the private options opts (see fw_opts).
int fw_nvenc_open(fw_enc *e, AVBufferRef *hwdev, int w, int h, int fps, long long bitrate, const char *opts) {
	const AVCodec *c = avcodec_find_encoder_by_name("h264_nvenc");
	if (!c) return AVERROR_ENCODER_NOT_FOUND;
	e->frames = av_hwframe_ctx_alloc(hwdev);
	if (!e->frames) return AVERROR(ENOMEM);
	AVHWFramesContext *fc = (AVHWFramesContext *)e->frames->data;
	fc->format = AV_PIX_FMT_CUDA;
	fc->sw_format = AV_PIX_FMT_NV12;
	fc->width = w;
	fc->height = h;
	int r = av_hwframe_ctx_init(e->frames);
	if (r < 0) return r;
	e->cc = avcodec_alloc_context3(c);
	if (!e->cc) return AVERROR(ENOMEM);
	fw_set_common(e->cc, w, h, fps, bitrate);
	// NVENC takes gop_size literally and -1 keeps the preset's GOP (see
	// package encode): the largest GOP it accepts is as good as infinite,
	// keyframes then come only on request, as with libx264 here.
	e->cc->gop_size = INT_MAX;
	e->cc->pix_fmt = AV_PIX_FMT_CUDA;
	e->cc->sw_pix_fmt = AV_PIX_FMT_NV12;
	e->cc->hw_frames_ctx = av_buffer_ref(e->frames);
	if (!e->cc->hw_frames_ctx) return AVERROR(ENOMEM);
	AVDictionary *o = NULL;
	if ((r = fw_opts(&o, opts)) < 0) return r;
	r = avcodec_open2(e->cc, c, &o);
	av_dict_free(&o);
	if (r < 0) return r;
	e->frame = av_frame_alloc();
	e->pkt = av_packet_alloc();
	return (e->frame && e->pkt) ? 0 : AVERROR(ENOMEM);
}

// fw_nvenc_frame takes a CUDA frame from the pool and reports its planes
// in e->y, e->uv, e->ylin, e->uvlin.
int fw_nvenc_frame(fw_enc *e) {
	av_frame_unref(e->frame);
	int r = av_hwframe_get_buffer(e->frames, e->frame, 0);
	if (r < 0) return r;
	e->y = (CUdeviceptr)(uintptr_t)e->frame->data[0];
	e->uv = (CUdeviceptr)(uintptr_t)e->frame->data[1];
	e->ylin = e->frame->linesize[0];
	e->uvlin = e->frame->linesize[1];
	return 0;
}

static void fw_noop_free(void *opaque, uint8_t *data) { (void)opaque; (void)data; }

// fw_x264_open opens libx264 for NV12 input with the private options
// opts (see fw_opts) and wraps the two pinned NV12 buffers (pitch bytes
// per row, luma then chroma) as frames.
int fw_x264_open(fw_enc *e, int w, int h, int fps, long long bitrate, int threads, void *pin0, void *pin1, int pitch, const char *opts) {
	const AVCodec *c = avcodec_find_encoder_by_name("libx264");
	if (!c) return AVERROR_ENCODER_NOT_FOUND;
	e->cc = avcodec_alloc_context3(c);
	if (!e->cc) return AVERROR(ENOMEM);
	fw_set_common(e->cc, w, h, fps, bitrate);
	e->cc->pix_fmt = AV_PIX_FMT_NV12;
	if (threads > 0) e->cc->thread_count = threads;
	AVDictionary *o = NULL;
	int r = fw_opts(&o, opts);
	if (r < 0) return r;
	r = avcodec_open2(e->cc, c, &o);
	av_dict_free(&o);
	if (r < 0) return r;
	void *pins[2] = {pin0, pin1};
	for (int i = 0; i < 2; i++) {
		AVFrame *f = av_frame_alloc();
		if (!f) return AVERROR(ENOMEM);
		e->slot[i] = f;
		f->format = AV_PIX_FMT_NV12;
		f->width = w;
		f->height = h;
		f->buf[0] = av_buffer_create(pins[i], (size_t)pitch * h * 3 / 2, fw_noop_free, NULL, 0);
		if (!f->buf[0]) return AVERROR(ENOMEM);
		f->data[0] = pins[i];
		f->data[1] = (uint8_t *)pins[i] + (size_t)pitch * h;
		f->linesize[0] = pitch;
		f->linesize[1] = pitch;
		f->color_range = AVCOL_RANGE_MPEG;
		f->colorspace = AVCOL_SPC_BT709;
	}
	e->pkt = av_packet_alloc();
	return e->pkt ? 0 : AVERROR(ENOMEM);
}

// fw_enc_set_bitrate changes the target in place (libx264 and h264_nvenc
// reconfigure on the next frame). The VBV buffer follows the rate (two
// frames' worth, as fw_set_common and package encode set it): left at the
// old size, a drop from 2.5 Mbit/s to 250 kbit/s would let a keyframe
// burst twenty frames' worth of bits into the network.
void fw_enc_set_bitrate(fw_enc *e, long long bps) {
	AVRational fr = e->cc->framerate;
	e->cc->bit_rate = bps;
	e->cc->rc_max_rate = bps;
	if (fr.num > 0 && fr.den > 0) e->cc->rc_buffer_size = (int)(bps * fr.den / fr.num * 2);
}

// fw_enc_encode sends frame (slot 0/1 for libx264, -1 for the NVENC pool
// frame, -2 for a flush) and copies every packet ready into dst (cap
// bytes). e->n gets the payload size (which may exceed cap: then 1 is
// returned and the packets past cap are lost), e->key whether one is a
// keyframe.
int fw_enc_encode(fw_enc *e, int which, long long pts, int key, uint8_t *dst, int cap) {
	int *n = &e->n, *key_out = &e->key;
	*n = 0;
	*key_out = 0;
	int r;
	if (which == -2) {
		r = 0;
	} else {
		AVFrame *f = which < 0 ? e->frame : e->slot[which];
		f->pts = pts;
		f->pict_type = key ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
		r = avcodec_send_frame(e->cc, f);
		if (which < 0) av_frame_unref(f);
		if (r < 0) return r;
	}
	int short_buf = 0;
	for (;;) {
		r = avcodec_receive_packet(e->cc, e->pkt);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
		if (r < 0) return r;
		if (*n + e->pkt->size <= cap) memcpy(dst + *n, e->pkt->data, e->pkt->size);
		else short_buf = 1;
		*n += e->pkt->size;
		if (e->pkt->flags & AV_PKT_FLAG_KEY) *key_out = 1;
		av_packet_unref(e->pkt);
	}
	return short_buf;
}

static enum AVPixelFormat fw_get_cuda_format(AVCodecContext *cc, const enum AVPixelFormat *f) {
	(void)cc;
	for (; *f != AV_PIX_FMT_NONE; f++)
		if (*f == AV_PIX_FMT_CUDA) return *f;
	return AV_PIX_FMT_NONE;
}

fw_dec *fw_dec_alloc(void) { return calloc(1, sizeof(fw_dec)); }

void fw_dec_free(fw_dec *d) {
	if (!d) return;
	avcodec_free_context(&d->cc);
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	free(d);
}

// fw_dec_open opens FFmpeg's h264 decoder with the NVDEC hwaccel on hwdev:
// pictures come out as CUDA NV12 frames.
int fw_dec_open(fw_dec *d, AVBufferRef *hwdev) {
	const AVCodec *c = avcodec_find_decoder(AV_CODEC_ID_H264);
	if (!c) return AVERROR_DECODER_NOT_FOUND;
	d->cc = avcodec_alloc_context3(c);
	d->frame = av_frame_alloc();
	d->pkt = av_packet_alloc();
	if (!d->cc || !d->frame || !d->pkt) return AVERROR(ENOMEM);
	d->cc->hw_device_ctx = av_buffer_ref(hwdev);
	if (!d->cc->hw_device_ctx) return AVERROR(ENOMEM);
	d->cc->get_format = fw_get_cuda_format;
	d->cc->thread_count = 1; // frame threads add latency
	// Each picture is converted (and the kernel waited for) and released
	// before the next packet is sent (Decoder.decode), so NVDEC may hand
	// out its own surface: without this flag FFmpeg copies every decoded
	// frame (av_frame_make_writable) to keep the surface pool free.
	d->cc->hwaccel_flags |= AV_HWACCEL_FLAG_UNSAFE_OUTPUT;
	return avcodec_open2(d->cc, c, NULL);
}

// fw_lib_present reports whether the dynamic library name (a driver
// library FFmpeg loads at run time: libnvidia-encode.so.1, libnvcuvid.so.1)
// can be loaded here.
int fw_lib_present(const char *name) {
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (!h) return 0;
	dlclose(h);
	return 1;
}

// fw_emu_stat reads a counter of the emulated driver (gpu/cudaemu, for
// tests): cudaemu_stat of libcuda when lib is NULL, else nvencemu_stat of
// library lib (the emulator's stays loaded once loaded: -z nodelete). It
// returns -1 where the library is not the emulator's (a real driver's) or
// does not load.
long long fw_emu_stat(const char *lib, const char *name) {
	void *h = RTLD_DEFAULT;
	const char *sym = "cudaemu_stat";
	if (lib) {
		h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);
		if (!h) return -1;
		sym = "nvencemu_stat";
	}
	long long (*stat)(const char *) = (long long (*)(const char *))dlsym(h, sym);
	long long v = stat ? stat(name) : -1;
	if (lib) dlclose(h);
	return v;
}

// fw_emu_inject_fault arms the emulated driver's next kernel launch to
// fault (cudaemu_inject_fault); it returns 0 where the driver is not the
// emulator's.
int fw_emu_inject_fault(void) {
	void (*inject)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "cudaemu_inject_fault");
	if (!inject) return 0;
	inject();
	return 1;
}

// fw_dec_drain signals the end of the stream: the decoder outputs what it
// holds.
int fw_dec_drain(fw_dec *d) { return avcodec_send_packet(d->cc, NULL); }

// fw_dec_send sends one access unit. It returns 0 when the decoder took
// it, 1 when the decoder holds output that must be received first
// (EAGAIN): the packet is then kept in d->pkt for fw_dec_resend, not
// dropped (a dropped access unit breaks every picture that references
// it), or an AVERROR.
int fw_dec_send(fw_dec *d, const uint8_t *au, int n) {
	av_packet_unref(d->pkt);
	int r = av_new_packet(d->pkt, n);
	if (r < 0) return r;
	memcpy(d->pkt->data, au, n);
	return fw_dec_resend(d);
}

// fw_dec_resend sends the packet fw_dec_send kept (same results).
int fw_dec_resend(fw_dec *d) {
	int r = avcodec_send_packet(d->cc, d->pkt);
	if (r == AVERROR(EAGAIN)) return 1;
	av_packet_unref(d->pkt);
	return r;
}

// fw_dec_receive returns 0 with the next picture's planes in d->y..d->h, 1 when none is
// ready, or an AVERROR. The picture stays valid until the next call.
int fw_dec_receive(fw_dec *d) {
	av_frame_unref(d->frame);
	int r = avcodec_receive_frame(d->cc, d->frame);
	if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 1;
	if (r < 0) return r;
	if (d->frame->format != AV_PIX_FMT_CUDA) return AVERROR(ENOSYS);
	if (d->frame->hw_frames_ctx) {
		AVHWFramesContext *fc = (AVHWFramesContext *)d->frame->hw_frames_ctx->data;
		if (fc->sw_format != AV_PIX_FMT_NV12) return AVERROR_PATCHWELCOME;
	}
	d->y = (CUdeviceptr)(uintptr_t)d->frame->data[0];
	d->uv = (CUdeviceptr)(uintptr_t)d->frame->data[1];
	d->ylin = d->frame->linesize[0];
	d->uvlin = d->frame->linesize[1];
	d->w = d->frame->width;
	d->h = d->frame->height;
	return 0;
}

void fw_dec_release(fw_dec *d) { av_frame_unref(d->frame); }
