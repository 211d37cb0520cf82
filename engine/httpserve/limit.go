package httpserve

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// limiter is the listener that holds the connection caps. Accept admits a
// connection, admits it over the cap for the priority routes
// (conn.overflow), evicts an older one to make room, or refuses it (a 503
// written without reading, then close), and never blocks on a full
// server: the accept queue does not fill behind held connections.
type limiter struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	byIP   map[string][]*conn // admitted connections per client, oldest first
	total  int                // admitted connections
	over   []*conn            // connections served over the cap, oldest first
	overIP map[string]int     // those per client

	m       *Meter
	lastLog atomic.Int64 // unix nanoseconds of the last refusal line
}

// Over the cap, at most this many connections are served for the
// priority routes, and at most overflowPerIP of them per client.
const (
	overflowMax   = 64
	overflowPerIP = 2
)

func newLimiter(ln net.Listener, cfg Config) *limiter {
	return &limiter{Listener: ln, cfg: cfg, byIP: map[string][]*conn{}, overIP: map[string]int{}, m: cfg.Meter}
}

// Accept returns the next connection the caps admit.
func (l *limiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(nc.RemoteAddr())
		c, victim, why := l.admit(nc, ip)
		if victim != nil {
			l.m.evicted.Add(1)
			_ = victim.Close()
		}
		if c != nil {
			if c.overflow {
				_ = c.Conn.SetDeadline(c.deadline)
			}
			return c, nil
		}
		l.refuse(nc, ip, why)
	}
}

// admit decides, under the lock, what becomes of a new connection from
// ip: a conn (normal or over the cap), possibly with a victim to close,
// or nil and the reason it is refused.
func (l *limiter) admit(nc net.Conn, ip string) (c *conn, victim *conn, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	perIPFull := l.cfg.MaxConnsPerIP > 0 && len(l.byIP[ip]) >= l.cfg.MaxConnsPerIP
	if !perIPFull && l.total >= l.cfg.MaxConns {
		victim = l.victimLocked()
	}
	if !perIPFull && (l.total < l.cfg.MaxConns || victim != nil) {
		if victim != nil {
			l.removeLocked(victim)
		}
		c = &conn{Conn: nc, l: l, ip: ip}
		l.byIP[ip] = append(l.byIP[ip], c)
		l.total++
		l.m.open.Add(1)
		return c, victim, ""
	}
	if l.overIP[ip] < overflowPerIP {
		if len(l.over) >= overflowMax && len(l.byIP[ip]) == 0 {
			// The pool is full, most likely of a flood's connections:
			// a client holding no connection (a health check, a
			// scrape) takes the place of the oldest one still sending
			// its request.
			victim = l.overVictimLocked()
			if victim != nil {
				l.removeLocked(victim)
			}
		}
		if len(l.over) < overflowMax {
			c = &conn{Conn: nc, l: l, ip: ip, overflow: true, deadline: time.Now().Add(l.cfg.OverflowDeadline)}
			l.over = append(l.over, c)
			l.overIP[ip]++
			l.m.overCap.Add(1)
			l.m.open.Add(1)
			return c, victim, ""
		}
	}
	if perIPFull {
		return nil, nil, "client at its connection limit"
	}
	return nil, nil, "server at its connection limit"
}

// victimLocked is the oldest connection not in a handler of the client
// holding the most such connections, or nil.
func (l *limiter) victimLocked() *conn {
	var best *conn
	bestN := 0
	for _, cs := range l.byIP {
		if len(cs) <= bestN {
			continue
		}
		for _, c := range cs {
			if c.busy.Load() == 0 && !c.hijacked.Load() {
				best, bestN = c, len(cs)
				break
			}
		}
	}
	return best
}

// overVictimLocked is the oldest connection over the cap that is not in a
// handler, or nil.
func (l *limiter) overVictimLocked() *conn {
	for _, c := range l.over {
		if c.busy.Load() == 0 {
			return c
		}
	}
	return nil
}

// removeLocked forgets c; it reports whether c was still counted.
func (l *limiter) removeLocked(c *conn) bool {
	if c.overflow {
		i := slices.Index(l.over, c)
		if i < 0 {
			return false
		}
		l.over = slices.Delete(l.over, i, i+1)
		l.m.open.Add(-1)
		if l.overIP[c.ip]--; l.overIP[c.ip] == 0 {
			delete(l.overIP, c.ip)
		}
		return true
	}
	cs := l.byIP[c.ip]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			if len(cs) == 0 {
				delete(l.byIP, c.ip)
			} else {
				l.byIP[c.ip] = cs
			}
			l.total--
			l.m.open.Add(-1)
			return true
		}
	}
	return false
}

// refuse answers a connection the caps do not admit with a 503, written
// without reading the request (the client may see a reset instead), and
// closes it.
func (l *limiter) refuse(nc net.Conn, ip, why string) {
	l.m.refused.Add(1)
	now := time.Now().UnixNano()
	if last := l.lastLog.Load(); now-last > int64(time.Second) && l.lastLog.CompareAndSwap(last, now) {
		st := l.m.Stats()
		l.cfg.Logger.Warn("connection refused", "client", ip, "why", why, "refused_total", st.Refused, "evicted_total", st.Evicted)
	}
	_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	body := why + "\n"
	_, _ = nc.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body))
	_ = nc.Close()
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// clientIP is the address's IP, the whole address when it has no port.
func clientIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// conn is an admitted connection; Close releases its place once.
type conn struct {
	net.Conn
	l        *limiter
	ip       string
	overflow bool      // admitted over the cap: priority routes, until deadline
	deadline time.Time // overflow only

	busy     atomic.Int32 // requests in a handler
	hijacked atomic.Bool
	once     sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// release gives c's place back, once: at Close, or for a connection over
// the cap as soon as its one response is written (the server then
// lingers up to half a second before closing it, bounded by its
// deadline).
func (c *conn) release() {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.removeLocked(c)
		c.l.mu.Unlock()
	})
}

// The server's own deadlines never outlast an overflow connection's.
func (c *conn) clamp(t time.Time) time.Time {
	if c.overflow && (t.IsZero() || t.After(c.deadline)) {
		return c.deadline
	}
	return t
}

func (c *conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }
