package tracks

import (
	"fmt"
	"strings"
)

// Track is what every track of a session has in common: *VideoOut,
// *AudioOut, *VideoIn and *AudioIn implement it. Use a type switch, or the
// typed lookups of Set, to reach Emit, Next, Deliver or Latest.
type Track interface {
	// Name returns the track's name, exactly as declared.
	Name() string
	// Spec returns the resolved declaration.
	Spec() Spec
	// Stats returns a snapshot of the counters.
	Stats() Stats
	// Close closes the track; it is idempotent.
	Close() error
}

// Set is the tracks of one session, built from a model's declarations. It
// is immutable after NewSet (the tracks themselves are safe for concurrent
// use) and must be closed when the session ends.
type Set struct {
	specs  []Spec
	all    []Track
	byName map[string]Track
	def    Track
}

// NewSet resolves specs (see Resolve) and builds one track for each.
func NewSet(specs []Spec) (*Set, error) {
	rs, err := Resolve(specs)
	if err != nil {
		return nil, err
	}
	s := &Set{specs: rs, all: make([]Track, len(rs)), byName: make(map[string]Track, len(rs))}
	for i, sp := range rs {
		var t Track
		switch sp.Kind {
		case KindVideoOut:
			t = newVideoOut(sp)
		case KindAudioOut:
			t = newAudioOut(sp)
		case KindVideoIn:
			t = newVideoIn(sp)
		case KindAudioIn:
			t = newAudioIn(sp)
		}
		s.all[i] = t
		s.byName[sp.Name] = t
		if sp.Default {
			s.def = t
		}
	}
	return s, nil
}

// Specs returns the resolved declarations, in declaration order.
func (s *Set) Specs() []Spec { return append([]Spec(nil), s.specs...) }

// All returns every track in declaration order.
func (s *Set) All() []Track { return append([]Track(nil), s.all...) }

// Outputs returns the VideoOut and AudioOut tracks in declaration order.
func (s *Set) Outputs() []Track { return s.filter(true) }

// Inputs returns the VideoIn and AudioIn tracks in declaration order.
func (s *Set) Inputs() []Track { return s.filter(false) }

func (s *Set) filter(out bool) []Track {
	var r []Track
	for _, t := range s.all {
		if t.Spec().Kind.IsOutput() == out {
			r = append(r, t)
		}
	}
	return r
}

// Default returns the default track, or nil when the model has none.
func (s *Set) Default() Track { return s.def }

// Track returns the named track; the empty name means the default track
// . The error wraps ErrUnknownTrack
// (listing the declared names) or ErrNoDefault.
func (s *Set) Track(name string) (Track, error) {
	if name == "" {
		if s.def == nil {
			return nil, fmt.Errorf("%w: the model declares no VideoOut and marks no track default; name the track (declared: %s)", ErrNoDefault, s.names())
		}
		return s.def, nil
	}
	t, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q; declared tracks: %s", ErrUnknownTrack, name, s.names())
	}
	return t, nil
}

func (s *Set) names() string {
	n := make([]string, len(s.specs))
	for i, sp := range s.specs {
		n[i] = fmt.Sprintf("%q (%s)", sp.Name, sp.Kind)
	}
	return strings.Join(n, ", ")
}

func lookup[T Track](s *Set, name string, want Kind) (T, error) {
	var zero T
	t, err := s.Track(name)
	if err != nil {
		return zero, err
	}
	v, ok := t.(T)
	if !ok {
		return zero, fmt.Errorf("%w: track %q is a %s, not a %s", ErrWrongKind, t.Name(), t.Spec().Kind, want)
	}
	return v, nil
}

// VideoOut returns the named VideoOut ("" for the default track).
func (s *Set) VideoOut(name string) (*VideoOut, error) {
	return lookup[*VideoOut](s, name, KindVideoOut)
}

// AudioOut returns the named AudioOut ("" for the default track).
func (s *Set) AudioOut(name string) (*AudioOut, error) {
	return lookup[*AudioOut](s, name, KindAudioOut)
}

// VideoIn returns the named VideoIn.
func (s *Set) VideoIn(name string) (*VideoIn, error) {
	return lookup[*VideoIn](s, name, KindVideoIn)
}

// AudioIn returns the named AudioIn.
func (s *Set) AudioIn(name string) (*AudioIn, error) {
	return lookup[*AudioIn](s, name, KindAudioIn)
}

// SetDeviceSupport calls VideoOut.SetDeviceSupport on every video output.
func (s *Set) SetDeviceSupport(reason error) {
	for _, t := range s.all {
		if v, ok := t.(*VideoOut); ok {
			v.SetDeviceSupport(reason)
		}
	}
}

// Subscribe makes every input track also queue each delivered picture or
// chunk on q (for a model's OnMedia handler); nil unsubscribes.
func (s *Set) Subscribe(q *MediaQueue) {
	for _, t := range s.all {
		switch v := t.(type) {
		case *VideoIn:
			v.sub.Store(q)
		case *AudioIn:
			v.sub.Store(q)
		}
	}
}

// Close closes every track. It is idempotent and returns nil.
func (s *Set) Close() error {
	for _, t := range s.all {
		_ = t.Close()
	}
	return nil
}
