package record

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/asticode/go-astiav"
)

// AudioRate is the recorded audio's sample rate: the pipeline's (48 kHz
// mono, the PCM the model emitted as it is played out).
const AudioRate = 48000

// aacBitrate is the runtime's default audio bitrate (audio.bitrate_kbps).
const aacBitrate = 128_000

// aacEncoder encodes 48 kHz mono PCM to AAC-LC with FFmpeg's native
// encoder, 1024 samples a packet. It is used by the recorder's goroutine
// only.
type aacEncoder struct {
	cc    *astiav.CodecContext
	frame *astiav.Frame
	pkt   *astiav.Packet
	fifo  []float32 // samples not yet in a frame
	plane []byte    // one frame's samples as float32 bytes
	in    int64     // pts (samples) of the next frame in
	out   int64     // pts of the next packet out (from the encoder's first: minus its priming)
	began bool      // a packet came out: out is set
	// Digital silence is encoded once: after quietRun silent frames in a
	// row the encoder's window holds nothing else, and its packet for
	// another silent frame is silence's (a model without audio records
	// silence every 21 ms).
	quiet   int    // silent frames in a row sent to the encoder
	silence []byte // the packet the encoder made for silence, once known
	sent    int    // frames sent to the encoder
	noReuse bool   // tests: send every frame
}

// quietRun is how many silent frames in a row the encoder must have seen
// before its packet is silence's: the frame and the two before it, more
// than the 2048-sample MDCT window with its overlap spans.
const quietRun = 3

// hasAAC reports whether the FFmpeg build has its native AAC encoder.
// The repository's build (build/ffmpeg) has it; an FFmpeg built without
// it records video only, logged once per recorder.
var hasAAC = sync.OnceValue(func() bool { return astiav.FindEncoderByName("aac") != nil })

func openAAC(bitrate int) (_ *aacEncoder, err error) {
	c := astiav.FindEncoderByName("aac")
	if c == nil {
		return nil, errors.New("record: FFmpeg has no aac encoder")
	}
	a := &aacEncoder{}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.cc = astiav.AllocCodecContext(c); a.cc == nil {
		return nil, errors.New("record: aac: no codec context")
	}
	a.cc.SetSampleRate(AudioRate)
	a.cc.SetSampleFormat(astiav.SampleFormatFltp)
	a.cc.SetChannelLayout(astiav.ChannelLayoutMono)
	a.cc.SetBitRate(int64(bitrate))
	a.cc.SetTimeBase(astiav.NewRational(1, AudioRate))
	// GlobalHeader: the AudioSpecificConfig in extradata, for the moov.
	// Bitexact: no "Lavc" identification element every 256 packets, so
	// silence's packet is always the same (reused, see encode).
	a.cc.SetFlags(a.cc.Flags().Add(astiav.CodecContextFlagGlobalHeader).Add(astiav.CodecContextFlagBitexact))
	if err = a.cc.Open(c, nil); err != nil {
		return nil, fmt.Errorf("record: open aac encoder: %w", err)
	}
	n := a.cc.FrameSize()
	a.frame = astiav.AllocFrame()
	a.frame.SetNbSamples(n)
	a.frame.SetSampleFormat(astiav.SampleFormatFltp)
	a.frame.SetChannelLayout(astiav.ChannelLayoutMono)
	a.frame.SetSampleRate(AudioRate)
	if err = a.frame.AllocBuffer(0); err != nil {
		return nil, fmt.Errorf("record: aac frame: %w", err)
	}
	a.pkt = astiav.AllocPacket()
	a.fifo = make([]float32, 0, 4*n)
	a.plane = make([]byte, 4*n)
	return a, nil
}

// frameSize is the samples per AAC packet.
func (a *aacEncoder) frameSize() int { return a.cc.FrameSize() }

// encode adds pcm and hands each finished packet (data valid during the
// call, pts and duration in samples) to out.
func (a *aacEncoder) encode(pcm []int16, out func(data []byte, pts, dur int64) error) error {
	for _, v := range pcm {
		a.fifo = append(a.fifo, float32(v)/32768)
	}
	n := a.frameSize()
	for len(a.fifo) >= n {
		silent := isSilent(a.fifo[:n])
		if silent && a.quiet >= quietRun && a.silence != nil && a.began && !a.noReuse {
			// The packet the encoder would make: silence's, reused.
			a.fifo = a.fifo[:copy(a.fifo, a.fifo[n:])]
			a.in += int64(n)
			pts := a.out
			a.out += int64(n)
			if err := out(a.silence, pts, int64(n)); err != nil {
				return err
			}
			continue
		}
		if silent {
			a.quiet++
		} else {
			a.quiet = 0
		}
		if err := a.frame.MakeWritable(); err != nil {
			return fmt.Errorf("record: aac: %w", err)
		}
		for i, f := range a.fifo[:n] {
			putFloat32(a.plane[4*i:], f)
		}
		if err := a.frame.Data().SetBytes(a.plane, 1); err != nil {
			return fmt.Errorf("record: aac: %w", err)
		}
		a.frame.SetPts(a.in)
		a.in += int64(n)
		a.fifo = a.fifo[:copy(a.fifo, a.fifo[n:])]
		if err := a.cc.SendFrame(a.frame); err != nil {
			return fmt.Errorf("record: aac encode: %w", err)
		}
		a.sent++
		if err := a.drain(out); err != nil {
			return err
		}
	}
	return nil
}

// drain hands every packet the encoder has ready to out with the
// encoder's timestamps: the first packet's pts is minus the encoder's
// priming delay (codecpar initial_padding, 1024 samples), which the muxer
// writes as the audio track's edit list, so sample 0 of the PCM plays
// with video tick 0.
//
// Packets are numbered in order from the first (each frameSize long), so
// the silent packets encode hands out in place of the encoder's keep the
// timeline: every frame in gives one packet out, the encoder's one frame
// late, whose content is the same whichever comes first in silence.
func (a *aacEncoder) drain(out func(data []byte, pts, dur int64) error) error {
	n := int64(a.frameSize())
	for {
		err := a.cc.ReceivePacket(a.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record: aac encode: %w", err)
		}
		if !a.began {
			a.out, a.began = a.pkt.Pts(), true
		}
		pts := a.out
		a.out += n
		if a.quiet >= quietRun && a.silence == nil {
			a.silence = append([]byte(nil), a.pkt.Data()...)
		}
		err = out(a.pkt.Data(), pts, n)
		a.pkt.Unref()
		if err != nil {
			return err
		}
	}
}

// flush pads what is buffered to a whole packet and drains the encoder.
func (a *aacEncoder) flush(out func(data []byte, pts, dur int64) error) error {
	if k := len(a.fifo) % a.frameSize(); k != 0 {
		pad := make([]int16, a.frameSize()-k)
		if err := a.encode(pad, out); err != nil {
			return err
		}
	}
	if err := a.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("record: aac flush: %w", err)
	}
	return a.drain(out)
}

func (a *aacEncoder) close() {
	if a.pkt != nil {
		a.pkt.Free()
		a.pkt = nil
	}
	if a.frame != nil {
		a.frame.Free()
		a.frame = nil
	}
	if a.cc != nil {
		a.cc.Free()
		a.cc = nil
	}
}

// isSilent reports whether every sample of f is zero.
func isSilent(f []float32) bool {
	for _, v := range f {
		if v != 0 {
			return false
		}
	}
	return true
}

func putFloat32(b []byte, f float32) {
	u := math.Float32bits(f)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}
