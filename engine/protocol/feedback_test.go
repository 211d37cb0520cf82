package protocol

import (
	"strings"
	"testing"
)

// TWCC is negotiated on the output (extmap and rtcp-fb), as pion's GCC
// estimator needs.
func TestCongestionControlNegotiatesTWCC(t *testing.T) {
	cfg := testConfig()
	ts := newTestServer(t, cfg)
	_, c := ts.connectClient(t)
	answer := c.PC.RemoteDescription().SDP
	if !strings.Contains(answer, "transport-wide-cc") || !strings.Contains(answer, "a=rtcp-fb:") || !strings.Contains(answer, "transport-cc") {
		t.Fatal("answer does not negotiate TWCC (extmap transport-wide-cc and rtcp-fb transport-cc)")
	}
	// That the estimate then reaches the encoder is
	// TestAdapterCongestionControlSetsEncoderBitrate.
}
