package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StoreConfig configures a Store. The zero value works: a fresh temporary
// directory, 300 s retention, no disk budget.
type StoreConfig struct {
	// Dir is the recordings directory, one folder per recording id. Empty
	// means a fresh temporary directory, removed by Close.
	Dir string
	// Retention is how long a finished recording stays (default 300 s).
	Retention time.Duration
	// MaxBytes is the disk budget of every recording of the process
	// together; 0 means none. Over it, the oldest finished recordings are
	// deleted first, then the oldest segments of the oldest live one.
	MaxBytes int64
	Logger   *slog.Logger
}

// Store holds the recordings of one process: it makes each session's
// Recorder, answers the /clips playlist and segment lookups, deletes
// finished recordings after the retention window and keeps the disk
// budget. Its methods are safe for concurrent use. Close it after every
// Recorder it made has finished.
type Store struct {
	cfg     StoreConfig
	dir     string
	tempDir bool
	log     *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	bytes   int64
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// entry is one recording as the store serves it.
type entry struct {
	id, dir  string
	cs       int
	started  time.Time
	live     bool      // its recorder has not finished
	finished time.Time // when it finished (zero while live)
	initOK   bool
	segs     []segment // by index
	bytes    int64
}

type segment struct {
	dur     float64 // seconds of media
	size    int64
	evicted bool
}

// OpenStore opens (creating it when needed) the recordings directory and
// starts the retention sweep.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Retention == 0 {
		cfg.Retention = 300 * time.Second
	}
	if cfg.Retention < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("record: negative retention (%v) or disk budget (%d)", cfg.Retention, cfg.MaxBytes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "record"), entries: map[string]*entry{}, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "framewire-recordings-")
		if err != nil {
			return nil, fmt.Errorf("record: temporary recordings directory: %w", err)
		}
		s.dir, s.tempDir = d, true
	} else {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("record: recordings directory: %w", err)
		}
		s.dir = cfg.Dir
		s.adopt()
	}
	go s.sweep()
	return s, nil
}

// Files beside the segments, for a later process to adopt the recording.
const (
	metaName  = "recording.json" // {"chunk_seconds": n}, written with init.mp4
	indexName = "segments.txt"   // "k duration" per closed segment, appended
)

// adopt takes over the recordings a previous process left in the
// directory (it exited or crashed): each is served as finished, from its
// closed segments, and deleted after the retention window like any
// other; the budget counts it. Half-written files are removed.
func (s *Store) adopt() {
	dirs, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("reading the recordings directory", "dir", s.dir, "err", err)
		return
	}
	now := time.Now()
	for _, d := range dirs {
		if !d.IsDir() || !ValidID(d.Name()) {
			continue
		}
		e := &entry{id: d.Name(), dir: filepath.Join(s.dir, d.Name()), cs: 4, started: now, finished: now}
		if b, err := os.ReadFile(filepath.Join(e.dir, metaName)); err == nil {
			var m struct {
				ChunkSeconds int `json:"chunk_seconds"`
			}
			if json.Unmarshal(b, &m) == nil && m.ChunkSeconds > 0 {
				e.cs = m.ChunkSeconds
			}
		}
		durs := map[int]float64{}
		if b, err := os.ReadFile(filepath.Join(e.dir, indexName)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				var k int
				var dur float64
				if n, _ := fmt.Sscanf(l, "%d %g", &k, &dur); n == 2 && k >= 0 && k < 1<<20 {
					durs[k] = dur
				}
			}
		}
		files, _ := os.ReadDir(e.dir)
		for _, f := range files {
			name := f.Name()
			info, err := f.Info()
			if err != nil {
				continue
			}
			switch {
			case strings.HasSuffix(name, ".tmp"):
				_ = os.Remove(filepath.Join(e.dir, name))
				continue
			case name == initName:
				e.initOK = true
			case chunkRE.MatchString(name):
				k, _ := strconv.Atoi(name[len("chunk_") : len("chunk_")+5])
				for len(e.segs) <= k {
					e.segs = append(e.segs, segment{evicted: true})
				}
				dur, ok := durs[k]
				if !ok {
					dur = float64(e.cs)
				}
				e.segs[k] = segment{dur: dur, size: info.Size()}
			}
			e.bytes += info.Size()
		}
		s.entries[e.id] = e
		s.bytes += e.bytes
		s.log.Info("adopted a recording left by an earlier process", "recording", e.id, "segments", len(e.segs), "bytes", e.bytes)
	}
}

// Dir returns the recordings directory.
func (s *Store) Dir() string { return s.dir }

// Retention returns how long a finished recording is kept.
func (s *Store) Retention() time.Duration { return s.cfg.Retention }

// Close stops the retention sweep and, when the directory is the
// store's own temporary one, removes it. Recordings in a directory the
// caller named stay on disk. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	if s.tempDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// sweep deletes expired recordings every tenth of the retention window
// (at most every 30 s, the runtime's period) until Close.
func (s *Store) sweep() {
	defer close(s.done)
	t := time.NewTicker(min(30*time.Second, max(s.cfg.Retention/10, 10*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.expire(now)
		}
	}
}

// expire deletes the finished recordings older than the retention.
func (s *Store) expire(now time.Time) {
	s.mu.Lock()
	var gone []*entry
	for id, e := range s.entries {
		if !e.live && now.Sub(e.finished) >= s.cfg.Retention {
			delete(s.entries, id)
			s.bytes -= e.bytes
			gone = append(gone, e)
		}
	}
	s.mu.Unlock()
	for _, e := range gone {
		if err := os.RemoveAll(e.dir); err != nil {
			s.log.Warn("removing an expired recording", "recording", e.id, "err", err)
		}
	}
}

// add registers a live recording; a finished one under the same id is
// replaced (its files are removed first).
func (s *Store) add(id string, cs int) (*entry, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("record: recording id %q is not a lowercase UUID", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("record: store closed")
	}
	if old := s.entries[id]; old != nil {
		if old.live {
			return nil, fmt.Errorf("record: recording %s is already running", id)
		}
		s.bytes -= old.bytes
		delete(s.entries, id)
	}
	e := &entry{id: id, dir: filepath.Join(s.dir, id), cs: cs, live: true, started: time.Now()}
	if err := os.RemoveAll(e.dir); err != nil {
		return nil, fmt.Errorf("record: clearing %s: %w", e.dir, err)
	}
	s.entries[id] = e
	return e, nil
}

// remove forgets a live entry that never recorded (its id was replaced).
func (s *Store) remove(e *entry) {
	s.mu.Lock()
	if s.entries[e.id] == e {
		delete(s.entries, e.id)
	}
	s.mu.Unlock()
}

// wrote accounts a closed file of e: the init segment (index -1) or
// segment k, then keeps the budget.
func (s *Store) wrote(e *entry, k int, dur float64, size int64) {
	s.mu.Lock()
	if k < 0 {
		e.initOK = true
	} else {
		for len(e.segs) <= k {
			e.segs = append(e.segs, segment{evicted: true}) // a hole: never written
		}
		e.segs[k] = segment{dur: dur, size: size}
	}
	e.bytes += size
	s.bytes += size
	var rm []string
	if s.cfg.MaxBytes > 0 && s.bytes > s.cfg.MaxBytes {
		rm = s.evictLocked()
	}
	s.mu.Unlock()
	for _, p := range rm {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("evicting a recording", "path", p, "err", err)
		}
	}
}

// evictLocked frees disk until the budget holds: finished recordings
// oldest first, then the oldest segments of the oldest live recording
// (never its newest one, nor its init segment). It returns the paths to
// remove; s.mu is held.
func (s *Store) evictLocked() []string {
	var rm []string
	list := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b *entry) int {
		if a.live != b.live {
			if a.live {
				return 1
			}
			return -1
		}
		if !a.live {
			return a.finished.Compare(b.finished)
		}
		return a.started.Compare(b.started)
	})
	for _, e := range list {
		if s.bytes <= s.cfg.MaxBytes {
			break
		}
		if !e.live {
			s.log.Info("disk budget: deleting a finished recording", "recording", e.id, "bytes", e.bytes)
			delete(s.entries, e.id)
			s.bytes -= e.bytes
			rm = append(rm, e.dir)
			continue
		}
		for k := 0; k+1 < len(e.segs) && s.bytes > s.cfg.MaxBytes; k++ {
			sg := &e.segs[k]
			if sg.evicted {
				continue
			}
			s.log.Info("disk budget: deleting the oldest segment of a live recording", "recording", e.id, "segment", k)
			sg.evicted = true
			e.bytes -= sg.size
			s.bytes -= sg.size
			rm = append(rm, filepath.Join(e.dir, chunkName(k)))
		}
	}
	return rm
}

// segments counts e's closed segments.
func (s *Store) segments(e *entry) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sg := range e.segs {
		if sg.size > 0 {
			n++
		}
	}
	return n
}

// finish marks e finished now.
func (s *Store) finish(e *entry) {
	s.mu.Lock()
	e.live = false
	e.finished = time.Now()
	s.mu.Unlock()
}

func chunkName(k int) string { return fmt.Sprintf("chunk_%05d.m4s", k) }

// Errors bodies of the /clips routes, as the contract words them.
const (
	DetailGone       = "Recording unknown or aged out"
	DetailNoSegment  = "Segment not found"
	DetailBadStart   = "start must be a finite non-negative number"
	DetailBadEnd     = "end must be a finite number greater than start"
	PlaylistType     = "application/vnd.apple.mpegurl"
	initName         = "init.mp4"
	segmentMIME      = "video/iso.segment"
	initMIME         = "video/mp4"
	retryAfterSecond = "2"
)

// Playlist answers GET /clips for recording id and the media range
// [start, end] (seconds): the status (200, 202, 400, 410), and the HLS
// playlist (200) or the error detail (400, 410). prefix is put before
// every URL of the playlist ("" for path-only URLs, or a scheme, host and
// path prefix).
func (s *Store) Playlist(id string, start, end float64, prefix string) (status int, body string) {
	if !ValidID(id) {
		return http.StatusGone, DetailGone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return http.StatusGone, DetailGone
	}
	if math.IsNaN(start) || math.IsInf(start, 0) || start < 0 {
		return http.StatusBadRequest, DetailBadStart
	}
	if math.IsNaN(end) || math.IsInf(end, 0) || end <= start {
		return http.StatusBadRequest, DetailBadEnd
	}
	cs := float64(e.cs)
	first := max(0, int(math.Floor(start/cs)))
	last := max(first, int(math.Ceil(end/cs))-1)
	if last >= len(e.segs) || !e.initOK {
		if e.live {
			return http.StatusAccepted, ""
		}
		// Finished: the final segment is closed by completion.
		last = len(e.segs) - 1
		if last < first || !e.initOK {
			return http.StatusGone, DetailGone
		}
	}
	target := e.cs
	for k := first; k <= last; k++ {
		if e.segs[k].evicted {
			return http.StatusGone, DetailGone
		}
		target = max(target, int(math.Ceil(e.segs[k].dur-0.0005)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-PLAYLIST-TYPE:VOD\n", target)
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s/clips/chunks/%s/%s\"\n", prefix, id, initName)
	for k := first; k <= last; k++ {
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s/clips/chunks/%s/%s\n", e.segs[k].dur, prefix, id, chunkName(k))
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return http.StatusOK, b.String()
}

// chunkRE is every file name a chunk route serves.
var chunkRE = regexp.MustCompile(`^(init\.mp4|chunk_[0-9]{5}\.m4s)$`)

// Chunk answers GET /clips/chunks/{id}/{name}: the closed file's path and
// content type with 200, or 404 / 410 and the error detail. Only
// init.mp4 and chunk_NNNNN.m4s of a known recording are ever served; a
// segment still being written is 404.
func (s *Store) Chunk(id, name string) (status int, path, contentType string) {
	if !ValidID(id) {
		return http.StatusGone, "", DetailGone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return http.StatusGone, "", DetailGone
	}
	if !chunkRE.MatchString(name) {
		return http.StatusNotFound, "", DetailNoSegment
	}
	if name == initName {
		if !e.initOK {
			return http.StatusNotFound, "", DetailNoSegment
		}
		return http.StatusOK, filepath.Join(e.dir, name), initMIME
	}
	k, _ := strconv.Atoi(name[len("chunk_") : len("chunk_")+5])
	if k >= len(e.segs) || e.segs[k].evicted {
		return http.StatusNotFound, "", DetailNoSegment
	}
	return http.StatusOK, filepath.Join(e.dir, name), segmentMIME
}

// RetryAfter is the Retry-After value (seconds) of a 202 playlist answer.
const RetryAfter = retryAfterSecond
