package protocol

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/wiring"
)

// Recording and clips (reactor-recording-and-viewers.md §1): the
// requestClip / requestRecording data-channel messages, the session
// descriptor's "recording" field, GET /clips and GET /clips/chunks/….
// The routes need no session: they answer for as long as the store
// keeps the recording.

// registerClipRoutes adds the clip routes to s.mux.
func (s *Server) registerClipRoutes() {
	s.mux.HandleFunc("/clips", s.handleClips)
	s.mux.HandleFunc("/clips/chunks/{sid}/{name}", s.handleClipChunk)
}

// recordingDescriptor is the descriptor's "recording" field.
func (s *Server) recordingDescriptor() map[string]any {
	c := s.w.RecordingConfig()
	return map[string]any{"enabled": c.Enabled, "chunk_seconds": c.ChunkSeconds}
}

// adoptRecordingID makes the start body's session_id the recording id of
// ws when it is a lowercase UUID; any other value is replaced by the
// minted id (logged), never stored unservable. base, when set, is what
// the session's clipReady URLs start with (StartOptions.ClipBase).
func (s *Server) adoptRecordingID(ws *wiring.Session, id, base string) {
	rec := ws.Recorder()
	if rec == nil {
		return
	}
	if base != "" {
		rec.SetURLBase(base)
	}
	if id == "" {
		return
	}
	if !record.ValidID(id) {
		s.log.Info("start_session: session_id is not a lowercase UUID; the recording gets a fresh id", "given", ratelog.Truncate(id, 64), "recording", rec.ID())
		return
	}
	if err := rec.SetID(id); err != nil {
		s.log.Info("start_session: session_id not used as the recording id", "err", err, "recording", rec.ID())
	}
}

// journalRecording sends the session's recording facts to the /events
// journal: chunk_ready as each file closes, clip_ready as each clip told
// to a client becomes ready (contract §3, item 43). Both are self-loops
// in the session's state at the time ("closing" once it is ending: the
// last chunk closes as the session stops).
func (ss *session) journalRecording() {
	rec := ss.ws.Recorder()
	if rec == nil {
		return
	}
	state := func() string {
		if st := ss.currentState(); st != stateClosed && !ss.es.ShouldStop() {
			return st.String()
		}
		return "closing"
	}
	j := ss.srv.journal
	rec.SetEvents(record.Events{
		Chunk: func(id string, idx int) {
			st := state()
			j.transition("chunk_ready", st, st, map[string]any{"recording_id": id, "idx": idx})
		},
		Clip: func(c record.Clip) {
			st := state()
			j.transition("clip_ready", st, st, map[string]any{
				"session_id": c.SessionID, "kind": c.Kind,
				"start_marker": c.StartMarker, "end_marker": c.EndMarker, "now_marker": c.NowMarker,
				"predicted_ready_at_ms": c.PredictedReadyAtMs, "playlist_url": c.PlaylistURL,
			})
		},
	})
}

// urlPrefix is what goes before clip URLs: nothing (path-only, the
// runtime's shape) unless Config.PublicURL has a path prefix, which the
// SDK would drop from a path-only URL: then the absolute public URL.
func (s *Server) urlPrefix() string {
	u, err := url.Parse(s.cfg.PublicURL)
	if s.cfg.PublicURL == "" || err != nil || strings.Trim(u.Path, "/") == "" {
		return ""
	}
	return strings.TrimSuffix(s.cfg.PublicURL, "/")
}

// clipPrefix is what goes before this session's clip URLs: the base its
// start gave (StartOptions.ClipBase), else the server's urlPrefix.
func (ss *session) clipPrefix(rec *record.Recorder) string {
	if b := rec.URLBase(); b != "" {
		return b
	}
	return ss.srv.urlPrefix()
}

// onClipRequest answers requestClip or requestRecording on the peer that
// sent it, at once, with clipReady or clipFailed.
func (ss *session) onClipRequest(p *peer.Peer, typ string, data json.RawMessage) {
	rec := ss.ws.Recorder()
	var (
		clip record.Clip
		err  error
	)
	if typ == "requestRecording" {
		clip, err = rec.Recording(ss.clipPrefix(rec))
	} else {
		var req struct {
			Duration float64 `json:"duration_seconds"`
		}
		if len(data) > 0 {
			_ = json.Unmarshal(data, &req) // a missing or malformed duration decodes as 0: refused below
		}
		clip, err = rec.Snap(req.Duration, ss.clipPrefix(rec))
	}
	if err != nil {
		err = ss.sendRuntime(p, "clipFailed", map[string]string{"reason": err.Error()})
	} else if err = ss.sendRuntime(p, "clipReady", clip); err == nil {
		rec.AwaitClip(clip) // clip_ready in the journal once it is
	}
	if err != nil {
		if ok, suppressed := ss.clientLog.Allow(); ok {
			ss.log.Warn("clip reply not sent", "err", err, "suppressed", suppressed)
		}
	}
}

// handleClips serves GET /clips?session_id=…&start=…&end=….
func (s *Server) handleClips(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet) {
		return
	}
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	q := r.URL.Query()
	var missing []map[string]any
	num := func(name string) float64 {
		v, ok := q[name]
		if !ok || len(v) == 0 {
			missing = append(missing, map[string]any{"type": "missing", "loc": []string{"query", name}, "msg": "Field required", "input": nil})
			return 0
		}
		f, err := strconv.ParseFloat(v[0], 64)
		if err != nil {
			missing = append(missing, map[string]any{"type": "float_parsing", "loc": []string{"query", name}, "msg": "Input should be a valid number, unable to parse string as a number", "input": v[0]})
		}
		return f
	}
	_, hasID := q["session_id"]
	if !hasID {
		missing = append(missing, map[string]any{"type": "missing", "loc": []string{"query", "session_id"}, "msg": "Field required", "input": nil})
	}
	start, end := num("start"), num("end")
	if len(missing) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": missing})
		return
	}
	store := s.w.Recordings()
	if store == nil {
		writeError(w, http.StatusGone, record.DetailGone)
		return
	}
	code, body := store.Playlist(q.Get("session_id"), start, end, s.urlPrefix())
	switch code {
	case http.StatusOK:
		w.Header().Set("Content-Type", record.PlaylistType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(w, body)
	case http.StatusAccepted:
		w.Header().Set("Retry-After", record.RetryAfter)
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, code, body)
	}
}

// handleClipChunk serves GET /clips/chunks/{sid}/{name}: only init.mp4
// and closed chunk_NNNNN.m4s of a known recording.
func (s *Server) handleClipChunk(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	store := s.w.Recordings()
	if store == nil {
		writeError(w, http.StatusGone, record.DetailGone)
		return
	}
	code, path, ctype := store.Chunk(r.PathValue("sid"), r.PathValue("name"))
	if code != http.StatusOK {
		writeError(w, code, ctype)
		return
	}
	f, err := os.Open(path)
	if err != nil { // evicted or expired since the lookup
		writeError(w, http.StatusNotFound, record.DetailNoSegment)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusNotFound, record.DetailNoSegment)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=300")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
