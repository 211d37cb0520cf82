package registry

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Recordings: where a session's recording is kept. A node that records a
// session writes {p}rec:{sid} (its address and the session's account),
// with a TTL covering the session's longest life plus the recording's
// retention, so a front routes
// GET /clips and the segments to that node after the session has ended
// and its session record is gone (reactor-recording-and-viewers.md §1.10).

func (s *Store) recKey(id string) string { return s.p + "rec:" + id }

// Recording is where a recording is kept and whose it is.
type Recording struct {
	Addr    string // base URL of the node serving it
	Account string // the account of the session it records
}

// PutRecording notes that recording id, of account's session, is served
// by the node at addr for ttl.
func (s *Store) PutRecording(ctx context.Context, id, addr, account string, ttl time.Duration) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.recKey(id), "addr", addr, "account", account)
		p.PExpire(ctx, s.recKey(id), ttl)
		return nil
	})
	return err
}

// Recording returns where recording id is kept, or ErrNotFound.
func (s *Store) Recording(ctx context.Context, id string) (Recording, error) {
	m, err := s.rdb.HGetAll(ctx, s.recKey(id)).Result()
	if err != nil {
		return Recording{}, err
	}
	if m["addr"] == "" {
		return Recording{}, ErrNotFound
	}
	return Recording{Addr: m["addr"], Account: m["account"]}, nil
}
