package peer_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/framewire/framewire/engine/peer"
)

// A client's offer is parsed once; the server checks the client's
// track_mapping against it and picks each output's codec from what the
// m-section offers (H.264 packetization-mode 1 before VP8).
func ExampleParseOffer() {
	sdp := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=mid:0\r\na=recvonly\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=max-message-size:262144\r\n"
	offer, err := peer.ParseOffer(sdp)
	if err != nil {
		fmt.Println(err)
		return
	}
	mapping := []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	if err := offer.Check(mapping); err != nil {
		fmt.Println(err)
		return
	}
	codec, err := offer.ChooseCodec("0")
	fmt.Println(codec, err, offer.HasDataChannel(), offer.MaxMessageSize())

	bad := []peer.TrackMapping{{MID: "0", Name: "webcam", Kind: peer.KindVideo, Direction: peer.DirSendonly}}
	fmt.Println(offer.Check(bad))
	// Output:
	// video/H264 <nil> true 262144
	// peer: bad offer: mid "0" is not sendonly in the offer
}

// The zero Config offers no loopback candidates: a browser on the same
// host that reaches the server only at 127.0.0.1 needs Loopback (the demo
// server sets it by default). Here both answers are built for the same
// real offer and their candidates compared.
func ExampleConfig_loopback() {
	offer := func() *peer.Offer {
		o, err := peer.ParseOffer(sdpOffer)
		if err != nil {
			panic(err)
		}
		return o
	}
	mapping := []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	for _, loopback := range []bool{false, true} {
		cfg := peer.Config{Loopback: loopback, Interfaces: []string{"lo"}, GatherTimeout: 2 * time.Second}
		out, _ := peer.NewOutput("main_video", peer.KindVideo, peer.CodecH264)
		p, answer, err := cfg.Answer(context.Background(), peer.Binding{
			Offer: offer(), Mapping: mapping, Outputs: map[string]*peer.Output{"main_video": out},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("Loopback %v: 127.0.0.1 candidate %v\n", loopback, strings.Contains(answer, " 127.0.0.1 "))
		_ = p.Close()
	}
	// Output:
	// Loopback false: 127.0.0.1 candidate false
	// Loopback true: 127.0.0.1 candidate true
}

// sdpOffer is a browser-shaped offer: one recvonly H.264 video m-section
// and the data channel.
const sdpOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"a=fingerprint:sha-256 AF:5B:BB:52:45:E2:0C:0D:82:33:7A:88:02:C2:7D:F2:47:B2:F6:42:B6:6B:3A:7C:4A:4B:9F:64:52:05:22:8E\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=setup:actpass\r\n" +
	"a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=setup:actpass\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
