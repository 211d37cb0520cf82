// Package protocol serves an engine over the Reactor local-mode protocol,
// so the published @reactor-team/js-sdk (new Reactor({modelName, local:
// true})) connects to it unmodified. It keeps HTTP, signalling, uploads and
// the data channel; the media of each session is wired by package wiring,
// and commands go straight to the engine session's one queue.
//
// A Server is an http.Handler for one engine (through its wiring.Wiring)
// holding a table of sessions keyed by id. Config.MaxSessions is its
// admission policy: 0, local mode, is at most one live session, replaced by
// the next start_session (the SDK's local-mode semantics); N, node mode
// (package node), is up to N sessions at once, the next start refused with
// 503, each session reached by its own id (the id a caller gave Start, or
// the engine's). Every budget (Config.UploadMemory) covers all sessions of
// the server, which is one per process. Its routes:
//
//	POST /start_session                                  start (or replace) the session; reply: id, state, capabilities
//	POST /stop_session                                   end it (local mode)
//	GET  /sessions/{sid}/transport/webrtc/ice_servers    the STUN/TURN servers of peer.Config
//	POST /sessions/{sid}/transport/webrtc/sdp_params     an SDP offer and its track_mapping; 202 while the answer is built
//	GET  /sessions/{sid}/transport/webrtc/sdp_params     the answer (200), still building (202), failed (500)
//	PUT  /sessions/{sid}/transport/webrtc/sdp_params     a new offer on the same session (reconnect)
//	POST /sessions/{sid}/uploads                         reserve an upload; reply: upload_id and presigned_url
//	PUT  /uploads/{id}                                   the upload's bytes, exactly the announced size
//	PUT  /sessions/{sid}/uploads/{id}                    the same, by session (a node, after checking the URL's signature)
//
// CORS is answered on every path. Errors are JSON {"detail": "..."}
// saying what was wrong. The HTTP server in front of it (engine/httpserve,
// as cmd/framewire serves it) refuses foreign Host names on a loopback
// listener (DNS rebinding) on every route, this one's included.
//
// Lifecycle: a session is waiting until a client connects, streaming while
// its data channel is alive, orphaned (kept OrphanGrace for a reconnect)
// when the peer is lost, silent past PingTimeout or its data channel dead
// of a message over the size limit, and closed when
// stopped, replaced, orphaned too long, or when the model ends it. The
// session's goroutines (its monitor, each negotiation) run under the engine
// session like the pipelines, so Server.Close, which ends every session
// and waits for them, leaves nothing running. All methods are safe
// for concurrent use.
package protocol
