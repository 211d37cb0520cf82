package pipeline

import (
	"context"
	"time"
)

// Clock is the time source of a pipeline. The system clock is used when a
// config leaves it nil; tests and simulations supply a fake one. A Clock
// must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// SleepUntil blocks until the clock reaches t or ctx ends, and then
	// returns context.Cause(ctx). It returns at once for a t not after Now.
	SleepUntil(ctx context.Context, t time.Time) error
}

// systemClock is the wall clock. Each pipeline goroutine that sleeps owns
// its own, so its timer is reused without locking or allocation.
type systemClock struct{ timer *time.Timer }

func newSystemClock() *systemClock {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &systemClock{timer: t}
}

func (c *systemClock) Now() time.Time { return time.Now() }

func (c *systemClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return context.Cause(ctx)
	}
	c.timer.Reset(d)
	select {
	case <-c.timer.C:
		return nil
	case <-ctx.Done():
		c.timer.Stop()
		return context.Cause(ctx)
	}
}
