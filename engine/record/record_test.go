package record

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/record/recordtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feeder encodes moving grey pictures with libx264, as a live pipeline
// does, and hands each access unit to a tap, honouring its keyframe
// requests.
type feeder struct {
	t     testing.TB
	enc   *encode.VideoEncoder
	pix   []byte
	out   []byte
	w, h  int
	n     int
	bytes int64 // encoded so far
	// flat, when set, paints frame n a flat grey of flat(n) (a stamp the
	// browser test reads back); otherwise a moving gradient.
	flat func(n int) byte
}

func newFeeder(t testing.TB, w, h int) *feeder {
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendX264, Width: w, Height: h, Bitrate: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return &feeder{t: t, enc: enc, pix: make([]byte, w*h*3), out: make([]byte, w*h*3+4096), w: w, h: h}
}

// frame encodes the next picture; it returns the access unit.
func (f *feeder) frame() ([]byte, bool) {
	// Painted a row at a time (a fill, not a per-pixel loop), so that a
	// benchmark's CPU is the encoder's and the recorder's, not the paint's.
	row := 3 * f.w
	for y := range f.h {
		v := byte(f.n + y)
		if f.flat != nil {
			v = f.flat(f.n)
		}
		r := f.pix[y*row : (y+1)*row]
		r[0] = v
		for k := 1; k < len(r); k *= 2 {
			copy(r[k:], r[:k])
		}
	}
	n, key, err := f.enc.Encode(encode.Image{Pix: f.pix, Width: f.w, Height: f.h}, int64(f.n)*3000, f.out)
	if err != nil {
		f.t.Fatal(err)
	}
	f.n++
	f.bytes += int64(n)
	return f.out[:n], key
}

func (f *feeder) feed(tap *VideoTap, frames int) {
	for range frames {
		au, key := f.frame()
		if len(au) == 0 {
			continue
		}
		if tap.Packet(au, key, f.w, f.h, time.Second/30) {
			f.enc.RequestKeyframe()
		}
	}
}

// eventually polls cond every 10 ms until it holds, failing the test
// after within (enginetest.Eventually's shape: enginetest imports this
// package through wiring, so it cannot be imported here).
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		<-tick.C
	}
}

func openStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	s, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRecorderSegments records 9.5 s of 30 fps media in 2 s chunks and
// reads the files back with FFmpeg's demuxer: one H.264 stream of 9.5 s
// and an AAC stream as long, every segment starting with a keyframe, the
// playlist listing them.
func TestRecorderSegments(t *testing.T) {
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	f := newFeeder(t, 160, 120)
	tap := rec.VideoTap(30)
	if _, err := rec.Snap(10, ""); err != ErrNoMedia {
		t.Fatalf("Snap before media: %v, want %v", err, ErrNoMedia)
	}
	for range 285 { // feed in real time's order, letting the recorder keep up
		f.feed(tap, 1)
		for len(rec.full) > queueLen/2 { // paces the producer: let the recorder keep up, no drop
			time.Sleep(time.Millisecond)
		}
	}
	if got := rec.Now(); got != 9500*time.Millisecond {
		t.Fatalf("Now %v, want 9.5s", got)
	}
	clip, err := rec.Snap(5, "")
	if err != nil {
		t.Fatal(err)
	}
	if clip.Kind != "snap" || clip.EndMarker != 9.5 || clip.StartMarker != 4.5 || clip.PlaylistURL != "/clips?session_id="+rec.ID()+"&start=4.500&end=9.500" {
		t.Fatalf("clip %+v", clip)
	}
	// Segment 4 (8–10 s) is still open: the playlist waits.
	if code, _ := s.Playlist(rec.ID(), 4.5, 9.5, ""); code != http.StatusAccepted {
		t.Fatalf("playlist of an open segment: %d, want 202", code)
	}
	if code, _, _ := s.Chunk(rec.ID(), "chunk_00004.m4s"); code != http.StatusNotFound {
		t.Fatalf("open segment: %d, want 404", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec.Dropped() != 0 {
		t.Fatalf("dropped %d", rec.Dropped())
	}
	dir := filepath.Join(s.Dir(), rec.ID())
	for k := range 5 {
		st, err := recordtest.Probe(recordtest.Segments(dir, k, k)...)
		if err != nil {
			t.Fatal(err)
		}
		want := 2.0
		if k == 4 {
			want = 1.5
		}
		if !st.FirstKey || st.Codec != "h264" || math.Abs(st.Duration-want) > 0.001 {
			t.Fatalf("segment %d: %+v, want a keyframe first and %.1f s of h264", k, st, want)
		}
	}
	// A segment closed by the next one's keyframe carries its audio up to
	// the cut, less one AAC packet at most (the packet that straddles it
	// opens the next segment).
	head, err := recordtest.Probe(recordtest.Segments(dir, 0, 2)...)
	if err != nil {
		t.Fatal(err)
	}
	if end := head.AudioStart + head.AudioDuration; end > 6+1e-6 || end < 6-1024.0/AudioRate || math.Abs(head.AudioStart) > 1e-6 {
		t.Fatalf("segments 0-2: audio from %.4f to %.4f s, want from 0 to within one AAC packet before the cut at 6 s", head.AudioStart, end)
	}
	all, err := recordtest.Probe(recordtest.Segments(dir, 0, 4)...)
	if err != nil {
		t.Fatal(err)
	}
	// Two streams: the video, and AAC audio (silent here: no audio tap)
	// as long as the video to within the encoder's packets (1024 samples:
	// the last one padded, one more for the encoder's priming delay).
	if all.Streams != 2 || all.Codec != "h264" || all.Audio != "aac" || all.Packets != 285 || math.Abs(all.Duration-9.5) > 0.001 || all.Width != 160 || all.Height != 120 {
		t.Fatalf("whole recording: %+v, want h264 + aac, 285 packets, 9.5 s, 160x120", all)
	}
	if d := all.AudioDuration - all.Duration; d < 0 || d > 2*1024.0/AudioRate {
		t.Fatalf("audio lasts %.3f s, video %.3f s: want the same to within two AAC packets", all.AudioDuration, all.Duration)
	}
	code, body := s.Playlist(rec.ID(), 4.5, 9.5, "")
	if code != http.StatusOK {
		t.Fatalf("playlist after finish: %d %s", code, body)
	}
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n" +
		"#EXT-X-MAP:URI=\"/clips/chunks/" + rec.ID() + "/init.mp4\"\n" +
		"#EXTINF:2.000,\n/clips/chunks/" + rec.ID() + "/chunk_00002.m4s\n" +
		"#EXTINF:2.000,\n/clips/chunks/" + rec.ID() + "/chunk_00003.m4s\n" +
		"#EXTINF:1.500,\n/clips/chunks/" + rec.ID() + "/chunk_00004.m4s\n#EXT-X-ENDLIST\n"
	if body != want {
		t.Fatalf("playlist:\n%s\nwant:\n%s", body, want)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

// TestTapAllocs: the tap copies into the queue's reused buffers, so a
// video frame costs no allocation once they have grown.
func TestTapAllocs(t *testing.T) {
	s := openStore(t, StoreConfig{})
	rec, err := s.NewRecorder("", Config{Enabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	tap := rec.VideoTap(30)
	au := make([]byte, 20000)
	au[3], au[4] = 1, 0x65
	cycle := func() {
		tap.Packet(au, true, 1280, 720, time.Second/30)
		it := <-rec.full // what Run does, without the muxer
		rec.free <- it
	}
	for range 2 * queueLen {
		cycle()
	}
	if n := testing.AllocsPerRun(1000, cycle); n != 0 {
		t.Fatalf("%v allocations per frame on the tap path, want 0", n)
	}
}

// TestFullQueueDrops: a recorder that does not keep up drops (counted)
// and asks for a keyframe to resume on; the tap never blocks.
func TestFullQueueDrops(t *testing.T) {
	s := openStore(t, StoreConfig{})
	rec, err := s.NewRecorder("", Config{Enabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	tap := rec.VideoTap(30)
	au := []byte{0, 0, 0, 1, 0x65, 1}
	for range queueLen {
		tap.Packet(au, true, 16, 16, time.Second/30)
	}
	if !tap.Packet(au, false, 16, 16, time.Second/30) || rec.Dropped() != 1 {
		t.Fatalf("full queue: dropped %d, want 1 and a keyframe request", rec.Dropped())
	}
	<-rec.full
	if !tap.Packet(au, false, 16, 16, time.Second/30) || rec.Dropped() != 2 {
		t.Fatal("a delta frame after a drop must be dropped until a keyframe")
	}
	if now := rec.Now(); now != time.Duration(queueLen)*time.Second/30 {
		t.Fatalf("dropped frames advanced the timeline: %v", now)
	}
}

func TestPlaylistErrors(t *testing.T) {
	s := openStore(t, StoreConfig{})
	rec, err := s.NewRecorder("", Config{Enabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	id := rec.ID()
	for _, c := range []struct {
		id         string
		start, end float64
		code       int
		detail     string
	}{
		{"not-a-uuid", -1, 0, 410, DetailGone},
		{NewID(), 0, 4, 410, DetailGone},
		{strings.ToUpper(id), 0, 4, 410, DetailGone},
		{id, -1, 4, 400, DetailBadStart},
		{id, 4, 4, 400, DetailBadEnd},
		{id, math.NaN(), 4, 400, DetailBadStart},
		{id, 0, math.Inf(1), 400, DetailBadEnd},
		{id, 0, 4, 202, ""},
	} {
		code, body := s.Playlist(c.id, c.start, c.end, "")
		if code != c.code || body != c.detail {
			t.Errorf("Playlist(%q, %g, %g) = %d %q, want %d %q", c.id, c.start, c.end, code, body, c.code, c.detail)
		}
	}
	for _, name := range []string{"secrets.txt", "chunk_7.m4s", "../init.mp4", "chunk_00000.m4s", "init.mp4", "chunk_00000.m4s.tmp"} {
		if code, _, _ := s.Chunk(id, name); code != http.StatusNotFound {
			t.Errorf("Chunk(%q) = %d, want 404", name, code)
		}
	}
	if code, _, _ := s.Chunk(NewID(), "init.mp4"); code != http.StatusGone {
		t.Errorf("unknown id: %d, want 410", code)
	}
}

// TestRetention: a finished recording answers until the retention is
// over, then 410, and its folder is gone.
func TestRetention(t *testing.T) {
	s := openStore(t, StoreConfig{Dir: t.TempDir(), Retention: 300 * time.Millisecond})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	newFeeder(t, 64, 64).feed(rec.VideoTap(30), 45)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if code, body := s.Playlist(rec.ID(), 0, 1.5, ""); code != http.StatusOK {
		t.Fatalf("finished recording: %d %s", code, body)
	}
	dir := filepath.Join(s.Dir(), rec.ID())
	eventually(t, 5*time.Second, "the recording gone after retention (playlist 410, folder removed)", func() bool {
		code, _ := s.Playlist(rec.ID(), 0, 1.5, "")
		_, statErr := os.Stat(dir)
		return code == http.StatusGone && os.IsNotExist(statErr)
	})
}

// TestDiskBudget: over the budget, the oldest finished recording goes
// first.
func TestDiskBudget(t *testing.T) {
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	var ids []string
	var size int64
	for range 3 {
		rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- rec.Run(context.Background()) }()
		newFeeder(t, 64, 64).feed(rec.VideoTap(30), 30)
		_ = rec.Close()
		<-done
		ids = append(ids, rec.ID())
		s.mu.Lock()
		size = s.bytes
		s.cfg.MaxBytes = size // the next recording pushes the first out
		s.mu.Unlock()
	}
	if code, _ := s.Playlist(ids[0], 0, 1, ""); code != http.StatusGone {
		t.Fatalf("oldest recording over the budget: %d, want 410", code)
	}
	if code, _ := s.Playlist(ids[2], 0, 1, ""); code != http.StatusOK {
		t.Fatalf("newest recording: %d, want 200", code)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), ids[0])); !os.IsNotExist(err) {
		t.Fatalf("evicted folder still there: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("prompt: hello\nrecording:\n  enabled: true\n  chunk_seconds: 2\n  video:\n    codec: h264\n"))
	if err != nil || !c.Enabled || c.ChunkSeconds != 2 || c.ClipMaxSeconds != 300 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := ParseConfig([]byte("recording:\n  enabeld: true\n")); err == nil || !strings.Contains(err.Error(), "enabeld") {
		t.Fatalf("misspelt key: %v", err)
	}
	if c, err := ParseConfig([]byte("other: 1\n")); err != nil || c.Enabled {
		t.Fatalf("no block: %+v %v", c, err)
	}
	if _, err := ParseConfig([]byte("recording:\n  chunk_seconds: 0.5\n")); err == nil {
		t.Fatal("fractional chunk_seconds accepted")
	}
}

// TestRecorderAudio: the recording carries an AAC track of the
// played-out PCM next to the video, as long as the video and starting
// with it: silence for half a second, a 440 Hz tone for a second from
// video frame 15, then silence (the model emitted none), decoded back
// with FFmpeg's aac decoder; the tone's onset lands at frame 15's time
// (the encoder's priming is skipped by the audio track's edit list). The
// repository's FFmpeg build has the aac encoder (build/ffmpeg,
// configured with it): its absence is a failure, not a skip.
func TestRecorderAudio(t *testing.T) {
	if !hasAAC() {
		t.Fatal("FFmpeg has no aac encoder: build/ffmpeg must be configured with --enable-encoder=aac (make ffmpeg)")
	}
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	f, tap, at := newFeeder(t, 64, 64), rec.VideoTap(30), rec.AudioTap()
	const (
		freq            = 440.0
		onFrame, offFrm = 15, 45 // the tone plays during video frames [15, 45)
		frames          = 90
	)
	tone := make([]int16, AudioRate/30)
	for n := range frames {
		if n >= onFrame && n < offFrm { // one video frame's worth at a time; none is silence
			for i := range tone {
				k := (n-onFrame)*len(tone) + i
				tone[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(k)/AudioRate))
			}
			at.PCM(tone)
		}
		f.feed(tap, 1)
		for len(rec.full) > queueLen/2 { // paces the producer: let the recorder keep up, no drop
			time.Sleep(time.Millisecond)
		}
	}
	_ = rec.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := recordtest.ProbeAudio(recordtest.Segments(filepath.Join(s.Dir(), rec.ID()), 0, 2)...)
	if err != nil {
		t.Fatal(err)
	}
	if st.Streams != 2 || st.Audio != "aac" || st.AudioRate != AudioRate || st.Packets != frames || math.Abs(st.Duration-3) > 0.001 {
		t.Fatalf("%+v, want h264 + aac at %d Hz, %d video packets, 3 s", st, AudioRate, frames)
	}
	if d := st.AudioStart - st.VideoStart; math.Abs(d) > 256.0/AudioRate {
		t.Fatalf("audio starts at %.4f s, video at %.4f s: want them within a quarter AAC packet", st.AudioStart, st.VideoStart)
	}
	if d := st.AudioDuration - st.Duration; d < 0 || d > 2*1024.0/AudioRate {
		t.Fatalf("audio lasts %.3f s, video %.3f s: want the same to within two AAC packets", st.AudioDuration, st.Duration)
	}
	if got, want := len(st.PCM), int(st.AudioDuration*AudioRate+0.5); got != want {
		t.Fatalf("decoded %d samples, want %d", got, want)
	}
	// The onset, against video time: the first 2 ms window whose RMS
	// reaches half the tone's, at the decoded sample's presentation time
	// (PCM[0] plays at AudioStart); the model emitted it with frame 15.
	amp := 8000.0 / 32768
	win := AudioRate / 500
	onset := -1
	for i := 0; i+win <= len(st.PCM); i++ {
		if rms(st.PCM[i:i+win]) >= amp/math.Sqrt2/2 {
			onset = i
			break
		}
	}
	if onset < 0 {
		t.Fatal("no tone decoded")
	}
	at0 := st.AudioStart + float64(onset)/AudioRate - st.VideoStart
	if want := float64(onFrame) / 30; math.Abs(at0-want) > 256.0/AudioRate {
		t.Fatalf("tone onset at %.4f s of video time, want %.4f s (frame %d) to within a quarter AAC packet", at0, want, onFrame)
	}
	t.Logf("tone onset %.4f s of video time (emitted at %.4f s)", at0, float64(onFrame)/30)
	// Windows clear of the edges: the tone's level and 440 Hz energy,
	// silence before and after.
	toneWin := st.PCM[7*AudioRate/10 : 13*AudioRate/10]
	if r := rms(toneWin); math.Abs(r-amp/math.Sqrt2) > 0.1*amp {
		t.Fatalf("tone window RMS %.4f, want %.4f (the model's tone)", r, amp/math.Sqrt2)
	}
	if p440, p1k := goertzel(toneWin, freq), goertzel(toneWin, 1000); p440 < 100*p1k {
		t.Fatalf("tone window: power at 440 Hz %.3g, at 1 kHz %.3g: not the model's 440 Hz tone", p440, p1k)
	}
	for _, q := range [][]float32{st.PCM[AudioRate/20 : 9*AudioRate/20], st.PCM[17*AudioRate/10 : 29*AudioRate/10]} {
		if r := rms(q); r > 0.001 {
			t.Fatalf("silent window RMS %.4f, want silence where the model emitted none", r)
		}
	}
}

func rms(x []float32) float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(x)))
}

// goertzel is the power of x at freq Hz (AudioRate samples a second).
func goertzel(x []float32, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/AudioRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// TestFailureDisables: a recorder that cannot write (its folder is in
// the way: a disk error) disables the recording for the session with one
// error line, refuses clips with the runtime's reason, and its tap goes
// on returning at once.
func TestFailureDisables(t *testing.T) {
	var logs syncBuffer
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), rec.ID()), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	f, tap := newFeeder(t, 64, 64), rec.VideoTap(30)
	f.feed(tap, 1)
	eventually(t, 5*time.Second, "the recorder fails", func() bool { return rec.Err() != nil })
	f.feed(tap, 200) // more than the queue holds: never blocks
	if _, err := rec.Snap(1, ""); err != ErrDisabled {
		t.Fatalf("clip after a failure: %v, want %v", err, ErrDisabled)
	}
	_ = rec.Close()
	<-done
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "recording disabled for this session") {
		t.Fatalf("want one error line, got %d:\n%s", n, logs.String())
	}
	if rec.Stats().Disabled == "" {
		t.Fatal("Stats.Disabled empty after a failure")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPaceLog: readiness is predicted at the measured production rate: a
// model making 1 s of media every 2 s reaches a boundary twice as late.
func TestPaceLog(t *testing.T) {
	var p paceLog
	t0 := time.Unix(1000, 0)
	if r := p.rate(t0); r != 1 {
		t.Fatalf("no samples: %v, want 1", r)
	}
	for i := range 9 { // 4 s of wall, 2 s of media
		p.note(t0.Add(time.Duration(i)*500*time.Millisecond), int64(i)*timescale/4)
	}
	if r := p.rate(t0.Add(4 * time.Second)); math.Abs(r-0.5) > 1e-9 {
		t.Fatalf("half real time: rate %v, want 0.5", r)
	}
	if r := p.rate(t0.Add(10 * time.Second)); r != 1 {
		t.Fatalf("after a pause: rate %v, want 1", r)
	}
}

// TestNaturalKeyframeCuts: a keyframe the live encoder makes on its own
// as the last frame before a boundary (a scene cut) starts the next
// segment, and no IDR is forced for that boundary; at the other
// boundaries the tap asks once and the segment starts on the IDR.
func TestNaturalKeyframeCuts(t *testing.T) {
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	f, tap := newFeeder(t, 64, 64), rec.VideoTap(30)
	var asked []int
	for n := range 90 {
		if n == 29 { // the encoder's own keyframe, as at a scene cut, in the boundary's last frame
			f.enc.RequestKeyframe()
		}
		au, key := f.frame()
		if n == 29 && !key {
			t.Fatal("frame 29 is not a keyframe")
		}
		if tap.Packet(au, key, f.w, f.h, time.Second/30) {
			asked = append(asked, n)
			f.enc.RequestKeyframe()
		}
		for len(rec.full) > queueLen/2 { // paces the producer: no drop
			time.Sleep(time.Millisecond)
		}
	}
	_ = rec.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []int{59, 89}) {
		t.Fatalf("keyframes asked after frames %v, want after 59 and 89 only (frame 29 was one already)", asked)
	}
	dir := filepath.Join(s.Dir(), rec.ID())
	for k, want := range []float64{29.0 / 30, 1 + 1.0/30, 1} { // segment 1 starts a frame early, on frame 29
		st, err := recordtest.Probe(recordtest.Segments(dir, k, k)...)
		if err != nil {
			t.Fatal(err)
		}
		if !st.FirstKey || st.Keys != 1 || math.Abs(st.Duration-want) > 0.001 {
			t.Fatalf("segment %d: %+v, want one keyframe, first, and %.3f s", k, st, want)
		}
	}
}

// TestPacedRecordingHoldsNow records a model paced by wire time (VideoTap
// rate 0: a frame lasts its duration on the wire, up to 100 ms) and stops
// it while the tap is still being fed: the files then hold exactly the
// media time the markers counted, to the tick, with the audio as long.
// (recordtest.Probe once measured the last frame as 1/30 s, the demuxer's
// guess, so a recording whose last frame lasted longer read short of its
// end_marker; and a frame tapped while Run stopped could be counted by
// now and never queued.)
func TestPacedRecordingHoldsNow(t *testing.T) {
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	f := newFeeder(t, 64, 48)
	tap := rec.VideoTap(0)
	durs := []time.Duration{33 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond, 47 * time.Millisecond, 150 * time.Millisecond}
	stop := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			au, key := f.frame()
			if len(au) > 0 && tap.Packet(au, key, f.w, f.h, durs[i%len(durs)]) {
				f.enc.RequestKeyframe()
			}
		}
	}()
	eventually(t, 20*time.Second, "1.5 s recorded", func() bool { return rec.Now() >= 1500*time.Millisecond })
	cancel() // while the tap is fed
	err = <-done
	close(stop)
	<-fed
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Dir(), rec.ID())
	chunks, _ := filepath.Glob(filepath.Join(dir, "chunk_*.m4s"))
	all, err := recordtest.Probe(recordtest.Segments(dir, 0, len(chunks)-1)...)
	if err != nil {
		t.Fatal(err)
	}
	now := rec.Now().Seconds()
	if math.Abs(all.Duration-now) > 1.0/timescale || !all.FirstKey {
		t.Fatalf("recording: %+v, want %.6f s of video (now; dropped %d)", all, now, rec.Dropped())
	}
	if d := all.AudioDuration - all.Duration; d < 0 || d > 2*1024.0/AudioRate {
		t.Fatalf("audio lasts %.4f s, video %.4f s: want the same to within two AAC packets", all.AudioDuration, all.Duration)
	}
}
