package encode_test

import (
	"testing"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
)

// videoSeeds encodes a few real frames of each codec so the fuzzer starts
// from valid access units and mutates them into damaged ones, as a lossy
// network or a hostile peer would.
func videoSeeds(f *testing.F, b encode.Backend) {
	const w, h = 64, 48
	e, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: b, Width: w, Height: h})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	pix := make([]byte, w*h*3)
	out := make([]byte, 1<<16)
	for i := range 3 {
		encodetest.Scene(pix, w, h, i)
		n, _, err := e.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*3000), out)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b == encode.BackendVP8, append([]byte(nil), out[:n]...))
	}
}

// FuzzVideoDecode feeds arbitrary bytes to the H.264 and VP8 decoders:
// they may return errors, never panic or crash, and every picture they
// produce converts to RGB.
func FuzzVideoDecode(f *testing.F) {
	videoSeeds(f, encode.BackendX264)
	videoSeeds(f, encode.BackendVP8)
	f.Add(false, []byte{0, 0, 0, 1, 0x67})
	f.Add(true, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
	decs := map[bool]*encode.VideoDecoder{}
	for _, vp8 := range []bool{false, true} {
		c := encode.CodecH264
		if vp8 {
			c = encode.CodecVP8
		}
		d, err := encode.NewVideoDecoder(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { d.Close() })
		decs[vp8] = d
	}
	rgb := make([]byte, 0, 1<<16)
	f.Fuzz(func(t *testing.T, vp8 bool, au []byte) {
		// One decoder per codec across inputs, like a session's receiver:
		// state left by a damaged unit must not break the next one.
		_ = decs[vp8].Decode(au, func(fr encode.Frame) error {
			w, h := fr.Size()
			if w <= 0 || h <= 0 {
				t.Fatalf("decoded a %dx%d picture", w, h)
			}
			if n := w * h * 3; cap(rgb) < n {
				rgb = make([]byte, n)
			}
			if _, err := fr.RGB(rgb[:cap(rgb)]); err != nil {
				t.Fatalf("decoded %dx%d picture does not convert: %v", w, h, err)
			}
			return nil
		})
	})
}

// FuzzOpusDecode feeds arbitrary bytes to the pion/opus decoder (the one
// inbound audio goes through) and to FFmpeg's: errors are fine, panics are
// not, and no decoder reports more samples than the buffer holds. The seeds
// are real SILK, hybrid and CELT packets and a few malformed frame counts.
func FuzzOpusDecode(f *testing.F) {
	pkt := make([]byte, encode.MaxOpusPacket)
	for i, bps := range []int{12_000, 48_000, 160_000} {
		e, err := encode.NewOpusEncoder(encode.OpusConfig{Bitrate: bps})
		if err != nil {
			f.Fatal(err)
		}
		n, err := e.Encode(tone(encode.AudioFrameSamples, encode.AudioRate, 1, 440, 8000, i), pkt)
		e.Close()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), pkt[:n]...), uint16(5760))
	}
	f.Add([]byte{0xfc, 0xff, 0xfe}, uint16(960))       // TOC code 0, CELT FB 20 ms
	f.Add([]byte{0x0b, 0x80}, uint16(960))             // code 3: frame count 0
	f.Add([]byte{0x7b, 0x03, 0xff, 0xff}, uint16(100)) // code 3 with padding
	pion, err := encode.NewOpusDecoder()
	if err != nil {
		f.Fatal(err)
	}
	ff, err := encode.NewFFmpegOpusDecoder()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ff.Close() })
	f.Fuzz(func(t *testing.T, pkt []byte, size uint16) {
		out := make([]int16, int(size)%6000)
		for name, d := range map[string]interface {
			Decode([]byte, []int16) (int, error)
		}{"pion": pion, "ffmpeg": ff} {
			n, err := d.Decode(pkt, out)
			if err == nil && (n < 0 || n > len(out)) {
				t.Fatalf("%s: %d samples into a buffer of %d", name, n, len(out))
			}
		}
	})
}
