package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// A side-by-side measurement: each step of ours is timed next to a step
// of the baseline, alternating which goes first, so that both see the
// same machine load.
type side struct {
	ours, base []time.Duration
}

func (s *side) run(n int, ours, base func()) {
	for i := range n {
		if i%2 == 0 {
			s.ours = append(s.ours, timed(ours))
			s.base = append(s.base, timed(base))
		} else {
			s.base = append(s.base, timed(base))
			s.ours = append(s.ours, timed(ours))
		}
	}
}

func timed(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func sum(d []time.Duration) (t time.Duration) {
	for _, x := range d {
		t += x
	}
	return t
}

// ratio is our throughput over the baseline's: > 1 means we are faster.
func (s *side) ratio() float64 { return float64(sum(s.base)) / float64(sum(s.ours)) }

func (s *side) report(b *testing.B, allocs float64) {
	b.ReportMetric(float64(len(s.ours))/sum(s.ours).Seconds(), "frames/s")
	b.ReportMetric(float64(len(s.base))/sum(s.base).Seconds(), "base-frames/s")
	b.ReportMetric(float64(pct(s.ours, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(s.ours, 99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(pct(s.base, 50).Microseconds()), "base-p50-µs")
	b.ReportMetric(float64(pct(s.base, 99).Microseconds()), "base-p99-µs")
	b.ReportMetric(s.ratio(), "x-baseline")
	// The latency target is "our p99 ≤ 2× the bare encoder's p99".
	b.ReportMetric(float64(pct(s.ours, 99))/float64(pct(s.base, 99)), "p99/base-p99")
	b.ReportMetric(allocs, "our-allocs/frame")
}

// scenes are a few different pictures to cycle through, so encoders see
// motion.
func scenes(w, h, n int) [][]byte {
	out := make([][]byte, n)
	for k := range out {
		pix := make([]byte, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				o := (y*w + x) * 3
				pix[o] = byte((x + 9*k) * 255 / (w + 90))
				pix[o+1] = byte((y + 5*k) * 255 / (h + 50))
				pix[o+2] = byte(((x/16+y/16+k)%2)*70 + 80)
				if x >= (k*37)%w && x < (k*37)%w+w/5 && y > h/3 && y < h/2 {
					pix[o], pix[o+1], pix[o+2] = 240, 230, 40
				}
			}
		}
		out[k] = pix
	}
	return out
}

// stepClock is a simulated clock for the pipeline under benchmark:
// sleeping jumps time, so a 30 fps track is paced at 30 fps of presentation
// time (3000 ticks between frames, as in the baseline) without waiting.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return context.Cause(ctx)
}

// encodePipeline is the product path under benchmark: a real output
// track, the video pipeline on its own goroutine, a sink that signals.
type encodePipeline struct {
	out    *tracks.VideoOut
	set    *tracks.Set
	got    chan int
	cancel context.CancelFunc
	done   chan error
	w, h   int
}

func newEncodePipeline(b encode.Backend, w, h int) (*encodePipeline, error) {
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("v", tracks.Rate(30), tracks.Backpressure())})
	if err != nil {
		return nil, err
	}
	out, _ := set.VideoOut("v")
	p := &encodePipeline{out: out, set: set, got: make(chan int, 1), done: make(chan error, 1), w: w, h: h}
	sink := pipeline.SinkFunc(func(d []byte, _ time.Duration, _ time.Time, _ bool) error { p.got <- len(d); return nil })
	v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Backend: b, Clock: &stepClock{now: time.Unix(0, 0)}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- v.Run(ctx) }()
	return p, nil
}

// frame emits pix and waits for its packet, which must not be empty: a
// step that encoded nothing would make the ratio flatter us.
func (p *encodePipeline) frame(pix []byte) {
	if err := p.out.Emit(pix, p.h, p.w, 3); err != nil {
		panic(err)
	}
	if n := <-p.got; n == 0 {
		panic("bench: the pipeline sent an empty packet for a frame")
	}
}

func (p *encodePipeline) close() {
	p.cancel()
	<-p.done
	p.set.Close()
}

// astiavEncoder is the baseline: the plain go-astiav loop a user would
// write, with the same encoder settings as encode.VideoEncoder: copy the
// RGB picture into an AVFrame, sws ScaleFrame to yuv420p, SendFrame,
// ReceivePacket.
type astiavEncoder struct {
	cc       *astiav.CodecContext
	rgb, yuv *astiav.Frame
	sws      *astiav.SoftwareScaleContext
	pkt      *astiav.Packet
	pts      int64
}

func newAstiavEncoder(b encode.Backend, w, h int) (*astiavEncoder, error) {
	return newAstiavEncoderWith(b, w, h, nil)
}

// newAstiavEncoderWith is newAstiavEncoder with tune, when set, changing
// the codec context and options after the defaults and before opening.
func newAstiavEncoderWith(b encode.Backend, w, h int, tune func(*astiav.CodecContext, *astiav.Dictionary)) (*astiavEncoder, error) {
	name := string(b)
	if b == encode.BackendVP8 {
		name = "libvpx"
	}
	codec := astiav.FindEncoderByName(name)
	if codec == nil {
		return nil, fmt.Errorf("%s not in this FFmpeg", name)
	}
	const bitrate, fps = 2_500_000, 30
	planar := astiav.PixelFormatYuv420P
	if b == encode.BackendNVENC {
		planar = astiav.PixelFormatNv12 // what encode feeds NVENC
	}
	cc := astiav.AllocCodecContext(codec)
	cc.SetWidth(w)
	cc.SetHeight(h)
	cc.SetPixelFormat(planar)
	cc.SetTimeBase(astiav.NewRational(1, 90000))
	cc.SetFramerate(astiav.NewRational(fps, 1))
	cc.SetBitRate(bitrate)
	cc.SetMaxBFrames(0)
	opts := astiav.NewDictionary()
	defer opts.Free()
	switch b {
	case encode.BackendX264:
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		cc.SetGopSize(-1)
		cc.SetThreadCount(encode.DefaultX264Threads)
		cc.SetRateControlMaxRate(bitrate)
		cc.SetRateControlBufferSize(bitrate / fps * 2)
		opts.Set("preset", "ultrafast", 0)
		opts.Set("tune", "zerolatency", 0)
		opts.Set("profile", "baseline", 0)
		opts.Set("forced-idr", "1", 0)
		opts.Set("x264-params", "keyint=infinite:scenecut=0:repeat-headers=1:aud=0:sliced-threads=0", 0)
	case encode.BackendNVENC:
		// encode's NVENC settings: constrained baseline, the largest GOP
		// (keyframes on request), CBR with a two-frame VBV, p1/ull, no
		// delay.
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		cc.SetGopSize(math.MaxInt32)
		cc.SetRateControlMaxRate(bitrate)
		cc.SetRateControlBufferSize(bitrate / fps * 2)
		opts.Set("preset", "p1", 0)
		opts.Set("tune", "ull", 0)
		opts.Set("rc", "cbr", 0)
		opts.Set("zerolatency", "1", 0)
		opts.Set("delay", "0", 0)
		opts.Set("forced-idr", "1", 0)
		opts.Set("profile", "baseline", 0)
	case encode.BackendVP8:
		cc.SetGopSize(1 << 30)
		cc.SetRateControlMaxRate(bitrate)
		cc.SetRateControlMinRate(bitrate)
		cc.SetRateControlBufferSize(bitrate)
		cc.SetQmin(4)
		opts.Set("deadline", "realtime", 0)
		opts.Set("cpu-used", "8", 0)
		opts.Set("lag-in-frames", "0", 0)
		opts.Set("error-resilient", "default", 0)
		opts.Set("auto-alt-ref", "0", 0)
	}
	if tune != nil {
		tune(cc, opts)
	}
	if err := cc.Open(codec, opts); err != nil {
		cc.Free()
		return nil, err
	}
	e := &astiavEncoder{cc: cc, rgb: astiav.AllocFrame(), yuv: astiav.AllocFrame(), pkt: astiav.AllocPacket()}
	e.rgb.SetWidth(w)
	e.rgb.SetHeight(h)
	e.rgb.SetPixelFormat(astiav.PixelFormatRgb24)
	e.yuv.SetWidth(w)
	e.yuv.SetHeight(h)
	e.yuv.SetPixelFormat(planar)
	if err := e.rgb.AllocBuffer(1); err != nil {
		return nil, err
	}
	if err := e.yuv.AllocBuffer(0); err != nil {
		return nil, err
	}
	var err error
	e.sws, err = astiav.CreateSoftwareScaleContext(w, h, astiav.PixelFormatRgb24, w, h, planar, astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
	return e, err
}

func (e *astiavEncoder) frame(pix []byte) int {
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
	n := 0
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) {
				if n == 0 { // the baseline must do the same work: one packet per frame
					panic("bench: the go-astiav baseline produced no packet for a frame")
				}
				return n
			}
			panic(err)
		}
		n += e.pkt.Size()
		e.pkt.Unref()
	}
}

func (e *astiavEncoder) close() {
	e.cc.Free()
	e.rgb.Free()
	e.yuv.Free()
	e.sws.Free()
	e.pkt.Free()
}

// encodePair opens our pipeline and the baseline for b at w×h.
func encodePair(tb testing.TB, b encode.Backend, w, h int) (ours, base func(), allocs func() float64, closeAll func()) {
	p, err := newEncodePipeline(b, w, h)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := newAstiavEncoder(b, w, h)
	if err != nil {
		tb.Fatal(err)
	}
	pics := scenes(w, h, 8)
	i, j := 0, 0
	ours = func() { p.frame(pics[i%len(pics)]); i++ }
	base = func() { e.frame(pics[j%len(pics)]); j++ }
	for range 5 { // warm up: open the encoder, settle rate control
		ours()
		base()
	}
	allocs = func() float64 { return testing.AllocsPerRun(10, ours) }
	return ours, base, allocs, func() { p.close(); e.close() }
}
