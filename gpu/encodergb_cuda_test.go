//go:build cuda

package gpu

import (
	"errors"
	"testing"
	"time"
)

// A host picture whose last row holds only its pixels (len(pix) ==
// stride*(h-1) + w*3, which EncodeRGB accepts) is encoded. Staging used to
// slice pix[:stride*h] on the device goroutine: a panic that took the
// process down.
func TestEncodeRGBShortLastRow(t *testing.T) {
	d := openDevice(t)
	enc, err := NewEncoder(d, EncoderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	const w, h, stride = 64, 48, 64*3 + 32
	pix := make([]byte, stride*(h-1)+w*3)
	if n, _, err := enc.EncodeRGB(pix, w, h, stride, 3000, make([]byte, 1<<20)); err != nil || n == 0 {
		t.Fatalf("EncodeRGB of a picture with a short last row: n=%d err=%v", n, err)
	}
}

// EncodeRGB racing Close leaves nothing allocated: staging runs under the
// encoder's lock, so it either happens before Close (which then frees it)
// or sees the encoder closed. It used to check for Close, then stage
// outside the lock: a Close that ran in between (here, deterministically,
// from the test hook at that point) freed nothing and the staging buffers
// leaked.
func TestEncodeRGBRacingClose(t *testing.T) {
	d := openDevice(t)
	const w, h = 64, 48
	pix := make([]byte, w*h*3)
	out := make([]byte, 1<<20)
	free0, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(d, EncoderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	testHookBeforeStage = func() {
		go func() { closed <- enc.Close() }()
		select { // Close completes here unless staging holds the lock
		case <-closed:
			closed <- nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer func() { testHookBeforeStage = nil }()
	if _, _, err := enc.EncodeRGB(pix, w, h, 0, 3000, out); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	free1, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	if free1 != free0 {
		t.Errorf("%d bytes of device memory left allocated by EncodeRGB racing Close", free0-free1)
	}
}
