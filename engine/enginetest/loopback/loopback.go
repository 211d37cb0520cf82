// Package loopback builds the tests' WebRTC client: a pion PeerConnection
// configured like a browser on this host (loopback host candidates only,
// UDP4, no mDNS, the default codecs and interceptors: NACK, RTCP reports,
// TWCC feedback; not pion's stats interceptor). enginetest's Client, the
// peer package's own tests, the encode slice test and the benchmarks all
// use this one configuration.
//
// It imports only pion, so the tests of packages enginetest itself
// imports (engine/peer) can use it.
package loopback

import (
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Options vary the client.
type Options struct {
	// VP8Only registers VP8 (payload type 96) as the only codec instead of
	// the defaults.
	VP8Only bool
	// Media, when set, registers more on the media engine after the codecs
	// and before the default interceptors.
	Media func(*webrtc.MediaEngine)
	// MaxMessageSize, when set, is the SCTP message size the client
	// accepts (a browser's is 256 KiB).
	MaxMessageSize uint32
	// Net, when set, is where the client's ICE agent gets its sockets
	// (pion's SettingEngine.SetNet): a test can lose packets on the way
	// in, before SRTP, as a network does.
	Net transport.Net
}

// New returns a new client PeerConnection; the caller closes it.
func New(o Options) (*webrtc.PeerConnection, error) {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.MaxMessageSize > 0 {
		se.SetSCTPMaxMessageSize(o.MaxMessageSize)
	}
	if o.Net != nil {
		se.SetNet(o.Net)
	}
	m := &webrtc.MediaEngine{}
	if o.VP8Only {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	} else if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if o.Media != nil {
		o.Media(m)
	}
	// pion's default interceptors less the stats one: it only feeds
	// GetStats, which no test calls, and would make the clients (the
	// capacity benchmark's receivers share the node's cores) clone every
	// packet's header.
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)).NewPeerConnection(webrtc.Configuration{})
}

// NewT is New for a test: a failure fails t, and the connection closes
// at t's cleanup.
func NewT(t testing.TB, o Options) *webrtc.PeerConnection {
	t.Helper()
	pc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}
