package peer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// loggerFactory sends pion's logs to one slog.Logger, scoped per pion
// component. pion's Info is demoted to Debug: it is per-connection chatter.
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
func (p pionLogger) Warn(msg string) { p.emit(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any) {
	p.emit(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (p pionLogger) Error(msg string) { p.emit(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) {
	p.emit(slog.LevelError, fmt.Sprintf(format, args...))
}
