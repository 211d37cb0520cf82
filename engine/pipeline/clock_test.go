package pipeline_test

import (
	"context"
	"sync"
	"time"
)

// fakeClock is a simulated clock. In jump mode SleepUntil moves time
// forward itself (a discrete-event simulation for one goroutine); in
// manual mode sleepers wait until the test calls Advance.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	jump bool
	cond chan struct{} // closed and replaced whenever now moves
}

func newFakeClock(jump bool) *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), jump: jump, cond: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
		close(c.cond)
		c.cond = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	for {
		c.mu.Lock()
		if !t.After(c.now) {
			c.mu.Unlock()
			return context.Cause(ctx)
		}
		if c.jump {
			c.now = t
			close(c.cond)
			c.cond = make(chan struct{})
			c.mu.Unlock()
			return context.Cause(ctx)
		}
		wait := c.cond
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
