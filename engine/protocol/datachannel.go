package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/framewire/framewire/engine/peer"
)

// envelope is a client→server data-channel frame (§7).
type envelope struct {
	Scope string `json:"scope"`
	Data  *struct {
		Type    string             `json:"type"`
		Data    json.RawMessage    `json:"data"`
		Uploads map[string]fileRef `json:"uploads"`
	} `json:"data"`
}

// onMessage handles one text frame of the "data" channel. Every frame
// counts as a ping. It never blocks: commands are queued for the model.
func (ss *session) onMessage(p *peer.Peer, text []byte) {
	if ss.currentPeer() != p {
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	var env envelope
	if err := json.Unmarshal(text, &env); err != nil || env.Data == nil || env.Data.Type == "" {
		ss.drop("malformed envelope; want {scope, data: {type, data}}", text)
		return
	}
	switch env.Scope {
	case "runtime":
		switch env.Data.Type {
		case "ping":
		case "requestCapabilities":
			if err := ss.sendRuntime(p, "modelCapabilities", ss.caps); err != nil {
				ss.log.Warn("modelCapabilities not sent", "err", err)
			} else {
				ss.srv.stats.capabilityReplies.Add(1)
			}
		case "fileUploaded":
			var ref fileRef
			if err := json.Unmarshal(env.Data.Data, &ref); err != nil || ref.UploadID == "" {
				ss.drop("fileUploaded without upload_id", text)
				return
			}
			if !ss.uploads.notified(ref.UploadID) {
				ss.drop("fileUploaded for an unknown upload", text)
			}
		default:
			ss.drop("unknown runtime message type "+env.Data.Type, text)
		}
	case "application":
		args := env.Data.Data
		if len(args) == 0 || string(args) == "null" {
			args = json.RawMessage("{}")
		}
		select {
		case ss.cmds <- command{name: env.Data.Type, args: args, uploads: env.Data.Uploads}:
		default:
			ss.srv.stats.commandsDropped.Add(1)
			ss.log.Warn("command queue full; command dropped", "command", env.Data.Type)
		}
	default:
		ss.drop("unknown scope "+env.Scope, text)
	}
}

func (ss *session) drop(why string, text []byte) {
	ss.srv.stats.droppedMessages.Add(1)
	if len(text) > 200 {
		text = text[:200]
	}
	ss.log.Debug("data-channel message dropped", "why", why, "message", string(text))
}

// runCommands hands queued commands to the model one at a time, after
// resolving their uploads (waiting for PUTs in flight).
func (ss *session) runCommands() {
	defer ss.srv.wg.Done()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case c := <-ss.cmds:
			ss.dispatch(c)
		}
	}
}

func (ss *session) dispatch(c command) {
	var ups map[string]Upload
	if len(c.uploads) > 0 {
		ups = make(map[string]Upload, len(c.uploads))
		ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.UploadWait)
		defer cancel()
		for param, ref := range c.uploads {
			u, err := ss.uploads.wait(ctx, ref.UploadID)
			if err != nil {
				ss.reject(c.name, fmt.Errorf("file parameter %q: %w", param, err))
				return
			}
			ups[param] = u
		}
	}
	if err := ss.es.Dispatch(c.name, c.args, ups); err != nil {
		ss.reject(c.name, err)
		return
	}
	ss.srv.stats.commands.Add(1)
}

// reject counts a refused command and tells the client why in a runtime
// "error" message (the 2.9.0 SDK only forwards it to runtimeMessage
// listeners).
func (ss *session) reject(name string, err error) {
	ss.srv.stats.commandsRejected.Add(1)
	ss.log.Info("command rejected", "command", name, "err", err)
	if p := ss.currentPeer(); p != nil {
		if err := ss.sendRuntime(p, "error", map[string]string{"code": "COMMAND_REJECTED", "command": name, "message": err.Error()}); err != nil {
			ss.log.Debug("rejection not sent to the client", "command", name, "err", err)
		}
	}
}

// sendRuntime sends {"scope":"runtime","data":{"type":typ,"data":data}}.
func (ss *session) sendRuntime(p *peer.Peer, typ string, data any) error {
	b, err := json.Marshal(map[string]any{"scope": "runtime", "data": map[string]any{"type": typ, "data": data}})
	if err != nil {
		return err
	}
	return p.Send(b)
}

// sendApplication is the model's Send: v becomes the data of one
// application envelope. It fails with ErrNoClient when no client is
// connected and with peer.ErrMessageTooLarge beyond the client's limit.
func (ss *session) sendApplication(v any) error {
	b, err := json.Marshal(struct {
		Scope string `json:"scope"`
		Data  any    `json:"data"`
	}{"application", v})
	if err != nil {
		return fmt.Errorf("protocol: send: value is not JSON-serialisable: %w", err)
	}
	p := ss.currentPeer()
	if p == nil {
		ss.srv.stats.refusedSends.Add(1)
		return ErrNoClient
	}
	if err := p.Send(b); err != nil {
		ss.srv.stats.refusedSends.Add(1)
		if errors.Is(err, peer.ErrChannelNotOpen) {
			return fmt.Errorf("%w: %v", ErrNoClient, err)
		}
		return err
	}
	return nil
}
