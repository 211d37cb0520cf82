package host

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
)

// Options are the serving settings, one field per command-line flag of
// cmd/framewire (Register binds them). The zero value is not the
// defaults: use Parse, or Register and FlagSet.Parse.
type Options struct {
	Addr        string
	Loopback    bool
	Interfaces  string
	PublicIPs   string
	STUN        string
	TURN        string
	TURNUser    string
	TURNPass    string
	OrphanGrace time.Duration
	PingTimeout time.Duration
	MaxUpload   int64
	LogLevel    string

	AllowOrigins   string
	PublicURL      string
	TrustForwarded bool
	MaxConns       int
	ReadTimeout    time.Duration
	IdleTimeout    time.Duration
	UploadMemory   int64
	Mode           string      // "local" (default) or "node"
	Node           NodeOptions // -mode node

	Recordings RecordingOptions // -recordings, … (record.go)
}

// Register binds o's fields to fs's flags with cmd/framewire's names,
// defaults and help texts.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "HTTP listen address; loopback only by default, :8080 listens on every interface")
	fs.BoolVar(&o.Loopback, "loopback", true, "offer loopback ICE candidates (browser on the same host)")
	fs.StringVar(&o.Interfaces, "interfaces", "", "comma-separated network interfaces for host candidates (default all)")
	fs.StringVar(&o.PublicIPs, "public-ip", "", "comma-separated public IPs announced as host candidates (1:1 NAT)")
	fs.StringVar(&o.STUN, "stun", "", "comma-separated STUN URLs (stun:host:port), also handed to the client")
	fs.StringVar(&o.TURN, "turn", "", "comma-separated TURN URLs, also handed to the client")
	fs.StringVar(&o.TURNUser, "turn-user", "", "TURN username")
	fs.StringVar(&o.TURNPass, "turn-password", "", "TURN password")
	fs.DurationVar(&o.OrphanGrace, "orphan-grace", 60*time.Second, "keep a session without a client this long for reconnect()")
	fs.DurationVar(&o.PingTimeout, "ping-timeout", 20*time.Second, "a client silent on the data channel this long is treated as lost")
	fs.Int64Var(&o.MaxUpload, "max-upload", 100<<20, "largest upload in bytes")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.AllowOrigins, "allow-origin", "", "comma-separated browser origins (https://app.example.com) allowed to use the server, * for any; default: the server's own page and localhost origins")
	fs.StringVar(&o.PublicURL, "public-url", "", "base URL browsers reach the server at, for upload URLs (default: the listener's address)")
	fs.BoolVar(&o.TrustForwarded, "trust-forwarded-headers", false, "build upload URLs from X-Forwarded-Proto/-Host (only behind a proxy that sets them)")
	fs.IntVar(&o.MaxConns, "max-conns", 1024, "most HTTP connections served at once; more wait to be accepted")
	fs.DurationVar(&o.ReadTimeout, "read-timeout", 15*time.Second, "time to read a request (upload bodies get a deadline from their size instead)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 60*time.Second, "keep-alive connections idle this long are closed")
	fs.Int64Var(&o.UploadMemory, "upload-memory", 256<<20, "upload bytes held in memory by all sessions together")
	fs.StringVar(&o.Mode, "mode", "local", "local: one replaceable session, no auth (the SDK's local mode); node: a production engine node behind fronts (cmd/front)")
	o.Node.register(fs)
	o.Recordings.register(fs)
}

// Parse parses args (without the program name) into Options; prog names
// the program in usage and error messages, which go to the FlagSet's
// default output (stderr). -h gives flag.ErrHelp.
func Parse(prog string, args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	o.Register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: every setting is a flag (-addr, -mode, …)", fs.Arg(0))
	}
	if o.Mode != "local" && o.Mode != "node" {
		return o, fmt.Errorf("-mode %q: want local or node", o.Mode)
	}
	return o, nil
}

// Level returns o.LogLevel as a slog.Level, or an error naming a bad
// level.
func (o Options) Level() (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	return level, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ServerConfig is the protocol server's configuration from o, logging to
// log.
func (o Options) ServerConfig(log *slog.Logger) protocol.Config {
	pc := peer.Config{
		Loopback:   o.Loopback,
		Interfaces: split(o.Interfaces),
		PublicIPs:  split(o.PublicIPs),
		Logger:     log,
	}
	if s := split(o.STUN); len(s) > 0 {
		pc.ICEServers = append(pc.ICEServers, peer.ICEServer{URLs: s})
	}
	if t := split(o.TURN); len(t) > 0 {
		pc.ICEServers = append(pc.ICEServers, peer.ICEServer{URLs: t, Username: o.TURNUser, Credential: o.TURNPass})
	}
	return protocol.Config{
		Peer:                  pc,
		OrphanGrace:           o.OrphanGrace,
		PingTimeout:           o.PingTimeout,
		MaxUploadSize:         o.MaxUpload,
		UploadMemory:          o.UploadMemory,
		AllowedOrigins:        split(o.AllowOrigins),
		PublicURL:             o.PublicURL,
		TrustForwardedHeaders: o.TrustForwarded,
		Logger:                log,
	}
}

// HTTPServer bounds what a client can hold: headers and bodies have a
// read deadline (upload bodies replace it with one from their size), idle
// keep-alive connections are closed, headers are at most 64 KiB. The
// connection cap is on the listener (Serve).
func (o Options) HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
