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
//	POST /sessions/{sid}/transport/webrtc/connections    register a viewer: 201 {connection_id (1002–9999), track_map}
//	POST|PUT /sessions/{sid}/transport/webrtc/connections/{cid}/sdp_params   offer / re-offer on connection cid: 202 {connection_id}
//	GET  /sessions/{sid}/transport/webrtc/connections/{cid}/sdp_params       its answer once (200 {sdp_answer, connection_id}), else 202
//	POST /sessions/{sid}/transport/webrtc/connections/{cid}/ice_candidates   trickled candidates (buffered before the offer): 202
//	POST /sessions/{sid}/whep                            WHEP: an application/sdp offer; 201, the answer, Location to DELETE (extension)
//	GET  /events                                         the journal: SSE of session transitions, resumable (since, Last-Event-ID)
//	POST /sessions/{sid}/uploads                         reserve an upload; reply: upload_id and presigned_url
//	PUT  /uploads/{id}                                   the upload's bytes, exactly the announced size
//	PUT  /sessions/{sid}/uploads/{id}                    the same, by session (a node, after checking the URL's signature)
//
// CORS is answered on every path. Errors are JSON {"detail": "..."}
// saying what was wrong. The HTTP server in front of it (engine/httpserve,
// as cmd/framewire serves it) refuses foreign Host names on a loopback
// listener (DNS rebinding) on every route, this one's included.
//
// Viewers: a session holds many connections, each one peer with its own
// id, data channel, liveness and codec negotiation; SDK 2.9.0's id-less
// sdp_params routes are connection 1001 (LegacyConnectionID). Every
// connection is bound to the session's outputs, which are encoded once
// (engine/peer's fan-out: shared keyframe throttle, bitrate = lowest
// viewer estimate above a floor). An offer for a new connection past
// Config.MaxConnections (64) is refused with 503 (with
// Config.RegisterLimit, as on a production node, POST …/connections is
// already refused with 429 at the cap); a re-offer replaces only that
// connection's peer. Sends reach every open connection; a command
// names its sender (engine.Session.Client) and its rejection or Reply goes
// to that connection only; the model hears of connections through
// engine.ClientHandler. An input track is fed by one connection at a time
// (contract §2.7); other connections' frames on it are discarded. A
// connection claims it on its "control" channel with
// {"type":"notification","event":"publish_track","data":{"name":"webcam"}},
// answered {"type":"notification","event":"publish_granted","data":{"name":"webcam"}},
// or, while another connection's granted claim holds it, with
// {"type":"notification","event":"error","data":{"request":"publish_track",
// "name":"webcam","code":"publish_refused","holder":1234,"message":…}};
// {"type":"notification","event":"unpublish_track","data":{"name":"webcam"}}
// or the holder dropping releases it. A granted claim wins; without one,
// the first connection to deliver frames on a free track holds it until it
// drops (so a lone SDK 2.9.0 client, which has no control channel, always
// feeds its webcam); a connection that unpublished it holds it again only
// by a new claim. The contract names publish_track, unpublish_track and
// the publish_refused code but gives no v0 frames: these, publish_granted
// included, are Framewire's choice, in the envelope of resume_track. A
// bad or non-input name is answered with an error and changes nothing.
// Every connection streams
// at once; pause_track/resume_track on a connection's "control" channel
// (SDK ≥ 2.12) gate one output for that connection alone (a resume starts
// at a keyframe; a bad name is answered with an error on that channel).
//
// Lifecycle: a session is waiting until a client connects, streaming while
// any connection's data channel is alive, orphaned (kept OrphanGrace for a
// reconnect) when the last connection's peer is lost, silent past PingTimeout or its data channel dead
// of a message over the size limit, and closed when
// stopped, replaced, orphaned too long, or when the model ends it. The
// session's goroutines (its monitor, each negotiation) run under the engine
// session like the pipelines, so Server.Close, which ends every session
// and waits for them, leaves nothing running. All methods are safe
// for concurrent use.
package protocol
