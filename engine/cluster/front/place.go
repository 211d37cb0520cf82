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
			_ = st.Release(ctx, node, x.ID)
			excluded = append(excluded, node)
			continue
		}
		ok, err := st.Bind(ctx, x, node, addr, string(caps), f.cfg.SessionTTL)
		if err != nil || !ok { // closed while it started: undo
			_ = f.endOnNode(ctx, x, "")
			_ = st.Release(ctx, node, x.ID)
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

// startOnNode starts session x on the node at addr, authorised by a
// one-minute placement token of the session's account, and returns the node's
// capabilities.
func (f *Front) startOnNode(ctx context.Context, x registry.Session, addr string) (json.RawMessage, error) {
	tok, err := f.cfg.Issuer.MintForNode(x.Account, time.Minute)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"session_id": x.ID})
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
		return nil, fmt.Errorf("node answered %d %s", resp.StatusCode, bytes.TrimSpace(b))
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
	ended, err := st.ReapDeadNodes(ctx, time.Minute)
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
