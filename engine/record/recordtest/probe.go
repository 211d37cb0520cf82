// Package recordtest reads recordings back with FFmpeg's demuxer (through
// go-astiav), for tests of package record and of the servers that record.
package recordtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/asticode/go-astiav"
)

// Stream is what the demuxer found in a recording's files.
type Stream struct {
	Codec    string  // codec of the first stream ("h264")
	Audio    string  // codec of the second stream ("aac"), "" when none
	Streams  int     // number of streams
	Packets  int     // packets read
	Keys     int     // keyframes among them
	FirstKey bool    // the first packet is a keyframe
	Duration float64 // seconds from the first packet's pts to the last one's end
	Width    int
	Height   int
	// AudioPackets and AudioDuration are the second stream's packets and
	// seconds from its first packet's pts to its last one's end.
	AudioPackets  int
	AudioDuration float64
	// PCM is the second stream decoded (mono, or its first channel) at
	// AudioRate samples a second, when Probe was asked to decode it.
	PCM       []float32
	AudioRate int
}

// Probe concatenates files (an init segment then media segments) into one
// temporary file and demuxes it, as a player appending them does.
func Probe(files ...string) (Stream, error) { return probe(false, files) }

// ProbeAudio is Probe that also decodes the audio stream with FFmpeg's
// aac decoder into Stream.PCM.
func ProbeAudio(files ...string) (Stream, error) { return probe(true, files) }

func probe(decode bool, files []string) (Stream, error) {
	var s Stream
	tmp, err := os.CreateTemp("", "recordtest-*.mp4")
	if err != nil {
		return s, err
	}
	defer os.Remove(tmp.Name())
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tmp.Close()
			return s, err
		}
		if _, err := tmp.Write(b); err != nil {
			tmp.Close()
			return s, err
		}
	}
	if err := tmp.Close(); err != nil {
		return s, err
	}
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return s, errors.New("recordtest: no format context")
	}
	defer fc.Free()
	if err := fc.OpenInput(tmp.Name(), nil, nil); err != nil {
		return s, fmt.Errorf("recordtest: open %v: %w", files, err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		return s, fmt.Errorf("recordtest: stream info: %w", err)
	}
	st := fc.Streams()
	s.Streams = len(st)
	if len(st) == 0 {
		return s, errors.New("recordtest: no stream")
	}
	cp := st[0].CodecParameters()
	s.Codec, s.Width, s.Height = cp.CodecID().Name(), cp.Width(), cp.Height()
	var dec *astiav.CodecContext
	var frame *astiav.Frame
	if len(st) > 1 {
		acp := st[1].CodecParameters()
		s.Audio, s.AudioRate = acp.CodecID().Name(), acp.SampleRate()
		if decode {
			c := astiav.FindDecoder(acp.CodecID())
			if c == nil {
				return s, fmt.Errorf("recordtest: no %s decoder", s.Audio)
			}
			if dec = astiav.AllocCodecContext(c); dec == nil {
				return s, errors.New("recordtest: no codec context")
			}
			defer dec.Free()
			if err := acp.ToCodecContext(dec); err != nil {
				return s, fmt.Errorf("recordtest: audio parameters: %w", err)
			}
			if err := dec.Open(c, nil); err != nil {
				return s, fmt.Errorf("recordtest: open %s decoder: %w", s.Audio, err)
			}
			frame = astiav.AllocFrame()
			defer frame.Free()
		}
	}
	tb := st[0].TimeBase()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var first, end, afirst, aend int64
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			return s, fmt.Errorf("recordtest: read: %w", err)
		}
		if pkt.StreamIndex() == 0 {
			key := pkt.Flags().Has(astiav.PacketFlagKey)
			if s.Packets == 0 {
				s.FirstKey, first = key, pkt.Pts()
			}
			s.Packets++
			if key {
				s.Keys++
			}
			end = max(end, pkt.Pts()+pkt.Duration())
		}
		if pkt.StreamIndex() == 1 {
			if s.AudioPackets == 0 {
				afirst = pkt.Pts()
			}
			s.AudioPackets++
			aend = max(aend, pkt.Pts()+pkt.Duration())
			if dec != nil {
				if err := dec.SendPacket(pkt); err != nil {
					return s, fmt.Errorf("recordtest: decode audio: %w", err)
				}
				if err := s.receive(dec, frame); err != nil {
					return s, err
				}
			}
		}
		pkt.Unref()
	}
	if dec != nil {
		if err := dec.SendPacket(nil); err == nil {
			if err := s.receive(dec, frame); err != nil {
				return s, err
			}
		}
	}
	s.Duration = float64(end-first) * float64(tb.Num()) / float64(tb.Den())
	if len(st) > 1 {
		atb := st[1].TimeBase()
		s.AudioDuration = float64(aend-afirst) * float64(atb.Num()) / float64(atb.Den())
	}
	return s, nil
}

// receive appends the decoder's frames' first channel to s.PCM.
func (s *Stream) receive(dec *astiav.CodecContext, f *astiav.Frame) error {
	for {
		err := dec.ReceiveFrame(f)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("recordtest: decode audio: %w", err)
		}
		if f.SampleFormat() != astiav.SampleFormatFltp {
			f.Unref()
			return fmt.Errorf("recordtest: decoded audio is %s, want fltp", f.SampleFormat().Name())
		}
		b, err := f.Data().Bytes(1)
		if err != nil {
			f.Unref()
			return fmt.Errorf("recordtest: audio samples: %w", err)
		}
		for i := range f.NbSamples() { // the first plane: channel 0
			s.PCM = append(s.PCM, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
		f.Unref()
	}
}

// Segments returns the paths of dir's init.mp4 and of its media segments
// first..last (chunk_NNNNN.m4s).
func Segments(dir string, first, last int) []string {
	out := []string{filepath.Join(dir, "init.mp4")}
	for k := first; k <= last; k++ {
		out = append(out, filepath.Join(dir, fmt.Sprintf("chunk_%05d.m4s", k)))
	}
	return out
}
