package node

import (
	"context"
	"net/http"
	"time"
)

// Recording and clips on a node (reactor-recording-and-viewers.md §1.10):
// the node records its sessions when the model's config turns recording
// on, under the front's session id as the recording id, and serves
// GET /clips and GET /clips/chunks/{id}/{name} from its store. A front
// routes those requests here: it authorizes the playlist (the session's
// account) and finds this node through the registry's recording entry,
// which outlives the session by the recording's retention.

// handleClips serves the clip routes with the protocol server's
// handlers. They need no token: the front checked the playlist's, and a
// segment's URL is named by the recording's random UUID.
func (n *Node) handleClips(w http.ResponseWriter, r *http.Request) {
	n.srv.ServeHTTP(w, r)
}

// noteRecording records in the registry that this node keeps session
// fsid's recording, for as long as the session may run plus the
// recording's retention (and a minute of slack).
func (n *Node) noteRecording(ctx context.Context, fsid, account string) {
	recs := n.w.Recordings()
	if recs == nil || !n.w.RecordingConfig().Enabled {
		return
	}
	ttl := n.cfg.MaxDuration + recs.Retention() + time.Minute
	if err := n.cfg.Store.PutRecording(ctx, fsid, n.cfg.Addr, account, ttl); err != nil {
		n.log.Warn("recording not registered: its clips are not reachable through the fronts", "session", fsid, "err", err)
	}
}
