package encode

import (
	"sync"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// pictureKey is what makes converted pictures interchangeable: size,
// planar format and the colour they are tagged with.
type pictureKey struct {
	w, h   int
	format PixelFormat
	cs     colour
}

// pictures is the process's pool of converted pictures that the video
// encoders share (see sharedPictures).
var pictures = sharedPictures{keys: map[pictureKey]*pictureStack{}}

// sharedPictures lends the video encoders the pictures they convert into
// and take back once the codec has copied them: libx264 copies its input
// into its own frame inside avcodec_send_frame, so a session's picture is
// free again before its encode ends. The pictures of a size are a stack,
// and the last one given back is lent next: it is the one most likely
// still in a core's cache. A node of many sessions then converts into a
// handful of pictures instead of one per session (the conversion writes
// 1.4 MB a 1280×720 frame). On the 2-core development VM, 12 encoders
// taking turns with libx264 on one thread converted a 1280×720 frame in
// 0.35 ms into one shared picture against 0.46 ms into each encoder's
// own; in the capacity benchmark's node of 14 sessions at 1280×720 the
// conversion went from 0.46–0.47 to 0.40–0.42 ms a frame, and from 0.12
// to 0.10 ms at 37 sessions of 640×360.
//
// A key's idle pictures are freed when its last user (a Converter that
// borrows) closes or changes size. Lending and taking back take no lock:
// a size's idle pictures sit in a few atomic slots, lent from the lowest
// one filled and given back to the lowest one free, so the pictures in
// the low slots, the ones in use a moment ago, are lent again first; the
// pool's lock is taken only when a user joins or leaves. It is safe for
// concurrent use.
type sharedPictures struct {
	mu   sync.Mutex
	keys map[pictureKey]*pictureStack
}

// pictureSlots is how many idle pictures of a size the pool keeps: more
// than a node's encodes in flight at once (one per P at most); a picture
// given back when all are taken is freed.
const pictureSlots = 16

type pictureStack struct {
	key   pictureKey
	users int // guarded by sharedPictures.mu
	idle  [pictureSlots]atomic.Pointer[astiav.Frame]
}

// join counts a new user of k and returns k's pictures.
func (p *sharedPictures) join(k pictureKey) *pictureStack {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.keys[k]
	if s == nil {
		s = &pictureStack{key: k}
		p.keys[k] = s
	}
	s.users++
	return s
}

// leave ends a user of s; the last one frees s's idle pictures. The
// users still joined are the only ones that lend from or give back to s,
// so after the last leaves nothing does.
func (p *sharedPictures) leave(s *pictureStack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.users--; s.users > 0 {
		return
	}
	for i := range s.idle {
		if f := s.idle[i].Swap(nil); f != nil {
			f.Free()
		}
	}
	delete(p.keys, s.key)
}

// get lends a picture of s, allocating one when none is idle. A user of
// s calls it.
func (s *pictureStack) get() (*astiav.Frame, error) {
	for i := range s.idle {
		if f := s.idle[i].Load(); f != nil && s.idle[i].CompareAndSwap(f, nil) {
			return f, nil
		}
	}
	return newPicture(s.key)
}

// put takes back a lent picture. One the codec still references (an
// encoder that queues frames) is not reused: the caller's reference is
// dropped and the codec's keeps the buffer alive.
func (s *pictureStack) put(f *astiav.Frame) {
	if f.IsWritable() {
		for i := range s.idle {
			if s.idle[i].Load() == nil && s.idle[i].CompareAndSwap(nil, f) {
				return
			}
		}
	}
	f.Free()
}

// newPicture allocates a picture of k.
func newPicture(k pictureKey) (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	f.SetWidth(k.w)
	f.SetHeight(k.h)
	f.SetPixelFormat(k.format.av())
	f.SetColorRange(astiav.ColorRangeMpeg)
	if k.cs.bt709 {
		f.SetColorSpace(astiav.ColorSpaceBt709)
	} else {
		f.SetColorSpace(astiav.ColorSpaceSmpte170M)
	}
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, err
	}
	return f, nil
}
