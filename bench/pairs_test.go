package bench

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// convertPair: encode.Converter (swscale straight from the Go picture) vs
// astiav (copy into an RGB AVFrame, ScaleFrame).
func convertPair(tb testing.TB, w, h int) (ours, base func(), allocs func() float64, closeAll func()) {
	c, err := encode.NewConverter(encode.PixelI420)
	if err != nil {
		tb.Fatal(err)
	}
	rgb, yuv := astiav.AllocFrame(), astiav.AllocFrame()
	rgb.SetWidth(w)
	rgb.SetHeight(h)
	rgb.SetPixelFormat(astiav.PixelFormatRgb24)
	yuv.SetWidth(w)
	yuv.SetHeight(h)
	yuv.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := rgb.AllocBuffer(1); err != nil {
		tb.Fatal(err)
	}
	if err := yuv.AllocBuffer(0); err != nil {
		tb.Fatal(err)
	}
	sws, err := astiav.CreateSoftwareScaleContext(w, h, astiav.PixelFormatRgb24, w, h, astiav.PixelFormatYuv420P, astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
	if err != nil {
		tb.Fatal(err)
	}
	pics := scenes(w, h, 4)
	i, j := 0, 0
	ours = func() {
		if err := c.Convert(encode.Image{Pix: pics[i%4], Width: w, Height: h}, w, h); err != nil {
			panic(err)
		}
		i++
	}
	base = func() {
		if err := rgb.Data().SetBytes(pics[j%4], 1); err != nil {
			panic(err)
		}
		if err := sws.ScaleFrame(rgb, yuv); err != nil {
			panic(err)
		}
		j++
	}
	ours()
	base()
	return ours, base, func() float64 { return testing.AllocsPerRun(10, ours) }, func() {
		c.Close()
		rgb.Free()
		yuv.Free()
		sws.Free()
	}
}

// decodePair: pipeline.VideoReceiver (decode, RGB into its buffer,
// VideoIn.Deliver into the latest buffer) vs astiav (SendPacket,
// ReceiveFrame, ScaleFrame to an RGB AVFrame, copy out to a Go buffer).
func decodePair(tb testing.TB, w, h int) (ours, base func(), allocs func() float64, closeAll func()) {
	const n = 60
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h})
	if err != nil {
		tb.Fatal(err)
	}
	pics := scenes(w, h, 8)
	buf := make([]byte, 1<<22)
	aus := make([][]byte, n)
	for i := range n {
		m, _, err := enc.Encode(encode.Image{Pix: pics[i%8], Width: w, Height: h}, int64(i*3000), buf)
		if err != nil {
			tb.Fatal(err)
		}
		aus[i] = append([]byte(nil), buf[:m]...)
	}
	enc.Close()
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("o"), tracks.VideoInput("cam")})
	if err != nil {
		tb.Fatal(err)
	}
	in, _ := set.VideoIn("cam")
	rx, err := pipeline.NewVideoReceiver(encode.CodecH264, in)
	if err != nil {
		tb.Fatal(err)
	}
	// Baseline decoder.
	c := astiav.FindDecoder(astiav.CodecIDH264)
	cc := astiav.AllocCodecContext(c)
	cc.SetThreadCount(1)
	if err := cc.Open(c, nil); err != nil {
		tb.Fatal(err)
	}
	pkt, fr, rgb := astiav.AllocPacket(), astiav.AllocFrame(), astiav.AllocFrame()
	rgb.SetWidth(w)
	rgb.SetHeight(h)
	rgb.SetPixelFormat(astiav.PixelFormatRgb24)
	if err := rgb.AllocBuffer(1); err != nil {
		tb.Fatal(err)
	}
	sws, err := astiav.CreateSoftwareScaleContext(w, h, astiav.PixelFormatYuv420P, w, h, astiav.PixelFormatRgb24, astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
	if err != nil {
		tb.Fatal(err)
	}
	latest := make([]byte, w*h*3)
	// Both decoders restart from the keyframe when they reach the end.
	i, j := 0, 0
	// Each step of either side must deliver exactly one picture: a side
	// that decoded nothing would make the ratio dishonest.
	ours = func() {
		before := rx.Frames
		if err := rx.WriteAccessUnit(aus[i%n], time.Time{}); err != nil {
			panic(err)
		}
		if rx.Frames != before+1 {
			panic(fmt.Sprintf("bench: access unit %d gave %d pictures, want 1", i%n, rx.Frames-before))
		}
		i++
	}
	base = func() {
		if err := pkt.FromData(aus[j%n]); err != nil {
			panic(err)
		}
		if err := cc.SendPacket(pkt); err != nil {
			panic(err)
		}
		pkt.Unref()
		pictures := 0
		for ; ; pictures++ {
			if err := cc.ReceiveFrame(fr); err != nil {
				if errors.Is(err, astiav.ErrEagain) {
					break
				}
				panic(err)
			}
			if err := sws.ScaleFrame(fr, rgb); err != nil {
				panic(err)
			}
			if _, err := rgb.ImageCopyToBuffer(latest, 1); err != nil {
				panic(err)
			}
			fr.Unref()
		}
		if pictures != 1 {
			panic(fmt.Sprintf("bench: baseline decoded %d pictures from access unit %d, want 1", pictures, j%n))
		}
		j++
	}
	for range 3 {
		ours()
		base()
	}
	return ours, base, func() float64 { return testing.AllocsPerRun(10, ours) }, func() {
		rx.Close()
		set.Close()
		cc.Free()
		pkt.Free()
		fr.Free()
		rgb.Free()
		sws.Free()
	}
}

func toneFrames(n int) [][]int16 {
	out := make([][]int16, n)
	for k := range out {
		f := make([]int16, encode.AudioFrameSamples)
		for i := range f {
			f[i] = int16(9000 * math.Sin(2*math.Pi*440*float64(k*len(f)+i)/48000))
		}
		out[k] = f
	}
	return out
}

// opusOutPair: encode.OpusEncoder vs astiav libopus with the same options.
func opusOutPair(tb testing.TB) (ours, base func(), allocs func() float64, closeAll func()) {
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	codec := astiav.FindEncoderByName("libopus")
	cc := astiav.AllocCodecContext(codec)
	cc.SetSampleRate(48000)
	cc.SetSampleFormat(astiav.SampleFormatS16)
	cc.SetChannelLayout(astiav.ChannelLayoutMono)
	cc.SetBitRate(48000)
	cc.SetTimeBase(astiav.NewRational(1, 48000))
	opts := astiav.NewDictionary()
	opts.Set("application", "voip", 0)
	opts.Set("frame_duration", "20", 0)
	opts.Set("fec", "1", 0)
	opts.Set("packet_loss", "10", 0)
	opts.Set("vbr", "on", 0)
	if err := cc.Open(codec, opts); err != nil {
		tb.Fatal(err)
	}
	opts.Free()
	fr, pkt := astiav.AllocFrame(), astiav.AllocPacket()
	fr.SetNbSamples(encode.AudioFrameSamples)
	fr.SetSampleFormat(astiav.SampleFormatS16)
	fr.SetChannelLayout(astiav.ChannelLayoutMono)
	fr.SetSampleRate(48000)
	if err := fr.AllocBuffer(0); err != nil {
		tb.Fatal(err)
	}
	frames := toneFrames(50)
	raw := make([][]byte, len(frames))
	for k, f := range frames {
		raw[k] = make([]byte, 2*len(f))
		for i, v := range f {
			raw[k][2*i], raw[k][2*i+1] = byte(v), byte(uint16(v)>>8)
		}
	}
	out := make([]byte, encode.MaxOpusPacket)
	i, j := 0, 0
	var pts int64
	ours = func() {
		if n, err := enc.Encode(frames[i%len(frames)], out); err != nil || n == 0 {
			panic(fmt.Sprintf("bench: opus frame gave %d bytes, err %v; want a packet", n, err))
		}
		i++
	}
	base = func() {
		if err := fr.MakeWritable(); err != nil {
			panic(err)
		}
		if err := fr.Data().SetBytes(raw[j%len(raw)], 0); err != nil {
			panic(err)
		}
		fr.SetPts(pts)
		pts += encode.AudioFrameSamples
		if err := cc.SendFrame(fr); err != nil {
			panic(err)
		}
		packets := 0
		for ; cc.ReceivePacket(pkt) == nil; packets++ {
			pkt.Unref()
		}
		if packets != 1 {
			panic(fmt.Sprintf("bench: baseline libopus gave %d packets for a frame, want 1", packets))
		}
		j++
	}
	ours()
	base()
	return ours, base, func() float64 { return testing.AllocsPerRun(10, ours) }, func() {
		enc.Close()
		cc.Free()
		fr.Free()
		pkt.Free()
	}
}

// opusInPair: pipeline.AudioReceiver (pion/opus, pure Go, into the input
// track's latest buffer) vs astiav's FFmpeg opus decoder.
func opusInPair(tb testing.TB) (ours, base func(), allocs func() float64, closeAll func()) {
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var pkts [][]byte
	buf := make([]byte, encode.MaxOpusPacket)
	for _, f := range toneFrames(50) {
		n, err := enc.Encode(f, buf)
		if err != nil {
			tb.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), buf[:n]...))
	}
	enc.Close()
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("o"), tracks.AudioInput("mic")})
	if err != nil {
		tb.Fatal(err)
	}
	in, _ := set.AudioIn("mic")
	rx, err := pipeline.NewAudioReceiver(in)
	if err != nil {
		tb.Fatal(err)
	}
	c := astiav.FindDecoder(astiav.CodecIDOpus)
	cc := astiav.AllocCodecContext(c)
	cc.SetSampleRate(48000)
	cc.SetChannelLayout(astiav.ChannelLayoutMono)
	if err := cc.Open(c, nil); err != nil {
		tb.Fatal(err)
	}
	pkt, fr := astiav.AllocPacket(), astiav.AllocFrame()
	i, j := 0, 0
	ours = func() {
		if err := rx.WritePacket(pkts[i%len(pkts)], time.Time{}); err != nil {
			panic(err)
		}
		i++
	}
	base = func() {
		if err := pkt.FromData(pkts[j%len(pkts)]); err != nil {
			panic(err)
		}
		if err := cc.SendPacket(pkt); err != nil {
			panic(err)
		}
		pkt.Unref()
		for cc.ReceiveFrame(fr) == nil {
			fr.Unref()
		}
		j++
	}
	ours()
	base()
	return ours, base, func() float64 { return testing.AllocsPerRun(10, ours) }, func() {
		set.Close()
		cc.Free()
		pkt.Free()
		fr.Free()
	}
}
