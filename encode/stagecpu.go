package encode

import (
	"runtime"
	"sync/atomic"
	"time"
)

// StageCPU adds up the CPU time the calling threads spend in each stage of
// VideoEncoder.Encode: the conversion of the picture (RGB → the encoder's
// planar format) and the encode proper (sending the frame to the codec
// and draining its packets). Set it in VideoConfig.StageCPU to measure a
// running node's stages where they run, as bench's BenchmarkCapacity
// does. It costs a thread lock and three reads of the thread's CPU clock
// per frame, so it is off (nil) unless asked for. Many encoders may share
// one; its methods are safe for concurrent use.
type StageCPU struct {
	convert, encode atomic.Int64 // nanoseconds
	frames          atomic.Int64
}

// Totals returns the CPU time spent converting and encoding so far, and
// how many frames it was spent on.
func (s *StageCPU) Totals() (convert, encode time.Duration, frames int64) {
	return time.Duration(s.convert.Load()), time.Duration(s.encode.Load()), s.frames.Load()
}

// stageClock times one Encode call's stages on its thread; the zero value
// (no StageCPU) does nothing.
type stageClock struct {
	s  *StageCPU
	t0 time.Duration
}

func (s *StageCPU) start() stageClock {
	if s == nil {
		return stageClock{}
	}
	runtime.LockOSThread()
	return stageClock{s: s, t0: threadCPU()}
}

// converted ends the conversion stage and starts the encode stage.
func (c *stageClock) converted() {
	if c.s == nil {
		return
	}
	t := threadCPU()
	c.s.convert.Add(int64(t - c.t0))
	c.t0 = t
}

// done ends the encode stage (or the conversion, when the call failed
// before converted) and counts the frame.
func (c *stageClock) done(encoded bool) {
	if c.s == nil {
		return
	}
	d := int64(threadCPU() - c.t0)
	if encoded {
		c.s.encode.Add(d)
		c.s.frames.Add(1)
	} else {
		c.s.convert.Add(d)
	}
	runtime.UnlockOSThread()
}
