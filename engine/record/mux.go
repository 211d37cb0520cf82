package record

import (
	"errors"
	"fmt"
	"io"

	"github.com/asticode/go-astiav"
)

// muxer writes one H.264 stream as fragmented MP4: the header (ftyp and
// an empty moov) once, then one fragment (moof + mdat) per flush. What it
// writes goes to the io.Writer set as out, so the recorder sends the
// header to init.mp4 and each segment's fragment to its own file. It is
// used by the recorder's goroutine only.
type muxer struct {
	fc   *astiav.FormatContext
	ioc  *astiav.IOContext
	pkt  *astiav.Packet
	out  io.Writer
	werr error // the first write error, which fails the muxer
}

// movFlags: a fragment only when the recorder asks (one per segment);
// the init segment (ftyp + moov) written by the first flush, once every
// track has a packet, so the moov carries the audio track's edit list
// (delay_moov: with empty_moov alone FFmpeg writes no meaningful one);
// moof-relative offsets (what HLS and MSE want) and no mfra index at the
// end (segments stand alone). FFmpeg's own HLS fMP4 output uses the same
// delay_moov scheme.
const movFlags = "+frag_custom+delay_moov+default_base_moof+skip_trailer"

// openMuxer opens the muxer for an H.264 stream (index 0) of the given
// size whose parameter sets (Annex B, start codes included) are
// extradata, and an AAC stream (index 1) from aac unless it is nil. The
// first fragment call writes the init segment (ftyp and moov) to its
// writer; the packets added before it stay for the next.
func openMuxer(extradata []byte, width, height int, aac *aacEncoder, init io.Writer) (_ *muxer, err error) {
	m := &muxer{out: init}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	if m.fc, err = astiav.AllocOutputFormatContext(nil, "mp4", ""); err != nil {
		return nil, fmt.Errorf("mp4 muxer: %w", err)
	}
	st := m.fc.NewStream(nil)
	if st == nil {
		return nil, errors.New("mp4 muxer: no stream")
	}
	cp := st.CodecParameters()
	cp.SetMediaType(astiav.MediaTypeVideo)
	cp.SetCodecID(astiav.CodecIDH264)
	cp.SetWidth(width)
	cp.SetHeight(height)
	if err = cp.SetExtraData(extradata); err != nil {
		return nil, fmt.Errorf("mp4 muxer: extradata: %w", err)
	}
	st.SetTimeBase(astiav.NewRational(1, timescale))
	if aac != nil {
		as := m.fc.NewStream(nil)
		if as == nil {
			return nil, errors.New("mp4 muxer: no audio stream")
		}
		if err = as.CodecParameters().FromCodecContext(aac.cc); err != nil {
			return nil, fmt.Errorf("mp4 muxer: audio parameters: %w", err)
		}
		as.SetTimeBase(astiav.NewRational(1, AudioRate))
	}
	if m.ioc, err = astiav.AllocIOContext(256<<10, true, nil, nil, m.write); err != nil {
		return nil, fmt.Errorf("mp4 muxer: io: %w", err)
	}
	m.fc.SetPb(m.ioc)
	d := astiav.NewDictionary()
	defer d.Free()
	if err = d.Set("movflags", movFlags, 0); err != nil {
		return nil, err
	}
	if err = m.fc.WriteHeader(d); err != nil {
		return nil, fmt.Errorf("mp4 muxer: header: %w", err)
	}
	m.ioc.Flush()
	if m.werr != nil {
		return nil, m.werr
	}
	m.pkt = astiav.AllocPacket()
	return m, nil
}

func (m *muxer) write(b []byte) (int, error) {
	if m.werr != nil {
		return 0, m.werr
	}
	if m.out == nil {
		return len(b), nil
	}
	n, err := m.out.Write(b)
	if err != nil {
		m.werr = err
	}
	return n, err
}

// packet adds one packet of stream (0: an H.264 access unit, Annex B, in
// 90 kHz ticks; 1: an AAC packet, in samples) at pts for dur.
func (m *muxer) packet(stream int, data []byte, pts, dur int64, key bool) error {
	m.pkt.Unref()
	if err := m.pkt.FromData(data); err != nil {
		return fmt.Errorf("mp4 muxer: packet: %w", err)
	}
	m.pkt.SetPts(pts)
	m.pkt.SetDts(pts)
	m.pkt.SetDuration(dur)
	m.pkt.SetStreamIndex(stream)
	if key {
		m.pkt.SetFlags(astiav.NewPacketFlags(astiav.PacketFlagKey))
	} else {
		m.pkt.SetFlags(0)
	}
	if err := m.fc.WriteFrame(m.pkt); err != nil {
		if m.werr != nil {
			return m.werr
		}
		return fmt.Errorf("mp4 muxer: write: %w", err)
	}
	return m.werr
}

// fragment writes the packets added since the last fragment as one
// fragment to out, then flushes the I/O buffer.
func (m *muxer) fragment(out io.Writer) error {
	m.out = out
	if err := m.fc.WriteFrame(nil); err != nil && m.werr == nil {
		return fmt.Errorf("mp4 muxer: fragment: %w", err)
	}
	m.ioc.Flush()
	return m.werr
}

// close frees the muxer; what is not yet fragmented is dropped. It is
// idempotent.
func (m *muxer) close() {
	if m.fc != nil && m.pkt != nil {
		m.out = nil
		_ = m.fc.WriteTrailer() // frees the muxer's state; skip_trailer writes nothing
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
	if m.ioc != nil {
		m.ioc.Free()
		m.ioc = nil
	}
}

// parameterSets returns the SPS and PPS NAL units of an Annex B access
// unit as Annex B extradata (start code, SPS, start code, PPS), or nil
// when the access unit carries neither.
func parameterSets(au []byte) []byte {
	var sps, pps []byte
	for nal := range nalUnits(au) {
		switch nal[0] & 0x1f {
		case 7:
			if sps == nil {
				sps = nal
			}
		case 8:
			if pps == nil {
				pps = nal
			}
		}
	}
	if sps == nil || pps == nil {
		return nil
	}
	out := make([]byte, 0, 8+len(sps)+len(pps))
	out = append(out, 0, 0, 0, 1)
	out = append(out, sps...)
	out = append(out, 0, 0, 0, 1)
	return append(out, pps...)
}

// nalUnits yields the NAL units of an Annex B stream, start codes
// stripped.
func nalUnits(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		start := -1
		for i := 0; i+2 < len(b); i++ {
			if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
				continue
			}
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				if end > start && !yield(b[start:end]) {
					return
				}
			}
			start = i + 3
			i += 2
		}
		if start >= 0 && start < len(b) {
			yield(b[start:])
		}
	}
}
