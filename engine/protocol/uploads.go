package protocol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/internal/ratelog"
)

var (
	errUnknownUpload = errors.New("unknown upload id")
	errUploadPending = errors.New("upload bytes not received in time")
)

// memBudget bounds the upload bytes held in memory by every session of a
// server together.
type memBudget struct {
	mu          sync.Mutex
	used, limit int64
	freed       int64 // released since the last return of memory to the OS
}

// acquire takes n bytes of the budget; false when that would exceed it.
func (m *memBudget) acquire(n int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+n > m.limit {
		return false
	}
	m.used += n
	return true
}

// release gives n bytes back. Released upload buffers are garbage the
// collector would keep as headroom (with GOGC=100, the process would hold
// about twice the budget); once half the budget has been released, it
// collects and returns the memory to the OS, so RSS follows the budget.
func (m *memBudget) release(n int64) {
	m.mu.Lock()
	m.used -= n
	m.freed += n
	collect := m.freed >= m.limit/2
	if collect {
		m.freed = 0
	}
	m.mu.Unlock()
	if collect {
		debug.FreeOSMemory()
	}
}

func (m *memBudget) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// uploadStore keeps one session's uploads in memory until the session
// ends. Bytes are allocated as they arrive, from the server's memBudget;
// clear gives them back and cuts off the PUTs still in flight.
type uploadStore struct {
	max, quota int64
	mem        *memBudget
	minRate    int64 // bytes/s every body must keep up on average
	grace      time.Duration

	waiting atomic.Int32 // commands waiting for an upload's bytes now

	mu       sync.Mutex
	used     int64 // announced bytes of all slots
	slots    map[string]*slot
	inflight map[*slot]func() // PUTs being received: each cuts its body off
	closed   bool
}

type slot struct {
	id, name, mime string
	size           int64
	writing        bool
	data           []byte
	held           int64         // bytes of mem this slot's data holds
	done           chan struct{} // closed once data holds exactly size bytes
	notified       bool          // fileUploaded seen
}

func newUploadStore(cfg Config, mem *memBudget) *uploadStore {
	return &uploadStore{
		max: cfg.MaxUploadSize, quota: cfg.UploadQuota, mem: mem,
		minRate: cfg.UploadMinRate, grace: cfg.UploadGrace,
		slots: map[string]*slot{}, inflight: map[*slot]func(){},
	}
}

// newID returns 128 random bits in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// sanitizeName keeps a file name's base, with only letters, digits, '.',
// '-' and '_' (others become '_'), no leading dots, at most 128 bytes.
func sanitizeName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if len(s) > 128 {
		s = s[len(s)-128:]
	}
	if s == "" || s == "_" {
		s = "upload"
	}
	return s
}

func (u *uploadStore) create(name, mime string, size int64) (*slot, error) {
	if size <= 0 {
		return nil, fmt.Errorf("size %d: want a positive number of bytes", size)
	}
	if size > u.max {
		return nil, fmt.Errorf("size %d exceeds the maximum upload size %d", size, u.max)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errors.New("session has ended")
	}
	if u.used+size > u.quota {
		return nil, fmt.Errorf("size %d exceeds the session's remaining upload quota %d of %d bytes", size, u.quota-u.used, u.quota)
	}
	s := &slot{id: newID(), name: sanitizeName(name), mime: mime, size: size, done: make(chan struct{})}
	u.slots[s.id] = s
	u.used += size
	return s, nil
}

// held returns the bytes of upload data the store holds in memory.
func (u *uploadStore) held() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for _, s := range u.slots {
		n += s.held
	}
	return n
}

func (u *uploadStore) get(id string) *slot {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.slots[id]
}

// notified records a fileUploaded message; false for an unknown id.
func (u *uploadStore) notified(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.slots[id]
	if s == nil {
		return false
	}
	s.notified = true
	return true
}

// wait returns the upload once its bytes arrived, waiting until ctx ends.
func (u *uploadStore) wait(ctx context.Context, id string) (engine.Upload, error) {
	s := u.get(id)
	if s == nil {
		return engine.Upload{}, fmt.Errorf("%w %q", errUnknownUpload, id)
	}
	u.waiting.Add(1)
	defer u.waiting.Add(-1)
	select {
	case <-s.done:
		return engine.Upload{ID: s.id, Name: s.name, MimeType: s.mime, Size: s.size, Data: s.data}, nil
	case <-ctx.Done():
		return engine.Upload{}, fmt.Errorf("%w: upload %q", errUploadPending, id)
	}
}

// clear drops every upload, gives its memory back and cuts off the PUTs
// in flight; later creates and PUTs fail.
func (u *uploadStore) clear() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for _, s := range u.slots {
		if s.held > 0 && s.data != nil {
			u.mem.release(s.held)
			s.held = 0
		}
	}
	for _, cut := range u.inflight {
		cut()
	}
	u.slots = map[string]*slot{}
	u.used = 0
}

// put receives the body of w's request r as the slot's bytes; it must be
// exactly size bytes, arrive within the rate-based deadline, and fit in
// the server's upload memory.
func (u *uploadStore) put(id string, w http.ResponseWriter, r *http.Request) (int, error) {
	u.mu.Lock()
	s := u.slots[id]
	switch {
	case s == nil:
		u.mu.Unlock()
		return http.StatusNotFound, fmt.Errorf("unknown upload %q", ratelog.Truncate(id, 64))
	case s.writing:
		u.mu.Unlock()
		return http.StatusConflict, fmt.Errorf("upload %q is already being written or complete", id)
	}
	if r.ContentLength >= 0 && r.ContentLength != s.size {
		u.mu.Unlock()
		discardBody(w, r)
		return http.StatusBadRequest, fmt.Errorf("Content-Length %d differs from the announced size %d", r.ContentLength, s.size)
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(u.grace + time.Duration(float64(s.size)/float64(u.minRate)*float64(time.Second)))
	_ = rc.SetReadDeadline(deadline)
	s.writing = true
	u.inflight[s] = func() { _ = rc.SetReadDeadline(time.Now()) }
	u.mu.Unlock()
	buf, code, err := u.receive(s, r.Body)
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.inflight, s)
	if err == nil && u.closed {
		code, err = http.StatusGone, errors.New("session has ended")
	}
	if err != nil {
		u.mem.release(int64(cap(buf)))
		s.writing = false // the client may retry
		if u.closed {
			code, err = http.StatusGone, errors.New("session has ended")
		}
		if code == http.StatusBadRequest && time.Now().After(deadline) {
			err = fmt.Errorf("%w (the body must arrive at %d bytes/s or faster)", err, u.minRate)
		}
		return code, err
	}
	s.data, s.held = buf, int64(cap(buf))
	close(s.done)
	return http.StatusOK, nil
}

// receive reads exactly s.size bytes from body, growing the buffer as
// bytes arrive and taking each growth from the memory budget. On error
// the buffer returned still holds budget (cap) the caller gives back.
func (u *uploadStore) receive(s *slot, body io.Reader) ([]byte, int, error) {
	var chunk [32 << 10]byte
	var buf []byte
	for {
		n, err := body.Read(chunk[:])
		if int64(len(buf)+n) > s.size {
			return buf, http.StatusBadRequest, fmt.Errorf("received more than %d bytes; the announced size is %d", s.size, s.size)
		}
		if len(buf)+n > cap(buf) {
			grown := min(max(2*int64(cap(buf)), int64(len(buf)+n), 64<<10), s.size)
			if !u.mem.acquire(grown - int64(cap(buf))) {
				return buf, http.StatusInsufficientStorage, fmt.Errorf("the server's upload memory (%d bytes) is in use; retry later", u.mem.limit)
			}
			nb := make([]byte, len(buf), grown)
			copy(nb, buf)
			buf = nb
		}
		buf = append(buf, chunk[:n]...)
		switch {
		case errors.Is(err, io.EOF) && int64(len(buf)) == s.size:
			return buf, 0, nil
		case errors.Is(err, io.EOF):
			return buf, http.StatusBadRequest, fmt.Errorf("received %d bytes; the announced size is %d", len(buf), s.size)
		case err != nil:
			return buf, http.StatusBadRequest, fmt.Errorf("reading upload body after %d of %d bytes: %v", len(buf), s.size, err)
		}
	}
}

func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) || !checkVersion(w, r, "Reactor-API-Version") {
		return
	}
	sess := s.session(w, r.PathValue("sid"))
	if sess == nil {
		return
	}
	var req struct {
		Name     *string `json:"name"`
		Size     *int64  `json:"size"`
		MimeType *string `json:"mime_type"`
	}
	if code, err := readJSON(w, r, 64<<10, &req, false); err != nil {
		writeError(w, code, "uploads: "+err.Error())
		return
	}
	if req.Name == nil || req.Size == nil || req.MimeType == nil {
		writeError(w, http.StatusBadRequest, "uploads: want {\"name\": string, \"size\": positive integer, \"mime_type\": string}")
		return
	}
	sl, err := sess.uploads.create(*req.Name, *req.MimeType, *req.Size)
	if err != nil {
		code := http.StatusBadRequest
		if *req.Size > s.cfg.MaxUploadSize {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, "uploads: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{
		"presigned_id":  sl.id,
		"presigned_url": s.baseURL(r) + "/uploads/" + sl.id,
		"path":          "sessions/" + sess.id + "/uploads/" + sl.id + "/" + sl.name,
	})
}

// handlePutUpload receives the bytes of upload id (the 128-bit id is the
// capability) for whichever session created its slot.
func (s *Server) handlePutUpload(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPut) {
		return
	}
	id := r.PathValue("id")
	var owner *session
	for _, ss := range s.list() {
		if ss.uploads.get(id) != nil {
			owner = ss
			break
		}
	}
	if owner == nil {
		if len(s.list()) == 0 {
			writeError(w, http.StatusNotFound, "no session is running, so no upload slot exists")
		} else {
			writeError(w, http.StatusNotFound, fmt.Sprintf("upload: unknown upload %q", ratelog.Truncate(id, 64)))
		}
		return
	}
	s.putUpload(w, r, owner, id)
}

// handlePutSessionUpload receives the bytes of upload id of session sid:
// the route a production node serves once its caller checked the upload
// URL's signature.
func (s *Server) handlePutSessionUpload(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPut) {
		return
	}
	ss := s.session(w, r.PathValue("sid"))
	if ss == nil {
		return
	}
	s.putUpload(w, r, ss, r.PathValue("id"))
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, ss *session, id string) {
	code, err := ss.uploads.put(id, w, r)
	if err != nil {
		writeError(w, code, "upload: "+err.Error())
		return
	}
	writeJSON(w, code, map[string]string{"status": "ok"})
}

// baseURL is the URL browsers reach this server at: Config.PublicURL; or,
// with Config.TrustForwardedHeaders, what the proxy's X-Forwarded-Proto
// and X-Forwarded-Host say; or, for the server's own page, the origin the
// browser used (a browser cannot forge Host and Origin); else the scheme
// and address of the listener the request came in on. The Host of any
// other client is never used: it could make the server hand out URLs of
// another host.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme, host := "http", "localhost"
	if r.TLS != nil {
		scheme = "https"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		host = a.String()
	}
	if s.cfg.TrustForwardedHeaders {
		first := func(v string) string { f, _, _ := strings.Cut(v, ","); return strings.TrimSpace(f) }
		if p := strings.ToLower(first(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
			scheme = p
		}
		if h := first(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
		return scheme + "://" + host
	}
	if u, err := url.Parse(r.Header.Get("Origin")); err == nil && (u.Scheme == "http" || u.Scheme == "https") && ownOrigin(u, r) {
		return u.Scheme + "://" + u.Host
	}
	return scheme + "://" + host
}
