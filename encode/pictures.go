package encode

import (
	"sync"

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
// borrows) closes or changes size. It is safe for concurrent use.
type sharedPictures struct {
	mu   sync.Mutex
	keys map[pictureKey]*pictureStack
}

type pictureStack struct {
	users int
	idle  []*astiav.Frame
}

// join counts a new user of k.
func (p *sharedPictures) join(k pictureKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.keys[k]
	if s == nil {
		s = &pictureStack{}
		p.keys[k] = s
	}
	s.users++
}

// leave ends a user of k; the last one frees k's idle pictures.
func (p *sharedPictures) leave(k pictureKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.keys[k]
	if s == nil {
		return
	}
	if s.users--; s.users > 0 {
		return
	}
	for _, f := range s.idle {
		f.Free()
	}
	delete(p.keys, k)
}

// get lends a picture of k, allocating one when none is idle. A user of
// k calls it.
func (p *sharedPictures) get(k pictureKey) (*astiav.Frame, error) {
	p.mu.Lock()
	if s := p.keys[k]; s != nil && len(s.idle) > 0 {
		f := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		p.mu.Unlock()
		return f, nil
	}
	p.mu.Unlock()
	return newPicture(k)
}

// put takes back a lent picture. One the codec still references (an
// encoder that queues frames) is not reused: the caller's reference is
// dropped and the codec's keeps the buffer alive.
func (p *sharedPictures) put(k pictureKey, f *astiav.Frame) {
	if !f.IsWritable() {
		f.Free()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.keys[k]; s != nil {
		s.idle = append(s.idle, f)
		return
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
