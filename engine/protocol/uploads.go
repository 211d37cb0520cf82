package protocol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/framewire/framewire/engine"
)

var (
	errUnknownUpload = errors.New("unknown upload id")
	errUploadPending = errors.New("upload bytes not received in time")
)

// uploadStore keeps one session's uploads in memory until the session ends.
type uploadStore struct {
	max, quota int64

	waiting atomic.Int32 // commands waiting for an upload's bytes now

	mu     sync.Mutex
	used   int64 // announced bytes of all slots
	slots  map[string]*slot
	closed bool
}

type slot struct {
	id, name, mime string
	size           int64
	writing        bool
	data           []byte
	done           chan struct{} // closed once data holds exactly size bytes
	notified       bool          // fileUploaded seen
}

func newUploadStore(max, quota int64) *uploadStore {
	return &uploadStore{max: max, quota: quota, slots: map[string]*slot{}}
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

// clear drops every upload; later creates fail.
func (u *uploadStore) clear() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	u.slots = map[string]*slot{}
	u.used = 0
}

// put stores body as the slot's bytes; it must be exactly size bytes.
func (u *uploadStore) put(id string, r *http.Request) (int, error) {
	u.mu.Lock()
	s := u.slots[id]
	switch {
	case s == nil:
		u.mu.Unlock()
		return http.StatusNotFound, fmt.Errorf("unknown upload %q", id)
	case s.writing:
		u.mu.Unlock()
		return http.StatusConflict, fmt.Errorf("upload %q is already being written or complete", id)
	}
	s.writing = true
	u.mu.Unlock()
	fail := func(code int, err error) (int, error) {
		u.mu.Lock()
		s.writing = false // the client may retry
		u.mu.Unlock()
		return code, err
	}
	if r.ContentLength >= 0 && r.ContentLength != s.size {
		return fail(http.StatusBadRequest, fmt.Errorf("Content-Length %d differs from the announced size %d", r.ContentLength, s.size))
	}
	buf := make([]byte, s.size+1)
	n, err := io.ReadFull(r.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, fmt.Errorf("reading upload body: %v", err))
	}
	if int64(n) != s.size {
		what := fmt.Sprintf("%d", n)
		if int64(n) > s.size {
			what = "more than " + fmt.Sprint(s.size)
		}
		return fail(http.StatusBadRequest, fmt.Errorf("received %s bytes; the announced size is %d", what, s.size))
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return http.StatusGone, errors.New("session has ended")
	}
	s.data = buf[:n:n]
	close(s.done)
	u.mu.Unlock()
	return http.StatusOK, nil
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
	if err := readJSON(r, 64<<10, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, "uploads: "+err.Error())
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
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	writeJSON(w, http.StatusCreated, map[string]string{
		"presigned_id":  sl.id,
		"presigned_url": scheme + "://" + r.Host + "/uploads/" + sl.id,
		"path":          "sessions/" + sess.id + "/uploads/" + sl.id + "/" + sl.name,
	})
}

func (s *Server) handlePutUpload(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPut) {
		return
	}
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur == nil {
		writeError(w, http.StatusNotFound, "no session is running, so no upload slot exists")
		return
	}
	code, err := cur.uploads.put(r.PathValue("id"), r)
	if err != nil {
		writeError(w, code, "upload: "+err.Error())
		return
	}
	writeJSON(w, code, map[string]string{"status": "ok"})
}
