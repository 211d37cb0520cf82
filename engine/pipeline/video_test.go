package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/framewire/framewire/encode/encodetest"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

func videoOut(t testing.TB, opts ...tracks.Option) *tracks.VideoOut {
	t.Helper()
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("main_video", opts...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	v, err := set.VideoOut("main_video")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type sample struct {
	data     []byte
	duration time.Duration
	capture  time.Time
	key      bool
	at       time.Time
}

// recordSink keeps copies of what it is given and signals each sample.
type recordSink struct {
	clock   pipeline.Clock
	mu      sync.Mutex
	samples []sample
	got     chan struct{}
}

func newRecordSink(clock pipeline.Clock) *recordSink {
	return &recordSink{clock: clock, got: make(chan struct{}, 1<<16)}
}

func (s *recordSink) WriteSample(data []byte, d time.Duration, capture time.Time, key bool) error {
	var at time.Time
	if s.clock != nil {
		at = s.clock.Now()
	}
	s.mu.Lock()
	s.samples = append(s.samples, sample{bytes.Clone(data), d, capture, key, at})
	s.mu.Unlock()
	s.got <- struct{}{}
	return nil
}

func (s *recordSink) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

// TestVideoRoundTrip emits frames into a real output track, runs the
// pipeline with each CPU backend, decodes what reaches the sink and
// compares it with what was emitted.
func TestVideoRoundTrip(t *testing.T) {
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			const w, h, frames = 480, 272, 20
			// At 30 fps, so rate control sees real frame intervals (frames
			// emitted back to back would be encoded as a 200 fps stream).
			out := videoOut(t, tracks.Backpressure(), tracks.Rate(30))
			sink := newRecordSink(nil)
			v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- v.Run(ctx) }()
			src := make([][]byte, frames)
			for i := range frames {
				src[i] = make([]byte, w*h*3)
				encodetest.Scene(src[i], w, h, i)
				if err := out.Emit(src[i], h, w, 3); err != nil {
					t.Fatal(err)
				}
				<-sink.got
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			dec, err := encode.NewVideoDecoder(b.Codec())
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			rgb := make([]byte, w*h*3)
			i := 0
			for _, s := range sink.all() {
				err := dec.Decode(s.data, func(f encode.Frame) error {
					if _, err := f.RGB(rgb); err != nil {
						return err
					}
					if p := encodetest.PSNR(src[i], rgb); p < 30 {
						t.Errorf("frame %d: PSNR %.1f dB, want ≥ 30", i, p)
					}
					i++
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if i != frames {
				t.Fatalf("decoded %d frames, emitted %d", i, frames)
			}
			st := v.Stats()
			if st.Backend != string(b) || st.Encoded != frames || st.Sent != frames || st.Emitted != frames || st.Keyframes != 1 {
				t.Fatalf("stats %+v", st)
			}
			if st.EncodeP50 <= 0 || st.EncodeP99 < st.EncodeP50 || st.LatencyP50 <= 0 || st.Bitrate <= 0 {
				t.Fatalf("stats percentiles/bitrate not measured: %+v", st)
			}
			checkStages(t, st)
		})
	}
}

// scripted is a VideoSource that plays a list of frames in simulated
// time: Next moves the fake clock to a frame's capture time, as if the
// model emitted it then.
type scripted struct {
	clock  *fakeClock
	frames []*tracks.VideoFrame
	rate   float64
}

func (s *scripted) Name() string  { return "scripted" }
func (s *scripted) Rate() float64 { return s.rate }
func (s *scripted) Next(ctx context.Context) (*tracks.VideoFrame, error) {
	if len(s.frames) == 0 {
		return nil, tracks.ErrClosed
	}
	f := s.frames[0]
	s.frames = s.frames[1:]
	s.clock.AdvanceTo(f.Capture)
	return f, nil
}

// TestVideoPacingSimulated runs the pipeline on a simulated clock: the
// model pushes batches of 3 frames every 90 ms, then stalls for 400 ms.
// Frames must leave 30 ms apart, the RTP clock (the sum of durations)
// must follow the send times, and nothing bursts after the stall.
func TestVideoPacingSimulated(t *testing.T) {
	const w, h = 64, 48
	clock := newFakeClock(true)
	start := clock.Now()
	var frames []*tracks.VideoFrame
	capture := start
	for b := range 8 {
		if b == 5 {
			capture = capture.Add(400 * time.Millisecond)
		}
		for i := range 3 {
			pix := make([]byte, w*h*3)
			encodetest.Scene(pix, w, h, b*3+i)
			frames = append(frames, &tracks.VideoFrame{Pix: pix, Width: w, Height: h, Capture: capture, Batch: i, BatchSize: 3})
		}
		capture = capture.Add(90 * time.Millisecond)
	}
	sink := newRecordSink(clock)
	err := pipeline.RunVideo(context.Background(), &scripted{clock: clock, frames: frames}, sink, pipeline.VideoConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	got := sink.all()
	if len(got) != len(frames) {
		t.Fatalf("%d samples for %d frames", len(got), len(frames))
	}
	var rtp time.Duration
	for i, s := range got {
		if i > 0 {
			gap := s.at.Sub(got[i-1].at)
			if gap < 15*time.Millisecond {
				t.Fatalf("frame %d left %v after the previous one: burst", i, gap)
			}
			// Past the first batch (interval not yet measured) and outside
			// the stall, frames leave exactly 30 ms apart.
			if i >= 4 && i != 15 && gap != 30*time.Millisecond {
				t.Fatalf("frame %d: gap %v, want 30ms", i, gap)
			}
		}
		// RTP time of this frame vs its send time: equal, except where the
		// plan was wrong (frame 3: the first batch was spread at the
		// default 30 fps before the push interval was measured; frame 15:
		// after the stall), and the next frame's timestamp catches up.
		if lag := s.at.Sub(got[0].at) - rtp; i != 3 && i != 15 && (lag > time.Millisecond || lag < -time.Millisecond) {
			t.Fatalf("frame %d: RTP clock %v, send clock %v", i, rtp, s.at.Sub(got[0].at))
		}
		rtp += s.duration
	}
}

func TestVideoControlAndErrors(t *testing.T) {
	const w, h = 160, 120
	out := videoOut(t, tracks.Backpressure())
	out.SetDeviceSupport(nil)
	sink := newRecordSink(nil)
	var logs bytes.Buffer
	v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	pix := make([]byte, w*h*3)
	emit := func(i int) sample {
		encodetest.Scene(pix, w, h, i)
		if err := out.Emit(pix, h, w, 3); err != nil {
			t.Fatal(err)
		}
		<-sink.got
		s := sink.all()
		return s[len(s)-1]
	}
	if s := emit(0); !s.key {
		t.Fatal("first frame not a keyframe")
	}
	if s := emit(1); s.key {
		t.Fatal("second frame is a keyframe")
	}
	v.RequestKeyframe()
	if s := emit(2); !s.key {
		t.Fatal("RequestKeyframe did not produce a keyframe")
	}
	v.SetBitrate(400_000)
	emit(3)
	if st := v.Stats(); st.TargetBitrate != 400_000 {
		t.Fatalf("target bitrate %d", st.TargetBitrate)
	}
	// A size change mid-stream: the next frame is a keyframe at the new size.
	big := make([]byte, 322*242*3)
	encodetest.Scene(big, 322, 242, 4)
	if err := out.Emit(big, 242, 322, 3); err != nil {
		t.Fatal(err)
	}
	<-sink.got
	s := sink.all()
	if !s[len(s)-1].key {
		t.Fatal("frame after a size change is not a keyframe")
	}
	// A device frame without a device encoder is counted, not fatal. (The
	// next host frame is back at 160×120: another size change, another
	// keyframe: 4 in all.)
	if err := out.EmitDevice(fakeDevice{}); err != nil {
		t.Fatal(err)
	}
	emit(5)
	cancel()
	<-done
	st := v.Stats()
	if st.DeviceErrors != 1 || st.Sent != 6 || st.Keyframes != 4 {
		t.Fatalf("stats %+v", st)
	}
	if !bytes.Contains(logs.Bytes(), []byte("no device encoder")) {
		t.Fatalf("device frame drop not logged: %s", logs.String())
	}
}

type fakeDevice struct{}

func (fakeDevice) Size() (int, int) { return 160, 120 }
func (fakeDevice) Frames() int      { return 1 }

// TestVideoHotPathDoesNotAllocate measures every allocation in the
// process (all goroutines) while frames go from Emit through the track's
// queue, the pacer, swscale and the encoder to the sink.
func TestVideoHotPathDoesNotAllocate(t *testing.T) {
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			const w, h = 320, 240
			out := videoOut(t, tracks.Backpressure())
			got := make(chan struct{}, 1)
			sink := pipeline.SinkFunc(func([]byte, time.Duration, time.Time, bool) error { got <- struct{}{}; return nil })
			v, _ := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Backend: b})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- v.Run(ctx) }()
			defer func() { cancel(); <-done }()
			pix := make([]byte, w*h*3)
			encodetest.Scene(pix, w, h, 0)
			step := func() {
				if err := out.Emit(pix, h, w, 3); err != nil {
					t.Fatal(err)
				}
				<-got
			}
			for range 10 {
				step()
			}
			if a := testing.AllocsPerRun(100, step); a != 0 {
				t.Fatalf("Emit → encoder → sink allocates %.2f times per frame, want 0", a)
			}
		})
	}
}

// TestReceiverDecodeToLatest decodes a stream into a real input track
// and checks the picture and that the path allocates nothing, with the
// software decoder and through an RGBDecoder (the seam NVDEC plugs into in
// a cuda build; here an RGBDecoder over FFmpeg's decoder that holds its
// newest picture, as gpu.Decoder holds its pinned one).
func TestReceiverDecodeToLatest(t *testing.T) {
	for _, name := range []string{"software", "rgb-decoder"} {
		t.Run(name, func(t *testing.T) { testReceiverDecodeToLatest(t, name == "rgb-decoder") })
	}
}

func testReceiverDecodeToLatest(t *testing.T, viaRGB bool) {
	const w, h = 320, 240
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("out"), tracks.VideoInput("cam")})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	in, _ := set.VideoIn("cam")
	var (
		rx   *pipeline.VideoReceiver
		held *heldRGB
	)
	if viaRGB {
		dec, err := encode.NewVideoDecoder(encode.CodecH264)
		if err != nil {
			t.Fatal(err)
		}
		held = &heldRGB{dec: dec}
		held.fn = held.picture
		rx, err = pipeline.NewVideoReceiverFrom(held, in)
		if err != nil {
			t.Fatal(err)
		}
	} else if rx, err = pipeline.NewVideoReceiver(encode.CodecH264, in); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pix := make([]byte, w*h*3)
	pkt := make([]byte, 1<<20)
	var aus [][]byte
	for i := range 40 {
		encodetest.Scene(pix, w, h, i)
		n, _, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*3000), pkt)
		if err != nil {
			t.Fatal(err)
		}
		aus = append(aus, bytes.Clone(pkt[:n]))
	}
	for _, au := range aus[:10] {
		if err := rx.WriteAccessUnit(au, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	latest := in.Latest()
	encodetest.Scene(pix, w, h, 9)
	if latest == nil || latest.Width != w || encodetest.PSNR(pix, latest.Pix) < 30 {
		t.Fatalf("latest frame wrong: %+v", latest)
	}
	i := 10
	at := time.Now()
	if a := testing.AllocsPerRun(25, func() {
		if err := rx.WriteAccessUnit(aus[i], at); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Fatalf("decode → latest allocates %.2f times per frame, want 0", a)
	}
	if viaRGB {
		if err := rx.Close(); err != nil || !held.closed {
			t.Fatalf("Close: %v; the receiver must close the decoder it owns (closed=%v)", err, held.closed)
		}
	}
}

// heldRGB is a pipeline.RGBDecoder over FFmpeg's software decoder.
type heldRGB struct {
	dec    *encode.VideoDecoder
	fn     func(encode.Frame) error
	pix    []byte
	w, h   int
	seq    uint64
	n      int
	closed bool
}

func (d *heldRGB) picture(f encode.Frame) error {
	d.w, d.h = f.Size()
	if len(d.pix) < d.w*d.h*3 {
		d.pix = make([]byte, d.w*d.h*3)
	}
	if _, err := f.RGB(d.pix); err != nil {
		return err
	}
	d.seq++
	d.n++
	return nil
}

func (d *heldRGB) Decode(au []byte) (int, error) {
	d.n = 0
	err := d.dec.Decode(au, d.fn)
	return d.n, err
}

func (d *heldRGB) Latest(dst []byte) (int, int, uint64, error) {
	if len(dst) < d.w*d.h*3 {
		return d.w, d.h, d.seq, encode.ErrShortBuffer
	}
	copy(dst, d.pix[:d.w*d.h*3])
	return d.w, d.h, d.seq, nil
}

func (d *heldRGB) Close() error { d.closed = true; return d.dec.Close() }

// TestVideoSkipsOvertakenFrames: frames that queue up behind a fixed-rate
// pacer are not sent late one by one (the latency would stay as long as
// the queue); when the slot comes the newest single frame leaves and the
// overtaken ones are counted as skipped. A back-pressure track sends all.
func TestVideoSkipsOvertakenFrames(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        []tracks.Option
		wantSent    int
		wantSkipped uint64
		wantLast    byte // grey level of the last frame sent
	}{
		{"drop-oldest", []tracks.Option{tracks.Rate(30)}, 2, 2, 3 * 60},
		{"backpressure", []tracks.Option{tracks.Rate(30), tracks.Backpressure()}, 4, 0, 3 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const w, h = 64, 48
			clock := newFakeClock(false)
			out := videoOut(t, tc.opts...)
			sink := newRecordSink(clock)
			v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- v.Run(ctx) }()
			emit := func(k int) {
				pix := bytes.Repeat([]byte{byte(k * 60)}, w*h*3)
				if err := out.Emit(pix, h, w, 3); err != nil {
					t.Fatal(err)
				}
			}
			emit(0)
			<-sink.got // the first frame leaves at once
			for k := 1; k <= 3; k++ {
				emit(k) // all three wait for the next 1/30 s slot
			}
			for range tc.wantSent - 1 {
				clock.Advance(time.Second / 30)
				<-sink.got
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			got := sink.all()
			if len(got) != tc.wantSent {
				t.Fatalf("sent %d frames, want %d", len(got), tc.wantSent)
			}
			if st := v.Stats(); st.Skipped != tc.wantSkipped {
				t.Fatalf("Skipped = %d, want %d (stats %+v)", st.Skipped, tc.wantSkipped, st)
			}
			dec, err := encode.NewVideoDecoder(encode.CodecH264)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			rgb := make([]byte, w*h*3)
			for _, s := range got {
				if err := dec.Decode(s.data, func(f encode.Frame) error { _, err := f.RGB(rgb); return err }); err != nil {
					t.Fatal(err)
				}
			}
			if d := int(rgb[w*h*3/2]) - int(tc.wantLast); d < -6 || d > 6 {
				t.Fatalf("last frame sent has grey %d, want the newest frame's %d", rgb[w*h*3/2], tc.wantLast)
			}
		})
	}
}

// TestVideoOnRateSimulated runs a Rate(30) track whose model emits on its
// 30 fps ticks with up to ±5 ms of jitter, on a simulated clock: every
// frame must leave the moment it is emitted (the pacer adds nothing), and
// the RTP clock (the sum of durations) must stay within the jitter of the
// send clock for every frame, without drifting.
func TestVideoOnRateSimulated(t *testing.T) {
	const w, h = 64, 48
	clock := newFakeClock(true)
	start := clock.Now()
	jitter := []time.Duration{0, 4, -3, 5, -5, 2, -1, 5, -4, 3}
	var frames []*tracks.VideoFrame
	for k := range 90 {
		pix := make([]byte, w*h*3)
		encodetest.Scene(pix, w, h, k)
		c := start.Add(time.Duration(k)*time.Second/30 + jitter[k%len(jitter)]*time.Millisecond)
		frames = append(frames, &tracks.VideoFrame{Pix: pix, Width: w, Height: h, Capture: c})
	}
	sink := newRecordSink(clock)
	err := pipeline.RunVideo(context.Background(), &scripted{clock: clock, frames: frames, rate: 30}, sink, pipeline.VideoConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	got := sink.all()
	if len(got) != 90 {
		t.Fatalf("%d samples for 90 frames", len(got))
	}
	var rtp time.Duration
	for i, s := range got {
		if s.at != s.capture {
			t.Fatalf("frame %d emitted at +%v left at +%v", i, s.capture.Sub(start), s.at.Sub(start))
		}
		if d := s.at.Sub(got[0].at) - rtp; d > 10*time.Millisecond || d < -10*time.Millisecond {
			t.Fatalf("frame %d: RTP clock %v, send clock %v", i, rtp, s.at.Sub(got[0].at))
		}
		rtp += s.duration
	}
}

// checkStages: every stage is measured, p99 ≥ p50, the stages come in
// order, encoding takes time, and the last stage is within the emit→wire
// latency.
func checkStages(t *testing.T, st pipeline.VideoStats) {
	t.Helper()
	s := st.Stages
	order := []pipeline.Percentiles{s.Dequeued, s.Paced, s.Converted, s.Encoded, s.Handed, s.Wire}
	for i, p := range order {
		if p.P99 < p.P50 || p.P50 < 0 || i > 0 && p.P50 < order[i-1].P50 {
			t.Fatalf("stage %d out of order: %+v", i, s)
		}
	}
	if s.Encoded.P50 <= s.Paced.P50 || s.Converted.P50 <= s.Paced.P50 || s.Wire.P50 > st.LatencyP50 || s.Wire.P50 == 0 {
		t.Fatalf("stage times not measured: %+v (latency p50 %v)", s, st.LatencyP50)
	}
}

// failingRGB is a hardware decoder that opened but fails every unit (NVDEC
// without libnvcuvid.so.1: FFmpeg sets its hwaccel up at the first SPS).
type failingRGB struct{ closed bool }

func (f *failingRGB) Decode([]byte) (int, error) {
	return 0, errors.New("NVDEC h264 decode: Invalid data found when processing input")
}
func (f *failingRGB) Latest([]byte) (int, int, uint64, error) {
	return 0, 0, 0, errors.New("no picture")
}
func (f *failingRGB) Close() error { f.closed = true; return nil }

// A hardware decoder that fails after open persistently is replaced by the
// CPU decoder, counted and logged, and pictures resume at the next
// keyframe (defect 4: the receiver fell back only at open).
func TestReceiverFallsBackFromAFailingHardwareDecoder(t *testing.T) {
	const w, h = 160, 120
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("out"), tracks.VideoInput("cam")})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	in, _ := set.VideoIn("cam")
	hw := &failingRGB{}
	rx, err := pipeline.NewVideoReceiverFrom(hw, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var logged bytes.Buffer
	rx.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pix := make([]byte, w*h*3)
	pkt := make([]byte, 1<<20)
	for i := range pipeline.RGBFallbackAfter + 3 {
		encodetest.Scene(pix, w, h, i)
		if i == pipeline.RGBFallbackAfter {
			enc.RequestKeyframe() // what the peer's PLI asks for after decode errors
		}
		n, _, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*3000), pkt)
		if err != nil {
			t.Fatal(err)
		}
		err = rx.WriteAccessUnit(pkt[:n], time.Now())
		if (i < pipeline.RGBFallbackAfter) != (err != nil) {
			t.Fatalf("unit %d: err %v", i, err)
		}
	}
	if rx.Fallbacks != 1 || !hw.closed || rx.Frames != 3 {
		t.Fatalf("fallbacks %d, hardware decoder closed %v, %d pictures delivered; want 1, true, 3", rx.Fallbacks, hw.closed, rx.Frames)
	}
	if latest := in.Latest(); latest == nil || encodetest.PSNR(pix, latest.Pix) < 30 {
		t.Fatalf("latest picture wrong after the fallback: %+v", latest)
	}
	if !strings.Contains(logged.String(), "decoding on the CPU") {
		t.Errorf("fallback not logged: %q", logged.String())
	}
}

// keyTap is a Tap that asks for a keyframe every tenth access unit and
// records which access units were keyframes.
type keyTap struct {
	n    int
	keys []bool // preallocated
	got  chan struct{}
}

func (k *keyTap) Packet(data []byte, key bool, w, h int, dur time.Duration) bool {
	if k.n < len(k.keys) {
		k.keys[k.n] = key
	}
	k.n++
	k.got <- struct{}{}
	return k.n%10 == 0
}

// TestVideoTap: the tap sees every access unit after the sink, its
// keyframe request makes the very next frame a keyframe (the recorder's
// segment boundaries), and the path allocates nothing.
func TestVideoTap(t *testing.T) {
	const w, h = 320, 240
	out := videoOut(t, tracks.Backpressure())
	tap := &keyTap{keys: make([]bool, 200), got: make(chan struct{}, 1)}
	sink := pipeline.SinkFunc(func([]byte, time.Duration, time.Time, bool) error { return nil })
	v, _ := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Tap: tap})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() { cancel(); <-done }()
	pix := make([]byte, w*h*3)
	n := 0
	step := func() {
		encodetest.Scene(pix, w, h, n)
		n++
		if err := out.Emit(pix, h, w, 3); err != nil {
			t.Fatal(err)
		}
		<-tap.got
	}
	for range 10 {
		step()
	}
	if a := testing.AllocsPerRun(100, step); a != 0 {
		t.Fatalf("encoder → sink → tap allocates %.2f times per frame, want 0", a)
	}
	for i := 10; i < min(tap.n, len(tap.keys)); i++ {
		if want := i%10 == 0; tap.keys[i] != want {
			t.Fatalf("access unit %d: key %v, want %v (a keyframe right after each request, none otherwise)", i, tap.keys[i], want)
		}
	}
}
