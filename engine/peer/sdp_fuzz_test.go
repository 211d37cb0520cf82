package peer

import "testing"

// FuzzParseOffer: any sdp_offer text either fails with a message or gives
// an Offer whose queries (codecs, directions, message size) do not panic.
func FuzzParseOffer(f *testing.F) {
	for _, s := range []string{
		"", "v=0", "hello",
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\na=max-message-size:0\r\n",
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\na=max-message-size:-5\r\n",
		"v=0\r\nm=video 9 X 1\r\na=mid:\r\na=rtpmap:\r\na=fmtp:x\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		o, err := ParseOffer(text)
		if err != nil {
			if o != nil {
				t.Fatal("ParseOffer returned an offer with an error")
			}
			return
		}
		_ = o.MaxMessageSize()
		_ = o.HasDataChannel()
		for _, m := range o.parsed.MediaDescriptions {
			mid, _ := m.Attribute("mid")
			_, _ = o.ChooseCodec(mid)
			_ = o.Supports(mid, CodecH264)
			_ = o.mayReceive(mid)
			_ = o.Check([]TrackMapping{{MID: mid, Name: "t", Kind: Kind(m.MediaName.Media), Direction: DirRecvonly}})
		}
	})
}
