// Package recordtest reads recordings back with FFmpeg's demuxer (through
// go-astiav), for tests of package record and of the servers that record.
package recordtest

import (
	"errors"
	"fmt"
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
}

// Probe concatenates files (an init segment then media segments) into one
// temporary file and demuxes it, as a player appending them does.
func Probe(files ...string) (Stream, error) {
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
	if len(st) > 1 {
		s.Audio = st[1].CodecParameters().CodecID().Name()
	}
	tb := st[0].TimeBase()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var first, end int64
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
		pkt.Unref()
	}
	s.Duration = float64(end-first) * float64(tb.Num()) / float64(tb.Den())
	return s, nil
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
