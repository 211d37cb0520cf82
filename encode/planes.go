package encode

/*
#include <libavutil/frame.h>
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode/internal/yuv"
)

// toI420 converts img into f's I420 planes with k; f is img's size (even).
func toI420(k *yuv.Conv, img Image, f *astiav.Frame) {
	w, h := img.Width, img.Height
	y, ys := framePlane(f, 0, h)
	u, us := framePlane(f, 1, h/2)
	v, vs := framePlane(f, 2, h/2)
	k.Convert(img.Pix, img.RowStride(), w, h, y, ys, u, us, v, vs)
}

// framePlane is plane i of f (linesize × rows bytes of C memory) and its
// linesize. The slice is valid while f's buffer is.
func framePlane(f *astiav.Frame, i, rows int) ([]byte, int) {
	cf := cFrame(f)
	stride := int(cf.linesize[i])
	return unsafe.Slice((*byte)(unsafe.Pointer(cf.data[i])), stride*rows), stride
}
