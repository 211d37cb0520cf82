package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"

	"github.com/framewire/framewire/encode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() *Config {
	return &Config{Loopback: true, Interfaces: []string{"lo"}, GatherTimeout: 2 * time.Second,
		DisconnectedTimeout: time.Second, FailedTimeout: 2 * time.Second}
}

// newClient is a loopback pion peer with the default codecs and
// interceptors, as a browser would be.
func newClient(t testing.TB) *webrtc.PeerConnection {
	t.Helper()
	return newClientWith(t, nil)
}

// offer makes pc's complete offer (candidates gathered) with a recvonly
// video transceiver (mid "0") and the "data" channel.
func offer(t testing.TB, pc *webrtc.PeerConnection) (*Offer, *webrtc.DataChannel) {
	t.Helper()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	dc, err := pc.CreateDataChannel("data", nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-g
	parsed, err := ParseOffer(pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	return parsed, dc
}

var videoMapping = []TrackMapping{{MID: "0", Name: "main_video", Kind: KindVideo, Direction: DirRecvonly}}

// answerVideo answers client's offer o with out as main_video (h's
// handlers, OnReady wrapped), gives the client the answer and waits up to
// 10 s for the peer to be ready. It returns the peer, which the caller
// closes, and the answer.
func answerVideo(t testing.TB, client *webrtc.PeerConnection, o *Offer, out *Output, h Handlers) (*Peer, string) {
	t.Helper()
	ready := make(chan struct{})
	onReady := h.OnReady
	h.OnReady = func(p *Peer) {
		if onReady != nil {
			onReady(p)
		}
		close(ready)
	}
	p, answer, err := testConfig().Answer(context.Background(), Binding{
		Offer: o, Mapping: videoMapping, Outputs: map[string]*Output{"main_video": out}, Handlers: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.Close()
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		p.Close()
		t.Fatal("no OnReady within 10 s")
	}
	return p, answer
}

// Every failing Answer leaves no goroutine behind (its PeerConnection is
// closed), and says what was wrong.
func TestAnswerErrorsLeaveNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	o, _ := offer(t, client)
	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("caller gave up"))
	cases := []struct {
		name string
		ctx  context.Context
		b    Binding
		want error
	}{
		{"no offer", context.Background(), Binding{}, ErrBadOffer},
		{"mapping names an output the session lacks", context.Background(), Binding{Offer: o, Mapping: videoMapping}, ErrBadOffer},
		{"mapping names a mid the offer lacks", context.Background(), Binding{Offer: o, Mapping: []TrackMapping{{MID: "7", Name: "main_video", Kind: KindVideo, Direction: DirRecvonly}}, Outputs: map[string]*Output{"main_video": out}}, nil},
		{"context cancelled while gathering", cancelled, Binding{Offer: o, Mapping: videoMapping, Outputs: map[string]*Output{"main_video": out}}, nil},
	}
	cfg := testConfig()
	for _, c := range cases {
		p, answer, err := cfg.Answer(c.ctx, c.b)
		if err == nil || p != nil || answer != "" {
			t.Errorf("%s: Answer = %v, %q, %v; want an error and nothing else", c.name, p, answer, err)
			if p != nil {
				_ = p.Close()
			}
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want an error wrapping %v", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
	}
	_ = client.Close()
}

// A connected peer: OnReady fires once, messages flow both ways, a sample
// written to the output reaches the client's track, Close is idempotent,
// waits for the peer's goroutines and does not report the peer as lost.
func TestPeerLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	gotTrack := make(chan struct{})
	var trackOnce atomic.Bool
	client.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if trackOnce.CompareAndSwap(false, true) {
			close(gotTrack)
		}
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
		}
	})
	o, dc := offer(t, client)
	fromServer := make(chan string, 4)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { fromServer <- string(m.Data) })
	clientOpen := make(chan struct{})
	dc.OnOpen(func() { close(clientOpen) })

	out, err := NewOutput("main_video", KindVideo, CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var readies, losts atomic.Int32
	fromClient := make(chan string, 4)
	p, answer, err := testConfig().Answer(context.Background(), Binding{
		Offer: o, Mapping: videoMapping, Outputs: map[string]*Output{"main_video": out},
		Handlers: Handlers{
			OnReady:   func(*Peer) { readies.Add(1); close(ready) },
			OnLost:    func(*Peer, string) { losts.Add(1) },
			OnMessage: func(_ *Peer, text []byte) { fromClient <- string(text) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10 s", what)
		}
	}
	wait(ready, "OnReady")
	wait(clientOpen, "open data channel on the client")
	if err := dc.SendText(`{"scope":"runtime","data":{"type":"ping"}}`); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-fromClient:
		if m != `{"scope":"runtime","data":{"type":"ping"}}` {
			t.Errorf("OnMessage got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnMessage not called within 10 s")
	}
	if err := p.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-fromServer:
		if m != "hello" {
			t.Errorf("client got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client got no message within 10 s")
	}
	big := make([]byte, p.MaxMessageSize()+1)
	if err := p.Send(big); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Send of %d bytes: %v; want ErrMessageTooLarge", len(big), err)
	}
	// An H.264 access unit (SPS, PPS, IDR slice headers suffice for RTP).
	au := []byte{0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00}
	deadline := time.Now().Add(10 * time.Second)
	for trackOnce.Load() == false && time.Now().Before(deadline) {
		if err := out.WriteSample(au, time.Second/30, time.Now(), true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wait(gotTrack, "client track")
	if st := p.Stats(); !st.Connected {
		t.Errorf("Stats.Connected = false on a connected peer: %+v", st)
	}
	for range 2 {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := p.Send([]byte("late")); err == nil {
		t.Error("Send after Close succeeded")
	}
	_ = client.Close()
	time.Sleep(100 * time.Millisecond) // let a late state callback run
	if n := readies.Load(); n != 1 {
		t.Errorf("OnReady called %d times; want 1", n)
	}
	if n := losts.Load(); n != 0 {
		t.Errorf("OnLost called %d times after the server closed the peer; want 0", n)
	}
}

// When the client goes away, OnLost is called once with a reason.
func TestPeerLostWhenClientCloses(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	o, dc := offer(t, client)
	_ = dc
	out, err := NewOutput("main_video", KindVideo, CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan string, 4)
	p, _ := answerVideo(t, client, o, out, Handlers{OnLost: func(_ *Peer, reason string) { lost <- reason }})
	defer p.Close()
	_ = client.Close()
	select {
	case r := <-lost:
		if r == "" {
			t.Error("OnLost without a reason")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnLost not called within 10 s of the client closing")
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	select {
	case r := <-lost:
		t.Errorf("OnLost called twice (second: %q)", r)
	default:
	}
}

// Outputs accept only codecs their kind can send.
func TestNewOutputRejectsWrongCodec(t *testing.T) {
	for _, c := range []struct {
		k Kind
		c Codec
	}{{KindVideo, CodecOpus}, {KindAudio, CodecH264}, {KindAudio, CodecVP8}} {
		if _, err := NewOutput("x", c.k, c.c); !errors.Is(err, ErrNoCodec) {
			t.Errorf("NewOutput(%s, %s): %v; want ErrNoCodec", c.k, c.c, err)
		}
	}
}

// An inbound Opus track is handed over as an Inbound whose ReadSample
// returns the client's packets byte for byte, in order, and io.EOF once the
// peer closes: the peer owns RTP, the receiver (package wiring) decodes.
func TestInboundAudioIsHandedOver(t *testing.T) {
	defer goleak.VerifyNone(t)
	client := newClient(t)
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateDataChannel("data", nil); err != nil {
		t.Fatal(err)
	}
	o, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-g
	offer, err := ParseOffer(client.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	inbound := make(chan *Inbound, 1)
	p, answer, err := testConfig().Answer(context.Background(), Binding{
		Offer:   offer,
		Mapping: []TrackMapping{{MID: "0", Name: "mic", Kind: KindAudio, Direction: DirSendonly}},
		Handlers: Handlers{
			OnReady:   func(*Peer) { close(ready) },
			OnInbound: func(_ *Peer, in *Inbound) { inbound <- in },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnReady within 10 s")
	}
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := make([]int16, encode.AudioFrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/48000))
	}
	// The client sends 30 packets, each a distinct size so the reader can
	// tell them apart; the Inbound must hand back the same bytes in order.
	var sent [][]byte
	sendDone := make(chan error, 1)
	go func() {
		pkt := make([]byte, encode.MaxOpusPacket)
		for range 30 {
			n, err := enc.Encode(pcm, pkt)
			if err != nil {
				sendDone <- err
				return
			}
			sent = append(sent, append([]byte(nil), pkt[:n]...))
			if err := tr.WriteSample(media.Sample{Data: pkt[:n], Duration: 20 * time.Millisecond}); err != nil {
				sendDone <- err
				return
			}
			time.Sleep(20 * time.Millisecond) // real-time pacing, as a microphone sends
		}
		sendDone <- nil
	}()
	var in *Inbound
	select {
	case in = <-inbound:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnInbound within 10 s")
	}
	if in.Name() != "mic" || in.Kind() != KindAudio || in.Codec() != CodecOpus {
		t.Fatalf("inbound %q %s %s; want mic audio Opus", in.Name(), in.Kind(), in.Codec())
	}
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got [][]byte
	for len(got) < 20 {
		data, err := in.ReadSample(ctx)
		if err != nil {
			t.Fatalf("ReadSample after %d samples: %v", len(got), err)
		}
		got = append(got, append([]byte(nil), data...))
	}
	// The jitter buffer may hold back the newest; what came out is a
	// prefix of what was sent, byte for byte.
	for i, g := range got {
		if !bytes.Equal(g, sent[i]) {
			t.Fatalf("sample %d: %d bytes differ from the %d sent", i, len(g), len(sent[i]))
		}
	}
	if n := in.Samples(); n != uint64(len(got)) {
		t.Errorf("Samples() = %d; want %d", n, len(got))
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	if _, err := in.ReadSample(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("ReadSample after Close: %v; want io.EOF", err)
	}
}
