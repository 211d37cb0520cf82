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

	"github.com/framewire/framewire/engine/cluster/registry"
)

// place tries once to bind the pending session sid to a node when it is
// the oldest of its model's queue: under a short Redis lock (one placer
// per session across fronts), it leases a
// slot on the live node with the most free slots and starts the session
// there; a node that fails is skipped and the next one tried. With no free
// slot the session stays queued.
func (f *Front) place(ctx context.Context, sid string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := f.cfg.Store
	if ok, err := st.Lock(ctx, "place:"+sid, 15*time.Second); err != nil || !ok {
		return err
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), "place:"+sid) }()
	x, err := st.Session(ctx, sid)
	if err != nil || x.State != registry.StatePending {
		return err
	}
	// First come, first placed: only the oldest queued session of its
	// model is placed; the janitor walks the queue in order.
	if rank, err := st.QueueRank(ctx, x.Model, x.ID); err != nil || rank != 0 {
		return err
	}
	var excluded []string
	for range 4 {
		node, addr, err := st.Reserve(ctx, x.Model, x.ID, 20*time.Second, excluded...)
		if err != nil {
			return err // registry.ErrNoCapacity: stays queued
		}
		caps, err := f.startOnNode(ctx, x, addr)
		if err != nil {
			f.stats.placeFailed.Add(1)
			f.log.Warn("node refused the session; trying another", "session", x.ID, "node", node, "err", err)
			f.undoStart(ctx, x, node, addr, err)
			excluded = append(excluded, node)
			continue
		}
		ok, err := st.Bind(ctx, x, node, addr, string(caps), f.cfg.SessionTTL)
		if err != nil || !ok { // deleted or closed while it started: end it there
			f.log.Info("session ended while its node started it; cancelling it there", "session", x.ID, "node", node)
			f.undoStart(ctx, x, node, addr, nil)
			return err
		}
		q := time.Since(x.Created)
		f.stats.placed.Add(1)
		f.stats.queueNanos.Add(uint64(q))
		f.stats.queueCount.Add(1)
		f.log.Info("session placed", "session", x.ID, "node", node, "queued", q.Round(time.Millisecond).String())
		return nil
	}
	return errors.New("front: every node tried refused the session")
}

// undoStart ends session x on the node (id node, at addr) that started
// it, or may have, and frees its slot there. startErr is the start's
// error: a node that answered with a refusal runs nothing, any other
// failure (no answer in time) may have left the session running.
func (f *Front) undoStart(ctx context.Context, x registry.Session, node, addr string, startErr error) {
	ctx = context.WithoutCancel(ctx)
	if startErr == nil || !errors.As(startErr, new(*refusal)) {
		x.Node, x.NodeAddr = node, addr
		if err := f.endOnNode(ctx, x, ""); err != nil {
			f.log.Warn("cancelling the session on its node failed", "session", x.ID, "node", node, "err", err)
		}
	}
	_ = f.cfg.Store.Release(ctx, node, x.ID)
}

// refusal is a node's answer other than 201 to a start.
type refusal struct {
	code int
	body string
}

func (e *refusal) Error() string { return fmt.Sprintf("node answered %d %s", e.code, e.body) }

// startOnNode starts session x on the node at addr, authorised by a
// one-minute placement token of the session's account, and returns the node's
// capabilities.
func (f *Front) startOnNode(ctx context.Context, x registry.Session, addr string) (json.RawMessage, error) {
	tok, err := f.cfg.Issuer.MintForNode(x.Account, time.Minute)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"session_id": x.ID, "clip_base": f.clipBase()}) // clips.go
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+"/node/sessions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return nil, &refusal{resp.StatusCode, string(bytes.TrimSpace(b))}
	}
	var rep struct {
		Capabilities json.RawMessage `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Capabilities) == 0 {
		return nil, fmt.Errorf("node answer without capabilities: %s", b)
	}
	return rep.Capabilities, nil
}

// Run sweeps until ctx ends, every Config.Janitor: sessions of nodes whose
// heartbeat lapsed become INACTIVE; queued sessions past their deadline,
// or not polled for PollGap, are CLOSED; the others are placed, oldest
// first. Any number of fronts may run it at once.
func (f *Front) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Janitor)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.sweep(ctx)
		}
	}
}

func (f *Front) sweep(ctx context.Context) {
	st := f.cfg.Store
	ended, err := st.ReapDeadNodes(ctx, f.cfg.ReconnectWindow)
	for _, sid := range ended {
		f.stats.reaped.Add(1)
		f.log.Info("session inactive: its engine node stopped heartbeating", "session", sid)
	}
	if err != nil && ctx.Err() == nil {
		f.log.Warn("reaping dead nodes", "err", err)
	}
	queues, err := st.Keys(ctx, "queue:*")
	if err != nil {
		return
	}
	for _, q := range queues {
		model := q[len(st.KeyPrefix()+"queue:"):]
		f.sweepQueue(ctx, model)
	}
}

// sweepQueue closes the expired sessions of model's queue and places the
// others in order while slots are free.
func (f *Front) sweepQueue(ctx context.Context, model string) {
	st := f.cfg.Store
	ids, err := st.Queue(ctx, model)
	if err != nil {
		return
	}
	full := false
	now := time.Now()
	for _, sid := range ids {
		x, err := st.Session(ctx, sid)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			_ = st.Dequeue(ctx, model, sid)
		case err != nil:
			return
		case x.State != registry.StatePending:
			_ = st.Dequeue(ctx, model, sid)
		case now.After(x.Deadline):
			f.endPending(ctx, x, "no engine node freed before the placement deadline", &f.stats.closedDeadline)
		case now.Sub(x.LastPoll) > f.cfg.PollGap:
			f.endPending(ctx, x, fmt.Sprintf("abandoned: no poll for %s", f.cfg.PollGap), &f.stats.closedAbandoned)
		case !full:
			if err := f.place(ctx, sid); errors.Is(err, registry.ErrNoCapacity) {
				full = true
			}
		}
	}
}

// lost reports whether session x's node is gone: the janitor made it
// INACTIVE (only a node's death does), or it is still bound to a node
// whose heartbeat lapsed.
func (f *Front) lost(ctx context.Context, x registry.Session) bool {
	switch {
	case x.State == registry.StateInactive:
		return true
	case registry.Bound(x.State):
		live, err := f.cfg.Store.NodeLive(ctx, x.Node)
		return err == nil && !live
	}
	return false
}

// replace re-places session x, whose node died, on another live node of
// its model, as the contract allows on the client's reconnect(): under the
// session's placement lock a slot is leased there and the session started
// anew (the model state restarts; the session id, the client's token and
// its cached capabilities stay valid, so the new node's capabilities must
// be identical), then the record moves to it (registry.Rebind, which
// checks the account's quota again). It returns the session as it is now.
func (f *Front) replace(ctx context.Context, x registry.Session) (registry.Session, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st := f.cfg.Store
	if ok, err := st.Lock(ctx, "place:"+x.ID, 15*time.Second); err != nil {
		return x, err
	} else if !ok {
		return x, errors.New("front: another request is placing the session")
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), "place:"+x.ID) }()
	if y, err := st.Session(ctx, x.ID); err != nil {
		return x, err
	} else if y.State != x.State || y.Node != x.Node {
		return y, nil // re-placed (or ended) meanwhile
	}
	excluded := []string{x.Node}
	for range 4 {
		node, addr, err := st.Reserve(ctx, x.Model, x.ID, 20*time.Second, excluded...)
		if err != nil {
			return x, err
		}
		caps, err := f.startOnNode(ctx, x, addr)
		if err != nil {
			f.stats.placeFailed.Add(1)
			f.log.Warn("node refused the re-placed session; trying another", "session", x.ID, "node", node, "err", err)
			f.undoStart(ctx, x, node, addr, err)
			excluded = append(excluded, node)
			continue
		}
		if !sameJSON(caps, []byte(x.Caps)) {
			f.undoStart(ctx, x, node, addr, nil)
			return x, fmt.Errorf("front: node %s serves other capabilities than the session's", node)
		}
		err = st.Rebind(ctx, x, node, addr, string(caps), f.cfg.SessionTTL, f.cfg.MaxPerAccount)
		if errors.Is(err, registry.ErrMoved) { // a janitor made it INACTIVE while it started: still lost
			if y, rerr := st.Session(ctx, x.ID); rerr == nil && y.State == registry.StateInactive && y.Node == x.Node {
				err = st.Rebind(ctx, y, node, addr, string(caps), f.cfg.SessionTTL, f.cfg.MaxPerAccount)
			}
		}
		if err != nil {
			f.undoStart(ctx, x, node, addr, nil)
			return x, err
		}
		f.stats.replaced.Add(1)
		f.log.Info("session re-placed: its node was lost", "session", x.ID, "lost", x.Node, "node", node)
		return st.Session(ctx, x.ID)
	}
	return x, errors.New("front: every node tried refused the session")
}

// sameJSON reports whether a and b are the same JSON text but for
// insignificant space.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}
