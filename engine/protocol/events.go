package protocol

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The /events journal (contract §3): Server-Sent Events of session
// transitions, resumable with ?since=N or Last-Event-ID: N.

// journalKeep is how many events the journal replays, and how many one
// subscriber may have queued before the oldest are dropped.
const journalKeep = 4096

// journalEvent is one envelope, with exactly the contract's six keys.
type journalEvent struct {
	Type   string         `json:"type"`
	Event  string         `json:"event"`
	From   string         `json:"from"`
	To     string         `json:"to"`
	TS     int64          `json:"ts"`
	Detail map[string]any `json:"detail"`
}

type journalEntry struct {
	seq  uint64
	data []byte
}

// journal numbers events from 1 and keeps the last journalKeep. Safe for
// concurrent use; append never blocks.
type journal struct {
	mu   sync.Mutex
	seq  uint64
	ring []journalEntry
	subs map[chan struct{}]struct{}
}

func newJournal() *journal {
	return &journal{subs: map[chan struct{}]struct{}{}}
}

// transition journals one event. detail nil is {}.
func (j *journal) transition(event, from, to string, detail map[string]any) {
	if detail == nil {
		detail = map[string]any{}
	}
	data, err := json.Marshal(journalEvent{Type: "transition", Event: event, From: from, To: to, TS: time.Now().UnixMilli(), Detail: detail})
	if err != nil {
		data, _ = json.Marshal(journalEvent{Type: "transition", Event: "error", From: from, To: to, TS: time.Now().UnixMilli(), Detail: map[string]any{"message": err.Error()}})
	}
	j.mu.Lock()
	j.seq++
	j.ring = append(j.ring, journalEntry{j.seq, data})
	if len(j.ring) > journalKeep {
		j.ring = append(j.ring[:0:0], j.ring[len(j.ring)-journalKeep:]...)
	}
	for c := range j.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	j.mu.Unlock()
}

// after returns the retained events with seq > since (at most
// journalKeep) and the last seq.
func (j *journal) after(since uint64) ([]journalEntry, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := 0
	for i < len(j.ring) && j.ring[i].seq <= since {
		i++
	}
	return append([]journalEntry(nil), j.ring[i:]...), j.seq
}

func (j *journal) subscribe() (chan struct{}, func()) {
	c := make(chan struct{}, 1)
	j.mu.Lock()
	j.subs[c] = struct{}{}
	j.mu.Unlock()
	return c, func() {
		j.mu.Lock()
		delete(j.subs, c)
		j.mu.Unlock()
	}
}

// handleEvents serves GET /events.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet) {
		return
	}
	_, last := s.journal.after(^uint64(0))
	since := last // neither: only new events
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			since = n
		}
	}
	if v, ok := r.URL.Query()["since"]; ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{"loc": []string{"query", "since"}, "msg": "since must be a non-negative integer"}}})
			return
		}
		since = n
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	wake, unsubscribe := s.journal.subscribe()
	defer unsubscribe()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		evs, _ := s.journal.after(since)
		for _, e := range evs {
			if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.seq, e.data); err != nil {
				return
			}
			since = e.seq
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-wake:
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil { // consumers ignore comments
				return
			}
		}
	}
}
