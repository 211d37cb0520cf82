package recordtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// FFprobePath returns the repository's ffprobe, build/ffmpeg/bin/ffprobe
// under the module root (found by walking up from the working
// directory to go.mod), and the library folder it needs. The error wraps
// fs.ErrNotExist when the build has none.
func FFprobePath() (bin, lib string, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", "", fmt.Errorf("recordtest: no go.mod above the working directory: %w", fs.ErrNotExist)
		}
		dir = up
	}
	bin = filepath.Join(dir, "build", "ffmpeg", "bin", "ffprobe")
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("recordtest: ffprobe (make ffmpeg builds it): %w", err)
	}
	return bin, filepath.Join(dir, "build", "ffmpeg", "lib"), nil
}

// Probed is what ffprobe, a demuxer outside Framewire's code, reads from
// a clip through its hls demuxer.
type Probed struct {
	Streams  []string  // "video:h264", "audio:aac", in stream order
	Duration float64   // the format's duration, seconds
	Video    float64   // seconds from the first video packet to the last one's end
	Audio    float64   // the same for the audio stream (0 when none)
	Segments []float64 // the playlist's #EXTINF durations, in order
	// VideoStart and AudioStart are when each stream's first sample is
	// presented, seconds: the first packet's pts plus the samples its
	// skip_samples side data (the audio track's edit list skipping the
	// encoder's priming) drops. Audio is measured from AudioStart.
	VideoStart, AudioStart float64
	// SegmentKeys[k] reports whether the first video packet of segment k
	// (at or after the sum of the earlier segments' durations) is a
	// keyframe (ffprobe's packet flag K).
	SegmentKeys []bool
	Packets     int // video packets
}

// FFprobeHLS writes playlist (a /clips answer) next to files (its init
// segment then its media segments, in playlist order, as downloaded)
// with each URI replaced by its file, and reads it with ffprobe's hls
// demuxer: streams, durations, start times, and the keyframe at each
// segment's start.
func FFprobeHLS(playlist string, files []string) (Probed, error) {
	var p Probed
	local, segs, err := localPlaylist(playlist, files)
	if err != nil {
		return p, err
	}
	p.Segments = segs
	m3u := filepath.Join(filepath.Dir(files[0]), "local.m3u8")
	if err := os.WriteFile(m3u, []byte(local), 0o644); err != nil {
		return p, err
	}
	r, err := runFFprobe(m3u)
	if err != nil {
		return p, err
	}
	return p, p.read(r)
}

// localPlaylist returns playlist with its URIs replaced by files, in
// order, and its #EXTINF durations.
func localPlaylist(playlist string, files []string) (string, []float64, error) {
	var local strings.Builder
	var segs []float64
	i := 0
	next := func() (string, error) {
		if i >= len(files) {
			return "", errors.New("recordtest: more URIs in the playlist than files")
		}
		i++
		return files[i-1], nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(playlist, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, `#EXT-X-MAP:URI="`):
			f, err := next()
			if err != nil {
				return "", nil, err
			}
			l = `#EXT-X-MAP:URI="` + f + `"`
		case strings.HasPrefix(l, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			if err != nil {
				return "", nil, fmt.Errorf("recordtest: %q: %w", l, err)
			}
			segs = append(segs, d)
		case l != "" && !strings.HasPrefix(l, "#"):
			f, err := next()
			if err != nil {
				return "", nil, err
			}
			l = f
		}
		local.WriteString(l + "\n")
	}
	if i != len(files) {
		return "", nil, fmt.Errorf("recordtest: %d URIs in the playlist, %d files", i, len(files))
	}
	return local.String(), segs, nil
}

// probeOut is the part of ffprobe's JSON that Probed reads.
type probeOut struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		SampleRate string `json:"sample_rate"`
	} `json:"streams"`
	Packets []struct {
		CodecType    string `json:"codec_type"`
		PtsTime      string `json:"pts_time"`
		DurationTime string `json:"duration_time"`
		Flags        string `json:"flags"`
		SideData     []struct {
			SkipSamples int `json:"skip_samples"`
		} `json:"side_data_list"`
	} `json:"packets"`
}

// runFFprobe runs the repository's ffprobe on the local playlist m3u;
// anything it says on stderr is an error.
func runFFprobe(m3u string) (probeOut, error) {
	var r probeOut
	bin, lib, err := FFprobePath()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(bin, "-v", "error", "-f", "hls", "-protocol_whitelist", "file", "-allowed_extensions", "ALL",
		"-print_format", "json", "-show_format", "-show_streams", "-show_packets", m3u)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return r, fmt.Errorf("recordtest: ffprobe: %w: %s", err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		return r, fmt.Errorf("recordtest: ffprobe reports errors: %s", stderr.Bytes())
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("recordtest: ffprobe output: %w", err)
	}
	return r, nil
}

// read fills p from ffprobe's answer (p.Segments already set).
func (p *Probed) read(r probeOut) error {
	p.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	rate := 0.0
	for _, s := range r.Streams {
		p.Streams = append(p.Streams, s.CodecType+":"+s.CodecName)
		if s.CodecType == "audio" {
			rate, _ = strconv.ParseFloat(s.SampleRate, 64)
		}
	}
	type span struct{ first, end float64 }
	spans := map[string]*span{}
	var vpts []float64
	var vkey []bool
	for _, k := range r.Packets {
		pts, err := strconv.ParseFloat(k.PtsTime, 64)
		if err != nil {
			return fmt.Errorf("recordtest: packet pts %q: %w", k.PtsTime, err)
		}
		dur, _ := strconv.ParseFloat(k.DurationTime, 64)
		s := spans[k.CodecType]
		if s == nil {
			start := pts
			for _, sd := range k.SideData { // the first packet's skipped samples are not presented
				if sd.SkipSamples > 0 && rate > 0 {
					start += float64(sd.SkipSamples) / rate
				}
			}
			s = &span{first: start, end: start}
			spans[k.CodecType] = s
		}
		s.end = max(s.end, pts+dur)
		if k.CodecType == "video" {
			vpts = append(vpts, pts)
			vkey = append(vkey, strings.HasPrefix(k.Flags, "K"))
		}
	}
	if s := spans["video"]; s != nil {
		p.Video, p.VideoStart = s.end-s.first, s.first
	}
	if s := spans["audio"]; s != nil {
		p.Audio, p.AudioStart = s.end-s.first, s.first
	}
	p.Packets = len(vpts)
	p.SegmentKeys = segmentKeys(p.Segments, p.VideoStart, vpts, vkey)
	return nil
}

// segmentKeys reports, for each segment of the given durations from
// start, whether its first video packet is a keyframe.
func segmentKeys(segs []float64, start float64, vpts []float64, vkey []bool) []bool {
	if len(vpts) == 0 {
		return nil
	}
	var keys []bool
	for _, d := range segs {
		key := false
		for j, t := range vpts { // packets are in decode order; the recording has no B-frames
			if t >= start-0.0005 {
				key = vkey[j]
				break
			}
		}
		keys = append(keys, key)
		start += d
	}
	return keys
}
