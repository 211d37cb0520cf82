//go:build cuda

package gpu

import (
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/cu"
)

// thread is a goroutine locked to its OS thread with the device's primary
// context current. Each Decoder runs its CUDA calls (NVDEC decoding, the
// conversion kernel, the copies) on a thread of its own, so the decoders
// of several sessions work in parallel instead of queueing behind each
// other and behind every kernel launch on the Device's goroutine.
type thread struct {
	work chan task
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// startThread starts a thread with ctx current; the caller must call stop.
func startThread(ctx cu.CUContext) (*thread, error) {
	t := &thread{work: make(chan task), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go t.run(ctx, ready)
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
		ready <- fmt.Errorf("gpu: make the context current on a decoder thread: %w", err)
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
	tk := &funcTask{f: f, errc: make(chan error, 1)}
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
