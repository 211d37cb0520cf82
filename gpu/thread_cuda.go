//go:build cuda

package gpu

import (
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/cu"
)

// thread is a goroutine locked to its OS thread with the device's primary
// context current. Each Decoder (NVDEC decoding, the conversion kernel,
// the copies) and each Encoder (the frame check, the wait for the
// producer, the kernel, the copy to pinned memory, the blocking
// synchronisation) makes its per-frame CUDA calls on a thread of its own,
// on its own stream, so the sessions' device work runs in parallel instead
// of queueing behind each other on the Device's goroutine.
type thread struct {
	d    *Device // its work's errors are checked for a sticky fault
	work chan task
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// startThread starts a thread with d's primary context current; the
// caller must call stop.
func startThread(d *Device) (*thread, error) {
	t := &thread{d: d, work: make(chan task), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go t.run(d.ctx, ready)
	if err := <-ready; err != nil {
		<-t.done
		return nil, err
	}
	return t, nil
}

func (t *thread) run(ctx cu.CUContext, ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(t.done)
	if err := cu.SetCurrentContext(ctx); err != nil {
		ready <- fmt.Errorf("gpu: make the context current on an encoder or decoder thread: %w", err)
		return
	}
	// The OS thread goes back to Go's pool without our context current.
	defer func() { _ = cu.SetCurrentContext(cu.CUContext{}) }()
	ready <- nil
	for {
		select {
		case tk := <-t.work:
			tk.run()
		case <-t.quit:
			return
		}
	}
}

// submit hands tk to the thread; it returns ErrClosed once stopped.
func (t *thread) submit(tk task) error {
	select {
	case t.work <- tk:
		return nil
	case <-t.done:
		return ErrClosed
	}
}

// do runs f on the thread and returns its error.
func (t *thread) do(f func() error) error {
	tk := &funcTask{d: t.d, f: f, errc: make(chan error, 1)}
	if err := t.submit(tk); err != nil {
		return err
	}
	return <-tk.errc
}

// stop ends the thread after the task in progress. It is idempotent.
func (t *thread) stop() {
	t.once.Do(func() {
		close(t.quit)
		<-t.done
	})
}
