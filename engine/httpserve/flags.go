package httpserve

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Flags are the serving settings every Framewire binary that serves HTTP
// takes (cmd/framewire in both modes, cmd/front, the Python serve
// command), registered once by Register with the same names, defaults and
// help texts everywhere.
type Flags struct {
	Addr          string
	MaxConns      int
	MaxConnsPerIP int
	ReadTimeout   time.Duration
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	MaxUpload     int64
	LogLevel      string
	AllowHosts    string
}

// Register binds f's fields to fs's flags; defaultAddr is the binary's
// listen address default.
func (f *Flags) Register(fs *flag.FlagSet, defaultAddr string) {
	fs.StringVar(&f.Addr, "addr", defaultAddr, "HTTP listen address (host:port; :port listens on every interface)")
	fs.IntVar(&f.MaxConns, "max-conns", 1024, "most HTTP connections held at once; at the cap a new one evicts an idle one of the client holding the most, or is served only health and metrics routes")
	fs.IntVar(&f.MaxConnsPerIP, "max-conns-per-ip", 256, "most HTTP connections one client IP holds at once (0: no per-client cap; behind a proxy every client shares its IP)")
	fs.DurationVar(&f.ReadTimeout, "read-timeout", 15*time.Second, "time to read a request (upload bodies get a deadline from their size instead)")
	fs.DurationVar(&f.HeaderTimeout, "header-timeout", 10*time.Second, "time to read a request's headers (at most -read-timeout)")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", 60*time.Second, "keep-alive connections idle this long are closed")
	fs.Int64Var(&f.MaxUpload, "max-upload", 100<<20, "largest upload in bytes; other request bodies are capped by their routes")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.AllowHosts, "allow-host", "", "listening on loopback, Host names answered besides localhost names and loopback IPs (comma-separated; a local reverse proxy's name; * for any); others get 421, so a DNS-rebinding page reads nothing")
}

// Check reports the first invalid value.
func (f Flags) Check() error {
	switch {
	case f.MaxConns < 1:
		return fmt.Errorf("-max-conns %d: want at least 1", f.MaxConns)
	case f.MaxConnsPerIP < 0:
		return fmt.Errorf("-max-conns-per-ip %d: want 0 (no cap) or more", f.MaxConnsPerIP)
	case f.ReadTimeout <= 0 || f.HeaderTimeout <= 0 || f.IdleTimeout <= 0:
		return fmt.Errorf("-read-timeout, -header-timeout and -idle-timeout must be positive")
	case f.MaxUpload < 1:
		return fmt.Errorf("-max-upload %d: want at least 1 byte", f.MaxUpload)
	}
	_, err := f.Level()
	return err
}

// Level returns f.LogLevel as a slog.Level, or an error naming a bad
// level.
func (f Flags) Level() (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", f.LogLevel)
	}
	return level, nil
}

// uploadSlack is what a body may carry beyond -max-upload (multipart
// framing, JSON around it).
const uploadSlack = 1 << 20

// Config is the server's Config from f, logging to log: bodies are
// capped at -max-upload plus 1 MiB.
func (f Flags) Config(log *slog.Logger) Config {
	return Config{
		MaxConns:          f.MaxConns,
		MaxConnsPerIP:     f.MaxConnsPerIP,
		ReadTimeout:       f.ReadTimeout,
		ReadHeaderTimeout: min(f.HeaderTimeout, f.ReadTimeout),
		IdleTimeout:       f.IdleTimeout,
		MaxBodyBytes:      f.MaxUpload + uploadSlack,
		AllowHosts:        List(f.AllowHosts),
		Logger:            log,
	}
}

// AllowURLHosts adds the hosts of the URLs (a -public-url, an advertised
// address) to c.AllowHosts: a server is always answerable under its own
// configured names. Empty or unparsable URLs are skipped.
func (c *Config) AllowURLHosts(urls ...string) {
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			c.AllowHosts = append(c.AllowHosts, u.Host)
		}
	}
}

// List returns the items of a comma-separated flag value, trimmed, empty
// ones left out (nil for "").
func List(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// RefuseFlags returns an error when any of the flags named in notHere was
// set on fs's command line: flags registered for another mode are refused,
// never silently ignored. notHere maps a flag's name to why it does not
// apply (e.g. "applies to -mode node only").
func RefuseFlags(fs *flag.FlagSet, notHere map[string]string) error {
	var bad []string
	fs.Visit(func(fl *flag.Flag) {
		if why, ok := notHere[fl.Name]; ok {
			bad = append(bad, "-"+fl.Name+": "+why)
		}
	})
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%s", strings.Join(bad, "; "))
}
