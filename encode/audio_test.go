package encode_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/framewire/framewire/encode"
)

func tone(n, rate, channels int, freq, amp float64, phase0 int) []int16 {
	pcm := make([]int16, n*channels)
	for i := range n {
		v := int16(amp * math.Sin(2*math.Pi*freq*float64(i+phase0)/float64(rate)))
		for c := range channels {
			pcm[i*channels+c] = v
		}
	}
	return pcm
}

// bestCorrelation is the highest normalised correlation of got against
// want over lags 0…maxLag (codec delay).
func bestCorrelation(want, got []int16, maxLag int) (float64, int) {
	best, bestLag := -1.0, 0
	for lag := 0; lag <= maxLag; lag++ {
		var sab, saa, sbb float64
		for i := 0; i+lag < len(got) && i < len(want); i++ {
			a, b := float64(want[i]), float64(got[i+lag])
			sab += a * b
			saa += a * a
			sbb += b * b
		}
		if c := sab / math.Sqrt(saa*sbb+1e-9); c > best {
			best, bestLag = c, lag
		}
	}
	return best, bestLag
}

type opusDecoder interface {
	Decode(pkt []byte, out []int16) (int, error)
}

// TestOpusRoundTrip encodes speech-band and music-band signals with libopus
// and decodes them with pion/opus and with FFmpeg's decoder.
func TestOpusRoundTrip(t *testing.T) {
	// 12 kbit/s gives SILK-only packets, 48 kbit/s hybrid, 160 kbit/s CELT.
	for _, bps := range []int{12_000, 48_000, 160_000} {
		t.Run(fmt.Sprint(bps), func(t *testing.T) { testOpusRoundTrip(t, bps) })
	}
}

func testOpusRoundTrip(t *testing.T, bps int) {
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{Bitrate: bps})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pion, err := encode.NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	ff, err := encode.NewFFmpegOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()

	const frames = 100
	// A 440 Hz tone plus a 3 kHz partial: exercises SILK/hybrid at 48 kbit/s.
	src := tone(frames*encode.AudioFrameSamples, 48000, 1, 440, 8000, 0)
	hi := tone(frames*encode.AudioFrameSamples, 48000, 1, 3000, 3000, 0)
	for i := range src {
		src[i] += hi[i]
	}
	pkt := make([]byte, encode.MaxOpusPacket)
	outs := map[string][]int16{}
	decs := map[string]opusDecoder{"pion/opus": pion, "ffmpeg": ff}
	buf := make([]int16, 5760)
	for f := range frames {
		n, err := enc.Encode(src[f*encode.AudioFrameSamples:(f+1)*encode.AudioFrameSamples], pkt)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("frame %d: no packet", f)
		}
		if f == 50 {
			mode := "SILK"
			if cfg := pkt[0] >> 3; cfg >= 16 {
				mode = "CELT"
			} else if cfg >= 12 {
				mode = "hybrid"
			}
			t.Logf("%d bit/s: TOC config %d (%s), %d bytes", bps, pkt[0]>>3, mode, n)
		}
		for name, d := range decs {
			m, err := d.Decode(pkt[:n], buf)
			if err != nil {
				t.Fatalf("%s frame %d: %v", name, f, err)
			}
			if m != encode.AudioFrameSamples {
				t.Fatalf("%s frame %d: %d samples, want %d", name, f, m, encode.AudioFrameSamples)
			}
			outs[name] = append(outs[name], buf[:m]...)
		}
	}
	for name, got := range outs {
		c, lag := bestCorrelation(src[4800:], got[4800:], 1000)
		t.Logf("%s: correlation %.4f at lag %d samples", name, c, lag)
		if c < 0.9 {
			t.Fatalf("%s: correlation %.3f, want ≥ 0.9", name, c)
		}
	}
	if _, err := enc.Encode(make([]int16, 100), pkt); err == nil {
		t.Fatal("encoded a 100-sample frame")
	}
	if a := testing.AllocsPerRun(50, func() {
		if _, err := enc.Encode(src[:encode.AudioFrameSamples], pkt); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("opus encode allocates %.1f times per frame", a)
	}
	n, _ := enc.Encode(src[:encode.AudioFrameSamples], pkt)
	if a := testing.AllocsPerRun(50, func() {
		if _, err := pion.Decode(pkt[:n], buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Logf("pion/opus decode allocates %.1f times per packet (its own code)", a)
	}
}

func TestResamplerMixdown(t *testing.T) {
	cases := []struct{ rate, ch int }{{44100, 2}, {16000, 1}, {48000, 2}, {24000, 6}}
	for _, c := range cases {
		r, err := encode.NewResampler(c.rate, c.ch)
		if err != nil {
			t.Fatal(err)
		}
		// One second, fed in 10 ms pieces; all channels carry the tone.
		src := tone(c.rate, c.rate, c.ch, 440, 10000, 0)
		var got []int16
		piece := c.rate / 100 * c.ch
		out := make([]int16, r.MaxOut(piece))
		for off := 0; off < len(src); off += piece {
			n, err := r.Convert(src[off:off+piece], out)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out[:n]...)
		}
		if len(got) < 48000-100 || len(got) > 48000 {
			t.Fatalf("%d Hz × %d: %d samples out of one second, want ≈48000", c.rate, c.ch, len(got))
		}
		want := tone(48000, 48000, 1, 440, 10000, 0)
		corr, _ := bestCorrelation(want[2000:40000], got[2000:], 200)
		var peak int16
		for _, v := range got[2000:] {
			peak = max(peak, v)
		}
		if corr < 0.99 || peak < 9000 || peak > 10500 {
			t.Fatalf("%d Hz × %d: correlation %.3f, peak %d; want ≥0.99 and ≈10000", c.rate, c.ch, corr, peak)
		}
		if a := testing.AllocsPerRun(20, func() { _, _ = r.Convert(src[:piece], out) }); a != 0 {
			t.Fatalf("resampler allocates %.1f per call", a)
		}
		r.Close()
		r.Close()
		if _, err := r.Convert(src[:piece], out); !errors.Is(err, encode.ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
		if n := r.MaxOut(piece); n != 0 { // used to crash in swresample
			t.Fatalf("MaxOut after Close = %d, want 0", n)
		}
	}
	if _, err := encode.NewResampler(0, 1); err == nil {
		t.Fatal("rate 0 accepted")
	}
	if _, err := encode.NewResampler(48000, 0); err == nil {
		t.Fatal("0 channels accepted")
	}
	r, _ := encode.NewResampler(48000, 2)
	defer r.Close()
	if _, err := r.Convert(make([]int16, 3), make([]int16, 10)); err == nil {
		t.Fatal("odd sample count for stereo accepted")
	}
}
