//go:build cuda

package gpu

import (
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/cu"
)

// Device owns one CUDA device's primary context. One goroutine, locked to
// its OS thread with the context current, runs every CUDA call made
// through Do. The caller must call Close; Close is idempotent.
type Device struct {
	dev   cu.Device
	name  string
	work  chan func()
	done  chan struct{}
	once  sync.Once
	ready chan error
}

// Open retains device ordinal's primary context and starts its owner
// goroutine.
func Open(ordinal int) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("gpu: count devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("gpu: device %d does not exist (%d devices)", ordinal, n)
	}
	d := &Device{dev: cu.Device(ordinal), work: make(chan func()), done: make(chan struct{}), ready: make(chan error, 1)}
	go d.run()
	if err := <-d.ready; err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Device) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(d.done)
	ctx, err := d.dev.RetainPrimaryCtx()
	if err != nil {
		d.ready <- fmt.Errorf("gpu: retain primary context of device %d: %w", int(d.dev), err)
		return
	}
	defer func() { _ = d.dev.ReleasePrimaryCtx() }()
	if err := cu.SetCurrentContext(ctx); err != nil {
		d.ready <- fmt.Errorf("gpu: make context current: %w", err)
		return
	}
	if d.name, err = d.dev.Name(); err != nil {
		d.ready <- fmt.Errorf("gpu: device name: %w", err)
		return
	}
	d.ready <- nil
	for f := range d.work {
		f()
	}
}

// Do runs f on the device's owner thread with its context current and
// returns f's error. It blocks until f has run.
func (d *Device) Do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case d.work <- func() { errc <- f() }:
	case <-d.done:
		return fmt.Errorf("gpu: device closed")
	}
	return <-errc
}

// Name reports the device's name.
func (d *Device) Name() string { return d.name }

// Close stops the owner goroutine and releases the primary context.
func (d *Device) Close() error {
	if d == nil {
		return nil
	}
	d.once.Do(func() { close(d.work); <-d.done })
	return nil
}
