package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// audioFeed is an AudioSource the test hands chunks to; ready tells the
// test that the pipeline has finished with the previous chunk.
type audioFeed struct {
	ready chan struct{}
	ch    chan *tracks.AudioFrame
}

func (a *audioFeed) Name() string { return "feed" }
func (a *audioFeed) Next(ctx context.Context) (*tracks.AudioFrame, error) {
	select {
	case a.ready <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	select {
	case f := <-a.ch:
		return f, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// TestAudioLongToneSimulated emits ten minutes of a 440 Hz tone as
// 100 ms chunks of 44.1 kHz stereo, in real time on a simulated clock,
// and decodes what the pipeline sends with pion/opus: the audio must be
// continuous (no silence, no underrun after the start), free of clicks
// (no step between consecutive samples beyond what the tone itself
// makes), and its latency must not drift by more than 20 ms.
func TestAudioLongToneSimulated(t *testing.T) {
	// Ten minutes take ~17 s on the 2-core CI host (libopus encodes 30000
	// frames); the default run simulates three, FRAMEWIRE_LONG_AUDIO=1
	// the full ten, -short one.
	minutes := 3
	if os.Getenv("FRAMEWIRE_LONG_AUDIO") == "1" {
		minutes = 10
	}
	if testing.Short() {
		minutes = 1
	}
	const (
		rate, channels = 44100, 2
		chunk          = rate / 10 // 100 ms
		amp            = 10000.0
		freq           = 440.0
	)
	clock := newFakeClock(false)
	feed := &audioFeed{ready: make(chan struct{}), ch: make(chan *tracks.AudioFrame)}
	sink := newRecordSink(clock)
	a, err := pipeline.NewAudio(feed, sink, pipeline.AudioConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-sink.got // the first tick, at t=0: silence
	<-feed.ready

	dec, err := encode.NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 5760)
	var (
		out                  []int16
		minLat, maxLat       time.Duration = time.Hour, 0
		frames, silentFrames int
	)
	consume := func() {
		<-sink.got
		s := sink.all()
		last := s[len(s)-1]
		sink.mu.Lock()
		sink.samples = sink.samples[:0] // keep memory flat over 30000 frames
		sink.mu.Unlock()
		n, err := dec.Decode(last.data, pcm)
		if err != nil {
			t.Fatal(err)
		}
		if last.duration != 20*time.Millisecond || n != encode.AudioFrameSamples {
			t.Fatalf("frame %d: duration %v, %d samples", frames, last.duration, n)
		}
		frames++
		if last.capture.IsZero() {
			silentFrames++
			if frames > 3 {
				t.Fatalf("silence at frame %d, mid-stream", frames)
			}
		} else {
			lat := last.at.Sub(last.capture)
			minLat, maxLat = min(minLat, lat), max(maxLat, lat)
		}
		if frames > 3 {
			out = append(out, pcm[:n]...)
		}
	}
	buf := make([]int16, chunk*channels)
	phase := 0
	for range minutes * 600 {
		for i := range chunk {
			v := int16(amp * math.Sin(2*math.Pi*freq*float64(phase+i)/rate))
			buf[2*i], buf[2*i+1] = v, v
		}
		phase += chunk
		feed.ch <- &tracks.AudioFrame{PCM: buf, Channels: channels, SampleRate: rate, Capture: clock.Now()}
		<-feed.ready // the chunk is in the pipeline's buffer
		for range 5 {
			clock.Advance(20 * time.Millisecond)
			consume()
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	st := a.Stats()
	t.Logf("%d frames, %d silent, latency %v…%v, stats %+v", frames, silentFrames, minLat, maxLat, st)
	if st.Underruns != 0 || st.Overflow != 0 {
		t.Fatalf("underruns %d, overflow %d", st.Underruns, st.Overflow)
	}
	if maxLat-minLat > 20*time.Millisecond {
		t.Fatalf("latency drifted from %v to %v", minLat, maxLat)
	}
	// Clicks: a 440 Hz tone of amplitude A moves at most 2π·440/48000·A
	// per sample; allow twice that for coding noise. A gap or a splice
	// makes steps of the order of A.
	limit := 2 * 2 * math.Pi * freq / encode.AudioRate * amp
	worst, at := 0.0, 0
	for i := 1; i < len(out); i++ {
		if d := math.Abs(float64(out[i]) - float64(out[i-1])); d > worst {
			worst, at = d, i
		}
	}
	t.Logf("largest step between samples %.0f at %d (limit %.0f)", worst, at, limit)
	if worst > limit {
		t.Fatalf("click: step of %.0f between samples %d and %d (limit %.0f)", worst, at-1, at, limit)
	}
	// The decoded tone correlates with a clean one (any phase).
	ref := make([]int16, 48000)
	for i := range ref {
		ref[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/encode.AudioRate))
	}
	if c := correlation(ref[:24000], out[len(out)-48000:], 120); c < 0.9 {
		t.Fatalf("correlation %.3f with a clean tone, want ≥ 0.9", c)
	}
}

func correlation(want, got []int16, maxLag int) float64 {
	best := -1.0
	for lag := 0; lag <= maxLag; lag++ {
		var sab, saa, sbb float64
		for i := range want {
			a, b := float64(want[i]), float64(got[i+lag])
			sab += a * b
			saa += a * a
			sbb += b * b
		}
		best = max(best, sab/math.Sqrt(saa*sbb+1e-9))
	}
	return best
}

// TestAudioRealTrack runs the pipeline on the system clock with a real
// output track: silence flows before the model emits, its audio follows,
// and Run stops when the context ends.
func TestAudioRealTrack(t *testing.T) {
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("v"), tracks.AudioOutput("voice")})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	out, _ := set.AudioOut("voice")
	sink := newRecordSink(nil)
	a, _ := pipeline.NewAudio(out, sink, pipeline.AudioConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for range 3 {
		<-sink.got
	}
	sr := out.SampleRate()
	tone := make([]int16, sr/5) // 200 ms, mono
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/float64(sr)))
	}
	if err := out.Emit(tone); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for a.Stats().Frames-a.Stats().Silent < 8 {
		select {
		case <-sink.got:
		case <-deadline:
			t.Fatalf("model audio did not come through: %+v", a.Stats())
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	st := a.Stats()
	if st.Emitted != 1 || st.Silent < 3 || st.LatencyP50 < 40*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}
}

// stallSink is a recordSink whose WriteSample can be held, as a starved
// or suspended sending goroutine would be.
type stallSink struct {
	*recordSink
	mu      sync.Mutex
	hold    chan struct{} // when set, WriteSample waits until it is closed
	entered chan struct{}
}

func (s *stallSink) WriteSample(data []byte, d time.Duration, capture time.Time, key bool) error {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		s.entered <- struct{}{}
		<-hold
	}
	return s.recordSink.WriteSample(data, d, capture, key)
}

// TestAudioLatencyRecoversAfterStalls feeds a real-time model's audio
// (20 ms chunks, each stamped when emitted) on a simulated clock while
// the sending goroutine stalls: three 500 ms stalls (a SIGSTOP'd or
// starved sender), then a model that emits 300 ms ahead of real time
// once. After each, the buffered audio and the latency of what is sent
// must be back within the 40 ms target + 20 ms in under a second, by
// dropping the oldest audio (counted as Trimmed), and stay there. Audio
// queued before sending began is not sent (it starts fresh).
func TestAudioLatencyRecoversAfterStalls(t *testing.T) {
	const (
		target = 40 * time.Millisecond
		bound  = target + 20*time.Millisecond
		chunk  = 960 // 20 ms at 48 kHz mono
	)
	clock := newFakeClock(false)
	feed := &audioFeed{ready: make(chan struct{}), ch: make(chan *tracks.AudioFrame, 64)}
	sink := &stallSink{recordSink: newRecordSink(clock), entered: make(chan struct{})}
	a, err := pipeline.NewAudio(feed, sink, pipeline.AudioConfig{Clock: clock, Playout: target})
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, chunk)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/48000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// Stale audio: 200 ms emitted before sending began.
	start := clock.Now()
	for i := range 10 {
		<-feed.ready
		feed.ch <- &tracks.AudioFrame{PCM: pcm, Channels: 1, SampleRate: 48000, Capture: start.Add(time.Duration(i-10) * 20 * time.Millisecond)}
	}
	<-feed.ready

	// step emits the next 20 ms chunk, advances the clock one frame and
	// waits for the tick; it returns the latency of the frame sent (0 for
	// silence) and the audio buffered after it.
	latest := func() sample { s := sink.all(); return s[len(s)-1] }
	step := func() (lat, buffered time.Duration) {
		feed.ch <- &tracks.AudioFrame{PCM: pcm, Channels: 1, SampleRate: 48000, Capture: clock.Now()}
		<-feed.ready
		clock.Advance(20 * time.Millisecond)
		<-sink.got
		s := latest()
		if !s.capture.IsZero() {
			lat = s.at.Sub(s.capture)
		}
		return lat, a.Stats().Buffered
	}
	// recovered runs one second of steps and fails unless latency and
	// buffered audio are within bound from some step on, and that step
	// comes before the second is over.
	recovered := func(what string) {
		t.Helper()
		lastBad := -1
		var worstLat, worstBuf time.Duration
		for i := range 75 {
			lat, buf := step()
			worstLat, worstBuf = max(worstLat, lat), max(worstBuf, buf)
			if lat > bound || buf > bound || lat == 0 && i > 3 {
				lastBad = i
			}
		}
		if lastBad >= 49 {
			t.Fatalf("%s: latency or buffered audio above %v (or silent) until %v later (worst %v, %v; stats %+v)",
				what, bound, time.Duration(lastBad+1)*20*time.Millisecond, worstLat, worstBuf, a.Stats())
		}
		t.Logf("%s: back within %v after %v (worst latency %v, buffered %v)", what, bound, time.Duration(lastBad+1)*20*time.Millisecond, worstLat, worstBuf)
	}
	<-sink.got // the first tick, at once (stale audio trimmed, or silence)
	recovered("start with 200 ms of stale audio queued")
	for k := range 3 {
		// The sender stalls in WriteSample for 500 ms while the model
		// keeps emitting in real time.
		sink.mu.Lock()
		sink.hold = make(chan struct{})
		hold := sink.hold
		sink.mu.Unlock()
		feed.ch <- &tracks.AudioFrame{PCM: pcm, Channels: 1, SampleRate: 48000, Capture: clock.Now()}
		<-feed.ready
		clock.Advance(20 * time.Millisecond)
		<-sink.entered
		for range 25 {
			feed.ch <- &tracks.AudioFrame{PCM: pcm, Channels: 1, SampleRate: 48000, Capture: clock.Now()}
			<-feed.ready
			clock.Advance(20 * time.Millisecond)
		}
		sink.mu.Lock()
		sink.hold = nil
		sink.mu.Unlock()
		close(hold)
		<-sink.got // the held frame
		<-sink.got // the first tick after the stall
		if b := a.Stats().Buffered; b > bound {
			t.Logf("stall %d: %v buffered right after it", k, b)
		}
		recovered(fmt.Sprintf("500 ms stall %d", k+1))
	}
	// The model emits 300 ms ahead of real time once.
	big := make([]int16, 15*chunk)
	for i := range big {
		big[i] = pcm[i%chunk]
	}
	feed.ch <- &tracks.AudioFrame{PCM: big, Channels: 1, SampleRate: 48000, Capture: clock.Now()}
	<-feed.ready
	recovered("300 ms emitted ahead")

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	st := a.Stats()
	if st.Trimmed == 0 || st.Underruns != 0 {
		t.Fatalf("stats %+v: want samples trimmed, no underrun", st)
	}
}
