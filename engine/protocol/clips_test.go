package protocol

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/record/recordtest"
	"github.com/framewire/framewire/engine/wiring"
)

// newRecordingServer serves the test model with recording on (chunks of
// cs seconds) into a store in a test directory.
func newRecordingServer(t *testing.T, cs int, enabled bool, tweak ...func(*Config)) (*testServer, *record.Store) {
	t.Helper()
	store, err := record.OpenStore(record.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() }) // runs after the server's cleanup
	eng := newTestEngine(t, wiring.Config{Recording: record.Config{Enabled: enabled, ChunkSeconds: cs}, Recordings: store})
	cfg := testConfig()
	cfg.PingTimeout = time.Minute // the test client sends no pings while media records
	for _, f := range tweak {
		f(&cfg)
	}
	return serveTestEngine(t, eng, cfg), store
}

// clipReply waits for the next clipReady or clipFailed on c, in order.
func clipReply(t *testing.T, c *client) (typ string, data map[string]any) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.Msgs:
			d, _ := m["data"].(map[string]any)
			if m["scope"] != "runtime" || d == nil {
				continue
			}
			if ty, _ := d["type"].(string); ty == "clipReady" || ty == "clipFailed" {
				inner, _ := d["data"].(map[string]any)
				return ty, inner
			}
		case <-deadline:
			t.Fatal("no clipReady or clipFailed within 5s")
			return "", nil
		}
	}
}

func requestClip(c *client, data any) {
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestClip", "data": data}})
}

func requestRecording(c *client) {
	c.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "requestRecording", "data": map[string]any{}}})
}

// get fetches path from the server and returns the response and its body.
func clipGet(t *testing.T, base, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// fetchClip polls a playlist until 200 (checking each 202), then
// downloads its init segment and media segments into dir and returns
// their paths in playlist order.
func fetchClip(t *testing.T, base, playlistURL, dir string) (playlist string, files []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := clipGet(t, base, playlistURL)
		if resp.StatusCode == http.StatusOK {
			if ct := resp.Header.Get("Content-Type"); ct != record.PlaylistType {
				t.Fatalf("playlist Content-Type %q", ct)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") == "" {
				t.Fatal("playlist without Access-Control-Allow-Origin")
			}
			playlist = string(body)
			break
		}
		if resp.StatusCode != http.StatusAccepted || len(body) != 0 || resp.Header.Get("Retry-After") != "2" ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Fatalf("playlist while not ready: %d %q headers %v", resp.StatusCode, body, resp.Header)
		}
		if time.Now().After(deadline) {
			t.Fatal("playlist not ready within 10s")
		}
		time.Sleep(100 * time.Millisecond) // the client's poll period
	}
	lines := strings.Split(strings.TrimSuffix(playlist, "\n"), "\n")
	if len(lines) < 7 || lines[0] != "#EXTM3U" || lines[1] != "#EXT-X-VERSION:7" || !strings.HasPrefix(lines[2], "#EXT-X-TARGETDURATION:") ||
		lines[3] != "#EXT-X-PLAYLIST-TYPE:VOD" || lines[len(lines)-1] != "#EXT-X-ENDLIST" {
		t.Fatalf("playlist shape:\n%s", playlist)
	}
	var uris []string
	for _, l := range lines {
		if u, ok := strings.CutPrefix(l, "#EXT-X-MAP:URI=\""); ok {
			uris = append(uris, strings.TrimSuffix(u, "\""))
		} else if !strings.HasPrefix(l, "#") {
			uris = append(uris, l)
		}
	}
	for i, u := range uris {
		resp, body := clipGet(t, base, u)
		want := "video/iso.segment"
		if i == 0 {
			want = "video/mp4"
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		p := filepath.Join(dir, fmt.Sprintf("%02d_%s", i, filepath.Base(u)))
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return playlist, files
}

// TestRecordingOverSession drives a real session (pion client, libx264
// live encoder) with recording on: the descriptor, the clip messages and
// their order, the playlist and segments over HTTP read back by FFmpeg's
// demuxer, the error statuses, and the recording after the session ends.
func TestRecordingOverSession(t *testing.T) {
	ts, _ := newRecordingServer(t, 1, true)
	rid := record.NewID()
	code, body := ts.do(t, "POST", "/start_session", map[string]any{"session_id": rid}, apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d struct {
		descriptor
		Recording struct {
			Enabled      bool `json:"enabled"`
			ChunkSeconds int  `json:"chunk_seconds"`
		} `json:"recording"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if !d.Recording.Enabled || d.Recording.ChunkSeconds != 1 {
		t.Fatalf("descriptor recording %+v", d.Recording)
	}
	rec := ts.srv.currentSession().ws.Recorder()
	if rec.ID() != rid {
		t.Fatalf("recording id %s, want the start body's %s", rec.ID(), rid)
	}
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	eventually(t, 15*time.Second, "3.5 s of recorded media", func() bool { return rec.Now() >= 3500*time.Millisecond })

	// Back to back on one connection: one reply each, in order.
	sent := time.Now().UnixMilli()
	requestClip(c, map[string]any{"duration_seconds": 2})
	requestClip(c, map[string]any{"duration_seconds": 0})
	requestRecording(c)
	requestClip(c, map[string]any{})
	requestClip(c, map[string]any{"duration_seconds": 100000})
	typ, snap := clipReply(t, c)
	if typ != "clipReady" || snap["kind"] != "snap" || snap["session_id"] != rid {
		t.Fatalf("first reply %s %v", typ, snap)
	}
	start, end, now := snap["start_marker"].(float64), snap["end_marker"].(float64), snap["now_marker"].(float64)
	if end != now || math.Abs(end-start-2) > 0.001 || int64(snap["predicted_ready_at_ms"].(float64)) <= sent {
		t.Fatalf("snap markers %v", snap)
	}
	if want := fmt.Sprintf("/clips?session_id=%s&start=%.3f&end=%.3f", rid, start, end); snap["playlist_url"] != want {
		t.Fatalf("playlist_url %v, want %s", snap["playlist_url"], want)
	}
	for i, want := range []string{"clipFailed", "clipReady", "clipFailed", "clipReady"} {
		typ, data := clipReply(t, c)
		if typ != want {
			t.Fatalf("reply %d: %s %v, want %s", i+2, typ, data, want)
		}
		switch i {
		case 0, 2:
			if data["reason"] != "duration_seconds must be positive" {
				t.Fatalf("reason %v", data["reason"])
			}
		case 1:
			if data["kind"] != "recording" || data["start_marker"] != 0.0 {
				t.Fatalf("recording %v", data)
			}
		case 3:
			if got := data["end_marker"].(float64) - data["start_marker"].(float64); math.Abs(got-data["now_marker"].(float64)) > 0.001 {
				t.Fatalf("capped clip %v", data)
			}
		}
	}

	dir := t.TempDir()
	playlist, files := fetchClip(t, ts.URL, snap["playlist_url"].(string), dir)
	ffprobeClip(t, playlist, files)
	// A real-time model's clip is ready within 2 s of the prediction.
	if late := time.Now().UnixMilli() - int64(snap["predicted_ready_at_ms"].(float64)); late > 2000 {
		t.Errorf("playlist ready %d ms after predicted_ready_at_ms, want at most 2000", late)
	}
	for _, seg := range files[1:] {
		st, err := recordtest.Probe(files[0], seg)
		if err != nil || !st.FirstKey || st.Codec != "h264" {
			t.Fatalf("segment %s: %+v %v", seg, st, err)
		}
	}
	all, err := recordtest.Probe(files...)
	if err != nil {
		t.Fatal(err)
	}
	// The test model has no audio output: the recording's AAC track is
	// silence, as long as the video (to within two AAC packets).
	if want := float64(len(files) - 1); all.Streams != 2 || all.Codec != "h264" || all.Audio != "aac" || all.Width != testW || math.Abs(all.Duration-want) > 0.05 {
		t.Fatalf("clip: %+v, want a %dx%d h264 stream of %.0f s and an aac one", all, testW, testH, want)
	}
	if d := all.AudioDuration - all.Duration; math.Abs(d) > 2*1024.0/record.AudioRate {
		t.Fatalf("clip: audio %.3f s, video %.3f s, want the same length", all.AudioDuration, all.Duration)
	}

	// Error statuses, with no session needed.
	for _, c := range []struct {
		path string
		code int
	}{
		{"/clips?session_id=" + rid + "&start=-1&end=4", 400},
		{"/clips?session_id=" + rid + "&start=4&end=4", 400},
		{"/clips?session_id=not-a-uuid&start=-1&end=4", 410},
		{"/clips?session_id=" + record.NewID() + "&start=0&end=4", 410},
		{"/clips?session_id=" + rid + "&start=0", 422},
		{"/clips?session_id=" + rid + "&start=x&end=4", 422},
		{"/clips/chunks/" + rid + "/secrets.txt", 404},
		{"/clips/chunks/" + rid + "/chunk_7.m4s", 404},
		{"/clips/chunks/" + rid + "/chunk_99999.m4s", 404},
		{"/clips/chunks/" + rid + "/" + url.PathEscape("../../etc/passwd"), 404},
		{"/clips/chunks/" + record.NewID() + "/init.mp4", 410},
		{"/clips/chunks/not-a-uuid/init.mp4", 410},
	} {
		resp, body := clipGet(t, ts.URL, c.path)
		if resp.StatusCode != c.code || !strings.Contains(string(body), `"detail"`) {
			t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
		}
	}

	// The session's stats carry the recorder's.
	var rs *record.Stats
	for _, st := range ts.eng.Stats() {
		if st.ID == d.SessionID {
			rs = st.Recording
		}
	}
	if rs == nil || rs.ID != rid || rs.Segments < 3 || rs.Media < 3*time.Second || rs.Disabled != "" {
		t.Fatalf("recording stats %+v", rs)
	}

	// After the stop, the whole recording is served (its last segment
	// closed by completion), labelled with its true duration.
	requestRecording(c)
	_, whole := clipReply(t, c)
	c.Close()
	if code, body := ts.do(t, "POST", "/stop_session", nil, apiHdr); code != 200 {
		t.Fatalf("stop_session: %d %s", code, body)
	}
	playlist, files = fetchClip(t, ts.URL, whole["playlist_url"].(string), t.TempDir())
	if p := ffprobeClip(t, playlist, files); p.Video < whole["end_marker"].(float64)-0.001 {
		t.Fatalf("ffprobe: the whole recording lasts %.3f s, want at least %v", p.Video, whole["end_marker"])
	}
	all, err = recordtest.Probe(files...)
	if err != nil {
		t.Fatal(err)
	}
	if all.Duration < whole["end_marker"].(float64)-0.001 || !all.FirstKey {
		t.Fatalf("whole recording %+v, want at least %v s", all, whole["end_marker"])
	}
	if rec.Dropped() != 0 {
		t.Errorf("recorder dropped %d access units", rec.Dropped())
	}
}

// ffprobeClip reads a downloaded clip (its /clips playlist and files)
// with build/ffmpeg/bin/ffprobe's hls demuxer, a reader outside our code:
// one H.264 stream and one AAC stream, the video as long as the
// playlist's #EXTINF durations say, the audio as long as the video, and
// every segment starting with a keyframe, the audio starting with the
// video. A missing ffprobe fails the
// test under FRAMEWIRE_E2E=1 (make test), and skips it otherwise.
func ffprobeClip(t *testing.T, playlist string, files []string) recordtest.Probed {
	t.Helper()
	p, err := recordtest.FFprobeHLS(playlist, files)
	if errors.Is(err, fs.ErrNotExist) && os.Getenv("FRAMEWIRE_E2E") == "" {
		t.Skipf("no ffprobe: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var listed float64
	for _, d := range p.Segments {
		listed += d
	}
	if len(p.Streams) != 2 || p.Streams[0] != "video:h264" || p.Streams[1] != "audio:aac" {
		t.Fatalf("ffprobe streams %v, want video:h264 and audio:aac", p.Streams)
	}
	if len(p.Segments) != len(files)-1 || math.Abs(p.Video-listed) > 0.001 || math.Abs(p.Audio-p.Video) > 2*1024.0/record.AudioRate {
		t.Fatalf("ffprobe: %d segments listing %.3f s; video %.3f s, audio %.3f s; want the video as listed and the audio as long", len(p.Segments), listed, p.Video, p.Audio)
	}
	// Audio starts with the video (the audio track's edit list skips the
	// AAC encoder's priming): from the recording's start, to within a
	// quarter AAC packet. A later segment's audio begins with the packet
	// that straddles its keyframe, less than a packet before it; FFmpeg's
	// demuxer then skips that first packet's samples too (it applies the
	// edit list's priming skip to whichever packet comes first; a player
	// with MSE does not), so ffprobe says up to one packet after.
	quarter, packet := 256.0/record.AudioRate, 1024.0/record.AudioRate
	if p.VideoStart < 0.0005 && math.Abs(p.AudioStart-p.VideoStart) > quarter ||
		p.VideoStart >= 0.0005 && (p.AudioStart < p.VideoStart-quarter || p.AudioStart > p.VideoStart+packet+quarter) {
		t.Fatalf("ffprobe: audio starts at %.4f s, video at %.4f s; want them together", p.AudioStart, p.VideoStart)
	}
	t.Logf("ffprobe: %+v", p)
	for k, key := range p.SegmentKeys {
		if !key {
			t.Fatalf("ffprobe: segment %d of %d does not start with a keyframe", k, len(p.SegmentKeys))
		}
	}
	return p
}

// TestRecordingOff: recording disabled in the config refuses clips with
// the runtime's reason, and the descriptor says so.
func TestRecordingOff(t *testing.T) {
	ts, _ := newRecordingServer(t, 4, false)
	code, body := ts.do(t, "POST", "/start_session", "{}", apiHdr)
	if code != 200 || !strings.Contains(string(body), `"recording":{"chunk_seconds":4,"enabled":false}`) {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	_ = json.Unmarshal(body, &d)
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()
	requestClip(c, map[string]any{"duration_seconds": 10})
	requestRecording(c)
	for range 2 {
		if typ, data := clipReply(t, c); typ != "clipFailed" || data["reason"] != "recorder disabled or encoder crashed" {
			t.Fatalf("%s %v", typ, data)
		}
	}
	c.Close()
}

// TestRecordingIDReplaced: a start body session_id that is not a
// lowercase UUID is replaced by a fresh id, different from the transport
// session's.
func TestRecordingIDReplaced(t *testing.T) {
	ts, _ := newRecordingServer(t, 4, true)
	code, body := ts.do(t, "POST", "/start_session", map[string]any{"session_id": "../../NOT-A-UUID"}, apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	_ = json.Unmarshal(body, &d)
	id := ts.srv.currentSession().ws.Recorder().ID()
	if !record.ValidID(id) || id == d.SessionID {
		t.Fatalf("recording id %q (transport session %q)", id, d.SessionID)
	}
}

// TestRecordingAcrossReconnect: the recording belongs to the session, not
// to a viewer: it goes on while the session is orphaned and after a PUT
// reconnect, one recording whose markers keep running, and the new
// connection's clips come from it.
func TestRecordingAcrossReconnect(t *testing.T) {
	ts, _ := newRecordingServer(t, 1, true)
	d, c := ts.connectClient(t)
	rec := ts.srv.currentSession().ws.Recorder()
	eventually(t, 10*time.Second, "1 s recorded", func() bool { return rec.Now() >= time.Second })
	c.PC.Close()
	eventually(t, 5*time.Second, "orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })
	orphaned := rec.Now()
	eventually(t, 10*time.Second, "recording while orphaned", func() bool { return rec.Now() >= orphaned+500*time.Millisecond })
	c2 := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "PUT")
	c2.WaitReady()
	before := rec.Now()
	requestRecording(c2)
	typ, data := clipReply(t, c2)
	if typ != "clipReady" || data["session_id"] != rec.ID() || data["now_marker"].(float64) < before.Seconds() {
		t.Fatalf("after reconnect: %s %v (recorded %v before asking)", typ, data, before)
	}
	if ts.srv.currentSession().ws.Recorder() != rec {
		t.Fatal("the reconnect started another recording")
	}
	c2.Close()
}

// TestRecordingVP8: an output that negotiated VP8 cannot be muxed as
// H.264; the recording is disabled for the session, and clip requests
// get the runtime's reason.
func TestRecordingVP8(t *testing.T) {
	ts, _ := newRecordingServer(t, 1, true)
	ts.client.VP8Only = true
	_, c := ts.connectClient(t)
	c.WaitFrames(3, 5*time.Second)
	requestClip(c, map[string]any{"duration_seconds": 1})
	if typ, data := clipReply(t, c); typ != "clipFailed" || data["reason"] != "recorder disabled or encoder crashed" {
		t.Fatalf("%s %v", typ, data)
	}
	if err := ts.srv.currentSession().ws.Recorder().Err(); err == nil || !strings.Contains(err.Error(), "VP8") {
		t.Fatalf("recorder error %v, want one naming VP8", err)
	}
	c.Close()
}

// TestRecordingURLPrefix: behind a public URL with a path prefix, the
// clip's playlist_url and the playlist's URLs are absolute and keep the
// prefix (a leading-slash path would lose it in the SDKs).
func TestRecordingURLPrefix(t *testing.T) {
	const pub = "https://models.example.com/reactor"
	ts, _ := newRecordingServer(t, 1, true, func(c *Config) { c.PublicURL = pub + "/" })
	_, c := ts.connectClient(t)
	rec := ts.srv.currentSession().ws.Recorder()
	eventually(t, 10*time.Second, "1.2 s recorded", func() bool { return rec.Now() >= 1200*time.Millisecond })
	requestClip(c, map[string]any{"duration_seconds": 1})
	typ, data := clipReply(t, c)
	u, _ := data["playlist_url"].(string)
	if typ != "clipReady" || !strings.HasPrefix(u, pub+"/clips?session_id="+rec.ID()+"&start=") {
		t.Fatalf("%s %v", typ, data)
	}
	c.Close()
	rel := strings.TrimPrefix(u, pub)
	eventually(t, 10*time.Second, "playlist ready", func() bool {
		resp, _ := clipGet(t, ts.URL, rel)
		return resp.StatusCode == 200
	})
	_, body := clipGet(t, ts.URL, rel)
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(l, "#EXT-X-MAP:") && !strings.Contains(l, `URI="`+pub+"/clips/chunks/") ||
			!strings.HasPrefix(l, "#") && !strings.HasPrefix(l, pub+"/clips/chunks/"+rec.ID()+"/chunk_") {
			t.Fatalf("playlist line %q without the prefix:\n%s", l, body)
		}
	}
}

// streamJournal reads GET /events?since=0 as SSE on a goroutine the test
// owns (ended and waited at cleanup) and hands each event on.
func streamJournal(t *testing.T, base string) <-chan journalMsg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events?since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan journalMsg, 4096)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var cur journalMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				fmt.Sscan(line[4:], &cur.id)
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &cur.journalEvent); err != nil {
					t.Errorf("journal data %s: %v", line, err)
				}
			case line == "":
				select {
				case out <- cur:
				case <-ctx.Done():
					return
				}
				cur = journalMsg{}
			}
		}
	}()
	return out
}

// nextFact waits for the next journal event named one of names.
func nextFact(t *testing.T, ev <-chan journalMsg, names ...string) journalMsg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-ev:
			if slices.Contains(names, m.Event) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %v in the journal within 10s", names)
		}
	}
}

// Item 43 over a real session (libx264 live encoder, the real recorder
// writing real files): chunk_ready idx −1, 0, 1, … each once and in
// order, the last one after the stop; one clip_ready after a clipReady,
// once its playlist is ready, with the clipReady's fields.
func TestJournalRecordingFacts(t *testing.T) {
	ts, store := newRecordingServer(t, 1, true)
	ev := streamJournal(t, ts.URL)
	rid := record.NewID()
	code, body := ts.do(t, "POST", "/start_session", map[string]any{"session_id": rid}, apiHdr)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "POST")
	c.WaitReady()

	next := -1 // the idx the next chunk_ready must carry
	chunk := func(m journalMsg) {
		t.Helper()
		idx, ok := m.Detail["idx"].(float64)
		if !ok || m.Detail["recording_id"] != rid || len(m.Detail) != 2 || m.From != m.To {
			t.Fatalf("chunk_ready %+v; want a self-loop with recording_id %s and idx", m, rid)
		}
		if int(idx) != next {
			t.Fatalf("chunk_ready idx %v; want %d (−1, 0, 1, … each once)", idx, next)
		}
		next++
	}
	for next < 2 { // init.mp4, chunk 0 and 1
		chunk(nextFact(t, ev, "chunk_ready", "clip_ready"))
	}

	requestClip(c, map[string]any{"duration_seconds": 1})
	typ, clip := clipReply(t, c)
	if typ != "clipReady" {
		t.Fatalf("reply %s %v", typ, clip)
	}
	last := int(math.Ceil(clip["end_marker"].(float64))) - 1 // its boundary segment (cs 1)
	for {
		m := nextFact(t, ev, "chunk_ready", "clip_ready")
		if m.Event == "chunk_ready" {
			chunk(m)
			continue
		}
		if next <= last {
			t.Fatalf("clip_ready before its boundary segment %d closed (closed up to %d)", last, next-1)
		}
		if len(m.Detail) != len(clip) {
			t.Fatalf("clip_ready detail %v; want the clipReady fields %v", m.Detail, clip)
		}
		for k, v := range clip {
			if m.Detail[k] != v {
				t.Fatalf("clip_ready %s = %v; clipReady said %v", k, m.Detail[k], v)
			}
		}
		// Ready means ready: the playlist answers 200 at once.
		if resp, body := clipGet(t, ts.URL, clip["playlist_url"].(string)); resp.StatusCode != http.StatusOK {
			t.Fatalf("playlist after clip_ready: %d %s", resp.StatusCode, body)
		}
		break
	}

	// The stop closes the open segment: its chunk_ready comes after.
	c.Close()
	before := next
	stopAt := time.Now().UnixMilli()
	if code, body := ts.do(t, "POST", "/stop_session", nil, apiHdr); code != 200 {
		t.Fatalf("stop_session: %d %s", code, body)
	}
	files, err := filepath.Glob(filepath.Join(store.Dir(), rid, "chunk_*.m4s"))
	if err != nil || len(files) == 0 {
		t.Fatalf("recorded segments %v %v", files, err)
	}
	final := len(files) - 1
	for i, f := range files { // numbered from 0 without holes
		if filepath.Base(f) != fmt.Sprintf("chunk_%05d.m4s", i) {
			t.Fatalf("segments on disk %v", files)
		}
	}
	if final < before {
		t.Fatalf("the stop closed no segment: %d on disk, %d told before", len(files), before)
	}
	for next <= final {
		m := nextFact(t, ev, "chunk_ready", "clip_ready")
		chunk(m)
		if next > final && (m.TS < stopAt || m.To != "closing") {
			t.Fatalf("last chunk_ready %+v; want it at the stop (ts >= %d, state closing)", m, stopAt)
		}
	}
	// Nothing more: a repeat would come before the next session's start.
	if code, body := ts.do(t, "POST", "/start_session", nil, apiHdr); code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	if m := nextFact(t, ev, "chunk_ready", "clip_ready", "start_session"); m.Event != "start_session" {
		t.Fatalf("after the stop: %+v; want no more recording facts", m)
	}
}
