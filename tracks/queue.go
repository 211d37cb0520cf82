package tracks

import (
	"context"
	"sync"
	"sync/atomic"
)

// outQueue is the bounded FIFO between Emit (producer, the model) and Next
// (one consumer, the pipeline), plus a free list of recycled frames so that
// steady-state Emit allocates nothing.
type outQueue[F any] struct {
	mu      sync.Mutex
	ring    []*F
	head, n int
	free    []*F
	closed  bool
	policy  Policy

	ready chan struct{} // cap 1: a frame was queued
	room  chan struct{} // cap 1: a frame was taken
	done  chan struct{} // closed by close

	recycle func(f *F, dropped bool) // called (without mu) on frames the queue discards: dropped (full) or at close

	emitted, dropped, rejected atomic.Uint64
	blocked                    atomic.Int64 // producers waiting for room now (Backpressure)
}

func (q *outQueue[F]) init(size int, p Policy, recycle func(*F, bool)) {
	if size <= 0 {
		size = DefaultQueueSize
	}
	q.ring = make([]*F, size)
	q.free = make([]*F, 0, size+2)
	q.policy = p
	q.ready = make(chan struct{}, 1)
	q.room = make(chan struct{}, 1)
	q.done = make(chan struct{})
	q.recycle = recycle
}

// get returns a recycled frame or nil.
func (q *outQueue[F]) get() *F {
	q.mu.Lock()
	defer q.mu.Unlock()
	if k := len(q.free); k > 0 {
		f := q.free[k-1]
		q.free[k-1] = nil
		q.free = q.free[:k-1]
		return f
	}
	return nil
}

// put keeps f for reuse if the free list has room.
func (q *outQueue[F]) put(f *F) {
	q.mu.Lock()
	if len(q.free) < cap(q.free) {
		q.free = append(q.free, f)
	}
	q.mu.Unlock()
}

// grow makes the ring hold at least n frames (a whole batch).
func (q *outQueue[F]) grow(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n <= len(q.ring) {
		return
	}
	r := make([]*F, n)
	for i := 0; i < q.n; i++ {
		r[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = r, 0
	free := make([]*F, len(q.free), n+2)
	copy(free, q.free)
	q.free = free
}

func (q *outQueue[F]) pop() *F {
	f := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return f
}

// push queues f according to the policy, waiting for room forever under
// Backpressure. It returns ErrClosed (and recycles f) if the queue is
// closed.
func (q *outQueue[F]) push(f *F) error { return q.pushCtx(context.Background(), f) }

// pushCtx is push whose wait for room (Backpressure) also ends with ctx:
// then f is recycled and context.Cause(ctx) returned.
func (q *outQueue[F]) pushCtx(ctx context.Context, f *F) error {
	q.mu.Lock()
	for q.n == len(q.ring) && !q.closed {
		if q.policy == DropOldest {
			old := q.pop()
			q.dropped.Add(1)
			q.mu.Unlock()
			q.recycle(old, true)
			q.mu.Lock()
			continue
		}
		q.mu.Unlock()
		q.blocked.Add(1)
		select {
		case <-q.room:
		case <-q.done:
		case <-ctx.Done():
			q.blocked.Add(-1)
			q.recycle(f, false)
			return context.Cause(ctx)
		}
		q.blocked.Add(-1)
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		q.recycle(f, false)
		return ErrClosed
	}
	q.ring[(q.head+q.n)%len(q.ring)] = f
	q.n++
	q.emitted.Add(1)
	roomLeft := q.n < len(q.ring)
	q.mu.Unlock()
	signal(q.ready)
	if roomLeft && q.policy == Block {
		signal(q.room) // pass the wake-up on to another blocked producer
	}
	return nil
}

func (q *outQueue[F]) tryNext() (*F, bool) {
	q.mu.Lock()
	if q.n == 0 {
		q.mu.Unlock()
		return nil, false
	}
	f := q.pop()
	more := q.n > 0
	q.mu.Unlock()
	signal(q.room)
	if more {
		signal(q.ready) // pass the wake-up on to another consumer
	}
	return f, true
}

func (q *outQueue[F]) next(ctx context.Context) (*F, error) {
	for {
		if f, ok := q.tryNext(); ok {
			return f, nil
		}
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-q.ready:
		case <-q.done:
		}
	}
}

// close discards queued frames, wakes every waiter and makes push and next
// return ErrClosed. It is idempotent.
func (q *outQueue[F]) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	close(q.done)
	var pending []*F
	for q.n > 0 {
		pending = append(pending, q.pop())
	}
	q.mu.Unlock()
	for _, f := range pending {
		q.recycle(f, false)
	}
}

func (q *outQueue[F]) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

func (q *outQueue[F]) stats() Stats {
	q.mu.Lock()
	depth, c := q.n, len(q.ring)
	q.mu.Unlock()
	return Stats{
		Emitted:    q.emitted.Load(),
		Dropped:    q.dropped.Load(),
		Rejected:   q.rejected.Load(),
		QueueDepth: depth,
		QueueCap:   c,
		Blocked:    int(q.blocked.Load()),
	}
}

// signal sends a token on a capacity-1 channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
