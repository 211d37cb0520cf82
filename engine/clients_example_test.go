package engine_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/framewire/framewire/engine"
)

// hostRunner greets each client, tells everyone when one leaves, and
// answers "whoami" to its sender only.
type hostRunner struct{ done chan struct{} }

func (hostRunner) RunSession(ctx context.Context, _ *engine.Session) error {
	<-ctx.Done()
	return nil
}

func (hostRunner) ClientConnected(s *engine.Session, c engine.ClientEvent) {
	_ = s.SendTo(c.ID, map[string]any{"type": "welcome", "id": c.ID, "live": c.Live})
}

func (h hostRunner) ClientDisconnected(s *engine.Session, c engine.ClientEvent) {
	_ = s.Send(map[string]any{"type": "left", "id": c.ID})
	close(h.done)
}

// clientsPrinter plays package protocol: it prints what reaches which
// client (0: every client).
type clientsPrinter struct{}

func (clientsPrinter) Send(msg json.RawMessage) error { fmt.Println("all:", string(msg)); return nil }
func (clientsPrinter) SendTo(c int, msg json.RawMessage) error {
	fmt.Printf("%d: %s\n", c, msg)
	return nil
}
func (clientsPrinter) CommandRejected(string, error)        {}
func (clientsPrinter) CommandRejectedTo(int, string, error) {}
func (clientsPrinter) CommandFailed(int, string, error)     {}
func (clientsPrinter) Upload(context.Context, string) (engine.Upload, error) {
	return engine.Upload{}, engine.ErrNoTransport
}

type whoamiArgs struct{}

// Several clients on one session: the model's hooks and commands know who
// is there and who asked.
func Example_clients() {
	h := hostRunner{done: make(chan struct{})}
	e, err := engine.New(engine.Model{
		Name: "host",
		Commands: []engine.CommandDef{engine.Command("whoami", "", func(s *engine.Session, _ whoamiArgs) error {
			return s.Reply(map[string]any{"type": "you", "id": s.Client()})
		})},
		New: func(engine.Config) (engine.Runner, error) { return h, nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")
	s.Attach(clientsPrinter{})

	// What package protocol does as connections come and go (hooks and
	// commands run in this order on the session's command goroutine).
	s.ClientConnected(1001, 1)
	s.ClientConnected(4821, 2)
	_ = s.DispatchFrom(4821, "whoami", nil, nil)
	s.ClientDisconnected(4821, 1)
	<-h.done
	// Output:
	// 1001: {"id":1001,"live":1,"type":"welcome"}
	// 4821: {"id":4821,"live":2,"type":"welcome"}
	// 4821: {"id":4821,"type":"you"}
	// all: {"id":4821,"type":"left"}
}
