package auth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/framewire/framewire/engine/httpserve"
)

// Handler serves the token route: GET or POST with the API key in
// Reactor-API-Key (or X-API-Key) and an optional body (absent, null, {} or
// {"expires_after": seconds}) → 200 {"jwt", "expires_at"}; a bad key gets
// 401. CORS is the caller's (the front answers it on every route).
func (i *Issuer) Handler(keys *Keys) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST, OPTIONS")
			writeDetail(w, http.StatusMethodNotAllowed, "tokens: want GET or POST")
			return
		}
		key := r.Header.Get("Reactor-API-Key")
		if key == "" {
			key = r.Header.Get("X-API-Key")
		}
		acct, err := keys.Account(key)
		if err != nil {
			writeDetail(w, http.StatusUnauthorized, "tokens: a valid API key is required in Reactor-API-Key or X-API-Key")
			return
		}
		ttl, err := requestedTTL(r)
		if err != nil {
			writeDetail(w, http.StatusBadRequest, "tokens: "+err.Error())
			return
		}
		tok, exp, err := i.Mint(acct, ttl)
		if err != nil {
			writeDetail(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"jwt": tok, "expires_at": exp.Unix()})
	})
}

func requestedTTL(r *http.Request) (time.Duration, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(body))
	if s == "" || s == "null" {
		return 0, nil
	}
	var req struct {
		ExpiresAfter *float64 `json:"expires_after"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, errors.New("body: want null, {} or {\"expires_after\": seconds}")
	}
	if req.ExpiresAfter == nil {
		return 0, nil
	}
	if *req.ExpiresAfter <= 0 {
		return 0, errors.New("expires_after: want a positive number of seconds")
	}
	return time.Duration(min(*req.ExpiresAfter, MaxTTL.Seconds()) * float64(time.Second)), nil
}

// writeDetail writes the shared {"detail": …} error body.
var writeDetail = httpserve.WriteDetail
