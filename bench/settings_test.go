package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
)

// x264Variant is one libx264 configuration under comparison; the zero
// value's fields are the production settings (encode.VideoEncoder):
// ultrafast, zerolatency, constrained baseline, VBV of two frames at the
// target rate, one thread, keyframes on request only.
type x264Variant struct {
	name         string
	vbvFrames    float64 // VBV buffer in frames at the target rate (0: 2)
	threads      int     // 0: 1; > 1 uses sliced threads
	intraRefresh bool    // periodic intra refresh over refreshPeriod frames, no forced IDR after the first
}

// refreshPeriod is how often, in frames, a keyframe is forced (a PLI: a
// new viewer, a loss) in the variants without intra refresh, and the
// intra refresh period in those with it.
const refreshPeriod = 60

// variantEncoder is a go-astiav libx264 encoder with a variant's settings
// (the harness's baseline loop), which keeps every packet it makes.
type variantEncoder struct {
	*astiavEncoder
	v x264Variant
	n int
}

func newVariantEncoder(v x264Variant, w, h int) (*variantEncoder, error) {
	const bitrate, fps = 2_500_000, 30
	e, err := newAstiavEncoderWith(encode.BackendX264, w, h, func(cc *astiav.CodecContext, opts *astiav.Dictionary) {
		vbv := v.vbvFrames
		if vbv == 0 {
			vbv = 2
		}
		cc.SetRateControlBufferSize(int(bitrate / fps * vbv))
		params := "scenecut=0:repeat-headers=1:aud=0"
		switch {
		case v.intraRefresh:
			params += fmt.Sprintf(":keyint=%d:intra-refresh=1", refreshPeriod)
		default:
			params += ":keyint=infinite"
		}
		if v.threads > 1 {
			cc.SetThreadCount(v.threads)
			params += ":sliced-threads=1"
		} else {
			params += ":sliced-threads=0"
		}
		if err := opts.Set("x264-params", params, 0); err != nil {
			panic(err)
		}
	})
	if err != nil {
		return nil, err
	}
	return &variantEncoder{astiavEncoder: e, v: v}, nil
}

// encode encodes pix, forcing a keyframe where a PLI would, and returns
// the access unit (a copy).
func (e *variantEncoder) encode(pix []byte) []byte {
	key := e.n%refreshPeriod == 0 && (e.n == 0 || !e.v.intraRefresh)
	e.n++
	if key {
		e.yuv.SetPictureType(astiav.PictureTypeI)
	} else {
		e.yuv.SetPictureType(astiav.PictureTypeNone)
	}
	if err := e.rgb.Data().SetBytes(pix, 1); err != nil {
		panic(err)
	}
	if err := e.sws.ScaleFrame(e.rgb, e.yuv); err != nil {
		panic(err)
	}
	e.yuv.SetPts(e.pts)
	e.pts += 3000
	if err := e.cc.SendFrame(e.yuv); err != nil {
		panic(err)
	}
	var au []byte
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) {
				return au
			}
			panic(err)
		}
		au = append(au, e.pkt.Data()...)
		e.pkt.Unref()
	}
}

// BenchmarkX264Settings compares libx264 settings for steady latency at
// 720p, 2.5 Mbit/s, 30 fps, frame by frame interleaved (each frame of the
// moving test scene is encoded by every variant in turn, so all see the
// same load), with a keyframe forced every 60 frames as a PLI would
// (intra-refresh variants refresh over 60 frames instead). Per variant it
// reports encode time p50/p95, access unit size p95 and max, the p95 of
// the time that size takes to leave at the target rate (what a one-frame
// VBV is meant to bound), and the mean PSNR of the decoded pictures
// (equal quality). One op is one frame for every variant.
func BenchmarkX264Settings(b *testing.B) {
	const w, h, bitrate = 1280, 720, 2_500_000
	variants := []x264Variant{
		{name: "current"},
		{name: "sliced2", threads: 2},
		{name: "vbv1", vbvFrames: 1},
		{name: "vbv1-intrarefresh", vbvFrames: 1, intraRefresh: true},
	}
	encs := make([]*variantEncoder, len(variants))
	for i, v := range variants {
		e, err := newVariantEncoder(v, w, h)
		if err != nil {
			b.Fatal(err)
		}
		defer e.close()
		encs[i] = e
	}
	pics := make([][]byte, 30)
	for i := range pics {
		pics[i] = make([]byte, w*h*3)
		encodetest.Scene(pics[i], w, h, i)
	}
	n := max(b.N, 2*refreshPeriod)
	times := make([][]time.Duration, len(variants))
	sizes := make([][]int, len(variants))
	aus := make([][][]byte, len(variants))
	b.ResetTimer()
	for f := range n {
		for k := range variants {
			i := (k + f) % len(variants) // rotate who goes first
			var au []byte
			times[i] = append(times[i], timed(func() { au = encs[i].encode(pics[f%len(pics)]) }))
			sizes[i] = append(sizes[i], len(au))
			aus[i] = append(aus[i], au)
		}
	}
	b.StopTimer()
	for i, v := range variants {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		sz := slices.Clone(sizes[i])
		slices.Sort(sz)
		p95 := sz[min(len(sz)-1, len(sz)*95/100)]
		b.ReportMetric(ms(pct(times[i], 50)), v.name+"-enc-p50-ms")
		b.ReportMetric(ms(pct(times[i], 95)), v.name+"-enc-p95-ms")
		b.ReportMetric(float64(p95), v.name+"-size-p95-B")
		b.ReportMetric(float64(sz[len(sz)-1]), v.name+"-size-max-B")
		b.ReportMetric(float64(p95)*8/bitrate*1000, v.name+"-send-p95-ms")
		b.ReportMetric(meanPSNR(b, aus[i], pics, w, h), v.name+"-psnr-dB")
	}
}

// meanPSNR decodes the access units and returns the mean PSNR of the
// pictures against the sources they were encoded from.
func meanPSNR(tb testing.TB, aus [][]byte, pics [][]byte, w, h int) float64 {
	dec, err := encode.NewVideoDecoder(encode.CodecH264)
	if err != nil {
		tb.Fatal(err)
	}
	defer dec.Close()
	rgb := make([]byte, w*h*3)
	var sum float64
	k := 0
	for i, au := range aus {
		err := dec.Decode(au, func(f encode.Frame) error {
			if _, err := f.RGB(rgb); err != nil {
				return err
			}
			p := encodetest.PSNR(pics[i%len(pics)], rgb)
			if !math.IsInf(p, 0) {
				sum += p
				k++
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return sum / float64(max(k, 1))
}
