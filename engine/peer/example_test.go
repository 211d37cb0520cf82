package peer_test

import (
	"fmt"

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
