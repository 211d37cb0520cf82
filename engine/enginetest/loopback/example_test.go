package loopback_test

import (
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/framewire/framewire/engine/enginetest/loopback"
)

// A client peer that offers to receive video, as a browser would.
func Example() {
	pc, err := loopback.New(loopback.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	fmt.Println(err)
	// Output: <nil>
}
