package encode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// ProbeResult is what probing found out about one backend.
type ProbeResult struct {
	Backend Backend
	Err     error // nil when the backend opened and encoded a test frame
}

// ErrNoBackend is returned by Probe when no backend allowed by the
// negotiated codecs works on this host.
var ErrNoBackend = errors.New("encode: no usable video encoder")

// probeOrder is the preference: NVENC (no CPU cost), then libx264, then VP8.
var probeOrder = [...]Backend{BackendNVENC, BackendX264, BackendVP8}

// Probe picks the video backend for codecs the client negotiated
// (allowed; nil allows every codec). It opens each candidate, in the order
// h264_nvenc, libx264, libvpx_vp8, at a small size, encodes one frame, and
// keeps the first that works. It returns the choice, the result of every
// candidate it tried (with the reason each rejected one failed), and an
// error wrapping ErrNoBackend when none worked. The choice is logged once
// at info level, each rejection at debug. Probing takes a few tens of
// milliseconds (NVENC's failure to find a GPU is the slow part); call it
// once at engine start, not per session. It is safe for concurrent use.
func Probe(ctx context.Context, logger *slog.Logger, allowed []Codec) (Backend, []ProbeResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var results []ProbeResult
	for _, b := range probeOrder {
		if err := context.Cause(ctx); err != nil {
			return "", results, err
		}
		if allowed != nil && !slices.Contains(allowed, b.Codec()) {
			results = append(results, ProbeResult{Backend: b, Err: fmt.Errorf("%w: client did not negotiate %s", ErrUnavailable, b.Codec())})
			continue
		}
		err := probeOne(b)
		results = append(results, ProbeResult{Backend: b, Err: err})
		if err != nil {
			logger.Debug("video encoder unavailable", "backend", b, "reason", err)
			continue
		}
		attrs := []any{"backend", b, "codec", b.Codec()}
		for _, r := range results[:len(results)-1] {
			attrs = append(attrs, "skipped_"+string(r.Backend), r.Err.Error())
		}
		logger.Info("video encoder chosen", attrs...)
		return b, results, nil
	}
	var reasons []string
	for _, r := range results {
		reasons = append(reasons, string(r.Backend)+": "+r.Err.Error())
	}
	err := fmt.Errorf("%w (allowed codecs %v): %s", ErrNoBackend, allowed, strings.Join(reasons, "; "))
	logger.Error("no video encoder", "err", err)
	return "", results, err
}

// probeMu serialises probes: while one runs, FFmpeg's log is captured
// into its reasons (the capture is process-wide, like FFmpeg's log).
var probeMu sync.Mutex

// probeOne opens b at 256×144 and encodes one grey frame. What FFmpeg logs
// meanwhile (a missing driver, an unsupported GPU) goes into the error
// instead of the log: a failed probe is an expected answer, not an error
// of the process.
func probeOne(b Backend) error {
	probeMu.Lock()
	defer probeMu.Unlock()
	c := &lineCapture{}
	capture.Store(c)
	err := tryEncode(b)
	capture.Store(nil)
	if err != nil && c.text() != "" {
		return fmt.Errorf("%w (FFmpeg: %s)", err, c.text())
	}
	return err
}

// tryEncode opens b at 256×144 and encodes one grey frame.
func tryEncode(b Backend) error {
	const w, h = 256, 144
	e, err := NewVideoEncoder(VideoConfig{Backend: b, Width: w, Height: h, Bitrate: 300_000})
	if err != nil {
		return err
	}
	defer e.Close()
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = 128
	}
	out := make([]byte, 1<<20)
	if _, _, err := e.Encode(Image{Pix: pix, Width: w, Height: h}, 0, out); err != nil {
		return fmt.Errorf("%w: %s test encode: %w", ErrUnavailable, b, err)
	}
	return nil
}
