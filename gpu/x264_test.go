package gpu

import (
	"errors"
	"github.com/framewire/framewire/encode/encodetest"
	"testing"

	"github.com/asticode/go-astiav"
)

// x264Stream encodes n moving test pictures (w, h even) with libx264: each
// picture is converted to NV12 by the CPU reference (BT.709 limited, what
// the kernels assume) and fed to libx264 as NV12, constrained baseline,
// zero latency. It returns the access units (Annex-B, one per picture),
// the RGB24 pictures and their NV12 conversions.
func x264Stream(tb testing.TB, w, h, n int) (aus, pics, nv12 [][]byte) {
	tb.Helper()
	c := astiav.FindEncoderByName("libx264")
	if c == nil {
		tb.Fatal("libx264 not in this FFmpeg build")
	}
	cc := astiav.AllocCodecContext(c)
	defer cc.Free()
	cc.SetWidth(w)
	cc.SetHeight(h)
	cc.SetPixelFormat(astiav.PixelFormatNv12)
	cc.SetTimeBase(astiav.NewRational(1, 90000))
	cc.SetFramerate(astiav.NewRational(30, 1))
	cc.SetBitRate(4_000_000)
	cc.SetMaxBFrames(0)
	cc.SetColorRange(astiav.ColorRangeMpeg)
	cc.SetColorSpace(astiav.ColorSpaceBt709)
	opts := astiav.NewDictionary()
	defer opts.Free()
	for k, v := range map[string]string{"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
		"x264-params": "keyint=infinite:scenecut=0:repeat-headers=1:aud=0"} {
		_ = opts.Set(k, v, 0)
	}
	if err := cc.Open(c, opts); err != nil {
		tb.Fatalf("open libx264: %v", err)
	}
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(astiav.PixelFormatNv12)
	if err := f.AllocBuffer(0); err != nil {
		tb.Fatal(err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	for i := range n {
		pic := testImage(w, h, 3, 4*i)
		y, uv := refRGBToNV12(pic, w*3, 3, w, h, w, h)
		yuv := append(y, uv...)
		if err := f.MakeWritable(); err != nil {
			tb.Fatal(err)
		}
		if err := f.Data().SetBytes(yuv, 1); err != nil {
			tb.Fatal(err)
		}
		f.SetPts(int64(i) * 3000)
		if err := cc.SendFrame(f); err != nil {
			tb.Fatal(err)
		}
		var au []byte
		for {
			err := cc.ReceivePacket(pkt)
			if errors.Is(err, astiav.ErrEagain) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			au = append(au, pkt.Data()...)
			pkt.Unref()
		}
		if len(au) == 0 {
			tb.Fatalf("libx264 produced no packet for frame %d", i)
		}
		aus, pics, nv12 = append(aus, au), append(pics, pic), append(nv12, yuv)
	}
	return aus, pics, nv12
}

// softDecoder is FFmpeg's software H.264 decoder returning NV12 planes
// (bit-exact with what NVDEC produces for the same stream).
type softDecoder struct {
	cc  *astiav.CodecContext
	pkt *astiav.Packet
	f   *astiav.Frame
}

func newSoftDecoder(tb testing.TB) *softDecoder {
	tb.Helper()
	c := astiav.FindDecoder(astiav.CodecIDH264)
	d := &softDecoder{cc: astiav.AllocCodecContext(c), pkt: astiav.AllocPacket(), f: astiav.AllocFrame()}
	tb.Cleanup(func() { d.cc.Free(); d.pkt.Free(); d.f.Free() })
	d.cc.SetThreadCount(1)
	if err := d.cc.Open(c, nil); err != nil {
		tb.Fatal(err)
	}
	return d
}

// decode feeds one access unit and returns the NV12 (Y then interleaved
// UV) of every picture it completes.
func (d *softDecoder) decode(tb testing.TB, au []byte) (pics [][]byte) {
	tb.Helper()
	if err := d.pkt.FromData(au); err != nil {
		tb.Fatal(err)
	}
	if err := d.cc.SendPacket(d.pkt); err != nil {
		tb.Fatal(err)
	}
	for {
		err := d.cc.ReceiveFrame(d.f)
		if errors.Is(err, astiav.ErrEagain) {
			return pics
		}
		if err != nil {
			tb.Fatal(err)
		}
		w, h := d.f.Width(), d.f.Height()
		if d.f.PixelFormat() != astiav.PixelFormatYuv420P {
			tb.Fatalf("decoded %v, want yuv420p", d.f.PixelFormat())
		}
		b, err := d.f.Data().Bytes(1)
		if err != nil {
			tb.Fatal(err)
		}
		nv := make([]byte, w*h*3/2)
		copy(nv, b[:w*h])
		for k := 0; k < w*h/4; k++ {
			nv[w*h+2*k], nv[w*h+2*k+1] = b[w*h+k], b[w*h+w*h/4+k]
		}
		pics = append(pics, nv)
		d.f.Unref()
	}
}

// What the NVDEC path must produce, computed on the CPU: FFmpeg's software
// H.264 decoder (bit-exact with NVDEC) outputs one picture per access unit
// of the test stream, and the reference NV12→RGB conversion of it is
// within 35 dB of the source. The GPU test then has to show that the
// device path gives the same.
func TestTestStreamDecodesWithinBounds(t *testing.T) {
	const w, h, n = 640, 360, 10
	aus, pics, _ := x264Stream(t, w, h, n)
	d := newSoftDecoder(t)
	for i, au := range aus {
		got := d.decode(t, au)
		if len(got) != 1 {
			t.Fatalf("access unit %d gave %d pictures, want 1 (no decoder delay)", i, len(got))
		}
		rgb := refNV12ToRGB(got[0][:w*h], w, got[0][w*h:], w, w, h, 3)
		if p := encodetest.PSNR(pics[i], rgb); p < 35 {
			t.Errorf("frame %d: PSNR %.1f dB, want >= 35", i, p)
		} else if i == 0 || i == n-1 {
			t.Logf("frame %d: PSNR %.1f dB", i, p)
		}
	}
}
