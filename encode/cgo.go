package encode

/*
#cgo pkg-config: libavcodec libavutil libswscale
#include <string.h>
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>

// fw_scale_to_frame converts one packed image (RGB24, RGBA, …) into the
// planes of dst. src is only read during the call.
static int fw_scale_to_frame(struct SwsContext *s, const uint8_t *src, int stride, int h, AVFrame *dst) {
	const uint8_t *planes[4] = { src, NULL, NULL, NULL };
	const int strides[4] = { stride, 0, 0, 0 };
	return sws_scale(s, planes, strides, 0, h, (uint8_t * const *)dst->data, dst->linesize);
}

// fw_scale_from_frame converts the planes of src into one packed image in dst.
static int fw_scale_from_frame(struct SwsContext *s, const AVFrame *src, uint8_t *dst, int stride) {
	uint8_t *planes[4] = { dst, NULL, NULL, NULL };
	const int strides[4] = { stride, 0, 0, 0 };
	return sws_scale(s, (const uint8_t * const *)src->data, src->linesize, 0, src->height, planes, strides);
}

// fw_sws_get opens a context that converts with the coefficients of
// colour space cs (SWS_CS_ITU709, SWS_CS_ITU601) and the given ranges
// (1 = full, 0 = limited) on each side; RGB is always full range.
static struct SwsContext *fw_sws_get(int sw, int sh, int sf, int dw, int dh, int df, int cs, int src_full, int dst_full) {
	struct SwsContext *s = sws_getContext(sw, sh, sf, dw, dh, df, SWS_BILINEAR, NULL, NULL, NULL);
	if (s == NULL) return NULL;
	const int *coef = sws_getCoefficients(cs);
	sws_setColorspaceDetails(s, coef, src_full, coef, dst_full, 0, 1 << 16, 1 << 16);
	return s;
}

static void fw_sws_free(struct SwsContext *s) { sws_freeContext(s); }

// fw_packet_copy copies the packet's payload into dst (cap bytes) and
// returns the number of bytes the payload has (which may exceed cap).
static int fw_packet_copy(const AVPacket *p, uint8_t *dst, int cap) {
	int n = p->size;
	if (n <= cap) memcpy(dst, p->data, n);
	return n;
}

static int fw_packet_key(const AVPacket *p) { return (p->flags & AV_PKT_FLAG_KEY) != 0; }

// fw_packet_fill makes p hold a copy of size bytes from src.
static int fw_packet_fill(AVPacket *p, const uint8_t *src, int size) {
	av_packet_unref(p);
	int ret = av_new_packet(p, size);
	if (ret < 0) return ret;
	memcpy(p->data, src, size);
	return 0;
}

// The send/receive calls return FFmpeg's int directly: go-astiav boxes
// every negative return (AVERROR(EAGAIN) on each frame) into an error
// interface, which allocates.
static int fw_send_frame(AVCodecContext *c, const AVFrame *f) { return avcodec_send_frame(c, f); }
static int fw_receive_packet(AVCodecContext *c, AVPacket *p) { return avcodec_receive_packet(c, p); }
static int fw_send_packet(AVCodecContext *c, const AVPacket *p) { return avcodec_send_packet(c, p); }
static int fw_receive_frame(AVCodecContext *c, AVFrame *f) { return avcodec_receive_frame(c, f); }
static int fw_eagain(void) { return AVERROR(EAGAIN); }

static void fw_frame_set_pict(AVFrame *f, int key) {
	f->pict_type = key ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"
)

func cFrame(f *astiav.Frame) *C.AVFrame    { return (*C.AVFrame)(f.UnsafePointer()) }
func cPacket(p *astiav.Packet) *C.AVPacket { return (*C.AVPacket)(packetPointer(p)) }
func cCodec(cc *astiav.CodecContext) *C.AVCodecContext {
	return (*C.AVCodecContext)(cc.UnsafePointer())
}

// packetPointer returns the AVPacket behind p. go-astiav v0.39.0 has no
// Packet.UnsafePointer; its only field is the C pointer.
func packetPointer(p *astiav.Packet) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(p))
}

// scaler is a cached swscale context between one packed format and one
// planar format at a fixed size. It is rebuilt only when a size changes.
type scaler struct {
	c                      *C.struct_SwsContext
	sw, sh, sf, dw, dh, df int
	cs                     colour
}

// colour is the YUV side's matrix and range of a conversion.
type colour struct {
	bt709     bool // BT.709 coefficients, else BT.601
	fullRange bool // YUV in full (JPEG) range, else limited (MPEG)
}

// colourOf reads a decoded picture's signalled matrix and range; pictures
// that do not say are BT.601 limited, as decoders and browsers assume.
func colourOf(f *astiav.Frame) colour {
	return colour{bt709: f.ColorSpace() == astiav.ColorSpaceBt709, fullRange: f.ColorRange() == astiav.ColorRangeJpeg}
}

// ensure makes s convert sw×sh sf to dw×dh df. Exactly one of sf and df
// is packed RGB; cs describes the YUV side.
func (s *scaler) ensure(sw, sh int, sf astiav.PixelFormat, dw, dh int, df astiav.PixelFormat, cs colour) error {
	if s.c != nil && s.sw == sw && s.sh == sh && s.sf == int(sf) && s.dw == dw && s.dh == dh && s.df == int(df) && s.cs == cs {
		return nil
	}
	s.close()
	coef := C.int(C.SWS_CS_ITU601)
	if cs.bt709 {
		coef = C.SWS_CS_ITU709
	}
	srcFull, dstFull := C.int(1), C.int(1) // RGB is full range
	yuvFull := C.int(0)
	if cs.fullRange {
		yuvFull = 1
	}
	if sf == astiav.PixelFormatRgb24 || sf == astiav.PixelFormatRgba {
		dstFull = yuvFull
	} else {
		srcFull = yuvFull
	}
	c := C.fw_sws_get(C.int(sw), C.int(sh), C.int(sf), C.int(dw), C.int(dh), C.int(df), coef, srcFull, dstFull)
	if c == nil {
		return errScaler(sw, sh, sf, dw, dh, df)
	}
	*s = scaler{c: c, sw: sw, sh: sh, sf: int(sf), dw: dw, dh: dh, df: int(df), cs: cs}
	return nil
}

func (s *scaler) toFrame(src []byte, stride, h int, dst *astiav.Frame) error {
	if r := C.fw_scale_to_frame(s.c, (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(stride), C.int(h), cFrame(dst)); r < 0 {
		return astiav.Error(r)
	}
	return nil
}

func (s *scaler) fromFrame(src *astiav.Frame, dst []byte, stride int) error {
	if r := C.fw_scale_from_frame(s.c, cFrame(src), (*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(stride)); r < 0 {
		return astiav.Error(r)
	}
	return nil
}

func (s *scaler) close() {
	if s.c != nil {
		C.fw_sws_free(s.c)
		s.c = nil
	}
}

// codecStatus is an FFmpeg return code: 0, a positive count, or AVERROR.
type codecStatus C.int

var (
	statusAgain = codecStatus(C.fw_eagain())
	statusEOF   = codecStatus(C.AVERROR_EOF)
)

// done reports whether a receive call has nothing more now (EAGAIN) or
// ever (EOF).
func (s codecStatus) done() bool { return s == statusAgain || s == statusEOF }

// err converts a failure to go-astiav's error type (allocates; call it
// only on the error path).
func (s codecStatus) err() error {
	if s >= 0 {
		return nil
	}
	return astiav.Error(s)
}

func sendFrame(cc *astiav.CodecContext, f *astiav.Frame) codecStatus {
	return codecStatus(C.fw_send_frame(cCodec(cc), cFrame(f)))
}

func receivePacket(cc *astiav.CodecContext, p *astiav.Packet) codecStatus {
	return codecStatus(C.fw_receive_packet(cCodec(cc), cPacket(p)))
}

func sendPacket(cc *astiav.CodecContext, p *astiav.Packet) codecStatus {
	return codecStatus(C.fw_send_packet(cCodec(cc), cPacket(p)))
}

func receiveFrame(cc *astiav.CodecContext, f *astiav.Frame) codecStatus {
	return codecStatus(C.fw_receive_frame(cCodec(cc), cFrame(f)))
}

// packetInto copies p's payload into dst without allocating and reports
// whether it is a keyframe. It returns ErrShortBuffer when dst is too small.
func packetInto(p *astiav.Packet, dst []byte) (int, bool, error) {
	var ptr *C.uint8_t
	if len(dst) > 0 {
		ptr = (*C.uint8_t)(unsafe.Pointer(&dst[0]))
	}
	n := int(C.fw_packet_copy(cPacket(p), ptr, C.int(len(dst))))
	key := C.fw_packet_key(cPacket(p)) != 0
	if n > len(dst) {
		return n, key, ErrShortBuffer
	}
	return n, key, nil
}

// fillPacket makes p hold a copy of b (C memory, no Go allocation).
func fillPacket(p *astiav.Packet, b []byte) error {
	if r := C.fw_packet_fill(cPacket(p), (*C.uint8_t)(unsafe.Pointer(&b[0])), C.int(len(b))); r < 0 {
		return astiav.Error(r)
	}
	return nil
}

func setKeyRequest(f *astiav.Frame, key bool) {
	k := C.int(0)
	if key {
		k = 1
	}
	C.fw_frame_set_pict(cFrame(f), k)
}
