package front

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/registry"
)

// sessionJSON is the body of POST and GET /sessions: optional fields are
// omitted, never null.
type sessionJSON struct {
	SessionID         string            `json:"session_id"`
	State             string            `json:"state"`
	Cluster           string            `json:"cluster"`
	Model             map[string]string `json:"model"`
	ServerInfo        map[string]string `json:"server_info"`
	SelectedTransport map[string]string `json:"selected_transport,omitempty"`
	Capabilities      json.RawMessage   `json:"capabilities,omitempty"`
}

func (f *Front) describe(x registry.Session) sessionJSON {
	d := sessionJSON{SessionID: x.ID, State: x.State, Cluster: f.cfg.Cluster,
		Model: map[string]string{"name": x.Model}, ServerInfo: map[string]string{"server_version": f.cfg.ServerVersion}}
	if registry.Bound(x.State) && x.Caps != "" {
		d.Cluster += "/" + x.Node
		d.SelectedTransport = map[string]string{"protocol": "webrtc", "version": "1.0"}
		d.Capabilities = json.RawMessage(x.Caps)
	}
	return d
}

// handleCreate is POST /sessions: a valid unexpired token, a known model;
// the session is queued and placed at once when a node has a free slot.
func (f *Front) handleCreate(w http.ResponseWriter, r *http.Request) {
	if !checkVersion(w, r, "Reactor-API-Version") {
		return
	}
	claims, err := f.cfg.Issuer.Verify(auth.BearerToken(r))
	if err != nil {
		f.stats.unauthorized.Add(1)
		writeDetail(w, http.StatusUnauthorized, err.Error())
		return
	}
	var req struct {
		Model *struct {
			Name string `json:"name"`
		} `json:"model"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Model == nil || req.Model.Name == "" {
		f.stats.refused.Add(1)
		writeDetail(w, http.StatusBadRequest, "want {\"model\": {\"name\": string}, \"client_info\": …, \"supported_transports\": […]}")
		return
	}
	ctx := r.Context()
	if code, err := f.admit(ctx, req.Model.Name); err != nil {
		f.stats.refused.Add(1)
		writeDetail(w, code, err.Error())
		return
	}
	now := time.Now()
	x := registry.Session{ID: newID(), Account: claims.Account, Model: req.Model.Name, State: registry.StatePending,
		Created: now, LastPoll: now, Deadline: now.Add(f.cfg.PlacementDeadline)}
	// The quota is checked in the same Redis script that creates the
	// session: simultaneous creates of one account cannot all pass it.
	if err := f.cfg.Store.CreateSession(ctx, x, f.cfg.EndedTTL, f.cfg.MaxPerAccount); errors.Is(err, registry.ErrOverQuota) {
		f.stats.refused.Add(1)
		writeDetail(w, http.StatusTooManyRequests, err.Error())
		return
	} else if err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "session store: "+err.Error())
		return
	}
	f.stats.created.Add(1)
	f.log.Info("session created", "session", x.ID, "account", x.Account, "model", x.Model)
	f.place(context.WithoutCancel(ctx), x.ID)
	d := f.describe(x)
	d.State = registry.StateCreated
	writeJSON(w, http.StatusCreated, d)
}

// admit checks the model (the account's quota is checked when the
// session is stored).
func (f *Front) admit(ctx context.Context, model string) (int, error) {
	ok, err := f.knownModel(ctx, model)
	switch {
	case err != nil:
		return http.StatusServiceUnavailable, fmt.Errorf("node registry: %v", err)
	case !ok:
		return http.StatusNotFound, fmt.Errorf("unknown model %q: no engine node serves it", model)
	}
	return 0, nil
}

// owned returns the session sid when the request carries a token signed
// here (expired ones too: one token serves a session's whole life) of the
// session's account; otherwise it answers 401 or 404.
func (f *Front) owned(w http.ResponseWriter, r *http.Request, sid string) (registry.Session, bool) {
	claims, err := f.cfg.Issuer.VerifySigned(auth.BearerToken(r))
	if err != nil {
		f.stats.unauthorized.Add(1)
		writeDetail(w, http.StatusUnauthorized, err.Error())
		return registry.Session{}, false
	}
	x, err := f.cfg.Store.Session(r.Context(), sid)
	switch {
	case errors.Is(err, registry.ErrNotFound) || (err == nil && x.Account != claims.Account):
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", sid))
		return x, false
	case err != nil:
		writeDetail(w, http.StatusServiceUnavailable, "session store: "+err.Error())
		return x, false
	}
	return x, true
}

// handleGet is the SDK's readiness poll: pending until a node is bound
// (placement is tried on the way), then capabilities and
// selected_transport; CLOSED once the placement deadline passed.
func (f *Front) handleGet(w http.ResponseWriter, r *http.Request) {
	if !checkVersion(w, r, "Reactor-API-Version") {
		return
	}
	x, ok := f.owned(w, r, r.PathValue("sid"))
	if !ok {
		return
	}
	ctx := r.Context()
	if x.State == registry.StatePending {
		_ = f.cfg.Store.Touch(ctx, x.ID, time.Now())
		if time.Now().After(x.Deadline) {
			f.endPending(ctx, x, "no engine node freed before the placement deadline", &f.stats.closedDeadline)
		} else {
			f.place(context.WithoutCancel(ctx), x.ID)
		}
		if y, err := f.cfg.Store.Session(ctx, x.ID); err == nil {
			x = y
		}
	}
	writeJSON(w, http.StatusOK, f.describe(x))
}

// endPending closes a pending session for reason, counting it in c.
func (f *Front) endPending(ctx context.Context, x registry.Session, reason string, c interface{ Add(uint64) uint64 }) {
	if ok, err := f.cfg.Store.End(ctx, x, registry.StateClosed, reason, f.cfg.EndedTTL); ok && err == nil {
		c.Add(1)
		f.log.Info("session closed", "session", x.ID, "reason", reason)
	}
}

// handleDelete ends a session whatever its state; 404 when unknown or
// already ended. A body ({"reason": …}) is accepted and ignored.
func (f *Front) handleDelete(w http.ResponseWriter, r *http.Request) {
	x, ok := f.owned(w, r, r.PathValue("sid"))
	if !ok {
		return
	}
	if registry.Terminal(x.State) {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("session %q has ended", x.ID))
		return
	}
	ctx := r.Context()
	if registry.Bound(x.State) {
		if err := f.endOnNode(ctx, x, r.Header.Get("Authorization")); err != nil {
			f.log.Warn("node did not end the session; freeing its slot", "session", x.ID, "node", x.Node, "err", err)
			_ = f.cfg.Store.Release(ctx, x.Node, x.ID)
		}
	}
	_, _ = f.cfg.Store.End(ctx, x, registry.StateClosed, "deleted by the client", f.cfg.EndedTTL)
	f.stats.deleted.Add(1)
	f.log.Info("session deleted", "session", x.ID)
	writeJSON(w, http.StatusOK, map[string]string{"session_id": x.ID, "state": registry.StateClosed})
}

// endOnNode asks the session's node to end it, with authorization (the
// client's token, or one minted for the session's account when empty).
func (f *Front) endOnNode(ctx context.Context, x registry.Session, authorization string) error {
	if authorization == "" {
		tok, _, err := f.cfg.Issuer.Mint(x.Account, time.Minute)
		if err != nil {
			return err
		}
		authorization = "Bearer " + tok
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, x.NodeAddr+"/node/sessions/"+x.ID, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authorization)
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("node answered %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
