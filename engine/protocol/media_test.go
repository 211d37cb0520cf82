package protocol

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
)

// The GCC estimate reaches the encoder: with the estimator started at
// 1 Mbit/s and capped at 1.2 Mbit/s, the pipeline's target (2.5 Mbit/s
// before any estimate) moves into that range, and the peer reports the
// same estimate.
func TestAdapterCongestionControlSetsEncoderBitrate(t *testing.T) {
	cfg := testConfig()
	cfg.PingTimeout = time.Minute
	cfg.Peer.StartBitrate, cfg.Peer.MinBitrate, cfg.Peer.MaxBitrate = 1_000_000, 300_000, 1_200_000
	ts := newTestServer(t, cfg)
	_, c := ts.connectClient(t)
	c.WaitFrames(5, 5*time.Second)
	if got := ts.eng.videoStats(t).TargetBitrate; got != 2_500_000 && (got < 300_000 || got > 1_200_000) {
		t.Fatalf("target bitrate %d: neither the initial 2.5 Mbit/s nor an estimate", got)
	}
	eventually(t, 5*time.Second, "encoder target set from the GCC estimate", func() bool {
		b := ts.eng.videoStats(t).TargetBitrate
		return b >= 300_000 && b <= 1_200_000
	})
	cur := ts.srv.currentSession()
	if cur == nil {
		t.Fatal("no session")
	}
	p := cur.currentPeer()
	if p == nil {
		t.Fatal("no peer")
	}
	if est := p.Stats().TargetBitrate; est < 300_000 || est > 1_200_000 {
		t.Errorf("peer's estimate %d outside [300k, 1.2M]", est)
	}
}

// A reconnect whose offer drops H.264 restarts main_video's pipeline in
// VP8 instead of refusing the offer; the model session (its state) is the
// same one.
func TestAdapterReconnectWithOtherCodecRestartsOutput(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d, c := ts.connectClient(t)
	c.WaitFrames(3, 5*time.Second)
	if b := ts.eng.videoStats(t).Backend; b != string(ts.eng.Backend()) {
		t.Fatalf("first pipeline runs %q, want the probed %q", b, ts.eng.Backend())
	}
	c.Command("set_color", map[string]any{"level": 200, "label": "red"}, nil)
	c.Expect("application", "color_set", 3*time.Second)
	c.PC.Close()
	eventually(t, 5*time.Second, "orphaned", func() bool { return ts.srv.Stats().State == "orphaned" })

	ts.client = clientOptions{VP8Only: true}
	c2 := ts.dial(t, d.SessionID, d.Capabilities.Tracks, "PUT")
	c2.WaitReady()
	c2.WaitFrames(10, 5*time.Second)
	var mime string
	for _, tr := range c2.PC.GetTransceivers() {
		if r := tr.Receiver(); r != nil && r.Track() != nil {
			mime = r.Track().Codec().MimeType
		}
	}
	if mime != webrtc.MimeTypeVP8 {
		t.Errorf("reconnected client receives %q, want VP8", mime)
	}
	if b := ts.eng.videoStats(t).Backend; b != string(encode.BackendVP8) {
		t.Errorf("pipeline after the reconnect runs %q, want %q", b, encode.BackendVP8)
	}
	if l := c2.LastLuma.Load(); l < 180 {
		t.Errorf("luma %d after reconnect: the model's state did not survive", l)
	}
	if ts.eng.started() != 1 || ts.eng.last().stopped() {
		t.Error("the codec change started a new model session")
	}
	if n := len(ts.eng.Stats()); n != 1 {
		t.Errorf("%d sessions in Stats, want 1", n)
	}
}

// An input offered sendrecv ahead of the output does not capture the
// output's track: main_video still goes to its own mid.
func TestAdapterSendrecvInputBeforeOutput(t *testing.T) {
	ts := newTestServer(t, testConfig())
	ts.client = clientOptions{SendrecvInputs: true}
	d := ts.start(t)
	caps := d.Capabilities.Tracks
	c := ts.dial(t, d.SessionID, []engine.TrackCap{caps[1], caps[0]}, "POST") // webcam first
	c.WaitReady()
	c.WaitFrames(10, 5*time.Second)
	for _, tr := range c.PC.GetTransceivers() {
		if tr == c.Transceivers["webcam"] && tr.Receiver() != nil && tr.Receiver().Track() != nil {
			t.Error("the model's output arrived on the webcam's m-section")
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	c.PublishWebcam("webcam", 160, 120, stop)
	s := ts.eng.last()
	eventually(t, 5*time.Second, "webcam frames delivered to the model", func() bool { return s.webcamN() > 5 })
	in := ts.eng.Stats()[0].Inputs
	if len(in) != 1 || in[0].Name != "webcam" || in[0].Decoder != "cpu" || in[0].Pictures < 5 || in[0].Samples < in[0].Pictures {
		t.Errorf("input stats %+v; want webcam decoded on the CPU, samples >= pictures >= 5", in)
	}
}

// Stats reports the running session: its pipeline and its tracks.
func TestAdapterStats(t *testing.T) {
	ts := newTestServer(t, testConfig())
	d, c := ts.connectClient(t)
	c.WaitFrames(10, 5*time.Second)
	st := ts.eng.Stats()
	if len(st) != 1 || st[0].ID != d.SessionID {
		t.Fatalf("stats %+v, want the one session %s", st, d.SessionID)
	}
	v := st[0].Video
	if len(v) != 1 || v[0].Track != "main_video" || v[0].Sent == 0 || v[0].Emitted == 0 || v[0].Backend == "" {
		t.Errorf("video stats %+v", v)
	}
	if _, ok := st[0].Engine.Tracks["webcam"]; !ok {
		t.Errorf("engine stats lack the webcam track: %+v", st[0].Engine)
	}
	if code, body := ts.do(t, "POST", "/stop_session", "{}", apiHdr); code != 200 {
		t.Fatalf("stop_session: %d %s", code, body)
	}
	eventually(t, 5*time.Second, "stats empty after the session stopped", func() bool { return len(ts.eng.Stats()) == 0 })
}
