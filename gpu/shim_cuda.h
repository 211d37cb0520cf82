// Declarations of shim_cuda.c (package gpu, cuda build only).
#ifndef FW_SHIM_CUDA_H
#define FW_SHIM_CUDA_H
#include <stdint.h>
#include <stddef.h>
#include <cuda.h>
#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>

typedef struct {
	AVCodecContext *cc;
	AVBufferRef *frames; // NVENC: CUDA frames context (NV12)
	AVFrame *frame;      // NVENC: the pool frame being filled
	AVFrame *slot[2];    // libx264: NV12 frames over pinned memory
	AVPacket *pkt;
	// Results of the last call, kept here (C memory) so Go passes no
	// pointers to its own stack, which would move them to the heap.
	CUdeviceptr y, uv; // NVENC: planes of the pool frame
	int ylin, uvlin;
	int n, key;        // fw_enc_encode: payload bytes, keyframe
} fw_enc;

typedef struct {
	AVCodecContext *cc;
	AVFrame *frame;
	AVPacket *pkt;
	// fw_dec_receive's picture (C memory, see fw_enc).
	CUdeviceptr y, uv;
	int ylin, uvlin, w, h;
} fw_dec;

// What cuPointerGetAttributes says of a pointer (fw_pointer_range).
typedef struct {
	CUcontext ctx;
	int ordinal;
	CUdeviceptr start;
	size_t size;
} fw_ptr_info;
enum { FW_PTR_UNKNOWN = 1, FW_PTR_OTHER_CTX = 2, FW_PTR_SHORT = 3 };

const char *fw_cu_error(int r);
int fw_ctx_current(CUcontext *c);
long long fw_thread_cpu_ns(void);
int fw_sticky(void);
int fw_pointer_range(CUdeviceptr p, fw_ptr_info *pi);
int fw_pointer_check(CUdeviceptr p, size_t n, CUcontext want, int want_dev);
int fw_host_alloc(void **p, size_t n);
int fw_host_free(void *p);
int fw_stream_create(CUstream *s);
int fw_stream_destroy(CUstream s);
int fw_stream_sync(CUstream s, CUevent ev);
int fw_sched_blocking_sync(int dev, unsigned *flags, int *applied);
int fw_event_create(CUevent *e);
int fw_event_destroy(CUevent e);
int fw_event_sync(CUevent e);
int fw_event_record(CUevent e, CUstream s);
int fw_wait_producer(CUstream s, CUevent tmp, uintptr_t ev, uintptr_t ps);
int fw_signal_consumer(CUstream s, CUevent tmp, uintptr_t cs);
int fw_module_load(CUmodule *m, const char *ptx);
int fw_module_unload(CUmodule m);
int fw_module_function(CUfunction *f, CUmodule m, const char *name);
int fw_dtoh_async(void *dst, CUdeviceptr src, size_t n, CUstream s);
int fw_htod_async(CUdeviceptr dst, const void *src, size_t n, CUstream s);
int fw_dtod_2d_async(CUdeviceptr dst, size_t dpitch, CUdeviceptr src, size_t spitch, size_t width, size_t height, CUstream s);
int fw_launch_rgb_to_nv12(CUfunction f, CUstream s, CUdeviceptr src, long long src_pitch, long long bpp, long long w, long long h, CUdeviceptr y, long long y_pitch, CUdeviceptr uv, long long uv_pitch, long long ow, long long oh);
int fw_launch_nv12_to_rgb(CUfunction f, CUstream s, CUdeviceptr y, long long y_pitch, CUdeviceptr uv, long long uv_pitch, long long w, long long h, CUdeviceptr dst, long long dst_pitch, long long bpp);
int fw_hwdevice_create(AVBufferRef **out, const char *ordinal);
int fw_hwdevice_on_stream(AVBufferRef **out, CUstream s);
void fw_buffer_unref(AVBufferRef **r);
fw_enc *fw_enc_alloc(void);
void fw_enc_free(fw_enc *e);
int fw_nvenc_open(fw_enc *e, AVBufferRef *hwdev, int w, int h, int fps, long long bitrate, const char *opts);
int fw_nvenc_frame(fw_enc *e);
int fw_x264_open(fw_enc *e, int w, int h, int fps, long long bitrate, int threads, void *pin0, void *pin1, int pitch, const char *opts);
void fw_enc_set_bitrate(fw_enc *e, long long bps);
int fw_enc_encode(fw_enc *e, int which, long long pts, int key, uint8_t *dst, int cap);
fw_dec *fw_dec_alloc(void);
void fw_dec_free(fw_dec *d);
int fw_dec_open(fw_dec *d, AVBufferRef *hwdev);
int fw_lib_present(const char *name);
long long fw_emu_stat(const char *lib, const char *name);
int fw_emu_inject_fault(void);
int fw_dec_drain(fw_dec *d);
int fw_dec_send(fw_dec *d, const uint8_t *au, int n);
int fw_dec_resend(fw_dec *d);
int fw_dec_receive(fw_dec *d);
void fw_dec_release(fw_dec *d);

#endif
