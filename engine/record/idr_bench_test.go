package record

import (
	"errors"
	"io"
	"testing"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/enginetest/y4m"
)

// BenchmarkForcedIDRBitrate measures what the IDR a recording forces at
// every segment boundary costs the live bitrate on real footage (the
// Megamind clip of the face tests, 720×528, 271 frames played at 30 fps:
// two 4 s boundaries), where BenchmarkRecording720p30's synthetic stripes,
// whose P-frames are nearly empty, make any IDR look huge. Two live
// encoders at the engine's defaults (libx264, 2.5 Mbit/s, VBV of two
// frames) encode the same pictures; one is asked for an IDR on the first
// frame of each segment, as the tap asks. It reports idr-bitrate-% (the
// second's bytes over the first's, less one), and the forced IDRs' mean
// size against the other stream's frames at the same places (idr-kB,
// same-kB) and its mean frame (mean-kB). It ignores b.N:
//
//	go test -run '^$' -bench ForcedIDRBitrate -benchtime 1x ./engine/record
func BenchmarkForcedIDRBitrate(b *testing.B) {
	r := y4m.OpenFaceVideo(b)
	var err error
	const fps, chunk = 30, 4 * 30    // frames per segment at the default chunk_seconds
	var encs [2]*encode.VideoEncoder // live, live with the recording's IDRs
	for i := range encs {
		if encs[i], err = encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendX264, Width: r.Width, Height: r.Height, FPS: fps}); err != nil {
			b.Fatal(err)
		}
		defer encs[i].Close()
	}
	out := make([]byte, r.Width*r.Height*3)
	var rgb []byte
	var bytes [2]int64
	var idrBytes, sameBytes int64
	n, forced := 0, 0
	for ; ; n++ {
		if rgb, err = r.Next(rgb); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			b.Fatal(err)
		}
		boundary := n > 0 && n%chunk == 0
		if boundary {
			encs[1].RequestKeyframe()
		}
		var sizes [2]int
		for i, e := range encs {
			m, key, err := e.Encode(encode.Image{Pix: rgb, Width: r.Width, Height: r.Height}, int64(n)*90000/fps, out)
			if err != nil {
				b.Fatal(err)
			}
			if boundary && i == 1 && !key {
				b.Fatalf("frame %d: the IDR asked for did not come", n)
			}
			sizes[i] = m
			bytes[i] += int64(m)
		}
		if boundary {
			forced++
			idrBytes, sameBytes = idrBytes+int64(sizes[1]), sameBytes+int64(sizes[0])
		}
	}
	if forced == 0 || bytes[0] == 0 {
		b.Fatalf("%d frames, %d boundaries: too short a video", n, forced)
	}
	b.Logf("%d frames of %dx%d, %d forced IDRs; live %d bytes, with IDRs %d", n, r.Width, r.Height, forced, bytes[0], bytes[1])
	b.ReportMetric(100*(float64(bytes[1])/float64(bytes[0])-1), "idr-bitrate-%")
	b.ReportMetric(float64(idrBytes)/float64(forced)/1000, "idr-kB")
	b.ReportMetric(float64(sameBytes)/float64(forced)/1000, "same-kB")
	b.ReportMetric(float64(bytes[0])/float64(n)/1000, "mean-kB")
}
