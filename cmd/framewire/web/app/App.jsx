// The Framewire demo page: the published @reactor-team/js-sdk used the way
// its users use it (ReactorProvider in local mode, ReactorView,
// WebcamStream, ReactorController, the store's connect/disconnect/
// reconnect, useReactorMessage, useStats), plus a panel with the engine's
// own per-track statistics from GET /framewire/stats, and what the model
// (a face filter) reports about the faces it finds in the webcam.
import { useEffect, useRef, useState } from "react";
import { create } from "zustand";
import { useShallow } from "zustand/shallow";
import {
  ReactorProvider,
  ReactorView,
  ReactorController,
  WebcamStream,
  useReactor,
  useReactorMessage,
  useReactorInternalMessage,
  useStats,
} from "@reactor-team/js-sdk";

// The served model: the server writes its name into the page (host.MountPage).
const MODEL = window.FRAMEWIRE_MODEL || "framewire-demo";
// FACES: the served model is the built-in face filter (another model gets
// the face strip only once it sends faces messages).
const FACES = MODEL === "framewire-demo";
// The engine serves this page, so its protocol routes are on the page's own
// origin; ?api=http://host:port points the page at another engine.
const API = new URLSearchParams(window.location.search).get("api") || window.location.origin;
const HISTORY = 60; // seconds of sparkline

// usePage is the page's own state: the message log, the banner, the
// engine's stats and the last minute of samples for the sparklines.
let seq = 0;
const usePage = create((set) => ({
  log: [],
  banner: null, // {kind: "error" | "lost", title, detail}
  engine: null, // latest /framewire/stats document
  engineError: null,
  history: [], // {sdkFps, engineFps, latP50, latP99, rtt}
  faces: null, // latest {type: "faces"} message, with at: its arrival (ms)
  addLog: (kind, type, text) =>
    set((s) => {
      // Coalesce a repeated message type among the last few entries (the
      // demo sends webcam and faces every second): the entry moves to the
      // end with the newest text and its count.
      const i = s.log.findLastIndex((e, j) => j >= s.log.length - 4 && e.kind === kind && e.type === type);
      if (i >= 0 && type !== "") {
        const merged = { ...s.log[i], text, count: s.log[i].count + 1, at: Date.now() };
        return { log: [...s.log.slice(0, i), ...s.log.slice(i + 1), merged] };
      }
      return { log: [...s.log.slice(-99), { id: ++seq, at: Date.now(), kind, type, text, count: 1 }] };
    }),
  showBanner: (banner) => set({ banner }),
  clearBanner: () => set({ banner: null }),
  setEngine: (engine, engineError) => set({ engine, engineError }),
  setFaces: (faces) => set({ faces }),
  pushSample: (sample) => set((s) => ({ history: [...s.history.slice(-(HISTORY - 1)), sample] })),
}));

export function App() {
  return (
    <ReactorProvider modelName={MODEL} local apiUrl={API}>
      <Page />
    </ReactorProvider>
  );
}

function Page() {
  const userAction = useWatchConnection();
  return (
    <div className="page">
      <Header userAction={userAction} />
      <Banner userAction={userAction} />
      <main className="grid">
        <section className="left">
          <div className="card video-card">
            <div className="card-title">
              main_video{" "}
              <span className="muted">
                from the model, over WebRTC
                {FACES && ": your camera with the faces it finds pixelated, blurred or boxed (OpenCV's Haar cascade, in the engine)"}
              </span>
            </div>
            <ReactorView track="main_video" className="video" videoObjectFit="contain" />
            <FacesStrip />
          </div>
          <ClipCard />
          <div className="row">
            <div className="card webcam-card">
              <div className="card-title">
                Your camera <span className="muted">→ webcam</span>
              </div>
              <WebcamStream
                track="webcam"
                className="webcam"
                videoConstraints={{ width: { ideal: 640 }, height: { ideal: 480 } }}
              />
            </div>
            <MessageLog />
          </div>
        </section>
        <aside className="right">
          <div className="card controller-card" data-testid="controller">
            <ReactorController className="controller" />
          </div>
          <StatsPanel />
        </aside>
      </main>
    </div>
  );
}

// useWatchConnection turns SDK events into the banner and the log: a
// failed connect or reconnect (the store's lastError), a lost peer (ready →
// disconnected without the user asking), a command the model rejected and
// a session the engine ended (runtime messages). It returns a ref the
// buttons set while the user connects or disconnects on purpose.
function useWatchConnection() {
  const { status, lastError } = useReactor((s) => ({ status: s.status, lastError: s.lastError }));
  const { addLog, showBanner, clearBanner } = usePage.getState();
  const userAction = useRef(false);
  const prev = useRef(status);

  useEffect(() => {
    const was = prev.current;
    prev.current = status;
    if (status === "ready") {
      userAction.current = false;
      clearBanner();
      addLog("info", "status", "connected: status ready");
    } else if (was === "ready" && status === "disconnected" && !userAction.current) {
      const cur = usePage.getState().banner;
      if (cur && cur.ended) return; // the engine already said why

      showBanner({
        kind: "lost",
        title: "Connection to the engine lost",
        detail:
          "The WebRTC peer went away (network, engine restart or the session ended). " +
          "Reconnect resumes the same model session if the engine still holds it; New session starts over.",
      });
      addLog("error", "status", "peer lost: status disconnected");
    }
  }, [status]);

  useEffect(() => {
    if (!lastError) return;
    const titles = {
      CONNECTION_FAILED: `Could not connect to the engine at ${API}`,
      RECONNECTION_FAILED: "Reconnect failed",
      GPU_CONNECTION_ERROR: "The media connection to the engine failed",
      MESSAGE_SEND_FAILED: "A command could not be sent",
      TRACK_PUBLISH_FAILED: "Your camera could not be published",
    };
    showBanner({ kind: "error", title: titles[lastError.code] || lastError.code, detail: lastError.message });
    addLog("error", "", `${lastError.code}: ${lastError.message}`);
  }, [lastError]);

  useReactorMessage((m) => {
    addLog("model", (m && m.type) || "", JSON.stringify(m));
    if (m && m.type === "faces") usePage.getState().setFaces({ ...m, at: Date.now() });
  });
  useReactorInternalMessage((m) => {
    if (!m || typeof m !== "object") return;
    if (m.type === "error") {
      const d = m.data || {};
      const title = d.command ? `The model rejected ${d.command}` : "The model reported an error";
      showBanner({ kind: "error", title, detail: d.message || JSON.stringify(d) });
      addLog("error", "", `${d.code || "error"}: ${d.message || JSON.stringify(d)}`);
    } else if (m.type === "sessionEnded") {
      const reason = (m.data && m.data.reason) || "no reason given";
      showBanner({ kind: "lost", ended: true, title: "The engine ended the session", detail: `reason: ${reason}` });
      addLog("error", "", `session ended: ${reason}`);
    }
  });
  return userAction;
}

// ClipCard asks the engine for a clip of the last 10 s of its output
// (reactor-recording-and-viewers.md §1). SDK 2.9.0 has no clip API, so it
// sends the runtime message requestClip through the SDK's data channel
// (sendCommand with the "runtime" scope) and takes the clipReady or
// clipFailed reply from the runtime messages; then it polls GET /clips
// until the playlist is ready (202 + Retry-After while the last segment is
// open), fetches the init segment and the media segments, and plays them
// as one fragmented MP4 (a blob: URL the video element reads directly),
// with a link to save it.
const CLIP_SECONDS = 10;

function ClipCard() {
  const { status, sendCommand } = useReactor((s) => ({ status: s.status, sendCommand: s.sendCommand }));
  const [clip, setClip] = useState({ state: "idle" }); // idle | asking | waiting | ready | failed
  const urlRef = useRef(null);
  useReactorInternalMessage((m) => {
    if (!m || typeof m !== "object") return;
    if (m.type === "clipFailed") {
      setClip({ state: "failed", detail: (m.data && m.data.reason) || "refused" });
    } else if (m.type === "clipReady") {
      const d = m.data || {};
      setClip({ state: "waiting", detail: `${fmt(d.start_marker, 1, " s")} – ${fmt(d.end_marker, 1, " s")} of the recording` });
      fetchClip(d.playlist_url)
        .then((blob) => {
          if (urlRef.current) URL.revokeObjectURL(urlRef.current);
          urlRef.current = URL.createObjectURL(blob);
          setClip({ state: "ready", url: urlRef.current, detail: `${fmt(d.end_marker - d.start_marker, 1, " s")} · ${fmt(blob.size / 1024, 0, " KiB")}` });
        })
        .catch((e) => setClip({ state: "failed", detail: e && e.message ? e.message : String(e) }));
    }
  });
  useEffect(() => () => urlRef.current && URL.revokeObjectURL(urlRef.current), []);
  const busy = clip.state === "asking" || clip.state === "waiting";
  const onClick = () => {
    setClip({ state: "asking" });
    sendCommand("requestClip", { duration_seconds: CLIP_SECONDS }, "runtime").catch((e) =>
      setClip({ state: "failed", detail: e && e.message ? e.message : String(e) })
    );
  };
  return (
    <div className="card clip-card" data-testid="clip-card" data-state={clip.state}>
      <div className="card-title">
        Clip <span className="muted">the engine records its output; requestClip, then GET /clips</span>
      </div>
      <div className="clip-row">
        <button className="btn" data-testid="clip-button" disabled={status !== "ready" || busy} onClick={onClick}>
          {busy ? "Clipping…" : `Clip the last ${CLIP_SECONDS} s`}
        </button>
        <span className="muted" data-testid="clip-detail">
          {clip.state === "failed" ? `failed: ${clip.detail}` : clip.detail || ""}
        </span>
        {clip.state === "ready" && (
          <a href={clip.url} download="clip.mp4" data-testid="clip-download">
            save
          </a>
        )}
      </div>
      {clip.state === "ready" && <video className="clip-video" data-testid="clip-video" src={clip.url} controls autoPlay muted />}
    </div>
  );
}

// fetchClip resolves playlistUrl against the engine's address, polls it
// until it is ready, and returns its init segment and media segments as
// one MP4 blob.
async function fetchClip(playlistUrl) {
  const url = new URL(playlistUrl, API).href;
  const deadline = Date.now() + 60000;
  let text;
  for (;;) {
    const r = await fetch(url);
    if (r.status === 200) {
      text = await r.text();
      break;
    }
    if (r.status !== 202) throw new Error(`GET /clips: ${r.status} ${await r.text()}`);
    if (Date.now() > deadline) throw new Error("the clip was not ready within 60 s");
    const wait = Math.min(2000, Math.max(200, 1000 * Number(r.headers.get("Retry-After") || 1)));
    await new Promise((ok) => setTimeout(ok, wait));
  }
  const uris = [];
  for (const l of text.split("\n")) {
    if (l.startsWith('#EXT-X-MAP:URI="')) uris.push(l.slice(16, -1));
    else if (l && !l.startsWith("#")) uris.push(l);
  }
  if (uris.length < 2) throw new Error("the playlist lists no segment");
  const parts = [];
  for (const u of uris) {
    const r = await fetch(new URL(u, url).href);
    if (!r.ok) throw new Error(`GET ${u}: ${r.status}`);
    parts.push(await r.arrayBuffer());
  }
  return new Blob(parts, { type: "video/mp4" });
}

function Header({ userAction }) {
  const { status, sessionId } = useReactor((s) => ({ status: s.status, sessionId: s.sessionId }));
  return (
    <header className="header">
      <div className="brand">
        <span className="logo">framewire</span>
        <span className="model">{MODEL}</span>
      </div>
      <div className="conn">
        <span className="session muted" title="session id">
          {sessionId ? `session ${sessionId.slice(0, 8)}…` : API}
        </span>
        <span className={`pill pill-${status}`} data-testid="status" data-status={status}>
          {status}
        </span>
        <ConnectButton userAction={userAction} />
      </div>
    </header>
  );
}

function ConnectButton({ userAction }) {
  const { status, connect, disconnect } = useReactor((s) => ({
    status: s.status,
    connect: s.connect,
    disconnect: s.disconnect,
  }));
  const busy = status === "connecting" || status === "waiting";
  const onClick = async () => {
    userAction.current = true;
    if (status === "disconnected") {
      await startSession(connect);
    } else {
      usePage.getState().clearBanner();
      await disconnect().catch(() => {});
    }
  };
  return (
    <button className={`btn ${status === "disconnected" ? "btn-primary" : ""}`} data-testid="connect-button" onClick={onClick}>
      {status === "disconnected" ? "Connect" : busy ? "Cancel" : "Disconnect"}
    </button>
  );
}

// startSession connects and turns a failure into a readable banner.
async function startSession(connect) {
  const { clearBanner, showBanner } = usePage.getState();
  clearBanner();
  try {
    await connect();
  } catch (e) {
    const msg = e && e.message ? e.message : String(e);
    const hint = /fetch|network/i.test(msg) ? " Is framewire running there (make run)?" : "";
    showBanner({ kind: "error", title: `Could not connect to the engine at ${API}`, detail: `${msg.replace(/\.?$/, ".")}${hint}` });
  }
}

function Banner({ userAction }) {
  const banner = usePage((s) => s.banner);
  const { status, sessionId, connect, reconnect, disconnect } = useReactor((s) => ({
    status: s.status,
    sessionId: s.sessionId,
    connect: s.connect,
    reconnect: s.reconnect,
    disconnect: s.disconnect,
  }));
  if (!banner) return null;
  const canReconnect = status === "disconnected" && !!sessionId && !banner.ended;
  const onReconnect = async () => {
    userAction.current = true;
    usePage.getState().clearBanner();
    await reconnect().catch(() => {});
  };
  const onNew = async () => {
    userAction.current = true;
    if (status !== "disconnected" || sessionId) await disconnect().catch(() => {});
    await startSession(connect);
  };
  return (
    <div className={`banner banner-${banner.kind}`} data-testid="banner" role="alert">
      <div className="banner-text">
        <strong>{banner.title}</strong>
        <span>{banner.detail}</span>
      </div>
      <div className="banner-actions">
        {canReconnect && (
          <button className="btn btn-primary" data-testid="banner-reconnect" onClick={onReconnect}>
            Reconnect
          </button>
        )}
        {status === "disconnected" && (
          <button className="btn" data-testid="banner-connect" onClick={onNew}>
            {sessionId ? "New session" : "Try again"}
          </button>
        )}
        <button className="btn btn-ghost" aria-label="dismiss" onClick={() => usePage.getState().clearBanner()}>
          ×
        </button>
      </div>
    </div>
  );
}

// FacesStrip shows the model's latest faces message under the video;
// without one in the last few seconds (no webcam published yet) it says
// how to start. Other models than the demo get it only once they send
// faces messages.
function FacesStrip() {
  const faces = usePage((s) => s.faces);
  const status = useReactor((s) => s.status);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  if (!(status === "ready" && faces && now - faces.at < 3000)) {
    if (!FACES && !faces) return null;
    return (
      <div className="faces-strip faces-hint" data-testid="faces-hint">
        {status === "ready"
          ? "No camera yet: allow the camera in “Your camera” below (it is published as webcam). Until then the model draws its test pattern."
          : "Connect, then allow your camera: the model finds the faces in it and hides them (set_filter: pixelate, blur, boxes or off; set_detector: the smallest face against speed)."}
      </div>
    );
  }
  const boxes = faces.boxes.length ? faces.boxes.map((b) => `(${b.join(", ")})`).join(" ") : "none";
  return (
    <div className="faces-strip" data-testid="faces">
      <span>
        faces <b data-testid="faces-count">{String(faces.count)}</b>
      </span>
      <span>
        detect <b data-testid="faces-detect">{`${fmt(faces.detect_ms, 1, " ms")} · ${faces.detections}/s`}</b>
      </span>
      <span>
        boxes x, y, w, h <b data-testid="faces-boxes">{boxes}</b>
      </span>
    </div>
  );
}

function MessageLog() {
  const log = usePage((s) => s.log);
  return (
    <div className="card log-card">
      <div className="card-title">
        Messages <span className="muted">useReactorMessage</span>
      </div>
      <ol className="log" data-testid="log">
        {log.length === 0 && <li className="muted">Nothing yet. Connect, then move a control.</li>}
        {[...log].reverse().map((e) => (
          <li key={e.id} className={`log-${e.kind}`}>
            <time>{new Date(e.at).toLocaleTimeString()}</time>
            <code>{e.text}</code>
            {e.count > 1 && <span className="count">×{e.count}</span>}
          </li>
        ))}
      </ol>
    </div>
  );
}

// pickTrack finds main_video of the session the page is connected to (or
// the newest session) in the stats document.
function pickTrack(doc, sessionId) {
  if (!doc || !doc.sessions || doc.sessions.length === 0) return null;
  const s = doc.sessions.find((x) => x.id === sessionId) || doc.sessions[doc.sessions.length - 1];
  return (s.tracks || []).find((t) => t.track === "main_video") || (s.tracks || [])[0] || null;
}

// useEngineStats polls GET /framewire/stats every second, derives the
// engine's sent frame rate and records one sparkline sample per second.
function useEngineStats(sdk) {
  const sessionId = useReactor((s) => s.sessionId);
  const sdkRef = useRef(sdk);
  sdkRef.current = sdk;
  const sidRef = useRef(sessionId);
  sidRef.current = sessionId;
  const [fps, setFps] = useState(null);
  useEffect(() => {
    let prev = null;
    let stopped = false;
    const tick = async () => {
      const { setEngine, pushSample } = usePage.getState();
      let track = null;
      let engineFps = null;
      try {
        const r = await fetch(new URL("/framewire/stats", API), { cache: "no-store" });
        if (!r.ok) throw new Error(`GET /framewire/stats: HTTP ${r.status}`);
        const doc = await r.json();
        if (stopped) return;
        track = pickTrack(doc, sidRef.current);
        const now = Date.parse(doc.time);
        if (track && prev && prev.track === track.track && now > prev.t && track.sent >= prev.sent) {
          engineFps = ((track.sent - prev.sent) * 1000) / (now - prev.t);
        }
        prev = track ? { track: track.track, sent: track.sent, t: now } : null;
        setEngine(doc, null);
      } catch (e) {
        if (stopped) return;
        prev = null;
        setEngine(null, `engine stats unavailable: ${e.message || e}`);
      }
      setFps(engineFps);
      const s = sdkRef.current;
      pushSample({
        sdkFps: s && s.framesPerSecond != null ? s.framesPerSecond : null,
        engineFps,
        latP50: track && track.sent > 0 ? track.latency_p50_ms : null,
        latP99: track && track.sent > 0 ? track.latency_p99_ms : null,
        rtt: s && s.rtt != null ? s.rtt : null,
      });
    };
    tick();
    const id = setInterval(tick, 1000);
    return () => {
      stopped = true;
      clearInterval(id);
    };
  }, []);
  return fps;
}

const fmt = (v, digits = 1, unit = "") => (v == null || !Number.isFinite(v) ? "–" : `${v.toFixed(digits)}${unit}`);
const mbit = (bps) => (bps == null ? "–" : `${(bps / 1e6).toFixed(2)} Mbit/s`);

function StatsPanel() {
  const sdk = useStats();
  const engineFps = useEngineStats(sdk);
  const { engine, engineError, history } = usePage(
    useShallow((s) => ({ engine: s.engine, engineError: s.engineError, history: s.history })),
  );
  const sessionId = useReactor((s) => s.sessionId);
  const t = pickTrack(engine, sessionId);
  return (
    <div className="card stats-card" data-testid="stats">
      <div className="card-title">
        Live stats{" "}
        <a className="muted json-link" href={new URL("/framewire/stats", API).href} target="_blank" rel="noreferrer">
          engine JSON
        </a>
      </div>
      <div className="stats-cols">
        <dl className="stats">
          <dt className="stats-head">Browser · useStats</dt>
          <Stat label="fps received" value={fmt(sdk && sdk.framesPerSecond, 1)} testid="sdk-fps" />
          <Stat label="RTT" value={fmt(sdk && sdk.rtt, 1, " ms")} testid="sdk-rtt" />
          <Stat label="uplink estimate" value={mbit(sdk && sdk.availableOutgoingBitrate)} />
          <Stat label="packet loss" value={fmt(sdk && sdk.packetLossRatio != null ? sdk.packetLossRatio * 100 : null, 2, " %")} />
          <Stat label="jitter" value={fmt(sdk && sdk.jitter != null ? sdk.jitter * 1000 : null, 1, " ms")} />
          <Stat label="candidate" value={(sdk && sdk.candidateType) || "–"} />
        </dl>
        <dl className="stats">
          <dt className="stats-head">Engine · {t ? t.track : "main_video"}</dt>
          <Stat label="backend" value={(t && t.backend) || "–"} testid="engine-backend" />
          <Stat label="fps sent" value={fmt(engineFps, 1)} testid="engine-fps" />
          <Stat label="encode p50/p99" value={t ? `${fmt(t.encode_p50_ms, 1)} / ${fmt(t.encode_p99_ms, 1)} ms` : "–"} />
          <Stat label="emit→wire p50/p99" value={t ? `${fmt(t.latency_p50_ms, 1)} / ${fmt(t.latency_p99_ms, 1)} ms` : "–"} />
          <Stat
            label="stages p50 (ms from emit)"
            testid="engine-stages"
            value={t && t.stages ? t.stages.map((s) => `${s.stage} ${fmt(s.p50_ms, 1)}`).join(" · ") : "–"}
          />
          <Stat label="bitrate" value={t ? `${mbit(t.bitrate)}` : "–"} />
          <Stat label="dropped · skipped" value={t ? `${t.dropped} · ${t.skipped ?? 0} of ${t.emitted}` : "–"} testid="engine-dropped" />
        </dl>
      </div>
      {engineError && <div className="stats-error">{engineError}</div>}
      <Sparkline
        title="fps · last minute"
        testid="spark-fps"
        history={history}
        series={[
          { key: "sdkFps", label: "browser", color: "#2563eb" },
          { key: "engineFps", label: "engine", color: "#94a3b8" },
        ]}
        unit=""
      />
      <Sparkline
        title="latency · last minute"
        testid="spark-latency"
        history={history}
        series={[
          { key: "latP50", label: "emit→wire p50", color: "#ea580c" },
          { key: "rtt", label: "RTT", color: "#7c3aed" },
        ]}
        unit=" ms"
      />
    </div>
  );
}

function Stat({ label, value, testid }) {
  return (
    <>
      <dt>{label}</dt>
      <dd data-testid={testid}>{value}</dd>
    </>
  );
}

// Sparkline draws the last HISTORY samples of each series as an inline SVG
// polyline; gaps (no value) break the line.
function Sparkline({ title, history, series, unit, testid }) {
  const W = 300;
  const H = 44;
  const values = history.flatMap((h) => series.map((s) => h[s.key])).filter((v) => v != null && Number.isFinite(v));
  const max = Math.max(1, ...values) * 1.15;
  const x = (i) => W - (history.length - 1 - i) * (W / (HISTORY - 1));
  const y = (v) => H - 2 - (v / max) * (H - 4);
  const path = (key) => {
    let d = "";
    let pen = false;
    history.forEach((h, i) => {
      const v = h[key];
      if (v == null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  const last = history[history.length - 1] || {};
  return (
    <div className="spark" data-testid={testid}>
      <div className="spark-head">
        <span>{title}</span>
        <span className="spark-legend">
          {series.map((s) => (
            <span key={s.key} style={{ color: s.color }}>
              ● {s.label} {fmt(last[s.key], 1, unit)}
            </span>
          ))}
        </span>
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" width="100%" height={H}>
        <line x1="0" x2={W} y1={H - 1} y2={H - 1} stroke="#e5e7eb" />
        {series.map((s) => (
          <path key={s.key} d={path(s.key)} fill="none" stroke={s.color} strokeWidth="1.6" strokeLinejoin="round" />
        ))}
      </svg>
    </div>
  );
}
