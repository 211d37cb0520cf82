package encode

/*
#cgo pkg-config: libavutil
#include <stdarg.h>
#include <libavutil/log.h>

extern void fwGoLog(int level, char *line, int n);

static void fw_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
	if (level > av_log_get_level()) return;
	char line[1024];
	int prefix = 1;
	int n = av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
	if (n < 0) return;
	if (n >= (int)sizeof line) n = sizeof line - 1;
	fwGoLog(level, line, n);
}

static void fw_log_route(int level) {
	av_log_set_level(level);
	av_log_set_callback(fw_log_callback);
}

*/
import "C"

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ffmpegLogger is where FFmpeg's log lines go once RouteFFmpegLog has been
// called (until then, slog.Default()). It is package-level state because
// FFmpeg's log callback (av_log_set_callback) is itself one per process:
// there is nowhere else to keep it.
var ffmpegLogger atomic.Pointer[slog.Logger]

// capture, while set, receives FFmpeg's lines instead of the logger: a
// probe turns them into its reasons (FFmpeg explains a failed open only in
// its log, e.g. "Cannot load libcuda.so.1").
var capture atomic.Pointer[lineCapture]

// lineCapture keeps the first lines FFmpeg logs during a probe.
type lineCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCapture) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) < 8 && !slices.Contains(c.lines, line) {
		c.lines = append(c.lines, line)
	}
}

func (c *lineCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "; ")
}

func init() {
	// FFmpeg's default level (info) prints libx264's statistics and codec
	// chatter to stderr on every open and close. Until RouteFFmpegLog is
	// called, errors go to slog.Default() and nothing to stderr directly.
	// This is the only side effect of importing the package; it touches no
	// hardware.
	C.fw_log_route(C.AV_LOG_ERROR)
}

// RouteFFmpegLog sends FFmpeg's own log (codec warnings, libx264's
// statistics, NVENC errors) to logger: FFmpeg errors as slog.LevelError,
// warnings as slog.LevelWarn, and informational lines as slog.LevelDebug.
// FFmpeg's verbose and debug output is not collected. A nil logger sends
// FFmpeg's errors to slog.Default() (the state before the first call).
//
// FFmpeg keeps one log callback per process (av_log_set_callback), so this
// is process-wide: the last call wins. Call it once, from cmd/ or the
// engine's constructor. It is safe for concurrent use; FFmpeg may call the
// callback from its codec threads.
func RouteFFmpegLog(logger *slog.Logger) {
	if logger == nil {
		ffmpegLogger.Store(nil)
		C.fw_log_route(C.AV_LOG_ERROR)
		return
	}
	ffmpegLogger.Store(logger.With("component", "ffmpeg"))
	C.fw_log_route(C.AV_LOG_INFO)
}

// CaptureFFmpegLog runs f with FFmpeg's warnings and errors kept instead
// of logged, and returns them ("; "-joined, at most eight distinct lines;
// "" when none). For a caller that opens a codec as a probe, where a
// failure is an expected answer and FFmpeg explains it only in its log
// (h264_nvenc's "OpenEncodeSessionEx failed: unsupported device (2)" on a
// GPU without NVENC): the reason goes into the caller's error instead of
// an ERROR line. Captures are serialised with Probe's; FFmpeg's log is one
// per process, so lines other goroutines' codecs log meanwhile are kept
// too (and not logged): keep f short. f must not call Probe or
// CaptureFFmpegLog.
func CaptureFFmpegLog(f func()) string {
	probeMu.Lock()
	defer probeMu.Unlock()
	c := &lineCapture{}
	capture.Store(c)
	defer capture.Store(nil)
	f()
	return c.text()
}

//export fwGoLog
func fwGoLog(level C.int, line *C.char, n C.int) {
	if c := capture.Load(); c != nil {
		if msg := strings.TrimSpace(C.GoStringN(line, n)); msg != "" && level <= C.AV_LOG_WARNING {
			c.add(msg)
		}
		return
	}
	l := ffmpegLogger.Load()
	if l == nil {
		l = slog.Default().With("component", "ffmpeg")
	}
	lvl := slog.LevelDebug
	switch {
	case level <= C.AV_LOG_ERROR:
		lvl = slog.LevelError
	case level <= C.AV_LOG_WARNING:
		lvl = slog.LevelWarn
	}
	ctx := context.Background()
	if !l.Enabled(ctx, lvl) {
		return
	}
	msg := strings.TrimRight(C.GoStringN(line, n), "\n")
	if msg == "" {
		return
	}
	l.Log(ctx, lvl, msg)
}
