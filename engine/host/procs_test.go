package host

import (
	"runtime"
	"testing"
)

// Issue 23: UseEncoderProcs gives ProcsPerCore Ps per core, keeps a larger
// value, and leaves an explicit GOMAXPROCS environment variable alone.
func TestUseEncoderProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	want := ProcsPerCore * runtime.NumCPU()

	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(1)
	if got := UseEncoderProcs(); got != want || runtime.GOMAXPROCS(0) != want {
		t.Errorf("from 1: UseEncoderProcs = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), want)
	}
	runtime.GOMAXPROCS(want + 3)
	if got := UseEncoderProcs(); got != want+3 {
		t.Errorf("from %d: UseEncoderProcs = %d; want it kept", want+3, got)
	}

	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	if got := UseEncoderProcs(); got != 1 {
		t.Errorf("GOMAXPROCS=1 in the environment: UseEncoderProcs = %d; want 1 kept", got)
	}
}
