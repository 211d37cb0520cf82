package peer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Kind is a track's media kind.
type Kind string

// Media kinds as they appear in capabilities and track_mapping.
const (
	KindVideo Kind = "video"
	KindAudio Kind = "audio"
)

// Direction is a track's direction as the client sees it.
type Direction string

// Directions in capabilities and track_mapping: a model output is recvonly
// for the client, a model input sendonly.
const (
	DirRecvonly Direction = "recvonly"
	DirSendonly Direction = "sendonly"
)

// TrackMapping is one entry of the client's track_mapping: the mid the
// browser assigned to the transceiver of the named capability track.
type TrackMapping struct {
	MID       string    `json:"mid"`
	Name      string    `json:"name"`
	Kind      Kind      `json:"kind"`
	Direction Direction `json:"direction"`
}

// Codec is a wire codec this engine speaks.
type Codec string

// Wire codecs, as pion MIME types.
const (
	CodecH264 Codec = webrtc.MimeTypeH264
	CodecVP8  Codec = webrtc.MimeTypeVP8
	CodecOpus Codec = webrtc.MimeTypeOpus
)

// defaultMaxMessageSize is what a peer may send when its SDP has no
// a=max-message-size (RFC 8841 section 6.1).
const defaultMaxMessageSize = 65536

// h264Fmtp is the H.264 format this engine's encoders produce: constrained
// baseline level 3.1, packetization-mode 1.
const h264Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// Offer is a parsed client offer.
type Offer struct {
	SDP    string
	parsed sdp.SessionDescription
}

// ParseOffer parses an SDP offer. It fails with ErrBadOffer, saying why,
// when the text is not SDP or has no media sections.
func ParseOffer(text string) (*Offer, error) {
	if !strings.HasPrefix(strings.TrimSpace(text), "v=0") {
		return nil, fmt.Errorf("%w: sdp_offer does not start with \"v=0\"; want an SDP offer", ErrBadOffer)
	}
	o := &Offer{SDP: text}
	if err := o.parsed.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("%w: sdp_offer is not valid SDP: %v", ErrBadOffer, err)
	}
	if len(o.parsed.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: sdp_offer has no media sections", ErrBadOffer)
	}
	return o, nil
}

// media returns the m-section with the given mid, or nil.
func (o *Offer) media(mid string) *sdp.MediaDescription {
	for _, m := range o.parsed.MediaDescriptions {
		if v, ok := m.Attribute("mid"); ok && v == mid {
			return m
		}
	}
	return nil
}

// mayReceive reports whether the client offered to receive on mid
// (recvonly or sendrecv; sendrecv is the default without a direction).
func (o *Offer) mayReceive(mid string) bool {
	m := o.media(mid)
	if m == nil {
		return false
	}
	for _, d := range []string{"sendonly", "inactive"} {
		if _, ok := m.Attribute(d); ok {
			return false
		}
	}
	return true
}

// MaxMessageSize is the largest data-channel message the client accepts:
// its a=max-message-size, 64 KiB when absent, unlimited (math.MaxInt) for 0.
func (o *Offer) MaxMessageSize() int {
	for _, m := range o.parsed.MediaDescriptions {
		if m.MediaName.Media != "application" {
			continue
		}
		v, ok := m.Attribute("max-message-size")
		if !ok {
			return defaultMaxMessageSize
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return defaultMaxMessageSize
		}
		if n == 0 {
			return int(^uint(0) >> 1)
		}
		return n
	}
	return defaultMaxMessageSize
}

// HasDataChannel reports whether the offer has an SCTP application section.
func (o *Offer) HasDataChannel() bool {
	for _, m := range o.parsed.MediaDescriptions {
		if m.MediaName.Media == "application" {
			return true
		}
	}
	return false
}

// Check validates mapping against the offer: every entry names an m-section
// of the right kind by mid, directions agree, no mid or name repeats.
func (o *Offer) Check(mapping []TrackMapping) error {
	mids := map[string]bool{}
	names := map[string]bool{}
	for i, tm := range mapping {
		if tm.MID == "" || tm.Name == "" {
			return fmt.Errorf("%w: track_mapping[%d] needs a non-empty mid and name", ErrBadOffer, i)
		}
		if mids[tm.MID] || names[tm.Name] {
			return fmt.Errorf("%w: track_mapping[%d] repeats mid %q or name %q", ErrBadOffer, i, tm.MID, tm.Name)
		}
		mids[tm.MID], names[tm.Name] = true, true
		m := o.media(tm.MID)
		if m == nil {
			return fmt.Errorf("%w: track_mapping[%d] names mid %q, which is not in the offer", ErrBadOffer, i, tm.MID)
		}
		if Kind(m.MediaName.Media) != tm.Kind {
			return fmt.Errorf("%w: mid %q is %s in the offer but %s in track_mapping", ErrBadOffer, tm.MID, m.MediaName.Media, tm.Kind)
		}
		want := string(tm.Direction)
		if _, ok := m.Attribute(want); !ok {
			if _, sr := m.Attribute("sendrecv"); !sr {
				return fmt.Errorf("%w: mid %q is not %s in the offer", ErrBadOffer, tm.MID, want)
			}
		}
	}
	return nil
}

// offered lists the codecs this engine speaks that the m-section with the
// given mid offers.
func (o *Offer) offered(mid string) (map[Codec]bool, string, error) {
	m := o.media(mid)
	if m == nil {
		return nil, "", fmt.Errorf("%w: no m-section with mid %q", ErrBadOffer, mid)
	}
	names := map[string]string{} // payload type -> encoding name
	fmtps := map[string]string{}
	for _, a := range m.Attributes {
		pt, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			name, _, _ := strings.Cut(rest, "/")
			names[pt] = strings.ToLower(name)
		case "fmtp":
			fmtps[pt] = strings.ToLower(rest)
		}
	}
	got := map[Codec]bool{}
	for pt, n := range names {
		switch {
		case n == "h264" && strings.Contains(fmtps[pt], "packetization-mode=1"):
			got[CodecH264] = true
		case n == "vp8":
			got[CodecVP8] = true
		case n == "opus":
			got[CodecOpus] = true
		}
	}
	return got, m.MediaName.Media, nil
}

// Supports reports whether the m-section with the given mid offers c.
func (o *Offer) Supports(mid string, c Codec) bool {
	got, _, err := o.offered(mid)
	return err == nil && got[c]
}

// ChooseCodec picks the codec for the m-section with the given mid: for
// video H.264 with packetization-mode 1 when offered, else VP8; for audio
// Opus. It wraps ErrNoCodec when none is offered.
func (o *Offer) ChooseCodec(mid string) (Codec, error) {
	got, media, err := o.offered(mid)
	if err != nil {
		return "", err
	}
	switch media {
	case "video":
		if got[CodecH264] {
			return CodecH264, nil
		}
		if got[CodecVP8] {
			return CodecVP8, nil
		}
		return "", fmt.Errorf("%w: mid %q offers neither H.264 packetization-mode 1 nor VP8", ErrNoCodec, mid)
	case "audio":
		if got[CodecOpus] {
			return CodecOpus, nil
		}
		return "", fmt.Errorf("%w: mid %q offers no Opus", ErrNoCodec, mid)
	}
	return "", fmt.Errorf("%w: mid %q is %q media", ErrNoCodec, mid, media)
}

// capability is the pion codec capability this engine sends for c.
func capability(c Codec) webrtc.RTPCodecCapability {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "transport-cc"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	switch c {
	case CodecH264:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264Fmtp, RTCPFeedback: fb}
	case CodecVP8:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}
	default:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "transport-cc"}}}
	}
}

// MediaSection is one audio or video m-section of an offer.
type MediaSection struct {
	MID  string
	Kind Kind
}

// MediaSections lists the offer's audio and video m-sections in order.
func (o *Offer) MediaSections() []MediaSection {
	var out []MediaSection
	for _, m := range o.parsed.MediaDescriptions {
		k := Kind(m.MediaName.Media)
		if k != KindVideo && k != KindAudio {
			continue
		}
		mid, _ := m.Attribute("mid")
		out = append(out, MediaSection{MID: mid, Kind: k})
	}
	return out
}
