package protocol

import (
	"testing"
	"time"
)

func TestFlowSmoke(t *testing.T) {
	ts := newTestServer(t, testConfig())
	_, c := ts.connectClient(t)
	c.WaitFrames(15, 5*time.Second)
	wh := c.FrameWH.Load()
	if int(wh>>16) != testW || int(wh&0xffff) != testH {
		t.Fatalf("frame %dx%d", wh>>16, wh&0xffff)
	}
}
