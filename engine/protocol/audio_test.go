package protocol

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// Audio over the protocol, end to end on the real engine: a model's
// AudioOut reaches the SDK-flow client as continuous, real-time Opus that
// decodes to the model's tone, and the client's Opus microphone reaches
// the model's AudioIn (Latest and OnMedia) as 48 kHz mono int16 of the
// client's tone.

const (
	narrationHz  = 440.0 // the model's tone
	microphoneHz = 660.0 // the client's tone: a different one, so that the model cannot pass by hearing its own
	toneAmp      = 8000.0
	toneChunks   = 100                           // 2 s of 20 ms chunks
	micWarmup    = 10                            // microphone chunks the model skips (decoder start)
	micAnalyse   = 25 * encode.AudioFrameSamples // 0.5 s the model analyses
)

// toneModel plays a 440 Hz tone on "narration" when the client sends play,
// and reports the frequency it hears on "microphone".
type toneModel struct{ states sync.Map } // session id -> *toneState

type toneState struct {
	s    *engine.Session
	play chan struct{}
	once sync.Once

	mu       sync.Mutex // guards the microphone fields, written by OnMedia
	chunks   int
	mic      []int16
	reported bool
	badFmt   string // the first chunk format that was not 48 kHz mono, if any
}

func (m *toneModel) state(s *engine.Session) *toneState {
	v, _ := m.states.LoadOrStore(s.ID(), &toneState{s: s, play: make(chan struct{}), mic: make([]int16, 0, micAnalyse)})
	return v.(*toneState)
}

func (m *toneModel) declaration() engine.Model {
	return engine.Model{
		Name:   "tonemodel",
		Tracks: []tracks.Spec{tracks.AudioOutput("narration"), tracks.AudioInput("microphone")},
		Commands: []engine.CommandDef{
			engine.Command("play", "", func(s *engine.Session, _ struct{}) error {
				st := m.state(s)
				st.once.Do(func() { close(st.play) })
				return nil
			}),
		},
		New: func(engine.Config) (engine.Runner, error) { return m, nil },
	}
}

// RunSession waits for play, then emits toneChunks 20 ms chunks of a
// phase-continuous 440 Hz tone, each at its real-time due moment (late ones
// at once), and says tone_done.
func (m *toneModel) RunSession(ctx context.Context, s *engine.Session) error {
	st := m.state(s)
	out, err := s.AudioOut("narration")
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-st.play:
	}
	chunk := make([]int16, encode.AudioFrameSamples)
	start := time.Now()
	for i := 0; i < toneChunks; i++ {
		if d := time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		}
		for j := range chunk {
			n := i*len(chunk) + j
			chunk[j] = int16(toneAmp * math.Sin(2*math.Pi*narrationHz*float64(n)/encode.AudioRate))
		}
		if err := out.Emit(chunk); err != nil {
			return nil // the session is ending
		}
	}
	_ = s.Send(map[string]any{"type": "tone_done", "chunks": toneChunks})
	<-ctx.Done()
	return nil
}

// OnMedia collects microphone PCM and, once it has micAnalyse samples
// after the warm-up, sends what frequency it heard.
func (m *toneModel) OnMedia(s *engine.Session, b *tracks.MediaBundle) error {
	td := b.Track("microphone")
	if td == nil || td.Audio == nil {
		return nil
	}
	st := m.state(s)
	st.mu.Lock()
	f := td.Audio
	if (f.SampleRate != encode.AudioRate || f.Channels != 1) && st.badFmt == "" {
		st.badFmt = fmt.Sprintf("%d Hz, %d channels", f.SampleRate, f.Channels)
	}
	st.chunks++
	if st.reported || st.chunks <= micWarmup {
		st.mu.Unlock()
		return nil
	}
	st.mic = append(st.mic, f.PCM[:min(len(f.PCM), micAnalyse-len(st.mic))]...)
	if len(st.mic) < micAnalyse {
		st.mu.Unlock()
		return nil
	}
	st.reported = true
	pcm, badFmt := st.mic, st.badFmt
	st.mu.Unlock()
	return s.Send(map[string]any{
		"type": "mic_tone", "zero_crossing_hz": zeroCrossingHz(pcm),
		"dominance_db": dominanceDB(pcm, microphoneHz), "bad_format": badFmt,
	})
}

// ---- signal measures ----

// goertzel returns the power of pcm at hz (48 kHz samples).
func goertzel(pcm []int16, hz float64) float64 {
	w := 2 * math.Pi * hz / encode.AudioRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// dominanceDB is how far, in dB, the power at hz stands above the
// strongest of its neighbours: half, two thirds, 1.25x, 1.5x and twice hz,
// and ±100 Hz.
func dominanceDB(pcm []int16, hz float64) float64 {
	at := goertzel(pcm, hz)
	worst := 0.0
	for _, n := range []float64{hz / 2, hz * 2 / 3, hz - 100, hz + 100, hz * 1.25, hz * 1.5, hz * 2} {
		worst = math.Max(worst, goertzel(pcm, n))
	}
	return 10 * math.Log10(at/math.Max(worst, 1e-9))
}

// zeroCrossingHz estimates a tone's frequency from the sign changes of pcm,
// with a little hysteresis so that noise around zero does not count.
func zeroCrossingHz(pcm []int16) float64 {
	const hyst = 200
	crossings, first, last := 0, -1, -1
	sign := 0
	for i, v := range pcm {
		s := sign
		switch {
		case v > hyst:
			s = 1
		case v < -hyst:
			s = -1
		}
		if sign != 0 && s != sign {
			crossings++
			if first < 0 {
				first = i
			}
			last = i
		}
		sign = s
	}
	if crossings < 2 {
		return 0
	}
	// crossings-1 half periods between the first and the last crossing.
	return float64(crossings-1) / 2 / (float64(last-first) / encode.AudioRate)
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(pcm), 1)))
}

// ---- the client side ----

// narrationRecorder keeps every narration RTP packet's sequence number,
// timestamp and arrival time, and the decoded PCM, frame by frame.
type narrationRecorder struct {
	mu      sync.Mutex
	seq     []uint16
	ts      []uint32
	arrived []time.Time
	pcm     [][]int16 // one decoded frame per packet
	loud    []bool    // per frame: carries the tone (computed as it arrives)
	errs    int       // packets that did not decode
	mime    string
}

const maxRecorded = 1000 // 20 s of packets: more means the test is stuck

func (r *narrationRecorder) read(remote *webrtc.TrackRemote) {
	dec, err := encode.NewOpusDecoder()
	if err != nil {
		r.mu.Lock()
		r.errs++
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.mime = remote.Codec().MimeType
	r.mu.Unlock()
	buf := make([]int16, 5760)
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		at := time.Now()
		n, err := dec.Decode(pkt.Payload, buf)
		if err != nil {
			n = 0
		}
		isLoud := loud(buf[:n]) // outside the lock: polling must not starve this loop
		r.mu.Lock()
		if len(r.seq) < maxRecorded {
			r.seq = append(r.seq, pkt.SequenceNumber)
			r.ts = append(r.ts, pkt.Timestamp)
			r.arrived = append(r.arrived, at)
			if err != nil {
				r.errs++
				n = 0
			}
			r.pcm = append(r.pcm, append([]int16(nil), buf[:n]...))
			r.loud = append(r.loud, isLoud)
		}
		r.mu.Unlock()
	}
}

// loud reports whether a decoded frame carries the tone (silence decodes
// to near zero; the tone's RMS is toneAmp/√2).
func loud(frame []int16) bool { return rms(frame) > toneAmp/4 }

// tonePlayedOut reports whether the tone has started and at least 10
// quiet frames followed its last loud one.
func (r *narrationRecorder) tonePlayedOut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lastLoud := -1
	for i, l := range r.loud {
		if l {
			lastLoud = i
		}
	}
	return lastLoud >= 0 && len(r.loud)-lastLoud > 10
}

func newToneServer(t *testing.T, rec *narrationRecorder) (*testServer, *toneModel) {
	t.Helper()
	m := &toneModel{}
	eng, err := engine.New(m.declaration())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	a, err := wiring.New(eng, wiring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// This client sends nothing on the data channel after "play": the
	// ping timeout must not orphan it while the tone plays (under -race on
	// a loaded machine the 2 s of testConfig did).
	cfg := testConfig()
	cfg.PingTimeout = time.Minute
	srv, err := NewServer(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return &testServer{Server: hs, srv: srv, client: clientOptions{OnAudio: rec.read}}, m
}

func TestAudioToneBothWays(t *testing.T) {
	if raceDetector {
		// It checks real-time playout (2 s of tone arriving in 2 s ± 25%,
		// about 100 loud frames); race-instrumented Opus and pion fall
		// behind real time on a loaded 2-core machine (it failed 1 in 5
		// -race runs before issue 12 too). test-go runs it without -race.
		t.Skip("real-time audio check; not meaningful under -race")
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // first registered: runs after every close below
	rec := &narrationRecorder{}
	ts, m := newToneServer(t, rec)
	d, c := ts.connectClient(t)
	if len(d.Capabilities.Tracks) != 2 {
		t.Fatalf("capabilities tracks %+v, want narration and microphone", d.Capabilities.Tracks)
	}

	stopMic := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopMic) }) }
	defer stop()
	c.PublishTone("microphone", microphoneHz, toneAmp, stopMic)
	c.Command("play", map[string]any{}, nil)

	// Both application messages, in whichever order they come.
	var micMsg, doneMsg map[string]any
	deadline := time.After(10 * time.Second)
	for micMsg == nil || doneMsg == nil {
		select {
		case msg := <-c.Msgs:
			data, _ := msg["data"].(map[string]any)
			if msg["scope"] != "application" || data == nil {
				continue
			}
			switch data["type"] {
			case "mic_tone":
				micMsg = data
			case "tone_done":
				doneMsg = data
			}
		case <-deadline:
			t.Fatalf("within 10 s: mic_tone %v, tone_done %v", micMsg, doneMsg)
		}
	}

	// (b) The model heard the microphone: through OnMedia (its report) and
	// through AudioIn.Latest, while the client still sends.
	t.Logf("model heard: %v", micMsg)
	if bf, _ := micMsg["bad_format"].(string); bf != "" {
		t.Errorf("OnMedia got microphone chunks of %s, want 48000 Hz mono", bf)
	}
	if hz, _ := micMsg["zero_crossing_hz"].(float64); math.Abs(hz-microphoneHz) > microphoneHz*0.01 {
		t.Errorf("OnMedia: microphone zero-crossing frequency %.1f Hz, want %.0f ±1%%", hz, microphoneHz)
	}
	if db, _ := micMsg["dominance_db"].(float64); db < 20 {
		t.Errorf("OnMedia: %.0f Hz stands %.1f dB above its neighbours, want ≥ 20 dB", microphoneHz, db)
	}
	v, ok := m.states.Load(d.SessionID)
	if !ok {
		t.Fatal("the model has no state for the session")
	}
	in, err := v.(*toneState).s.AudioIn("microphone")
	if err != nil {
		t.Fatal(err)
	}
	latest := in.Latest()
	if latest == nil {
		t.Fatal("AudioIn.Latest: no chunk")
	}
	if latest.SampleRate != encode.AudioRate || latest.Channels != 1 || len(latest.PCM) != encode.AudioFrameSamples {
		t.Errorf("AudioIn.Latest: %d samples at %d Hz, %d channels; want 960 at 48000 Hz mono", len(latest.PCM), latest.SampleRate, latest.Channels)
	}
	// 20 ms resolves 50 Hz: 660 Hz against 330, 440, 560, 760, 825, 990 and 1320 Hz.
	db := dominanceDB(latest.PCM, microphoneHz)
	t.Logf("AudioIn.Latest: %d samples, %.0f Hz %.1f dB above its neighbours", len(latest.PCM), microphoneHz, db)
	if db < 10 {
		t.Errorf("AudioIn.Latest: %.0f Hz stands %.1f dB above its neighbours, want ≥ 10 dB", microphoneHz, db)
	}
	stop()

	// (a) The narration: wait until the tone has played out, then check
	// the stream and the tone.
	eventually(t, 5*time.Second, "narration tone played out", rec.tonePlayedOut)
	rec.mu.Lock()
	seq, tsv, arrived, frames, decErrs, mime := rec.seq, rec.ts, rec.arrived, rec.pcm, rec.errs, rec.mime
	rec.mu.Unlock()
	if mime != webrtc.MimeTypeOpus {
		t.Fatalf("narration codec %q, want %q", mime, webrtc.MimeTypeOpus)
	}
	if decErrs > 0 {
		t.Errorf("%d of %d narration packets did not decode", decErrs, len(frames))
	}
	// Continuity: every packet advances the timestamp by 960 per sequence
	// number, and loopback loses none.
	missing := 0
	for i := 1; i < len(seq); i++ {
		ds := seq[i] - seq[i-1]
		if ds == 0 || ds > 100 {
			t.Fatalf("packet %d: sequence %d after %d", i, seq[i], seq[i-1])
		}
		if dt := tsv[i] - tsv[i-1]; dt != 960*uint32(ds) {
			t.Fatalf("packet %d: timestamp advanced %d over %d sequence numbers, want %d (20 ms of 48 kHz each)", i, dt, ds, 960*uint32(ds))
		}
		missing += int(ds) - 1
	}
	if missing > 0 {
		t.Errorf("%d narration packets missing on loopback", missing)
	}
	// Real time: the media clock and the arrival clock agree over the run.
	media := float64(tsv[len(tsv)-1]-tsv[0]) / encode.AudioRate
	wall := arrived[len(arrived)-1].Sub(arrived[0]).Seconds()
	t.Logf("narration: %d packets, %.2f s of media over %.2f s of arrivals", len(seq), media, wall)
	if media < 2 || math.Abs(wall-media) > 0.25*media {
		t.Errorf("narration: %.2f s of media arrived over %.2f s; want ≥ 2 s arriving in real time (±25%%)", media, wall)
	}
	// The tone: the loud frames hold the 2 s the model emitted; the longest
	// run of them, less its edges, is a 440 Hz sine.
	loudN, bestStart, bestLen, runStart := 0, 0, 0, -1
	for i, f := range frames {
		if loud(f) {
			loudN++
			if runStart < 0 {
				runStart = i
			}
			if i-runStart+1 > bestLen {
				bestStart, bestLen = runStart, i-runStart+1
			}
		} else {
			runStart = -1
		}
	}
	t.Logf("narration: %d loud frames, longest run %d", loudN, bestLen)
	if loudN < toneChunks-5 || loudN > toneChunks+2 {
		t.Errorf("narration: %d frames carry the tone, want about %d (the 2 s emitted)", loudN, toneChunks)
	}
	if bestLen < 27 {
		t.Fatalf("narration: the longest run of tone is %d frames, want ≥ 27 (0.5 s) to measure", bestLen)
	}
	var tone []int16
	for _, f := range frames[bestStart+1 : bestStart+bestLen-1] {
		tone = append(tone, f...)
	}
	hz, db := zeroCrossingHz(tone), dominanceDB(tone, narrationHz)
	t.Logf("narration tone: zero crossings %.2f Hz, 440 Hz %.1f dB above its neighbours", hz, db)
	if math.Abs(hz-narrationHz) > narrationHz*0.01 {
		t.Errorf("narration: zero-crossing frequency %.1f Hz, want %.0f ±1%%", hz, narrationHz)
	}
	if db < 20 {
		t.Errorf("narration: %.0f Hz stands %.1f dB above its neighbours, want ≥ 20 dB", narrationHz, db)
	}
}
