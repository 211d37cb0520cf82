package registry

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoCapacity is returned by Reserve when no live node of the model has
// a free slot.
var ErrNoCapacity = errors.New("registry: no node has a free slot")

// Register writes node n and makes it live for ttl; nodes call it at start
// and then on every heartbeat (well inside ttl). A node that stops
// refreshing disappears after ttl and the fronts' janitors clean its
// sessions (ReapDeadNodes).
func (s *Store) Register(ctx context.Context, n Node, ttl time.Duration) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := s.nodeKey(n.ID)
		p.HSet(ctx, k, "addr", n.Addr, "model", n.Model, "capacity", n.Capacity, "draining", boolText(n.Draining))
		p.PExpire(ctx, k, ttl)
		p.SAdd(ctx, s.nodesKey(), n.ID)
		return nil
	})
	return err
}

func boolText(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Deregister removes node id and its slots at once (a node that drained).
func (s *Store) Deregister(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.nodeKey(id), s.slotsKey(id))
		p.SRem(ctx, s.nodesKey(), id)
		return nil
	})
	return err
}

// Nodes returns the live registered nodes with their used slots.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	ids, err := s.rdb.SMembers(ctx, s.nodesKey()).Result()
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, id := range ids {
		m, err := s.rdb.HGetAll(ctx, s.nodeKey(id)).Result()
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		c, _ := strconv.Atoi(m["capacity"])
		used, err := s.rdb.ZCount(ctx, s.slotsKey(id), strconv.FormatInt(ms(time.Now()), 10), "+inf").Result()
		if err != nil {
			return nil, err
		}
		out = append(out, Node{ID: id, Addr: m["addr"], Model: m["model"], Capacity: c, Draining: m["draining"] == "1", Used: int(used)})
	}
	return out, nil
}

// HasModel reports whether a live node serves model.
func (s *Store) HasModel(ctx context.Context, model string) (bool, error) {
	nodes, err := s.Nodes(ctx)
	for _, n := range nodes {
		if n.Model == model {
			return true, err
		}
	}
	return false, err
}

// reserveScript picks the live, non-draining node of a model with the most
// free slots (expired leases freed first) and leases one slot to a
// session. ARGV: prefix, model, sid, now ms, lease expiry ms, excluded ids….
var reserveScript = redis.NewScript(`
local p, model, sid, now, lease = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local excluded = {}
for i = 6, #ARGV do excluded[ARGV[i]] = true end
local best, bestFree, bestAddr = nil, 0, nil
for _, id in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if not excluded[id] then
    local n = redis.call('HMGET', p .. 'node:' .. id, 'model', 'capacity', 'draining', 'addr')
    if n[1] == model and n[3] == '0' then
      local slots = p .. 'slots:' .. id
      redis.call('ZREMRANGEBYSCORE', slots, '-inf', '(' .. now)
      local free = tonumber(n[2]) - redis.call('ZCARD', slots)
      if free > bestFree then best, bestFree, bestAddr = id, free, n[4] end
    end
  end
end
if not best then return false end
redis.call('ZADD', p .. 'slots:' .. best, lease, sid)
return {best, bestAddr}`)

// Reserve leases a slot for session sid on the live node of model with the
// most free slots, skipping the nodes in exclude, atomically across every
// front. The lease lapses after lease unless Commit makes it last. It
// returns the node's id and address, or ErrNoCapacity.
func (s *Store) Reserve(ctx context.Context, model, sid string, lease time.Duration, exclude ...string) (id, addr string, err error) {
	now := time.Now()
	args := []any{s.p, model, sid, ms(now), ms(now.Add(lease))}
	for _, e := range exclude {
		args = append(args, e)
	}
	v, err := reserveScript.Run(ctx, s.rdb, []string{s.nodesKey()}, args...).StringSlice()
	if errors.Is(err, redis.Nil) {
		return "", "", ErrNoCapacity
	}
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

// Commit makes session sid's slot on node id last until the session's
// latest end (until), replacing the reservation lease.
func (s *Store) Commit(ctx context.Context, id, sid string, until time.Time) error {
	return s.rdb.ZAdd(ctx, s.slotsKey(id), redis.Z{Score: float64(ms(until)), Member: sid}).Err()
}

// Release frees session sid's slot on node id.
func (s *Store) Release(ctx context.Context, id, sid string) error {
	return s.rdb.ZRem(ctx, s.slotsKey(id), sid).Err()
}

// ReapDeadNodes cleans up after nodes whose heartbeat lapsed: each of
// their sessions becomes INACTIVE (kept for keep, so polls read it), their
// slots are dropped and they leave the registry. It returns the sessions
// it ended. Any number of fronts may run it at once.
func (s *Store) ReapDeadNodes(ctx context.Context, keep time.Duration) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.nodesKey()).Result()
	if err != nil {
		return nil, err
	}
	var ended []string
	for _, id := range ids {
		live, err := s.rdb.Exists(ctx, s.nodeKey(id)).Result()
		if err != nil || live == 1 {
			continue
		}
		lost, err := s.ReapNode(ctx, id, keep)
		ended = append(ended, lost...)
		if err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// ReapNode ends every session holding a slot on node id as INACTIVE (kept
// for keep) and removes the node from the registry; it returns the
// sessions it ended. Fronts call it for a node whose heartbeat lapsed; a
// node restarting under the same id calls it for its predecessor's
// sessions before registering.
func (s *Store) ReapNode(ctx context.Context, id string, keep time.Duration) ([]string, error) {
	sids, err := s.rdb.ZRange(ctx, s.slotsKey(id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	var ended []string
	for _, sid := range sids {
		if ok, _ := s.End(ctx, Session{ID: sid, Node: id}, StateInactive, "engine node "+id+" lost", keep); ok {
			ended = append(ended, sid)
		}
	}
	return ended, s.Deregister(ctx, id)
}

// NodeLive reports whether node id is registered and its heartbeat has
// not lapsed.
func (s *Store) NodeLive(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.nodeKey(id)).Result()
	return n == 1, err
}
