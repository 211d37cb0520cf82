package host

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
)

// Options are the serving settings, one field per command-line flag of
// cmd/framewire (Register binds them). The zero value is not the
// defaults: use Parse, or Register and FlagSet.Parse.
type Options struct {
	// Flags are the HTTP serving flags every binary shares (-addr,
	// -max-conns, -max-conns-per-ip, -read-timeout, -header-timeout,
	// -idle-timeout, -max-upload, -log-level).
	httpserve.Flags

	Loopback    bool
	Interfaces  string
	PublicIPs   string
	STUN        string
	TURN        string
	TURNUser    string
	TURNPass    string
	OrphanGrace time.Duration
	PingTimeout time.Duration

	AllowOrigins   string
	PublicURL      string
	TrustForwarded bool
	UploadMemory   int64
	Mode           string      // "local" (default) or "node"
	Node           NodeOptions // -mode node

	Recordings RecordingOptions // -recordings, … (record.go)
}

// Register binds o's fields to fs's flags with cmd/framewire's names,
// defaults and help texts.
func (o *Options) Register(fs *flag.FlagSet) {
	o.Flags.Register(fs, "127.0.0.1:8080")
	fs.BoolVar(&o.Loopback, "loopback", true, "offer loopback ICE candidates (browser on the same host)")
	fs.StringVar(&o.Interfaces, "interfaces", "", "comma-separated network interfaces for host candidates (default all)")
	fs.StringVar(&o.PublicIPs, "public-ip", "", "comma-separated public IPs announced as host candidates (1:1 NAT)")
	fs.StringVar(&o.STUN, "stun", "", "comma-separated STUN URLs (stun:host:port), also handed to the client")
	fs.StringVar(&o.TURN, "turn", "", "comma-separated TURN URLs, also handed to the client")
	fs.StringVar(&o.TURNUser, "turn-user", "", "TURN username")
	fs.StringVar(&o.TURNPass, "turn-password", "", "TURN password")
	fs.DurationVar(&o.OrphanGrace, "orphan-grace", 60*time.Second, "keep a session without a client this long for reconnect()")
	fs.DurationVar(&o.PingTimeout, "ping-timeout", 20*time.Second, "a client silent on the data channel this long is treated as lost")
	fs.StringVar(&o.AllowOrigins, "allow-origin", "", "comma-separated browser origins (https://app.example.com) allowed to use the server, * for any; default: the server's own page and localhost origins")
	fs.StringVar(&o.PublicURL, "public-url", "", "base URL browsers reach the server at, for upload URLs (default: the listener's address)")
	fs.BoolVar(&o.TrustForwarded, "trust-forwarded-headers", false, "build upload URLs from X-Forwarded-Proto/-Host (only behind a proxy that sets them)")
	fs.Int64Var(&o.UploadMemory, "upload-memory", 256<<20, "upload bytes held in memory by all sessions together")
	fs.StringVar(&o.Mode, "mode", "local", "local: one replaceable session, no auth (the SDK's local mode); node: a production engine node behind fronts (cmd/front)")
	o.Node.register(fs)
	o.Recordings.register(fs)
}

// Parse parses args (without the program name) into Options; prog names
// the program in usage and error messages, which go to the FlagSet's
// default output (stderr). -h gives flag.ErrHelp. A flag of the other
// mode (-capacity without -mode node, -orphan-grace with it, …) is an
// error, never silently ignored.
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
	var notHere map[string]string
	switch o.Mode {
	case "local":
		notHere = nodeOnly
	case "node":
		notHere = localOnly
	default:
		return o, fmt.Errorf("-mode %q: want local or node", o.Mode)
	}
	if err := httpserve.RefuseFlags(fs, notHere); err != nil {
		return o, err
	}
	return o, o.Flags.Check()
}

// localOnly are the flags -mode node refuses, and why.
var localOnly = map[string]string{
	"orphan-grace":            "not in -mode node; a node keeps a session without a client for -reconnect-window",
	"public-url":              "not in -mode node; the fronts build upload URLs (front -public-url)",
	"trust-forwarded-headers": "not in -mode node; the fronts build upload URLs",
}

// nodeOnly are the flags of -mode node, which local mode refuses.
var nodeOnly = func() map[string]string {
	m := map[string]string{}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(NodeOptions).register(fs)
	fs.VisitAll(func(f *flag.Flag) { m[f.Name] = "applies to -mode node only" })
	return m
}()

// split is a comma-separated flag value's items.
var split = httpserve.List

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
