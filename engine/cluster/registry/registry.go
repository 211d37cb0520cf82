// Package registry is production mode's shared state in Redis: the
// sessions of the coordinator API (state, owning account, the node bound to
// each), the queue of sessions waiting for capacity, and the registry of
// engine nodes with heartbeats, TTLs and atomic capacity reservation.
//
// Every front and node of a deployment opens a Store on the same Redis;
// fronts keep nothing else, so any front answers for any session and a
// crashed front loses nothing. Keys (prefix "fw:" by default):
//
//	{p}sess:{sid}          hash: the Session record (TTL: the session's life + slack)
//	{p}queue:{model}       zset: pending session ids by order of creation ({p}queue-seq)
//	{p}queue-seq           counter: the order of session creations across every front
//	{p}nodes               set: ids of registered nodes
//	{p}node:{id}           hash: a node's address, model, capacity, draining (TTL: heartbeat)
//	{p}acct:{account}      set: an account's session ids (ended ones pruned lazily)
//	{p}slots:{id}          zset: session ids holding a slot on node id, scored by lease expiry (ms)
//	{p}rec:{sid}           hash: the node keeping session sid's recording and its account (recordings.go)
//
// The reservation script reads keys it computes, so the Store needs one
// Redis (or one hash slot), not Redis Cluster.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for a session Redis does not hold.
var ErrNotFound = errors.New("registry: no such session")

// Session states, as the SDK reads them (upper case; CLOSED and INACTIVE
// are terminal).
const (
	StateCreated   = "CREATED"
	StatePending   = "PENDING"
	StateWaiting   = "WAITING"
	StateActive    = "ACTIVE"
	StateSuspended = "SUSPENDED"
	StateInactive  = "INACTIVE"
	StateClosed    = "CLOSED"
)

// Terminal reports whether state ends a session.
func Terminal(state string) bool { return state == StateClosed || state == StateInactive }

// Bound reports whether a session in state has a node.
func Bound(state string) bool {
	return state == StateWaiting || state == StateActive || state == StateSuspended
}

// Session is one coordinator session as stored.
type Session struct {
	ID       string
	Account  string
	Model    string
	State    string
	Node     string    // node id, once bound
	NodeAddr string    // node base URL, once bound
	Caps     string    // the bound node's capabilities, JSON
	Created  time.Time // POST /sessions
	LastPoll time.Time // last GET /sessions/{sid}
	Deadline time.Time // placement must happen before this
	Reason   string    // why it ended
}

// Node is an engine node as registered.
type Node struct {
	ID       string
	Addr     string // base URL fronts reach it at
	Model    string
	Capacity int
	Draining bool
	Used     int // slots held now (Nodes fills it)
}

// Store reads and writes the shared state. It is safe for concurrent use
// and holds no state of its own besides the client, which the caller owns
// and closes.
type Store struct {
	rdb redis.UniversalClient
	p   string
}

// New returns a store on rdb whose keys start with prefix ("fw:" when
// empty).
func New(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "fw:"
	}
	return &Store{rdb: rdb, p: prefix}
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func (s *Store) sessKey(id string) string  { return s.p + "sess:" + id }
func (s *Store) queueKey(m string) string  { return s.p + "queue:" + m }
func (s *Store) nodeKey(id string) string  { return s.p + "node:" + id }
func (s *Store) slotsKey(id string) string { return s.p + "slots:" + id }
func (s *Store) nodesKey() string          { return s.p + "nodes" }
func (s *Store) acctKey(a string) string   { return s.p + "acct:" + a }

// ErrOverQuota is returned (wrapped, with the figures) by CreateSession
// and Rebind when the account already has its maximum of live sessions.
var ErrOverQuota = errors.New("registry: account over its quota of live sessions")

// liveLua is a Lua function shared by the scripts that admit a session:
// live(acct, prefix, except) counts the sessions of the account set acct
// that have not ended (queued ones included), except the id except, and
// removes the ended and expired ones from the set on the way, so the set
// holds live sessions only.
const liveLua = `
local function live(acct, p, except)
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', acct)) do
    local st = redis.call('HGET', p .. 'sess:' .. id, 'state')
    if not st or st == 'CLOSED' or st == 'INACTIVE' then
      redis.call('SREM', acct, id)
    elseif id ~= except then
      n = n + 1
    end
  end
  return n
end
local function extend(k, ms)
  local cur = redis.call('PTTL', k)
  if cur < tonumber(ms) then redis.call('PEXPIRE', k, ms) end
end
`

// LiveSessions counts account's sessions that have not ended (queued ones
// included), forgetting ended ones on the way.
func (s *Store) LiveSessions(ctx context.Context, account string) (int, error) {
	return liveScript.Run(ctx, s.rdb, []string{s.acctKey(account)}, s.p).Int()
}

var liveScript = redis.NewScript(liveLua + `return live(KEYS[1], ARGV[1], '')`)

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v string) time.Time {
	n, _ := strconv.ParseInt(v, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// createScript admits and stores a new pending session in one step, so
// that concurrent creates of one account cannot all pass the quota
// (KEYS[1] session, KEYS[2] queue, KEYS[3] account set). ARGV: prefix,
// sid, account, model, created ms, deadline ms, record ttl ms, max live
// sessions of the account (0: no bound). It returns -1 when the session
// was created, else the account's live sessions.
var createScript = redis.NewScript(liveLua + `
local n = live(KEYS[3], ARGV[1], '')
local max = tonumber(ARGV[8])
if max > 0 and n >= max then return n end
redis.call('HSET', KEYS[1], 'account', ARGV[3], 'model', ARGV[4], 'state', 'PENDING',
  'created', ARGV[5], 'last_poll', ARGV[5], 'deadline', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], redis.call('INCR', ARGV[1] .. 'queue-seq'), ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
extend(KEYS[3], ARGV[7])
return -1`)

// CreateSession stores a new pending session and queues it, atomically
// with the account's quota: when max > 0 and the account already has max
// live sessions (queued ones included), nothing is stored and the error
// wraps ErrOverQuota. The record expires ttl after its deadline unless
// updated. The account's set of session ids holds live sessions only and
// expires with the longest-lived of their records.
func (s *Store) CreateSession(ctx context.Context, x Session, ttl time.Duration, max int) error {
	life := time.Until(x.Deadline) + ttl
	n, err := createScript.Run(ctx, s.rdb, []string{s.sessKey(x.ID), s.queueKey(x.Model), s.acctKey(x.Account)},
		s.p, x.ID, x.Account, x.Model, ms(x.Created), ms(x.Deadline), life.Milliseconds(), max).Int()
	if err != nil {
		return err
	}
	if n >= 0 {
		return fmt.Errorf("%w: account has %d live sessions, the limit is %d", ErrOverQuota, n, max)
	}
	return nil
}

// Session returns the session sid.
func (s *Store) Session(ctx context.Context, sid string) (Session, error) {
	m, err := s.rdb.HGetAll(ctx, s.sessKey(sid)).Result()
	if err != nil {
		return Session{}, err
	}
	if len(m) == 0 {
		return Session{}, ErrNotFound
	}
	return Session{
		ID: sid, Account: m["account"], Model: m["model"], State: m["state"],
		Node: m["node"], NodeAddr: m["node_addr"], Caps: m["caps"], Reason: m["reason"],
		Created: fromMS(m["created"]), LastPoll: fromMS(m["last_poll"]), Deadline: fromMS(m["deadline"]),
	}, nil
}

// Touch records a poll of sid at now.
func (s *Store) Touch(ctx context.Context, sid string, now time.Time) error {
	return s.rdb.HSet(ctx, s.sessKey(sid), "last_poll", ms(now)).Err()
}

// QueueRank returns sid's place in model's queue (0: the oldest), or -1
// when it is not queued.
func (s *Store) QueueRank(ctx context.Context, model, sid string) (int64, error) {
	r, err := s.rdb.ZRank(ctx, s.queueKey(model), sid).Result()
	if errors.Is(err, redis.Nil) {
		return -1, nil
	}
	return r, err
}

// Queue returns the pending sessions of model, oldest first.
func (s *Store) Queue(ctx context.Context, model string) ([]string, error) {
	return s.rdb.ZRange(ctx, s.queueKey(model), 0, -1).Result()
}

// lifeLua: lifetime(slots, sid, now, ttl) is how long a bound session's
// record lives: until the end of the slot its node committed (the node's
// maximum duration, see Commit) plus a minute, and at least ttl (what a
// node that committed nothing gets).
const lifeLua = `
local function lifetime(slots, sid, now, ttl)
  local t = tonumber(ttl)
  local u = redis.call('ZSCORE', slots, sid)
  if u then
    local d = tonumber(u) - tonumber(now) + 60000
    if d > t then t = d end
  end
  return t
end
`

// bindScript binds a pending session (KEYS[1] session, KEYS[2] queue,
// KEYS[3] the node's slots, KEYS[4] the account set): only a PENDING
// session is bound, so a session closed meanwhile stays closed. ARGV:
// sid, node, addr, caps, ttl ms, now ms.
var bindScript = redis.NewScript(liveLua + lifeLua + `
if redis.call('HGET', KEYS[1], 'state') ~= 'PENDING' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'WAITING', 'node', ARGV[2], 'node_addr', ARGV[3], 'caps', ARGV[4])
local ttl = lifetime(KEYS[3], ARGV[1], ARGV[6], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREM', KEYS[2], ARGV[1])
extend(KEYS[4], ttl)
return 1`)

// Bind records that node (at addr, answering with caps) serves the pending
// session sid. The record then lives as long as the slot the node
// committed for it (its maximum duration) plus a minute, and at least
// ttl. It reports false when the session is no longer pending (closed
// meanwhile).
func (s *Store) Bind(ctx context.Context, x Session, node, addr, caps string, ttl time.Duration) (bool, error) {
	n, err := bindScript.Run(ctx, s.rdb, []string{s.sessKey(x.ID), s.queueKey(x.Model), s.slotsKey(node), s.acctKey(x.Account)},
		x.ID, node, addr, caps, ttl.Milliseconds(), ms(time.Now())).Int()
	return n == 1, err
}

// ErrMoved is returned by Rebind when the session changed since it was
// read (ended, re-placed by another front, or its node came back).
var ErrMoved = errors.New("registry: the session changed meanwhile")

// rebindScript moves a session whose node was lost to another node
// (KEYS[1] session, KEYS[2] the new node's slots, KEYS[3] the account
// set, KEYS[4] the old node's slots), only if its state and node are
// still those read (ARGV[3], ARGV[4]) and the account's quota allows it
// once more. ARGV: prefix, sid, state, old node, node, addr, caps, ttl
// ms, now ms, max. It returns -1 when moved, -2 when the session changed,
// else the account's other live sessions.
var rebindScript = redis.NewScript(liveLua + lifeLua + `
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[3] or (redis.call('HGET', KEYS[1], 'node') or '') ~= ARGV[4] then return -2 end
local max = tonumber(ARGV[10])
if max > 0 then
  local n = live(KEYS[3], ARGV[1], ARGV[2])
  if n >= max then return n end
end
redis.call('HSET', KEYS[1], 'state', 'WAITING', 'node', ARGV[5], 'node_addr', ARGV[6], 'caps', ARGV[7])
redis.call('HDEL', KEYS[1], 'reason')
local ttl = lifetime(KEYS[2], ARGV[2], ARGV[9], ARGV[8])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[3], ARGV[2])
extend(KEYS[3], ttl)
redis.call('ZREM', KEYS[4], ARGV[2])
return -1`)

// Rebind moves session x, whose node was lost (x as read: INACTIVE, or
// still bound to a node that stopped answering), to node (at addr,
// answering with caps), which started it anew: the session is WAITING
// again with the same id, its old slot is dropped, and its record lives as
// Bind's does. It fails with ErrMoved when x changed since it was read,
// and with ErrOverQuota when the account's other live sessions already
// reach max (> 0).
func (s *Store) Rebind(ctx context.Context, x Session, node, addr, caps string, ttl time.Duration, max int) error {
	oldSlots := s.p + "none" // no old slot to drop
	if x.Node != "" && x.Node != node {
		oldSlots = s.slotsKey(x.Node)
	}
	keys := []string{s.sessKey(x.ID), s.slotsKey(node), s.acctKey(x.Account), oldSlots}
	n, err := rebindScript.Run(ctx, s.rdb, keys, s.p, x.ID, x.State, x.Node, node, addr, caps, ttl.Milliseconds(), ms(time.Now()), max).Int()
	switch {
	case err != nil:
		return err
	case n == -2:
		return ErrMoved
	case n >= 0:
		return fmt.Errorf("%w: account has %d other live sessions, the limit is %d", ErrOverQuota, n, max)
	}
	return nil
}

// setStateScript sets a live session's state (KEYS[1]); a terminal state
// is never left, and with a node given only a session bound to that node
// changes (a node never ends a session placed elsewhere). ARGV: state,
// reason, ttl ms (0 keeps the TTL), node ("" for any).
var setStateScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur or cur == 'CLOSED' or cur == 'INACTIVE' then return 0 end
if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'node') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`)

// SetState moves a live session bound to node to state (ACTIVE,
// SUSPENDED, …); it reports false when the session is gone, ended or
// bound elsewhere.
func (s *Store) SetState(ctx context.Context, sid, node, state string) (bool, error) {
	n, err := setStateScript.Run(ctx, s.rdb, []string{s.sessKey(sid)}, state, "", 0, node).Int()
	return n == 1, err
}

// End moves session x to a terminal state (CLOSED or INACTIVE) with
// reason, removes it from its queue, and keeps the record ttl so polls
// read the state before they get 404. When x.Node is set, only a session
// bound to that node is ended. It reports false when the session had
// already ended, is unknown or is bound elsewhere.
func (s *Store) End(ctx context.Context, x Session, state, reason string, ttl time.Duration) (bool, error) {
	n, err := setStateScript.Run(ctx, s.rdb, []string{s.sessKey(x.ID)}, state, reason, ttl.Milliseconds(), x.Node).Int()
	if err != nil {
		return false, err
	}
	if x.Model != "" {
		if err := s.rdb.ZRem(ctx, s.queueKey(x.Model), x.ID).Err(); err != nil {
			return n == 1, err
		}
	}
	return n == 1, nil
}

// Lock takes a short exclusive lock named name for ttl; it reports false
// when another holder has it.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.p+"lock:"+name, "1", ttl).Result()
}

// Unlock releases the lock name.
func (s *Store) Unlock(ctx context.Context, name string) error {
	return s.rdb.Del(ctx, s.p+"lock:"+name).Err()
}

// Keys returns the keys matching pattern under the prefix (tests and
// diagnostics: it scans).
func (s *Store) Keys(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	it := s.rdb.Scan(ctx, 0, s.p+pattern, 100).Iterator()
	for it.Next(ctx) {
		out = append(out, it.Val())
	}
	return out, it.Err()
}

// String describes the session for logs.
func (x Session) String() string { return fmt.Sprintf("session %s (%s, %s)", x.ID, x.Model, x.State) }

// Dequeue removes sid from model's queue.
func (s *Store) Dequeue(ctx context.Context, model, sid string) error {
	return s.rdb.ZRem(ctx, s.queueKey(model), sid).Err()
}

// KeyPrefix returns the prefix of every key of the store.
func (s *Store) KeyPrefix() string { return s.p }
