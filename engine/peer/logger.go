package peer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// loggerFactory sends pion's logs to one slog.Logger, scoped per pion
// component. pion's Info is demoted to Debug: it is per-connection chatter.
// So are the warnings pion writes in every normal session (see routine):
// a clean session logs nothing above Info.
type loggerFactory struct{ log *slog.Logger }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) emit(level slog.Level, msg string) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, msg)
	}
}

func (p pionLogger) Trace(msg string)                  {}
func (p pionLogger) Tracef(format string, args ...any) {}
func (p pionLogger) Debug(msg string)                  { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) {
	p.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (p pionLogger) Info(msg string) { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any) {
	p.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (p pionLogger) Warn(msg string) { p.emit(warnLevel(msg), msg) }
func (p pionLogger) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.emit(warnLevel(msg), msg)
}

// routine are fragments of the warnings pion logs in every normal session,
// which say nothing is wrong: ICE pings before a candidate pair exists,
// RTP/RTCP arriving for a stream being torn down at close, the first
// packets of a track read before its payload type is bound, and a DTLS
// packet that arrives before its endpoint (pion queues it).
var routine = []string{
	"Failed to ping without candidate pairs",
	"Failed to accept RTP",
	"Failed to accept RTCP",
	"stream is already closed",
	"Could not determine PayloadType",
	"no endpoint for packet", // a DTLS packet before its endpoint exists: pion queues it
}

// warnLevel is Warn, or Debug for a routine warning.
func warnLevel(msg string) slog.Level {
	for _, r := range routine {
		if strings.Contains(msg, r) {
			return slog.LevelDebug
		}
	}
	return slog.LevelWarn
}
func (p pionLogger) Error(msg string) { p.emit(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) {
	p.emit(slog.LevelError, fmt.Sprintf(format, args...))
}
