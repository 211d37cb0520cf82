package wiring_test

import (
	"context"
	"fmt"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/wiring"
)

// A program with its own signalling wires a session by hand: Start the
// engine session, Prepare the outputs an offer maps (the pipeline starts
// at once and encodes into the peer output, which a peer.Config.Answer
// then binds), and let Receive decode what the client sends
// (peer.Handlers.OnInbound). Stopping the engine session waits for every
// goroutine the wiring started.
func Example() {
	eng, err := engine.New(enginetest.GreyModel(64, 48))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	w, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := w.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	offer, err := peer.ParseOffer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=mid:0\r\na=recvonly\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=max-message-size:262144\r\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	mapping := []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	if err := offer.Check(mapping); err != nil {
		fmt.Println(err)
		return
	}
	outs, err := s.Prepare(offer, mapping)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("main_video sends", outs["main_video"].Codec())
	// binding: p, answer, err := peerConfig.Answer(ctx, peer.Binding{Offer: offer, Mapping: mapping,
	//	Outputs: outs, Handlers: peer.Handlers{OnInbound: func(_ *peer.Peer, in *peer.Inbound) { s.Receive(in) }}})
	s.Engine().Stop("example over")
	fmt.Println("sessions running:", len(w.Stats()))
	// Output:
	// main_video sends video/H264
	// sessions running: 0
}
