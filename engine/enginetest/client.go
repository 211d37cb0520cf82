package enginetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest/loopback"
	"github.com/framewire/framewire/engine/peer"
)

// The headers the SDK 2.9.0 sends on the session and transport routes.
var (
	APIHeaders = map[string]string{"Reactor-API-Version": "1", "Reactor-API-Accept-Version": "1", "Content-Type": "application/json"}
	RTCHeaders = map[string]string{"Authorization": "Bearer local", "Reactor-WebRTC-Version": "1.0", "Content-Type": "application/json"}
)

// Origin is the page origin Do sends, as a browser on a development
// server would.
const Origin = "http://localhost:5173"

// Do sends a request the way the SDK does (body: nil, a string, bytes, or
// a value to marshal) and returns the status and body. It fails the test
// when the response has no Access-Control-Allow-Origin.
func Do(t testing.TB, base, method, path string, body any, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("Origin", Origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("%s %s: response %d has no Access-Control-Allow-Origin", method, path, resp.StatusCode)
	}
	return resp.StatusCode, out
}

// Descriptor is the start_session reply.
type Descriptor struct {
	SessionID    string              `json:"session_id"`
	State        string              `json:"state"`
	Cluster      string              `json:"cluster"`
	Capabilities engine.Capabilities `json:"capabilities"`
}

// Start posts start_session to base and returns the reply.
func Start(t testing.TB, base string) Descriptor {
	t.Helper()
	code, body := Do(t, base, "POST", "/start_session", "{}", APIHeaders)
	if code != 200 {
		t.Fatalf("start_session: %d %s", code, body)
	}
	var d Descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// ClientOptions vary the client's offer.
type ClientOptions struct {
	// Token, when set, is the bearer token of every transport request (a
	// production-mode JWT); otherwise "local", as in local mode.
	Token          string
	VP8Only        bool // offer VP8 as the only video codec
	SendrecvInputs bool // offer input tracks as sendrecv, not sendonly
	// OnAudio, when set, reads each audio track the model sends instead of
	// the video decoding; it runs on the track's goroutine, which Close
	// waits for, and returns when reading fails.
	OnAudio func(remote *webrtc.TrackRemote)
	// SendMaxMessageSize, when set, replaces the answer's
	// a=max-message-size before it is applied, so the client sends
	// messages the server said it does not accept (a hostile client).
	SendMaxMessageSize int
	// ConnectionID, when set, offers on the connection routes
	// (…/connections/{id}/sdp_params, as SDK ≥ 2.12 does) instead of the
	// 2.9.0 id-less route.
	ConnectionID int
	// Trickle, with ConnectionID, offers without candidates and posts
	// them to …/connections/{id}/ice_candidates as they are gathered.
	Trickle bool
	// DataOnly, with ConnectionID, offers the data channel alone (no
	// track_mapping entry): a viewer that only exchanges messages.
	DataOnly bool
}

// Client is a pion peer that follows the SDK 2.9.0 flow: ice_servers, an
// offer with the "data" channel and one transceiver per capability track,
// sdp_params posted and polled, the answer applied. It decodes the video
// the model sends (FFmpeg), counting frames and reading the centre pixel.
// Its goroutines are waited for by Close (registered as a test cleanup).
type Client struct {
	T   testing.TB
	SID string
	PC  *webrtc.PeerConnection
	DC  *webrtc.DataChannel
	// Transceivers by track name.
	Transceivers map[string]*webrtc.RTPTransceiver
	// Msgs receives every data-channel message (a non-JSON one as
	// {"_bad": text}); the newest are dropped when 64 wait.
	Msgs chan map[string]any

	Frames     atomic.Int64 // decoded video pictures
	LastLuma   atomic.Int32 // the red value of the last picture's centre pixel
	FrameWH    atomic.Int64 // the last picture's size as w<<16 | h
	Samples    atomic.Int64 // video samples (access units) received
	KeySamples atomic.Int64 // of which keyframes
	FirstKey   atomic.Int32 // 1: the first sample was a keyframe, 2: it was not
	ServerDC   atomic.Bool  // the server opened a data channel of its own

	opts      ClientOptions
	open      chan struct{}
	connected chan struct{}

	mu     sync.Mutex // guards wg.Add against Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// Go runs fn on a goroutine Close waits for; it returns false (and runs
// nothing) once Close has begun.
func (c *Client) Go(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// NewClientPC returns a pion PeerConnection configured like a browser on
// this host: loopback only, UDP4, the default codecs (or VP8 alone) and
// the default interceptors (NACK, RTCP reports, TWCC feedback).
func NewClientPC(t testing.TB, o ClientOptions) *webrtc.PeerConnection {
	t.Helper()
	pc, err := loopback.New(loopback.Options{VP8Only: o.VP8Only, MaxMessageSize: 262144})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// Dial builds the peer connection for session sid on base, offers (method
// POST, or PUT for a reconnect) and polls for the answer like the SDK; it
// returns once the answer is applied.
func Dial(t testing.TB, base, sid string, caps []engine.TrackCap, method string, o ClientOptions) *Client {
	t.Helper()
	c := &Client{T: t, SID: sid, Transceivers: map[string]*webrtc.RTPTransceiver{}, opts: o,
		open: make(chan struct{}), connected: make(chan struct{}), Msgs: make(chan map[string]any, 64)}
	code, body := Do(t, base, "GET", "/sessions/"+sid+"/transport/webrtc/ice_servers", nil, rtcHeaders(o.Token))
	if code != 200 {
		t.Fatalf("ice_servers: %d %s", code, body)
	}
	c.PC = NewClientPC(t, o)
	t.Cleanup(c.Close)
	c.wire(t)
	if o.DataOnly {
		caps = nil
	}
	for _, tr := range caps {
		dir := webrtc.RTPTransceiverDirectionRecvonly
		if peer.Direction(tr.Direction) == peer.DirSendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
			if o.SendrecvInputs {
				dir = webrtc.RTPTransceiverDirectionSendrecv
			}
		}
		x, err := c.PC.AddTransceiverFromKind(webrtc.NewRTPCodecType(tr.Kind), webrtc.RTPTransceiverInit{Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		c.Transceivers[tr.Name] = x
	}
	c.offer(t, base, caps, method)
	return c
}

// wire creates the data channel and installs the callbacks.
func (c *Client) wire(t testing.TB) {
	dc, err := c.PC.CreateDataChannel("data", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.DC = dc
	dc.OnOpen(func() { close(c.open) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		var v map[string]any
		if !m.IsString || json.Unmarshal(m.Data, &v) != nil {
			v = map[string]any{"_bad": string(m.Data)}
		}
		select {
		case c.Msgs <- v:
		default:
		}
	})
	var once sync.Once
	c.PC.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.connected) })
		}
	})
	c.PC.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.Go(func() { c.receive(remote) })
	})
	c.PC.OnDataChannel(func(*webrtc.DataChannel) { c.ServerDC.Store(true) })
}

// offer gathers, posts sdp_params and applies the polled answer.
func (c *Client) offer(t testing.TB, base string, caps []engine.TrackCap, method string) {
	offer, err := c.PC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	route := "/sessions/" + c.SID + "/transport/webrtc/sdp_params"
	if c.opts.ConnectionID != 0 {
		route = fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", c.SID, c.opts.ConnectionID)
	}
	var trickled chan webrtc.ICECandidateInit
	if c.opts.Trickle {
		trickled = make(chan webrtc.ICECandidateInit, 64)
		c.PC.OnICECandidate(func(cand *webrtc.ICECandidate) {
			if cand != nil {
				select {
				case trickled <- cand.ToJSON():
				default:
				}
			}
		})
	}
	g := webrtc.GatheringCompletePromise(c.PC)
	if err := c.PC.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	sdp := offer.SDP // no candidates: they trickle
	if !c.opts.Trickle {
		<-g
		sdp = c.PC.LocalDescription().SDP
	}
	mapping := make([]peer.TrackMapping, 0, len(caps))
	for _, tr := range caps {
		mapping = append(mapping, peer.TrackMapping{MID: c.Transceivers[tr.Name].Mid(), Name: tr.Name, Kind: peer.Kind(tr.Kind), Direction: peer.Direction(tr.Direction)})
	}
	code, body := Do(t, base, method, route, map[string]any{
		"sdp_offer": sdp, "client_info": map[string]string{"sdk_version": "2.9.0", "sdk_type": "js"}, "track_mapping": mapping,
	}, rtcHeaders(c.opts.Token))
	if code != http.StatusAccepted {
		t.Fatalf("%s sdp_params: %d %s, want 202", method, code, body)
	}
	if c.opts.Trickle {
		<-g
		var cands []map[string]any
		for len(trickled) > 0 {
			ci := <-trickled
			cands = append(cands, map[string]any{"candidate": ci.Candidate, "sdp_mid": ci.SDPMid, "sdp_mline_index": ci.SDPMLineIndex})
		}
		ice := strings.Replace(route, "sdp_params", "ice_candidates", 1)
		if code, body := Do(t, base, "POST", ice, map[string]any{"candidates": cands, "is_final": true}, rtcHeaders(c.opts.Token)); code != http.StatusAccepted {
			t.Fatalf("ice_candidates: %d %s, want 202", code, body)
		}
	}
	answer := pollAnswerAt(t, base, route, rtcHeaders(c.opts.Token))
	if c.opts.SendMaxMessageSize > 0 {
		answer = maxMessageSize.ReplaceAllString(answer, fmt.Sprintf("a=max-message-size:%d", c.opts.SendMaxMessageSize))
	}
	if err := c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("apply answer: %v", err)
	}
}

var maxMessageSize = regexp.MustCompile(`a=max-message-size:\d+`)

// PollAnswer polls like the SDK: 6 GETs, waiting 200, 400, … ms between.
func PollAnswer(t testing.TB, base, sid string) string {
	t.Helper()
	return pollAnswer(t, base, sid, RTCHeaders)
}

// rtcHeaders returns RTCHeaders with token as the bearer ("" keeps "local").
func rtcHeaders(token string) map[string]string {
	if token == "" {
		return RTCHeaders
	}
	h := map[string]string{}
	for k, v := range RTCHeaders {
		h[k] = v
	}
	h["Authorization"] = "Bearer " + token
	return h
}

func pollAnswer(t testing.TB, base, sid string, hdr map[string]string) string {
	t.Helper()
	return pollAnswerAt(t, base, "/sessions/"+sid+"/transport/webrtc/sdp_params", hdr)
}

func pollAnswerAt(t testing.TB, base, route string, hdr map[string]string) string {
	t.Helper()
	back := 200 * time.Millisecond
	for range 6 {
		code, body := Do(t, base, "GET", route, nil, hdr)
		switch code {
		case 200:
			var a struct {
				SDPAnswer string `json:"sdp_answer"`
			}
			if err := json.Unmarshal(body, &a); err != nil || a.SDPAnswer == "" {
				t.Fatalf("GET sdp_params 200 without sdp_answer: %s", body)
			}
			return a.SDPAnswer
		case 202:
			time.Sleep(back) // the SDK's own backoff, not synchronisation
			back *= 2
		default:
			t.Fatalf("GET sdp_params: %d %s", code, body)
		}
	}
	t.Fatal("no answer after the SDK's 6 polls")
	return ""
}

// Connect runs the whole SDK connect flow against base: start_session,
// dial, wait until connected with the data channel open.
func Connect(t testing.TB, base string, o ClientOptions) (Descriptor, *Client) {
	t.Helper()
	d := Start(t, base)
	c := Dial(t, base, d.SessionID, d.Capabilities.Tracks, "POST", o)
	c.WaitReady()
	return d, c
}

// WaitReady waits (10 s at most) until the connection is up and the data
// channel open.
func (c *Client) WaitReady() {
	c.T.Helper()
	for _, ch := range []chan struct{}{c.connected, c.open} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			c.T.Fatal("client not connected with an open data channel after 10 s")
		}
	}
}

// receive decodes one track the model sends until the connection closes.
func (c *Client) receive(remote *webrtc.TrackRemote) {
	if remote.Kind() == webrtc.RTPCodecTypeAudio && c.opts.OnAudio != nil {
		c.opts.OnAudio(remote)
		return
	}
	codec := encode.CodecH264
	var dep interface {
		Unmarshal([]byte) ([]byte, error)
		IsPartitionHead([]byte) bool
		IsPartitionTail(bool, []byte) bool
	} = &codecs.H264Packet{}
	if remote.Codec().MimeType == webrtc.MimeTypeVP8 {
		codec, dep = encode.CodecVP8, &codecs.VP8Packet{}
	}
	dec, err := encode.NewVideoDecoder(codec)
	if err != nil {
		c.T.Error(err)
		return
	}
	defer dec.Close()
	sb := samplebuilder.New(256, dep, 90000)
	rgb := make([]byte, 4096*4096*3)
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			c.count(codec, s.Data)
			_ = dec.Decode(s.Data, func(f encode.Frame) error {
				w, h := f.Size()
				if _, err := f.RGB(rgb); err != nil {
					return err
				}
				c.Frames.Add(1)
				c.FrameWH.Store(int64(w)<<16 | int64(h))
				c.LastLuma.Store(int32(rgb[(h/2*w+w/2)*3]))
				return nil
			})
		}
	}
}

// count records one received sample and whether it is a keyframe.
func (c *Client) count(codec encode.Codec, data []byte) {
	key := codec == encode.CodecH264 && IsH264Key(data) || codec == encode.CodecVP8 && len(data) > 0 && data[0]&1 == 0
	if c.Samples.Add(1) == 1 {
		if key {
			c.FirstKey.Store(1)
		} else {
			c.FirstKey.Store(2)
		}
	}
	if key {
		c.KeySamples.Add(1)
	}
}

// WaitFrames waits until n pictures were decoded, failing after within.
func (c *Client) WaitFrames(n int64, within time.Duration) {
	c.T.Helper()
	Eventually(c.T, within, "decoded frames", func() bool { return c.Frames.Load() >= n })
}

// SendJSON sends v as one text frame on the data channel.
func (c *Client) SendJSON(v any) {
	c.T.Helper()
	b, _ := json.Marshal(v)
	if err := c.DC.SendText(string(b)); err != nil {
		c.T.Fatal(err)
	}
}

// Command sends an application command (uploads may be nil).
func (c *Client) Command(name string, data any, uploads map[string]any) {
	c.T.Helper()
	inner := map[string]any{"type": name, "data": data}
	if uploads != nil {
		inner["uploads"] = uploads
	}
	c.SendJSON(map[string]any{"scope": "application", "data": inner})
}

// Expect waits for a message of scope ("runtime" or "application") whose
// data.type is typ and returns its data; others are skipped.
func (c *Client) Expect(scope, typ string, within time.Duration) map[string]any {
	c.T.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-c.Msgs:
			if m["scope"] != scope {
				continue
			}
			d, _ := m["data"].(map[string]any)
			if d != nil && d["type"] == typ {
				return d
			}
		case <-deadline:
			c.T.Fatalf("no %s message of type %q within %s", scope, typ, within)
			return nil
		}
	}
}

// PublishWebcam replaces the named input transceiver's track (no
// renegotiation) and sends VP8 frames of w×h, each a flat grey of a
// rising level, at 30 fps until stop is closed. Like a browser, it
// answers the server's keyframe requests (RTCP PLI) with a keyframe.
func (c *Client) PublishWebcam(name string, w, h int, stop <-chan struct{}) {
	c.T.Helper()
	var pli atomic.Bool
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, name, "cam")
	if err != nil {
		c.T.Fatal(err)
	}
	sender := c.Transceivers[name].Sender()
	if err := sender.ReplaceTrack(tr); err != nil {
		c.T.Fatal(err)
	}
	c.Go(func() { // ends when the connection closes
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					pli.Store(true)
				}
			}
		}
	})
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendVP8, Width: w, Height: h, FPS: 30})
	if err != nil {
		c.T.Fatal(err)
	}
	ok := c.Go(func() {
		defer enc.Close()
		img := make([]byte, w*h*3)
		buf := make([]byte, 1<<20)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for j := range img {
				img[j] = byte(i)
			}
			if pli.Swap(false) {
				enc.RequestKeyframe()
			}
			n, _, err := enc.Encode(encode.Image{Pix: img, Width: w, Height: h}, i*3000, buf)
			if err == nil && n > 0 {
				_ = tr.WriteSample(media.Sample{Data: buf[:n], Duration: time.Second / 30})
			}
		}
	})
	if !ok {
		enc.Close()
	}
}

// PublishTone replaces the named input transceiver's track and sends a
// sine of hz at amplitude amp (int16 units) as 20 ms Opus frames, paced in
// real time, until stop is closed.
func (c *Client) PublishTone(name string, hz, amp float64, stop <-chan struct{}) {
	c.T.Helper()
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, name, "mic")
	if err != nil {
		c.T.Fatal(err)
	}
	if err := c.Transceivers[name].Sender().ReplaceTrack(tr); err != nil {
		c.T.Fatal(err)
	}
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{})
	if err != nil {
		c.T.Fatal(err)
	}
	ok := c.Go(func() {
		defer enc.Close()
		pcm := make([]int16, encode.AudioFrameSamples)
		pkt := make([]byte, encode.MaxOpusPacket)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for j := range pcm {
				n := i*len(pcm) + j
				pcm[j] = int16(amp * math.Sin(2*math.Pi*hz*float64(n)/encode.AudioRate))
			}
			n, err := enc.Encode(pcm, pkt)
			if err != nil {
				c.T.Errorf("encode tone frame %d: %v", i, err)
				return
			}
			_ = tr.WriteSample(media.Sample{Data: pkt[:n], Duration: 20 * time.Millisecond})
		}
	})
	if !ok {
		enc.Close()
	}
}

// Close closes the connection and waits for the client's goroutines. It is
// idempotent.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.PC != nil {
		_ = c.PC.Close()
	}
	c.wg.Wait()
}

// IsH264Key reports whether an Annex-B access unit holds an IDR slice.
func IsH264Key(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			if au[i+3]&0x1f == 5 {
				return true
			}
			i += 2
		}
	}
	return false
}
