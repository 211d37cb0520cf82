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
	// SegmentKeys[k] reports whether the first video packet of segment k
	// (at or after the sum of the earlier segments' durations) is a
	// keyframe (ffprobe's packet flag K).
	SegmentKeys []bool
	Packets     int // video packets
}

// FFprobeHLS writes playlist (a /clips answer) next to files (its init
// segment then its media segments, in playlist order, as downloaded)
// with each URI replaced by its file, and reads it with ffprobe's hls
// demuxer: streams, durations, and the keyframe at each segment's start.
func FFprobeHLS(playlist string, files []string) (Probed, error) {
	var p Probed
	bin, lib, err := FFprobePath()
	if err != nil {
		return p, err
	}
	var local strings.Builder
	i := 0
	for _, l := range strings.Split(strings.TrimSuffix(playlist, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, `#EXT-X-MAP:URI="`):
			if i >= len(files) {
				return p, errors.New("recordtest: more URIs in the playlist than files")
			}
			l = `#EXT-X-MAP:URI="` + files[i] + `"`
			i++
		case strings.HasPrefix(l, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			if err != nil {
				return p, fmt.Errorf("recordtest: %q: %w", l, err)
			}
			p.Segments = append(p.Segments, d)
		case l != "" && !strings.HasPrefix(l, "#"):
			if i >= len(files) {
				return p, errors.New("recordtest: more URIs in the playlist than files")
			}
			l = files[i]
			i++
		}
		local.WriteString(l + "\n")
	}
	if i != len(files) {
		return p, fmt.Errorf("recordtest: %d URIs in the playlist, %d files", i, len(files))
	}
	m3u := filepath.Join(filepath.Dir(files[0]), "local.m3u8")
	if err := os.WriteFile(m3u, []byte(local.String()), 0o644); err != nil {
		return p, err
	}
	cmd := exec.Command(bin, "-v", "error", "-f", "hls", "-protocol_whitelist", "file", "-allowed_extensions", "ALL",
		"-print_format", "json", "-show_format", "-show_streams", "-show_packets", m3u)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return p, fmt.Errorf("recordtest: ffprobe: %w: %s", err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		return p, fmt.Errorf("recordtest: ffprobe reports errors: %s", stderr.Bytes())
	}
	var r struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Packets []struct {
			CodecType    string `json:"codec_type"`
			PtsTime      string `json:"pts_time"`
			DurationTime string `json:"duration_time"`
			Flags        string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return p, fmt.Errorf("recordtest: ffprobe output: %w", err)
	}
	p.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	for _, s := range r.Streams {
		p.Streams = append(p.Streams, s.CodecType+":"+s.CodecName)
	}
	type span struct{ first, end float64 }
	spans := map[string]*span{}
	var vpts []float64
	var vkey []bool
	for _, k := range r.Packets {
		pts, err := strconv.ParseFloat(k.PtsTime, 64)
		if err != nil {
			return p, fmt.Errorf("recordtest: packet pts %q: %w", k.PtsTime, err)
		}
		dur, _ := strconv.ParseFloat(k.DurationTime, 64)
		s := spans[k.CodecType]
		if s == nil {
			s = &span{first: pts}
			spans[k.CodecType] = s
		}
		s.first, s.end = min(s.first, pts), max(s.end, pts+dur)
		if k.CodecType == "video" {
			vpts = append(vpts, pts)
			vkey = append(vkey, strings.HasPrefix(k.Flags, "K"))
		}
	}
	if s := spans["video"]; s != nil {
		p.Video = s.end - s.first
	}
	if s := spans["audio"]; s != nil {
		p.Audio = s.end - s.first
	}
	p.Packets = len(vpts)
	if len(vpts) == 0 {
		return p, nil
	}
	start := spans["video"].first
	for _, d := range p.Segments {
		key := false
		for j, t := range vpts { // packets are in decode order; the recording has no B-frames
			if t >= start-0.0005 {
				key = vkey[j]
				break
			}
		}
		p.SegmentKeys = append(p.SegmentKeys, key)
		start += d
	}
	return p, nil
}
