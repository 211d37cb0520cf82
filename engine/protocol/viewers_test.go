package protocol

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// viewerModel draws w×h grey frames at 30 fps and tells its clients apart:
// it records its client hooks, greets each client from its connected
// hook, answers "whoami" to the sender only and "shout" to everyone.
type viewerModel struct {
	w, h   int
	events chan string // "connected 1001 1", "disconnected 4821 1"
}

func (m *viewerModel) RunSession(ctx context.Context, s *engine.Session) error {
	out, err := s.VideoOut("main_video")
	if err != nil {
		return err
	}
	img := make([]byte, m.w*m.h*3)
	for i := range img {
		img[i] = 100
	}
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := out.Emit(img, m.h, m.w, 3); err != nil {
			return nil
		}
	}
}

func (m *viewerModel) ClientConnected(s *engine.Session, c engine.ClientEvent) {
	m.events <- fmt.Sprintf("connected %d %d", c.ID, c.Live)
	_ = s.SendTo(c.ID, map[string]any{"type": "welcome", "id": c.ID, "client": s.Client()})
}

func (m *viewerModel) ClientDisconnected(_ *engine.Session, c engine.ClientEvent) {
	m.events <- fmt.Sprintf("disconnected %d %d", c.ID, c.Live)
}

type noArgs struct{}

func (m *viewerModel) declaration() engine.Model {
	return engine.Model{
		Name:   "viewers",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30)), tracks.VideoInput("webcam")},
		Commands: []engine.CommandDef{
			engine.Command("whoami", "", func(s *engine.Session, _ noArgs) error {
				return s.Reply(map[string]any{"type": "you", "id": s.Client()})
			}),
			engine.Command("shout", "", func(s *engine.Session, _ noArgs) error {
				return s.Send(map[string]any{"type": "shout", "from": s.Client()})
			}),
			engine.Command("fail", "", func(s *engine.Session, _ noArgs) error {
				return errors.New("failed on purpose")
			}),
		},
		New: func(engine.Config) (engine.Runner, error) { return m, nil },
	}
}

type viewerServer struct {
	*httptest.Server
	srv   *Server
	w     *wiring.Wiring
	model *viewerModel
}

// webcamWH is the size of the model's latest "webcam" frame as W<<16 |
// H, 0 before any frame or session.
func (vs *viewerServer) webcamWH() int {
	in, err := vs.srv.currentSession().es.VideoIn("webcam")
	if err != nil {
		return 0
	}
	f := in.Latest()
	if f == nil {
		return 0
	}
	return f.Width<<16 | f.Height
}

func newViewerServer(t testing.TB, w, h int, cfg Config) *viewerServer {
	t.Helper()
	m := &viewerModel{w: w, h: h, events: make(chan string, 256)}
	eng, err := engine.New(m.declaration())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	wr, err := wiring.New(eng, wiring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(wr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return &viewerServer{Server: hs, srv: srv, w: wr, model: m}
}

// register calls POST …/connections and returns the minted id.
func (vs *viewerServer) register(t testing.TB, sid string) int {
	t.Helper()
	code, body := enginetest.Do(t, vs.URL, "POST", "/sessions/"+sid+"/transport/webrtc/connections", nil, rtcHdr)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s; want 201", code, body)
	}
	var r struct {
		ID       int                       `json:"connection_id"`
		TrackMap map[string]map[string]any `json:"track_map"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.ID < 1002 || r.ID > 9999 {
		t.Fatalf("minted id %d outside 1002–9999", r.ID)
	}
	if tm := r.TrackMap["main_video"]; tm["kind"] != "video" || tm["direction"] != "out" {
		t.Fatalf("track_map %v; want main_video video/out", r.TrackMap)
	}
	if _, ok := r.TrackMap["webcam"]["rate"].(float64); !ok || r.TrackMap["webcam"]["direction"] != "in" {
		t.Fatalf("track_map %v; want webcam in, with a numeric rate", r.TrackMap)
	}
	return r.ID
}

// expectEvent waits for the model hook event want.
func (vs *viewerServer) expectEvent(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-vs.model.events:
			if got == want {
				return
			}
			t.Fatalf("model hook %q; want %q", got, want)
		case <-deadline:
			t.Fatalf("no model hook %q within 10 s", want)
		}
	}
}

// expectMsg waits for an application message of type typ on c.
func expectMsg(t testing.TB, c *enginetest.Client, typ string) map[string]any {
	t.Helper()
	m := c.Expect("application", typ, 10*time.Second)
	return m
}

// noMsg asserts that c gets no application message of type typ within d.
func noMsg(t testing.TB, c *enginetest.Client, typ string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-c.Msgs:
			if data, _ := m["data"].(map[string]any); m["scope"] == "application" && data["type"] == typ {
				t.Fatalf("client got %v; it was meant for another client", m)
			}
		case <-deadline:
			return
		}
	}
}

// Items 21–23, 27–30, 35–37: an SDK 2.9.0 client (connection 1001) and a
// viewer on the connection routes share one session and one encode.
func TestViewersShareOneSession(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	// 22: no session → 400.
	if code, _ := enginetest.Do(t, vs.URL, "POST", "/sessions/x/transport/webrtc/connections", nil, rtcHdr); code != http.StatusBadRequest {
		t.Fatalf("register without a session: %d; want 400", code)
	}
	d, legacy := enginetest.Connect(t, vs.URL, clientOptions{})
	vs.expectEvent(t, "connected 1001 1")
	if m := expectMsg(t, legacy, "welcome"); m["id"] != 1001.0 || m["client"] != 1001.0 {
		t.Fatalf("welcome %v; want id and Client 1001", m)
	}
	if code, _ := enginetest.Do(t, vs.URL, "POST", "/sessions/nope/transport/webrtc/connections", nil, rtcHdr); code != http.StatusNotFound {
		t.Fatalf("register on a wrong sid: %d; want 404", code)
	}
	// 21: distinct ids, never 1001.
	id := vs.register(t, d.SessionID)
	if id2 := vs.register(t, d.SessionID); id2 == id {
		t.Fatalf("two registrations gave the same id %d", id)
	}
	viewer := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "POST", clientOptions{ConnectionID: id})
	viewer.WaitReady()
	vs.expectEvent(t, fmt.Sprintf("connected %d 2", id))
	expectMsg(t, viewer, "welcome")
	// 27: both receive main_video; the joining viewer's first access unit
	// is a keyframe (the join asks for one).
	legacy.WaitFrames(legacy.Frames.Load()+10, 10*time.Second)
	viewer.WaitFrames(10, 10*time.Second)
	if viewer.FirstKey.Load() != 1 {
		t.Error("the joining viewer's first access unit was not a keyframe")
	}
	// One encoder for both.
	if n := videoPipelines(vs, d.SessionID); n != 1 {
		t.Fatalf("%d video pipelines for two viewers; want 1", n)
	}
	// 29: send reaches everyone; a reply reaches only its sender.
	viewer.Command("whoami", map[string]any{}, nil)
	if m := expectMsg(t, viewer, "you"); m["id"] != float64(id) {
		t.Fatalf("reply %v; want id %d", m, id)
	}
	noMsg(t, legacy, "you", 500*time.Millisecond)
	viewer.Command("fail", map[string]any{}, nil)
	legacy.Command("shout", map[string]any{}, nil)
	for _, c := range []*enginetest.Client{legacy, viewer} {
		if m := expectMsg(t, c, "shout"); m["from"] != 1001.0 {
			t.Fatalf("shout %v; want from 1001", m)
		}
	}
	// 26: a re-offer on the viewer leaves the legacy client's media running.
	before := legacy.Frames.Load()
	viewer2 := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "PUT", clientOptions{ConnectionID: id})
	viewer.Close()
	viewer2.WaitReady()
	viewer2.WaitFrames(5, 10*time.Second)
	if viewer2.FirstKey.Load() != 1 {
		t.Error("the re-offered viewer's first access unit was not a keyframe")
	}
	legacy.WaitFrames(before+15, 10*time.Second)
	// 28: closing the viewer: disconnected with one left.
	viewer2.Close()
	vs.expectEvent(t, fmt.Sprintf("disconnected %d 1", id))
	// 37: stop_session ends the legacy connection too, with no disconnected hook.
	if code, body := enginetest.Do(t, vs.URL, "POST", "/stop_session", "{}", apiHdr); code != http.StatusOK {
		t.Fatalf("stop_session: %d %s", code, body)
	}
	legacy.Expect("runtime", "sessionEnded", 10*time.Second)
	// 39, 41, 42: the journal. Its cleanup_complete comes after the
	// session's teardown, so any hook the stop fired is queued by then.
	evs := readJournal(t, vs.URL, "?since=0", nil, "cleanup_complete")
	select {
	case ev := <-vs.model.events:
		t.Fatalf("hook %q after stop_session; want none", ev)
	default:
	}
	if evs[0].id != 1 || evs[0].Event != "initialization_success" || evs[0].From != "created" || evs[0].To != "ready" {
		t.Fatalf("first journal event %+v; want id 1 initialization_success created → ready", evs[0])
	}
	var order []string
	answered := map[int]bool{}
	for _, e := range evs {
		cid, _ := e.Detail["conn_id"].(float64)
		switch e.Event {
		case "connection_answered":
			answered[int(cid)] = true
		case "connection_opened":
			if !answered[int(cid)] {
				t.Errorf("connection_opened of %v before its connection_answered", cid)
			}
		}
		if e.TS < time.Now().Add(-time.Hour).UnixMilli() || e.TS > time.Now().UnixMilli() {
			t.Errorf("ts %d is not epoch milliseconds of now", e.TS)
		}
		order = append(order, fmt.Sprintf("%s %s→%s %v", e.Event, e.From, e.To, e.Detail["conn_id"]))
	}
	got := strings.Join(order, "\n")
	for _, want := range []string{
		"start_session ready→waiting <nil>",
		"connection_opened waiting→streaming 1001",
		fmt.Sprintf("connection_opened streaming→streaming %d", id),
		"command streaming→streaming 1001",
		fmt.Sprintf("command streaming→streaming %d", id),
		fmt.Sprintf("error streaming→streaming %d", id),
		fmt.Sprintf("connection_closed streaming→streaming %d", id),
		"stop_session streaming→closing <nil>",
		"cleanup_complete closing→ready <nil>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("journal lacks %q; it has:\n%s", want, got)
		}
	}
}

// videoPipelines counts the video pipelines session sid runs.
func videoPipelines(vs *viewerServer, sid string) int {
	for _, st := range vs.w.Stats() {
		if st.ID == sid {
			return len(st.Video)
		}
	}
	return -1
}

func sessionVideo(t testing.TB, vs *viewerServer, sid string) pipeline.VideoStats {
	t.Helper()
	for _, st := range vs.w.Stats() {
		if st.ID == sid && len(st.Video) == 1 {
			return st.Video[0]
		}
	}
	t.Fatal("no single video pipeline")
	return pipeline.VideoStats{}
}

type journalMsg struct {
	id int
	journalEvent
}

// readJournal reads GET /events+query until an event named until.
func readJournal(t testing.TB, base, query string, hdr map[string]string, until string) []journalMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []journalMsg
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var cur journalMsg
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			fmt.Sscan(line[4:], &cur.id)
		case strings.HasPrefix(line, "data: "):
			var raw map[string]any
			if err := json.Unmarshal([]byte(line[6:]), &raw); err != nil || len(raw) != 6 {
				t.Fatalf("journal data %s: want an object with exactly six keys", line)
			}
			_ = json.Unmarshal([]byte(line[6:]), &cur.journalEvent)
		case strings.HasPrefix(line, ":"):
		case line == "":
			out = append(out, cur)
			if cur.Event == until {
				return out
			}
			cur = journalMsg{}
		default:
			t.Fatalf("journal line %q: want only id: and data:", line)
		}
	}
	t.Fatalf("journal ended before %s: %v (%v)", until, out, sc.Err())
	return nil
}

// Item 40: since and Last-Event-ID resume strictly after N; since wins.
func TestJournalResume(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	enginetest.Start(t, vs.URL)
	all := readJournal(t, vs.URL, "?since=0", nil, "start_session")
	if len(all) != 2 || all[1].id != 2 {
		t.Fatalf("journal %+v; want initialization_success then start_session", all)
	}
	if got := readJournal(t, vs.URL, "?since=1", nil, "start_session"); got[0].id != 2 {
		t.Fatalf("since=1 starts at %d; want 2", got[0].id)
	}
	if got := readJournal(t, vs.URL, "", map[string]string{"Last-Event-ID": "1"}, "start_session"); got[0].id != 2 {
		t.Fatalf("Last-Event-ID 1 starts at %d; want 2", got[0].id)
	}
	if got := readJournal(t, vs.URL, "?since=0", map[string]string{"Last-Event-ID": "1"}, "start_session"); got[0].id != 1 {
		t.Fatalf("since=0 with Last-Event-ID 1 starts at %d; want 1 (since wins)", got[0].id)
	}
	if code, _ := enginetest.Do(t, vs.URL, "GET", "/events?since=x", nil, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("since=x: %d; want 422", code)
	}
}

// Items 24, 25, 31: a trickle-only viewer connects; the cap refuses a new
// id with 503 and admits a re-offer; a data-only viewer gets messages and
// no media; a bad cid is 422/400.
func TestConnectionCapTrickleAndDataOnly(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 2
	vs := newViewerServer(t, testW, testH, cfg)
	d, legacy := enginetest.Connect(t, vs.URL, clientOptions{})
	id := vs.register(t, d.SessionID)
	// 24: candidates posted before the offer are buffered.
	if code, body := enginetest.Do(t, vs.URL, "POST", fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/ice_candidates", d.SessionID, id), map[string]any{"candidates": []any{}, "is_final": false}, rtcHdr); code != http.StatusAccepted {
		t.Fatalf("early ice_candidates: %d %s", code, body)
	}
	dataOnly := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "POST", clientOptions{ConnectionID: id, Trickle: true, DataOnly: true})
	dataOnly.WaitReady()
	expectMsg(t, dataOnly, "welcome")
	legacy.Command("shout", map[string]any{}, nil)
	expectMsg(t, dataOnly, "shout")
	if n := dataOnly.Samples.Load(); n != 0 {
		t.Fatalf("data-only viewer received %d video samples", n)
	}
	// 25: the third connection is refused, a re-offer admitted.
	third := vs.register(t, d.SessionID)
	pc := newPC(t, clientOptions{})
	defer pc.Close()
	if _, err := pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := enginetest.Do(t, vs.URL, "POST", fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", d.SessionID, third), map[string]any{"sdp_offer": offer.SDP}, rtcHdr)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "Connection limit reached") {
		t.Fatalf("offer past the cap: %d %s; want 503 Connection limit reached", code, body)
	}
	if code, body := enginetest.Do(t, vs.URL, "PUT", fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", d.SessionID, id), map[string]any{"sdp_offer": offer.SDP, "ice_servers": []any{}}, rtcHdr); code != http.StatusAccepted {
		t.Fatalf("re-offer at the cap: %d %s; want 202", code, body)
	}
	if code, body := enginetest.Do(t, vs.URL, "PUT", fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", d.SessionID, id), map[string]any{"sdp_offer": offer.SDP, "ice_servers": []any{map[string]any{"uris": []string{}}}}, rtcHdr); code != http.StatusBadRequest {
		t.Fatalf("ice_servers without uris: %d %s; want 400", code, body)
	}
	for path, want := range map[string]int{"abc": 422, "1000": 400, "10000": 400} {
		if code, _ := enginetest.Do(t, vs.URL, "GET", "/sessions/"+d.SessionID+"/transport/webrtc/connections/"+path+"/sdp_params", nil, rtcHdr); code != want {
			t.Errorf("cid %s: %d; want %d", path, code, want)
		}
	}
}

// rtpViewer is a light viewer (no decoding): it counts the frames
// (distinct RTP timestamps) of main_video.
type rtpViewer struct {
	pc     *webrtc.PeerConnection
	frames atomic.Int64
	done   sync.WaitGroup
}

func dialRTPViewer(t testing.TB, base, sid string, cid int) *rtpViewer {
	t.Helper()
	v := &rtpViewer{pc: newPC(t, clientOptions{})}
	if _, err := v.pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	x, err := v.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	v.countFrames()
	offerMainVideo(t, base, sid, cid, v.pc, x)
	return v
}

// countFrames makes v count the frames of the track it receives, on a
// goroutine close waits for.
func (v *rtpViewer) countFrames() {
	v.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.done.Add(1)
		go func() {
			defer v.done.Done()
			var last uint32
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if p.Timestamp != last {
					last = p.Timestamp
					v.frames.Add(1)
				}
			}
		}()
	})
}

// gatheredOffer creates pc's offer, sets it and returns its SDP once
// candidate gathering is complete (every candidate in it).
func gatheredOffer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-g
	return pc.LocalDescription().SDP
}

// offerMainVideo offers pc on connection cid of session sid, its
// transceiver x receiving main_video, and sets the answer.
func offerMainVideo(t testing.TB, base, sid string, cid int, pc *webrtc.PeerConnection, x *webrtc.RTPTransceiver) {
	t.Helper()
	sdp := gatheredOffer(t, pc)
	route := fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", sid, cid)
	mapping := []peer.TrackMapping{{MID: x.Mid(), Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	if code, body := enginetest.Do(t, base, "POST", route, map[string]any{"sdp_offer": sdp, "track_mapping": mapping}, rtcHdr); code != http.StatusAccepted {
		t.Fatalf("offer: %d %s", code, body)
	}
	var answer string
	enginetest.Eventually(t, 10*time.Second, "an answer", func() bool {
		code, body := enginetest.Do(t, base, "GET", route, nil, rtcHdr)
		if code == http.StatusOK {
			var a struct {
				SDP string `json:"sdp_answer"`
				ID  int    `json:"connection_id"`
			}
			_ = json.Unmarshal(body, &a)
			if a.ID != cid {
				t.Fatalf("answer %s: want connection_id %d", body, cid)
			}
			answer = a.SDP
		}
		return answer != ""
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
}

func (v *rtpViewer) close() {
	_ = v.pc.Close()
	v.done.Wait()
}

// Twenty viewers on one 640×360 session: one encoder runs, and each
// viewer receives at least 95 % of the frames it sends.
func TestTwentyViewersOneEncode(t *testing.T) {
	if testing.Short() {
		t.Skip("twenty peers")
	}
	// The viewers send no data-channel message: a ping timeout shorter
	// than setting up twenty peers on a loaded machine would drop the
	// first ones before the measurement.
	cfg := testConfig()
	cfg.PingTimeout = time.Minute
	vs := newViewerServer(t, 640, 360, cfg)
	d := enginetest.Start(t, vs.URL)
	viewers := make([]*rtpViewer, 20)
	for i := range viewers {
		viewers[i] = dialRTPViewer(t, vs.URL, d.SessionID, vs.register(t, d.SessionID))
		defer viewers[i].close()
	}
	enginetest.Eventually(t, 15*time.Second, "every viewer receiving", func() bool {
		for _, v := range viewers {
			if v.frames.Load() < 5 {
				return false
			}
		}
		return true
	})
	s0 := sessionVideo(t, vs, d.SessionID)
	got0 := make([]int64, len(viewers))
	for i, v := range viewers {
		got0[i] = v.frames.Load()
	}
	enginetest.Eventually(t, 10*time.Second, "30 more frames sent", func() bool {
		return sessionVideo(t, vs, d.SessionID).Sent >= s0.Sent+30
	})
	s1 := sessionVideo(t, vs, d.SessionID)
	sent := int64(s1.Sent - s0.Sent)
	// Frames in flight when s1 was read arrive a little later.
	var short string
	defer func() {
		if t.Failed() && short != "" {
			t.Log(short)
		}
	}()
	enginetest.Eventually(t, 2*time.Second, "every viewer at 95 %", func() bool {
		for i, v := range viewers {
			if got := v.frames.Load() - got0[i]; float64(got) < 0.95*float64(sent) {
				short = fmt.Sprintf("viewer %d received %d of the %d frames sent", i, got, sent)
				return false
			}
		}
		return true
	})
	if n := videoPipelines(vs, d.SessionID); n != 1 {
		t.Fatalf("%d video pipelines for 20 viewers; want 1", n)
	}
	if enc := int64(s1.Encoded - s0.Encoded); enc > sent+2 {
		t.Fatalf("the encoder encoded %d frames while %d were sent: more than one encode per frame", enc, sent)
	}
	t.Logf("20 viewers: %d frames sent, keyframes %d", sent, s1.Keyframes)
}

// WHEP: a player without a data channel POSTs its offer, gets 201 with
// the answer and a Location, receives the session's video next to an SDK
// client, and leaves with DELETE.
func TestWHEPPlayer(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	d, legacy := enginetest.Connect(t, vs.URL, clientOptions{})
	// The client sees its data channel open before the server does: wait
	// for the server to count it, or the player may be counted first.
	vs.expectEvent(t, "connected 1001 1")
	v := &rtpViewer{pc: newPC(t, clientOptions{})}
	defer v.close()
	if _, err := v.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	v.countFrames()
	req, _ := http.NewRequest("POST", vs.URL+"/sessions/"+d.SessionID+"/whep", strings.NewReader(gatheredOffer(t, v.pc)))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/sdp" || !strings.HasPrefix(loc, "/sessions/"+d.SessionID+"/whep/") {
		t.Fatalf("WHEP POST: %d %q Location %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), loc, answer)
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 10*time.Second, "WHEP player receiving video", func() bool { return v.frames.Load() > 10 })
	var cid int
	fmt.Sscanf(loc[strings.LastIndex(loc, "/")+1:], "%d", &cid)
	vs.expectEvent(t, fmt.Sprintf("connected %d 2", cid))
	if code, body := enginetest.Do(t, vs.URL, "DELETE", loc, nil, nil); code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", loc, code, body)
	}
	vs.expectEvent(t, fmt.Sprintf("disconnected %d 1", cid))
	before := legacy.Frames.Load()
	legacy.WaitFrames(before+10, 10*time.Second)
	if code, _ := enginetest.Do(t, vs.URL, "DELETE", loc, nil, nil); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d; want 404", code)
	}
}

// Items 32, 33: a viewer silent past the ping timeout is closed while the
// pinging client goes on; of two viewers sending webcam, the model gets
// the first one's frames only.
func TestViewerPingTimeoutAndInputClaim(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	d, legacy := enginetest.Connect(t, vs.URL, clientOptions{})
	vs.expectEvent(t, "connected 1001 1")
	stop := make(chan struct{})
	defer close(stop)
	legacy.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				legacy.SendJSON(map[string]any{"scope": "runtime", "data": map[string]any{"type": "ping", "data": map[string]any{}}})
			}
		}
	})
	legacy.PublishWebcam("webcam", 160, 120, stop)
	enginetest.Eventually(t, 10*time.Second, "the first client's webcam at the model", func() bool { return vs.webcamWH() == 160<<16|120 })
	id := vs.register(t, d.SessionID)
	viewer := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "POST", clientOptions{ConnectionID: id})
	viewer.WaitReady()
	vs.expectEvent(t, fmt.Sprintf("connected %d 2", id))
	viewer.PublishWebcam("webcam", 320, 240, stop)
	viewer.WaitFrames(10, 10*time.Second)
	// The viewer's frames arrive at the server, but the model keeps the
	// first client's until the viewer drops (it sends no ping: 2 s).
	for range 10 {
		if wh := vs.webcamWH(); wh != 160<<16|120 {
			t.Fatalf("the model got a %dx%d webcam frame from the second viewer", wh>>16, wh&0xffff)
		}
		time.Sleep(50 * time.Millisecond) // sampling the model's latest frame over half a second, not synchronisation
	}
	vs.expectEvent(t, fmt.Sprintf("disconnected %d 1", id))
	before := legacy.Frames.Load()
	legacy.WaitFrames(before+10, 10*time.Second)
}

// A viewer that talks on its "control" channel only (as SDK ≥ 2.12 may)
// is alive: its frames count as pings past the ping timeout.
func TestControlChannelKeepsViewerAlive(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	d := enginetest.Start(t, vs.URL)
	id := vs.register(t, d.SessionID)
	viewer := enginetest.Dial(t, vs.URL, d.SessionID, d.Capabilities.Tracks, "POST", clientOptions{ConnectionID: id})
	viewer.WaitReady()
	vs.expectEvent(t, fmt.Sprintf("connected %d 1", id))
	ctl, err := viewer.PC.CreateDataChannel("control", nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	ctl.OnOpen(func() {
		viewer.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					_ = ctl.SendText(`{"type":"notification","event":"resume_track","data":{"name":"main_video"}}`)
				}
			}
		})
	})
	start := viewer.Frames.Load()
	viewer.WaitFrames(start+120, 15*time.Second) // 4 s at 30 fps: twice the ping timeout
	select {
	case ev := <-vs.model.events:
		t.Fatalf("hook %q while the viewer pinged on its control channel", ev)
	default:
	}
}

// A viewer whose offer cannot receive the codec the session's output
// already sends to others is refused with a clear 400; the driver's
// stream goes on (the output is not restarted in the viewer's codec).
func TestViewerCodecMismatchRefused(t *testing.T) {
	vs := newViewerServer(t, testW, testH, testConfig())
	d, legacy := enginetest.Connect(t, vs.URL, clientOptions{VP8Only: true})
	legacy.WaitFrames(5, 10*time.Second)
	id := vs.register(t, d.SessionID)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	x, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	mapping := []peer.TrackMapping{{MID: x.Mid(), Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	code, body := enginetest.Do(t, vs.URL, "POST", fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", d.SessionID, id), map[string]any{"sdp_offer": offer.SDP, "track_mapping": mapping}, rtcHdr)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "codec") {
		t.Fatalf("H.264-only viewer on a VP8 session: %d %s; want 400 naming the codec", code, body)
	}
	before := legacy.Frames.Load()
	legacy.WaitFrames(before+15, 10*time.Second)
}
