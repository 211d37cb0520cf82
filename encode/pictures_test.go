package encode

import (
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/tracks"
)

// idlePictures reports how many pictures of k the pool holds idle and
// how many users k has; -1, -1 when k is not in the pool.
func idlePictures(k pictureKey) (idle, users int) {
	pictures.mu.Lock()
	defer pictures.mu.Unlock()
	s := pictures.keys[k]
	if s == nil {
		return -1, -1
	}
	for i := range s.idle {
		if s.idle[i].Load() != nil {
			idle++
		}
	}
	return idle, s.users
}

// Video encoders of one size convert into the same shared picture, one
// after another (the last given back is lent next), and encode correctly
// from it; closing the last of them frees the pool's pictures of that
// size.
func TestEncodersSharePictures(t *testing.T) {
	const w, h = 320, 180
	k := pictureKey{w: w, h: h, format: PixelI420, cs: colour{bt709: true}}
	var encs []*VideoEncoder
	for range 3 {
		e, err := NewVideoEncoder(VideoConfig{Width: w, Height: h})
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, e)
	}
	img := tracks.NewImage(w, h)
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	out := make([]byte, 1<<20)
	var first *astiav.Frame
	for f := range 5 {
		for i, e := range encs {
			n, _, err := e.Encode(img, int64(f)*3000, out)
			if err != nil || n == 0 {
				t.Fatalf("encoder %d frame %d: %d bytes, %v", i, f, n, err)
			}
			if e.conv.frame != nil {
				t.Fatalf("encoder %d kept its picture after the encode", i)
			}
			got := pictures.keys[k].idle[0].Load()
			if first == nil {
				first = got
			}
			if got != first {
				t.Fatalf("encoder %d frame %d converted into another picture than the first encoder's", i, f)
			}
		}
	}
	if idle, users := idlePictures(k); idle != 1 || users != 3 {
		t.Fatalf("pool holds %d idle pictures for %d users; want 1 for 3", idle, users)
	}
	for i, e := range encs {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		idle, users := idlePictures(k)
		if i < len(encs)-1 && (idle != 1 || users != len(encs)-1-i) {
			t.Fatalf("after %d closed: %d idle, %d users", i+1, idle, users)
		}
	}
	if idle, users := idlePictures(k); idle != -1 || users != -1 {
		t.Fatalf("after the last encoder closed the pool still holds the size: %d idle, %d users", idle, users)
	}
}

// A picture the codec still references when it is given back (an encoder
// that queues frames) is not lent again: the next borrower gets a fresh
// one, and the queued picture's pixels stay as they were.
func TestReferencedPictureNotReused(t *testing.T) {
	k := pictureKey{w: 64, h: 32, format: PixelI420, cs: colour{bt709: true}}
	s := pictures.join(k)
	defer pictures.leave(s)
	f, err := s.get()
	if err != nil {
		t.Fatal(err)
	}
	queued := astiav.AllocFrame()
	defer queued.Free()
	if err := queued.Ref(f); err != nil {
		t.Fatal(err)
	}
	s.put(f)
	if idle, _ := idlePictures(k); idle != 0 {
		t.Fatalf("a referenced picture went back to the pool (%d idle)", idle)
	}
	g, err := s.get()
	if err != nil {
		t.Fatal(err)
	}
	if g == f || data0(g) == data0(queued) {
		t.Fatal("the pool lent the referenced picture again")
	}
	if !queued.IsWritable() {
		t.Fatal("the queued reference is not the buffer's last")
	}
	s.put(g)
	if idle, _ := idlePictures(k); idle != 1 {
		t.Fatalf("a free picture did not go back to the pool (%d idle)", idle)
	}
}

// Lending and taking back allocate nothing and, with pictures in use at
// once, lend the lowest slots' again: the ones used a moment ago.
func TestSharedPicturesLowSlotsFirst(t *testing.T) {
	k := pictureKey{w: 64, h: 32, format: PixelI420, cs: colour{bt709: true}}
	s := pictures.join(k)
	defer pictures.leave(s)
	a, _ := s.get()
	b, _ := s.get()
	s.put(b) // slot 0
	s.put(a) // slot 1
	if got, _ := s.get(); got != b {
		t.Fatal("the lowest slot's picture was not lent first")
	}
	s.put(b)
	step := func() {
		f, err := s.get()
		if err != nil {
			t.Fatal(err)
		}
		s.put(f)
	}
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocations to lend and take back a picture; want 0", n)
	}
}

// data0 is the address of f's first plane (AVFrame.data[0], the struct's
// first field).
func data0(f *astiav.Frame) uintptr { return *(*uintptr)(f.UnsafePointer()) }
