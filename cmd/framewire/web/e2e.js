// Browser harness for the end-to-end test: the real @reactor-team/js-sdk,
// driven by the Go test through window.fw. Bundled with esbuild (see the
// Makefile's web target); served from another origin than the engine.
import { Reactor } from "@reactor-team/js-sdk";

const state = { statuses: [], messages: [], runtime: [], errors: [], tracks: [], console: [] };
for (const level of ["warn", "error"]) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    state.console.push(level + ": " + args.map((a) => (a instanceof Error ? a.message : typeof a === "object" ? JSON.stringify(a) : String(a))).join(" "));
    orig(...args);
  };
}
let reactor;
let video;

// Every RTCPeerConnection the SDK makes, for getStats; and the RTP header
// extensions to strip from its offers (fw.stripExtensions), to measure
// what each one does.
const pcs = [];
let strip = [];
const OrigPC = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new OrigPC(...args);
  pcs.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = OrigPC.prototype;
const origCreateOffer = OrigPC.prototype.createOffer;
OrigPC.prototype.createOffer = async function (...args) {
  const o = await origCreateOffer.apply(this, args);
  if (strip.length === 0) return o;
  const sdp = o.sdp
    .split("\r\n")
    .filter((l) => !(l.startsWith("a=extmap:") && strip.some((u) => l.includes(u))))
    .join("\r\n");
  return { type: o.type, sdp };
};

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what, cond, ms) {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timeout after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

function attach(name, track, stream) {
  state.tracks.push(name);
  if (name !== "main_video") return;
  if (!video) {
    video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.appendChild(video);
  }
  video.srcObject = stream;
  video.play().catch(() => {});
}

window.fw = {
  state,

  // connect runs connect() and resolves with the ms from connect() to
  // ready: in local mode, or in production mode (apiUrl = a front) when
  // jwt is given.
  async connect(apiUrl, modelName = "framewire-demo", jwt = "") {
    reactor = new Reactor(jwt ? { modelName, apiUrl } : { modelName, local: true, apiUrl });
    state.statuses.push(reactor.getStatus());
    reactor.on("statusChanged", (s) => state.statuses.push(s));
    reactor.on("message", (m) => state.messages.push(m));
    reactor.on("runtimeMessage", (m) => state.runtime.push(m));
    reactor.on("error", (e) => state.errors.push(e));
    reactor.on("trackReceived", attach);
    const t0 = performance.now();
    await (jwt ? reactor.connect(jwt) : reactor.connect());
    await waitFor("status ready", () => reactor.getStatus() === "ready", 10000);
    return performance.now() - t0;
  },

  status() {
    return reactor ? reactor.getStatus() : "none";
  },

  sessionId() {
    return reactor.getSessionId();
  },

  // frames waits for decoded frames on main_video and measures the frame
  // rate the page presents over ms.
  async frames(ms) {
    await waitFor("a main_video element", () => video, 5000);
    await waitFor("decoded main_video frames", () => video.videoWidth > 0 && video.readyState >= 2, 5000);
    let count = 0;
    let done = false;
    const onFrame = () => {
      count++;
      if (!done) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    const t0 = performance.now();
    await sleep(ms);
    done = true;
    const secs = (performance.now() - t0) / 1000;
    return { fps: count / secs, width: video.videoWidth, height: video.videoHeight };
  },

  // pixel returns the RGB of the decoded picture at (x, y).
  pixel(x, y) {
    const c = document.createElement("canvas");
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(video, 0, 0);
    const d = g.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2]];
  },

  // faceStats measures the decoded picture at a face box [x, y, w, h]: over
  // its inner half, cellStd (the mean standard deviation of luma within the
  // 16×16 grid cells wholly inside: ~0 where pixelated) and lap (the mean
  // absolute Laplacian of luma: low where blurred); over the band 12 pixels
  // either side of its edge, green (green pixels per pixel of the box's
  // perimeter: the width in pixels of the line the boxes filter draws after
  // set_color hue 120, wherever it lies in the band: the reported box is a
  // once-a-second sample of a moving face, a few pixels off the drawn one);
  // and cellStd over the grid cells of elsewhere [x0, x1] that do not touch
  // the box.
  faceStats(box, elsewhere) {
    const W = video.videoWidth;
    const H = video.videoHeight;
    const c = document.createElement("canvas");
    c.width = W;
    c.height = H;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(video, 0, 0);
    const d = g.getImageData(0, 0, W, H).data;
    const L = (x, y) => 0.299 * d[(y * W + x) * 4] + 0.587 * d[(y * W + x) * 4 + 1] + 0.114 * d[(y * W + x) * 4 + 2];
    const [bx, by, bw, bh] = box;
    const inner = [bx + bw / 4, by + bh / 4, bx + (3 * bw) / 4, by + (3 * bh) / 4].map(Math.round);
    const cellStd = (keep) => {
      let sum = 0;
      let n = 0;
      for (let cy = 0; cy + 16 <= H; cy += 16) {
        for (let cx = 0; cx + 16 <= W; cx += 16) {
          if (!keep(cx, cy)) continue;
          let s = 0;
          let s2 = 0;
          for (let y = cy; y < cy + 16; y++) {
            for (let x = cx; x < cx + 16; x++) {
              const v = L(x, y);
              s += v;
              s2 += v * v;
            }
          }
          sum += Math.sqrt(Math.max(0, s2 / 256 - (s / 256) ** 2));
          n++;
        }
      }
      return n ? sum / n : null;
    };
    const within = (cx, cy) => cx >= inner[0] && cy >= inner[1] && cx + 16 <= inner[2] && cy + 16 <= inner[3];
    const apart = (cx, cy) =>
      cx >= elsewhere[0] && cx + 16 <= elsewhere[1] && (cx + 16 <= bx - 16 || cx >= bx + bw + 16 || cy + 16 <= by - 16 || cy >= by + bh + 16);
    let lap = 0;
    let ln = 0;
    for (let y = Math.max(1, inner[1]); y < Math.min(H - 1, inner[3]); y++) {
      for (let x = Math.max(1, inner[0]); x < Math.min(W - 1, inner[2]); x++) {
        lap += Math.abs(4 * L(x, y) - L(x - 1, y) - L(x + 1, y) - L(x, y - 1) - L(x, y + 1));
        ln++;
      }
    }
    let green = 0;
    for (let y = Math.max(0, by - 12); y < Math.min(H, by + bh + 12); y++) {
      for (let x = Math.max(0, bx - 12); x < Math.min(W, bx + bw + 12); x++) {
        const edge = Math.min(Math.abs(x - bx), Math.abs(x - (bx + bw - 1)), Math.abs(y - by), Math.abs(y - (by + bh - 1)));
        if (edge > 12) continue;
        const i = (y * W + x) * 4;
        if (d[i + 1] > d[i] + 60 && d[i + 1] > d[i + 2] + 60) green++;
      }
    }
    return { cellStd: cellStd(within), lap: ln ? lap / ln : null, green: green / (2 * (bw + bh)), elsewhereStd: cellStd(apart) };
  },

  // publishWebcam publishes the (fake) camera as webcam; constraints
  // default to 640×480 (true takes the camera's own size).
  async publishWebcam(video = { width: 640, height: 480 }) {
    const s = await navigator.mediaDevices.getUserMedia({ video, audio: false });
    await reactor.publishTrack("webcam", s.getVideoTracks()[0]);
  },

  async command(name, data) {
    await reactor.sendCommand(name, data);
  },

  // waitMessage resolves with the first application message of type typ
  // received after index from.
  async waitMessage(typ, from, ms) {
    let found;
    await waitFor(`application message ${typ}`, () => (found = state.messages.slice(from).find((m) => m && m.type === typ)), ms);
    return found;
  },

  async requestCapabilities() {
    const from = state.runtime.length;
    await reactor.sendCommand("requestCapabilities", {}, "runtime");
    let found;
    await waitFor("modelCapabilities", () => (found = state.runtime.slice(from).find((m) => m && m.type === "modelCapabilities")), 5000);
    return found;
  },

  // upload uploads text as a file and sends inspect_file with its FileRef.
  async upload(text) {
    const ref = await reactor.uploadFile(new Blob([text], { type: "text/plain" }), { name: "../hello world.txt" });
    await reactor.sendCommand("inspect_file", { file: ref });
    return { id: ref.uploadId, size: ref.size };
  },

  // uploadTo uploads text as a file and sends command with the FileRef as
  // parameter param.
  async uploadTo(command, param, text, name = "notes.txt") {
    const ref = await reactor.uploadFile(new Blob([text], { type: "text/plain" }), { name });
    await reactor.sendCommand(command, { [param]: ref });
    return { id: ref.uploadId, size: ref.size };
  },

  // waitRuntime resolves with the first runtime message of type typ
  // received after index from (a rejected command is an "error").
  async waitRuntime(typ, from, ms) {
    let found;
    await waitFor(`runtime message ${typ}`, () => (found = state.runtime.slice(from).find((m) => m && m.type === typ)), ms);
    return found;
  },

  // drop closes the transport without stop_session (a recoverable
  // disconnect, as when the network goes away).
  async drop() {
    await reactor.disconnect(true);
  },

  async reconnect() {
    const t0 = performance.now();
    await reactor.reconnect();
    await waitFor("status ready after reconnect", () => reactor.getStatus() === "ready", 10000);
    return performance.now() - t0;
  },

  // reconnectFails runs reconnect() on a session the server has closed and
  // resolves with the ms until the SDK reports RECONNECTION_FAILED.
  async reconnectFails() {
    const from = state.errors.length;
    const t0 = performance.now();
    try {
      await reactor.reconnect();
    } catch (e) {
      // the error event is what is measured
    }
    await waitFor("RECONNECTION_FAILED", () => state.errors.slice(from).some((e) => e && e.code === "RECONNECTION_FAILED"), 10000);
    return performance.now() - t0;
  },

  async disconnect() {
    await reactor.disconnect();
  },

  // stripExtensions makes the next offers leave out the RTP header
  // extensions whose URI contains one of uris.
  stripExtensions(uris) {
    strip = uris || [];
  },

  // latency measures glass-to-glass on main_video for ms: the model stamps
  // each picture with its emit time (Unix ms mod 2^24, 24 black/white
  // 40×40 blocks on the top row); at each presented frame the page reads
  // the stamp and subtracts it from the frame's expected display time.
  // It also returns, per frame, the display time less the time its last
  // packet arrived, and Chromium's inbound-rtp counters and the video
  // extensions the answer accepted.
  async latency(ms) {
    await waitFor("decoded main_video frames", () => video && video.videoWidth > 0 && video.readyState >= 2, 10000);
    const c = document.createElement("canvas");
    c.width = 960;
    c.height = 40;
    const g = c.getContext("2d", { willReadFrequently: true });
    const glass = [];
    const inBrowser = [];
    const before = await inbound();
    let done = false;
    const onFrame = (now, md) => {
      g.drawImage(video, 0, 0, 960, 40, 0, 0, 960, 40);
      const d = g.getImageData(0, 0, 960, 40).data;
      let v = 0;
      for (let b = 0; b < 24; b++) v = v * 2 + (d[(20 * 960 + b * 40 + 20) * 4] > 128 ? 1 : 0);
      // The display time on the wall clock the model stamps with, mapped at
      // this instant: performance.timeOrigin drifts from Date.now() by
      // milliseconds over a page's life, which made some glass-to-glass
      // values negative (wrapping to 2^24, "the stamp was not read").
      const display = Date.now() + (md.expectedDisplayTime - performance.now());
      // Signed difference modulo 2^24: a negative value means the canvas
      // drew a newer picture than the one this callback announced (the
      // video element moved on while a loaded page ran the callback late);
      // the harness counts those instead of wrapping them to 2^24.
      const mod = 1 << 24;
      let diff = (((display - v - 0.5) % mod) + mod) % mod;
      if (diff >= mod / 2) diff -= mod;
      glass.push(diff);
      if (md.receiveTime) inBrowser.push(md.expectedDisplayTime - md.receiveTime);
      if (!done) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    await sleep(ms);
    done = true;
    const after = await inbound();
    const per = (k) => (after[k] - before[k]) / Math.max(1, after.jitterBufferEmittedCount - before.jitterBufferEmittedCount) * 1000;
    const sdp = pcs.length ? pcs[pcs.length - 1].currentRemoteDescription.sdp : "";
    return {
      glass,
      inBrowser,
      jitterBufferMs: per("jitterBufferDelay"),
      targetDelayMs: per("jitterBufferTargetDelay"),
      decodeMs: (after.totalDecodeTime - before.totalDecodeTime) / Math.max(1, after.framesDecoded - before.framesDecoded) * 1000,
      extensions: sdp.split("\r\n").filter((l) => l.startsWith("a=extmap:")),
    };
  },
};

// inbound sums Chromium's inbound-rtp video counters over every peer
// connection.
async function inbound() {
  const sum = { jitterBufferDelay: 0, jitterBufferTargetDelay: 0, jitterBufferEmittedCount: 0, totalDecodeTime: 0, framesDecoded: 0 };
  for (const pc of pcs) {
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type !== "inbound-rtp" || r.kind !== "video") return;
      for (const k of Object.keys(sum)) sum[k] += r[k] || 0;
    });
  }
  return sum;
}
document.title = "framewire-e2e-ready";
