package enginetest_test

import (
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
)

// In a test (this example is compiled, not run): a real pion offer for a model with one video output, and a
// condition polled with a deadline instead of a sleep.
func ExampleRecvOffer() {
	t := &testing.T{} // in a real test, the test's *testing.T
	offer := enginetest.RecvOffer(t, peer.KindVideo)
	mapping := []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
	enginetest.Eventually(t, time.Second, "the offer maps main_video", func() bool { return offer.Check(mapping) == nil })
}
