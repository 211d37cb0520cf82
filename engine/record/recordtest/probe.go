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
	Duration float64 // seconds from the first packet's pts to the last one's end (the container's, not the demuxer's frame-rate guess)
	Width    int
	Height   int
	// VideoStart and AudioStart are the streams' start times (seconds)
	// as the demuxer presents them: the audio's after its edit list skips
	// the encoder's priming samples.
	VideoStart, AudioStart float64
	// AudioPackets and AudioDuration are the second stream's packets and
	// seconds from AudioStart to its last packet's end.
	AudioPackets  int
	AudioDuration float64
	// PCM is the second stream decoded (mono, or its first channel) at
	// AudioRate samples a second, when Probe was asked to decode it; its
	// first sample plays at AudioStart (the decoder drops the priming).
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
	name, err := concat(files)
	if err != nil {
		return s, err
	}
	defer os.Remove(name)
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return s, errors.New("recordtest: no format context")
	}
	defer fc.Free()
	if err := fc.OpenInput(name, nil, nil); err != nil {
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
	s.VideoStart = seconds(st[0].StartTime(), st[0].TimeBase())
	var dec *decoder
	if len(st) > 1 {
		acp := st[1].CodecParameters()
		s.Audio, s.AudioRate = acp.CodecID().Name(), acp.SampleRate()
		s.AudioStart = seconds(st[1].StartTime(), st[1].TimeBase())
		if decode {
			if dec, err = openDecoder(acp); err != nil {
				return s, err
			}
			defer dec.free()
		}
	}
	return s, s.demux(fc, dec)
}

// concat writes files one after the other into a temporary file and
// returns its name; the caller removes it.
func concat(files []string) (string, error) {
	tmp, err := os.CreateTemp("", "recordtest-*.mp4")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			_, err = tmp.Write(b)
		}
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return "", err
		}
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

func seconds(ts int64, tb astiav.Rational) float64 {
	return float64(ts) * float64(tb.Num()) / float64(tb.Den())
}

// decoder decodes the audio stream into Stream.PCM.
type decoder struct {
	cc    *astiav.CodecContext
	frame *astiav.Frame
}

func openDecoder(cp *astiav.CodecParameters) (*decoder, error) {
	c := astiav.FindDecoder(cp.CodecID())
	if c == nil {
		return nil, fmt.Errorf("recordtest: no %s decoder", cp.CodecID().Name())
	}
	d := &decoder{cc: astiav.AllocCodecContext(c)}
	if d.cc == nil {
		return nil, errors.New("recordtest: no codec context")
	}
	if err := cp.ToCodecContext(d.cc); err != nil {
		d.free()
		return nil, fmt.Errorf("recordtest: audio parameters: %w", err)
	}
	if err := d.cc.Open(c, nil); err != nil {
		d.free()
		return nil, fmt.Errorf("recordtest: open %s decoder: %w", cp.CodecID().Name(), err)
	}
	d.frame = astiav.AllocFrame()
	return d, nil
}

func (d *decoder) free() {
	if d.frame != nil {
		d.frame.Free()
	}
	d.cc.Free()
}

// demux reads every packet: the first stream's count, keyframes and
// span, the second's count and span, decoding it into s.PCM when dec is
// set.
func (s *Stream) demux(fc *astiav.FormatContext, dec *decoder) error {
	st := fc.Streams()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var first, last, end, aend int64
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			return fmt.Errorf("recordtest: read: %w", err)
		}
		switch pkt.StreamIndex() {
		case 0:
			key := pkt.Flags().Has(astiav.PacketFlagKey)
			if s.Packets == 0 {
				s.FirstKey, first = key, pkt.Pts()
			}
			s.Packets++
			last = max(last, pkt.Pts())
			if key {
				s.Keys++
			}
			end = max(end, pkt.Pts()+pkt.Duration())
		case 1:
			s.AudioPackets++
			aend = max(aend, pkt.Pts()+pkt.Duration())
			if dec != nil {
				if err := dec.cc.SendPacket(pkt); err != nil {
					return fmt.Errorf("recordtest: decode audio: %w", err)
				}
				if err := s.receive(dec.cc, dec.frame); err != nil {
					return err
				}
			}
		}
		pkt.Unref()
	}
	if dec != nil {
		if err := dec.cc.SendPacket(nil); err == nil {
			if err := s.receive(dec.cc, dec.frame); err != nil {
				return err
			}
		}
	}
	// The demuxer leaves a fragment's sample durations (trun) out of
	// the packets, and libavformat fills in one frame at the stream's
	// guessed rate (1/30 s here); the stream's duration is where the
	// container's last sample ends. A recording paced by wire time (up
	// to 100 ms a frame) ends a frame's guess away from its last pts.
	if d := st[0].Duration(); s.Packets > 0 && d > last {
		end = d
	}
	s.Duration = seconds(end-first, st[0].TimeBase())
	if len(st) > 1 && s.AudioPackets > 0 {
		s.AudioDuration = seconds(aend, st[1].TimeBase()) - s.AudioStart
	}
	return nil
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
