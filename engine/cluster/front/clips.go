package front

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/registry"
)

// Clips (reactor-recording-and-viewers.md §1.10): a node records its
// sessions under the front's session id and notes itself in the registry
// (registry.Store.PutRecording); a front routes
//
//	GET /clips?session_id=…&start=…&end=…   the playlist: a bearer token of the session's account
//	GET /clips/chunks/{sid}/{name}          the segments: no token (the SDK sends none), named by the random UUID
//
// to that node, for as long as the recording is kept, after the session
// ended too. Behind a path prefix, the playlist's path-only URLs become
// absolute URLs of this front that keep the prefix, and the node is told
// the same base for clipReady (clipBase).

// detailGone is the runtime's answer for an unknown or aged-out recording.
const detailGone = "Recording unknown or aged out"

// recordingID is a lowercase UUID: the only ids a recording can have.
var recordingID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// clipBase is what a session's clip URLs start with, given to its node at
// start: "" without a path prefix (path-only URLs, the runtime's shape);
// else Config.PublicURL, or the prefix alone when that is unset.
func (f *Front) clipBase() string {
	if f.cfg.Prefix == "" {
		return ""
	}
	if f.cfg.PublicURL != "" {
		return strings.TrimSuffix(f.cfg.PublicURL, "/")
	}
	return f.cfg.Prefix
}

// recording looks recording sid up, answering 410 (unknown, malformed or
// aged out) or 503 (registry down) itself when it fails.
func (f *Front) recording(w http.ResponseWriter, r *http.Request, sid string) (registry.Recording, bool) {
	if !recordingID.MatchString(sid) {
		writeDetail(w, http.StatusGone, detailGone)
		return registry.Recording{}, false
	}
	rec, err := f.cfg.Store.Recording(r.Context(), sid)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		writeDetail(w, http.StatusGone, detailGone)
		return rec, false
	case err != nil:
		writeDetail(w, http.StatusServiceUnavailable, "session store: "+err.Error())
		return rec, false
	}
	return rec, true
}

// handleClips forwards a playlist request of a recording the token's
// account owns to its node, and rewrites its segment URLs behind a path
// prefix.
func (f *Front) handleClips(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	claims, err := f.cfg.Issuer.VerifySigned(auth.BearerToken(r))
	if err != nil {
		f.stats.unauthorized.Add(1)
		writeDetail(w, http.StatusUnauthorized, err.Error())
		return
	}
	sid := r.URL.Query().Get("session_id")
	if _, ok := r.URL.Query()["session_id"]; !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{
			{"type": "missing", "loc": []string{"query", "session_id"}, "msg": "Field required", "input": nil}}})
		return
	}
	rec, ok := f.recording(w, r, sid)
	if !ok {
		return
	}
	if rec.Account != claims.Account {
		writeDetail(w, http.StatusGone, detailGone) // another account's recording: as if unknown
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, rec.Addr+"/clips?"+r.URL.RawQuery, nil)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, "bad node address")
		return
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.log.Warn("clips: node unreachable", "session", sid, "node", rec.Addr, "err", err)
		writeDetail(w, http.StatusGone, detailGone) // the node that kept it is gone, and the recording with it
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		writeDetail(w, http.StatusBadGateway, "clips: node's answer: "+err.Error())
		return
	}
	for _, k := range []string{"Content-Type", "Retry-After", "Cache-Control"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	if resp.StatusCode == http.StatusOK && f.cfg.Prefix != "" {
		body = []byte(absolutePlaylist(string(body), f.publicBase(r)))
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// absolutePlaylist puts base before the playlist's path-only URIs (its
// #EXT-X-MAP URI and segment lines).
func absolutePlaylist(pl, base string) string {
	lines := strings.Split(pl, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="/`); ok {
			lines[i] = `#EXT-X-MAP:URI="` + base + "/" + rest
		} else if strings.HasPrefix(l, "/") {
			lines[i] = base + l
		}
	}
	return strings.Join(lines, "\n")
}

// handleClipChunk forwards a segment request to the node keeping the
// recording.
func (f *Front) handleClipChunk(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	rec, ok := f.recording(w, r, sid)
	if !ok {
		return
	}
	target, err := url.Parse(rec.Addr)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, "bad node address")
		return
	}
	name := r.PathValue("name")
	if !chunkName.MatchString(name) {
		writeDetail(w, http.StatusNotFound, "Segment not found")
		return
	}
	rt := &route{target: target, path: fmt.Sprintf("/clips/chunks/%s/%s", sid, name), sid: sid}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, rt)))
}

// chunkName is a segment file name a recording can have.
var chunkName = regexp.MustCompile(`^(init\.mp4|chunk_[0-9]{5}\.m4s)$`)
