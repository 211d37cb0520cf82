package protocol

import (
	"encoding/json"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/engine/peer"
)

// fileRef is one entry of a command's uploads: which upload a file
// parameter names.
type fileRef struct {
	UploadID string `json:"upload_id"`
	Name     string `json:"name"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
}

// envelope is a client→server data-channel frame: {scope, data: {type, data, uploads}}.
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
func (ss *session) onMessage(c *conn, p *peer.Peer, text []byte) {
	ss.mu.Lock()
	current := c.peer == p && ss.conns[c.id] == c
	ready := c.ready
	ss.mu.Unlock()
	if !current {
		return
	}
	if !ready {
		// A frame proves the channel open, and the client may send before
		// the peer reports itself connected (seen under load): count the
		// connection open now, or the replies to these very frames would
		// go to no connection and be lost.
		ss.onReady(c, p)
	}
	c.lastSeen.Store(time.Now().UnixNano())
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
				if ok, suppressed := ss.clientLog.Allow(); ok {
					ss.log.Warn("modelCapabilities not sent", "err", err, "suppressed", suppressed)
				}
			} else {
				ss.srv.stats.capabilityReplies.Add(1)
			}
		case "requestClip", "requestRecording": // clips.go
			ss.onClipRequest(p, env.Data.Type, env.Data.Data)
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
			ss.drop("unknown runtime message type "+ratelog.Truncate(env.Data.Type, 64), text)
		}
	case "application":
		ss.dispatch(c.id, env.Data.Type, env.Data.Data, env.Data.Uploads)
	default:
		ss.drop("unknown scope "+ratelog.Truncate(env.Scope, 64), text)
	}
}

func (ss *session) drop(why string, text []byte) {
	ss.srv.stats.droppedMessages.Add(1)
	if ok, suppressed := ss.clientLog.Allow(); ok {
		ss.log.Debug("data-channel message dropped", "why", why, "message", ratelog.Truncate(string(text), 200), "suppressed", suppressed)
	}
}

// dispatch hands an application command to the engine session's one
// command queue: the engine validates it, reports a rejection through the
// session's Transport (CommandRejected), and resolves its uploads on the
// command goroutine. The command names its sending connection: the
// handler's Session.Client, the addressed reply, the journal. It never
// blocks.
func (ss *session) dispatch(from int, name string, args json.RawMessage, refs map[string]fileRef) {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	var ups map[string]engine.Upload
	if len(refs) > 0 {
		ups = make(map[string]engine.Upload, len(refs))
		for param, ref := range refs {
			// Data nil: a reference the command goroutine resolves
			// through Upload, waiting for a PUT still in flight.
			ups[param] = engine.Upload{ID: ref.UploadID, Name: ref.Name, MimeType: ref.MimeType, Size: ref.Size}
		}
	}
	if ss.es.DispatchFrom(from, name, args, ups) == nil { // a rejection is logged, counted and sent by the engine
		st := ss.currentState().String()
		ss.srv.journal.transition("command", st, st, map[string]any{"name": ratelog.Truncate(name, 64), "args": scalarArgs(args), "conn_id": from})
	}
}

// scalarArgs keeps a command's scalar arguments, for the journal.
func scalarArgs(args json.RawMessage) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(args, &m)
	out := map[string]any{}
	for k, v := range m {
		switch v.(type) {
		case string, float64, bool, nil:
			out[k] = v
		}
	}
	return out
}

// sendRuntime sends {"scope":"runtime","data":{"type":typ,"data":data}}.
func (ss *session) sendRuntime(p *peer.Peer, typ string, data any) error {
	b, err := json.Marshal(map[string]any{"scope": "runtime", "data": map[string]any{"type": typ, "data": data}})
	if err != nil {
		return err
	}
	return p.Send(b)
}
