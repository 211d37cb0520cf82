package record

import "math"

// Events are a recording's facts for the /events journal (contract §3:
// chunk_ready and clip_ready). Either func may be nil. They are called
// without the recorder's locks held, on Run's goroutine as files close
// (Clip also on AwaitClip's caller when the clip is ready already), one
// at a time, in order (a clip_ready never precedes the chunk_ready of its
// boundary segment), and must not block.
type Events struct {
	// Chunk says a file of recording id closed: idx −1 is init.mp4,
	// idx n is chunk_%05d.m4s. Each idx once, in increasing order; the
	// last one when the recording finishes (the session stopped).
	Chunk func(id string, idx int)
	// Clip says the playlist of a clip given to AwaitClip is ready: its
	// boundary segment closed, or the recording finished.
	Clip func(Clip)
}

// SetEvents sets the hooks that hear of closed files and ready clips; set
// them before the first frame (as SetID), or the facts before are not
// told. Safe for concurrent use.
func (r *Recorder) SetEvents(ev Events) {
	r.mu.Lock()
	r.ev = ev
	r.mu.Unlock()
}

// pendingClip is a clip whose boundary segment is still open.
type pendingClip struct {
	c    Clip
	last int // the clip's boundary (last) segment
}

// lastSegment is the index of the boundary segment of a clip of media
// [start, end) with chunks of cs seconds (contract §1.5).
func lastSegment(start, end float64, cs int) int {
	first := max(0, int(math.Floor(start/float64(cs))))
	return max(first, int(math.Ceil(end/float64(cs)))-1)
}

// AwaitClip tells Events.Clip about c (a clip Snap or Recording returned
// and the client was told of) once its playlist is ready: when its
// boundary segment has closed, at once if it has. A recording that fails
// first never tells. It does not block.
func (r *Recorder) AwaitClip(c Clip) {
	if r == nil {
		return
	}
	last := lastSegment(c.StartMarker, c.EndMarker, r.cfg.ChunkSeconds)
	r.tell.Lock() // after the chunk_ready of a segment being closed now
	defer r.tell.Unlock()
	r.mu.Lock()
	if r.failed != nil || r.ev.Clip == nil {
		r.mu.Unlock()
		return
	}
	if !r.ended && r.closed < last {
		r.await = append(r.await, pendingClip{c, last})
		r.mu.Unlock()
		return
	}
	tell := r.ev.Clip
	r.mu.Unlock()
	tell(c)
}

// closedUpTo notes that file idx of recording id closed (on Run's
// goroutine) and tells the hooks: chunk_ready, then clip_ready for each
// clip whose boundary segment it was.
func (r *Recorder) closedUpTo(id string, idx int) {
	r.tell.Lock()
	defer r.tell.Unlock()
	r.mu.Lock()
	r.closed = idx
	ev := r.ev
	ready := r.takeReady(func(p pendingClip) bool { return p.last <= idx })
	r.mu.Unlock()
	if ev.Chunk != nil {
		ev.Chunk(id, idx)
	}
	for _, c := range ready {
		ev.Clip(c)
	}
}

// finished notes that the recording finished (files closed, the store told):
// every clip still awaited is ready, unless the recording failed.
func (r *Recorder) finished() {
	r.tell.Lock()
	defer r.tell.Unlock()
	r.mu.Lock()
	r.ended = true
	ev := r.ev
	var ready []Clip
	if r.failed == nil {
		ready = r.takeReady(func(pendingClip) bool { return true })
	}
	r.await = nil
	r.mu.Unlock()
	for _, c := range ready {
		ev.Clip(c)
	}
}

// takeReady removes and returns the awaited clips ok accepts, in order;
// r.mu must be held.
func (r *Recorder) takeReady(ok func(pendingClip) bool) []Clip {
	var ready []Clip
	keep := r.await[:0]
	for _, p := range r.await {
		if ok(p) {
			ready = append(ready, p.c)
		} else {
			keep = append(keep, p)
		}
	}
	clear(r.await[len(keep):])
	r.await = keep
	return ready
}
