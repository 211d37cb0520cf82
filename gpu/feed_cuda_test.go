//go:build cuda

package gpu

import (
	"errors"
	"testing"
)

// fakeDecoder models avcodec_send_packet's contract: it refuses a packet
// (EAGAIN) while it holds a picture not yet received.
type fakeDecoder struct {
	held, taken, pictures int
	failDrain             bool
}

func (f *fakeDecoder) send() int {
	if f.held > 0 {
		return 1
	}
	f.taken++
	f.held++
	return 0
}

func (f *fakeDecoder) resend() int { return f.send() }

func (f *fakeDecoder) drain() (int, error) {
	if f.failDrain {
		f.failDrain = false
		return 0, errors.New("convert failed")
	}
	n := f.held
	f.pictures += n
	f.held = 0
	return n, nil
}

// An access unit the decoder refuses because it still holds a picture (a
// Decode before stopped draining at an error) is sent again after the
// picture is drained, not dropped: fw_dec_send used to turn EAGAIN into
// success, and the unit (and every picture referencing it) was lost.
func TestFeedResendsAfterEAGAIN(t *testing.T) {
	f := &fakeDecoder{failDrain: true}
	if _, err := feed(f); err == nil {
		t.Fatal("the failed drain was not reported")
	}
	n, err := feed(f) // the decoder still holds the first unit's picture
	if err != nil || n != 2 || f.taken != 2 {
		t.Fatalf("second unit: %d pictures, err %v, %d units taken; want 2 pictures (the held one and its own) and both units taken", n, err, f.taken)
	}
}
