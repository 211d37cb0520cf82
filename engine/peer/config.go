package peer

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// ICEServer is a STUN or TURN server offered to both sides.
type ICEServer struct {
	URLs       []string `json:"uris" yaml:"uris"`
	Username   string   `json:"username,omitempty" yaml:"username"`
	Credential string   `json:"password,omitempty" yaml:"password"`
}

// Config configures the peers a server creates. The zero value is usable:
// host candidates on every interface except loopback, no STUN/TURN, GCC
// between 300 kbit/s and 8 Mbit/s starting at 2.5 Mbit/s.
type Config struct {
	// ICEServers are used for gathering (STUN/TURN) and are what the
	// ice_servers route hands to the client.
	ICEServers []ICEServer
	// Loopback adds loopback host candidates (needed on a host whose only
	// reachable address is 127.0.0.1, and for tests).
	Loopback bool
	// Interfaces, when non-empty, restricts host candidates to these
	// network interface names.
	Interfaces []string
	// PublicIPs are announced as host candidates in place of the local
	// addresses (1:1 NAT, e.g. a cloud VM).
	PublicIPs []string
	// UDPPortMin and UDPPortMax bound the ephemeral UDP ports (0 = any).
	UDPPortMin, UDPPortMax uint16
	// GatherTimeout bounds candidate gathering before the answer is
	// returned with what was gathered. Default 3 s.
	GatherTimeout time.Duration
	// StartBitrate, MinBitrate and MaxBitrate configure the GCC estimator
	// (bit/s). Defaults 2.5 M, 300 k, 8 M.
	StartBitrate, MinBitrate, MaxBitrate int
	// DisconnectedTimeout and FailedTimeout are ICE consent timeouts.
	// Defaults 5 s and 10 s.
	DisconnectedTimeout, FailedTimeout time.Duration
	// SCTPMaxMessageSize is the a=max-message-size advertised and the
	// largest inbound message accepted: a larger one, up to the SCTP
	// receive window (2 MiB), is dropped, counted and logged, and the
	// channel stays open; a larger one still is counted and logged and
	// loses the peer (see Peer.InboundStalled). Default 262144 (256 KiB).
	SCTPMaxMessageSize uint32
	// Logger receives connection-level events; default discards.
	Logger *slog.Logger
}

// The SCTP receive window (sctpReceiveWindow) bounds the inbound message
// pion can reassemble: one above the advertised size but within it is read,
// dropped, counted and logged, and the channel kept (pion's own read limit,
// sctpReadLimit, closes the channel on a larger message it did read: the
// peer reports that through OnLost, counted and logged). A message larger
// than the window can never be reassembled, so the client's channel stalls:
// Peer.InboundStalled sees it (more than stallBytes arrived since the last
// message).
const (
	sctpReadLimit     = 1 << 20
	sctpReceiveWindow = 2 * sctpReadLimit
	stallBytes        = sctpReadLimit + sctpReadLimit/4
)

func (c *Config) withDefaults() Config {
	d := *c
	if d.GatherTimeout <= 0 {
		d.GatherTimeout = 3 * time.Second
	}
	if d.StartBitrate <= 0 {
		d.StartBitrate = 2_500_000
	}
	if d.MinBitrate <= 0 {
		d.MinBitrate = 300_000
	}
	if d.MaxBitrate <= 0 {
		d.MaxBitrate = 8_000_000
	}
	if d.DisconnectedTimeout <= 0 {
		d.DisconnectedTimeout = 5 * time.Second
	}
	if d.FailedTimeout <= 0 {
		d.FailedTimeout = 10 * time.Second
	}
	if d.SCTPMaxMessageSize == 0 {
		d.SCTPMaxMessageSize = 262144
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	d := c.withDefaults()
	if d.MinBitrate > d.MaxBitrate || d.StartBitrate < d.MinBitrate || d.StartBitrate > d.MaxBitrate {
		return fmt.Errorf("peer: bitrates min %d <= start %d <= max %d do not hold", d.MinBitrate, d.StartBitrate, d.MaxBitrate)
	}
	if d.UDPPortMax < d.UDPPortMin {
		return fmt.Errorf("peer: UDP port range %d-%d is empty", d.UDPPortMin, d.UDPPortMax)
	}
	if d.SCTPMaxMessageSize < 262144 {
		return fmt.Errorf("peer: SCTP max message size %d is below the SDK's 262144", d.SCTPMaxMessageSize)
	}
	for _, s := range d.ICEServers {
		if len(s.URLs) == 0 {
			return fmt.Errorf("peer: an ICE server has no URLs")
		}
	}
	return nil
}

func (c *Config) pionICEServers() []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(c.ICEServers))
	for _, s := range c.ICEServers {
		is := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
		}
		out = append(out, is)
	}
	return out
}

// The RTP header extensions for low-latency video that the answer accepts
// when the offer carries them.
const (
	playoutDelayURI   = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
	absCaptureTimeURI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
)

// newAPI builds a pion API for one PeerConnection: codecs we can send and
// receive, NACK/RTCP reports/TWCC interceptors and a GCC estimator that
// reports through bwe once the connection is created.
func (c *Config) newAPI(bwe chan<- cc.BandwidthEstimator) (*webrtc.API, error) {
	m, err := mediaEngine()
	if err != nil {
		return nil, err
	}
	reg, err := c.interceptors(m, bwe)
	if err != nil {
		return nil, err
	}
	se, err := c.settingEngine()
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// mediaEngine registers the codecs and header extensions we negotiate.
func mediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264Fmtp, RTCPFeedback: fb}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: fb}, PayloadType: 104},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f", RTCPFeedback: fb}, PayloadType: 106},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
	}
	for _, p := range video {
		if err := m.RegisterCodec(p, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("peer: register %s: %w", p.MimeType, err)
		}
	}
	// Low-latency rendering, negotiated where the offer carries them:
	// playout-delay 0/0 makes Chrome render each video frame as soon as it
	// is decoded; abs-capture-time carries each frame's capture (Emit)
	// time, so the browser's stats can report capture to render.
	for _, uri := range []string{playoutDelayURI, absCaptureTimeURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("peer: register %s: %w", uri, err)
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("peer: register opus: %w", err)
	}
	return m, nil
}

// interceptors builds the interceptor chain (GCC, TWCC, NACK, reports),
// all logging through the peer's logger.
func (c *Config) interceptors(m *webrtc.MediaEngine, bwe chan<- cc.BandwidthEstimator) (*interceptor.Registry, error) {
	reg := &interceptor.Registry{}
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(c.StartBitrate),
			gcc.SendSideBWEMinBitrate(c.MinBitrate),
			gcc.SendSideBWEMaxBitrate(c.MaxBitrate),
			// No pacing queue: frames leave as soon as they are encoded;
			// the estimate still drives the encoder's bitrate.
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("peer: congestion controller: %w", err)
	}
	// The connection's estimator, for the NACK responder's budget (one
	// PeerConnection per API, so one estimator).
	var est atomic.Pointer[cc.BandwidthEstimator]
	target := func() (int, bool) {
		if e := est.Load(); e != nil {
			return (*e).GetTargetBitrate(), true
		}
		return 0, false
	}
	ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) {
		est.Store(&e)
		select {
		case bwe <- e:
		default:
		}
	})
	reg.Add(ccf)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, fmt.Errorf("peer: twcc: %w", err)
	}
	// pion's defaults less its stats interceptor, which only feeds
	// PeerConnection.GetStats (the engine never calls it) and cost every
	// packet a header clone and a lock. Every interceptor logs through the
	// peer's slog.Logger (the default factory would write to stderr).
	lf := loggerFactory{c.Logger}
	// NACK: pion's generator for the client's media, the engine's own
	// responder for ours (nackResponderFactory), in the order pion's
	// ConfigureNack registers them.
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("peer: nack: %w", err)
	}
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	nlog := c.Logger
	if nlog == nil {
		nlog = slog.New(slog.DiscardHandler)
	}
	reg.Add(nackResponderFactory{log: nlog, target: target})
	reg.Add(gen)
	if err := webrtc.ConfigureRTCPReportsWithOptions(reg, []report.ReceiverOption{report.WithReceiverLoggerFactory(lf)},
		report.WithSenderLoggerFactory(lf)); err != nil {
		return nil, fmt.Errorf("peer: rtcp reports: %w", err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, fmt.Errorf("peer: header extensions: %w", err)
	}
	if err := webrtc.ConfigureTWCCSenderWithOptions(m, reg, twcc.WithLoggerFactory(lf)); err != nil {
		return nil, fmt.Errorf("peer: twcc feedback: %w", err)
	}
	reg.Add(attributesFactory{}) // last added: outermost on the send path
	return reg, nil
}

// settingEngine applies the ICE, SCTP and network settings.
func (c *Config) settingEngine() (webrtc.SettingEngine, error) {
	se := webrtc.SettingEngine{}
	// pion reads messages up to this size and closes the channel on a
	// larger one; the answer advertises SCTPMaxMessageSize instead (see
	// answer) and the peer drops what lies between.
	se.SetSCTPMaxMessageSize(max(sctpReadLimit, c.SCTPMaxMessageSize))
	se.SetSCTPMaxReceiveBufferSize(max(sctpReceiveWindow, 2*c.SCTPMaxMessageSize))
	se.SetIncludeLoopbackCandidate(c.Loopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	se.SetICETimeouts(c.DisconnectedTimeout, c.FailedTimeout, time.Second)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(c.Interfaces) > 0 {
		allow := map[string]bool{}
		for _, n := range c.Interfaces {
			allow[n] = true
		}
		se.SetInterfaceFilter(func(n string) bool { return allow[n] })
	}
	if len(c.PublicIPs) > 0 {
		se.SetNAT1To1IPs(c.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if c.UDPPortMin != 0 || c.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(c.UDPPortMin, c.UDPPortMax); err != nil {
			return se, fmt.Errorf("peer: UDP port range: %w", err)
		}
	}
	se.LoggerFactory = loggerFactory{c.Logger}
	return se, nil
}

// attributesFactory makes the outermost interceptor of the send chain:
// pion's track writer hands the chain nil attributes, and gcc's
// congestion controller then makes a map for every packet to note the
// TWCC extension id in. Each local stream gets one map instead, reused
// for all its packets: the controller sets the same key each time and
// nothing keeps the map past the write (gcc's pacer is the no-op one).
// A stream's packets are written one at a time (Output serializes its
// writes; each peer binds its own stream).
type attributesFactory struct{}

func (attributesFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &attributesInterceptor{}, nil
}

type attributesInterceptor struct{ interceptor.NoOp }

func (*attributesInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	attrs := interceptor.Attributes{}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if a == nil {
			a = attrs
		}
		return w.Write(h, payload, a)
	})
}
