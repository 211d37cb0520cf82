package record

import (
	"bytes"
	"math"
	"testing"
)

// TestAACSilenceReused: digital silence is encoded once and its packet
// reused, and the stream is the one the encoder makes frame by frame:
// the same packets, pts and durations through silence, a tone after it
// and silence again (the encoder's state on resuming is what it would
// have been).
func TestAACSilenceReused(t *testing.T) {
	if !hasAAC() {
		t.Fatal("FFmpeg has no aac encoder: build/ffmpeg must be configured with --enable-encoder=aac (make ffmpeg)")
	}
	type pkt struct {
		data     []byte
		pts, dur int64
	}
	run := func(reuse bool) ([]pkt, int) {
		a, err := openAAC(aacBitrate)
		if err != nil {
			t.Fatal(err)
		}
		defer a.close()
		a.noReuse = !reuse
		var got []pkt
		out := func(d []byte, pts, dur int64) error {
			got = append(got, pkt{append([]byte(nil), d...), pts, dur})
			return nil
		}
		pcm := make([]int16, AudioRate/30) // one video frame's worth at a time
		for n := range 300 {               // 10 s: silence, a tone from 2 s to 4 s, silence, a tone from 8 s
			for i := range pcm {
				k := n*len(pcm) + i
				pcm[i] = 0
				if (n >= 60 && n < 120) || n >= 240 {
					pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(k)/AudioRate))
				}
			}
			if err := a.encode(pcm, out); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.flush(out); err != nil {
			t.Fatal(err)
		}
		return got, a.sent
	}
	want, sentAll := run(false)
	got, sent := run(true)
	if len(got) != len(want) {
		t.Fatalf("%d packets with reuse, %d without", len(got), len(want))
	}
	for i := range want {
		if got[i].pts != want[i].pts || got[i].dur != want[i].dur || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("packet %d: pts %d dur %d %d bytes with reuse; %d %d %d bytes without", i, got[i].pts, got[i].dur, len(got[i].data), want[i].pts, want[i].dur, len(want[i].data))
		}
	}
	if want[0].pts != -1024 {
		t.Fatalf("first packet pts %d, want -1024 (the encoder's priming)", want[0].pts)
	}
	// 6 s of the 10 are silence: all but quietRun frames of each stretch reused.
	if sentAll-sent < 6*AudioRate/1024-2*quietRun-4 {
		t.Fatalf("the encoder got %d of %d frames: silence not reused", sent, sentAll)
	}
	t.Logf("encoder fed %d of %d frames, %d packets", sent, sentAll, len(got))
}
