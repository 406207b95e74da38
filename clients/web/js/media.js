// Audio-video fixation from the candidate's side (docs/protocol.md 6.2–6.4): camera and
// microphone through getUserMedia, MediaRecorder chunks and camera stills sent on the media
// socket beside the candidate's (over HTTP where it cannot open), microphone loudness for the
// server's talk detector sent on the media socket while it is open, else on the candidate's.

import { pack, unpack } from "./msgpack.js";
import { socketUrl } from "./sitting-socket.js";

const CHUNK_EVERY_MS = 10_000;
const SNAPSHOT_EVERY_MS = 20_000;
const LEVEL_INTERVAL_MS = 100;
const LEVELS_PER_FRAME = 50; // one levels frame every 5 s
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;
const RETRY_MS = [1000, 2000, 5000, 10_000, 20_000];
/** A media socket that does not say media-ready, or answer an upload, in this long is closed
 * and opened again: the upload is sent once more (the server takes a repeat as the same). Long,
 * since a node that is behind holds uploads in turn, and a new socket goes to the back. */
const MEDIA_SOCKET_PATIENCE_MS = 120_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ask for camera and microphone; resolves to the stream or throws a named failure. */
export async function openDevices() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw deviceError("unsupported", "this browser cannot use a camera here");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } },
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (error) {
    const reason =
      error?.name === "NotAllowedError" || error?.name === "SecurityError"
        ? "denied"
        : error?.name === "NotFoundError" || error?.name === "OverconstrainedError"
          ? "missing"
          : error?.name === "NotReadableError"
            ? "busy"
            : "failed";
    throw deviceError(reason, error?.message ?? String(error));
  }
}

function deviceError(reason, message) {
  const error = new Error(message);
  error.reason = reason;
  return error;
}

/** The recorder's media type: WebM where the browser can (Chromium, Firefox), else MP4. */
export function recordingType() {
  const candidates = [
    "video/webm;codecs=vp8,opus",
    "video/webm;codecs=vp9,opus",
    "video/webm",
    "video/mp4",
  ];
  return candidates.find((type) => window.MediaRecorder?.isTypeSupported?.(type)) ?? "";
}

/** Microphone loudness (RMS, 0..1) of a stream, read on demand. */
export class LevelMeter {
  constructor(stream) {
    this.context = new AudioContext();
    this.source = this.context.createMediaStreamSource(stream);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 2048;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  level() {
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const sample of this.samples) sum += sample * sample;
    return Math.min(1, Math.sqrt(sum / this.samples.length));
  }

  close() {
    this.source.disconnect();
    this.context.close().catch(() => {});
  }
}

/**
 * The media socket (protocol.md 6.4): one upload at a time, each answered `stored` or `refused`.
 * A frame on a socket kept open costs the server a fraction of an HTTP request; it is a socket
 * of its own so that a large chunk on a slow uplink never holds an answer back.
 */
class MediaSocket {
  /** `url`: where the sign-in said to send the recording (this server's own /ws/media if not). */
  constructor({ token, part, url }) {
    this.token = token;
    this.part = part;
    this.url = url || socketUrl("/ws/media");
    this.ws = null;
    this.opening = null;
    this.waiting = null; // resolves the upload in flight with its outcome
    this.fatal = null; // the error frame a refusing server sends before it closes
    this.everOpened = false;
  }

  open() {
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.fatal = null;
      const giveUp = setTimeout(() => ws.close(4000, "no media-ready"), MEDIA_SOCKET_PATIENCE_MS);
      ws.addEventListener("open", () => {
        ws.send(pack({ t: "hello", v: 1, token: this.token, part: this.part, client: "web" }));
      });
      ws.addEventListener("message", (event) => {
        const message = unpack(event.data);
        if (message.t === "media-ready") {
          clearTimeout(giveUp);
          this.ws = ws;
          this.everOpened = true;
          resolve(ws);
        } else if (message.t === "error" && message.fatal) {
          this.fatal = message;
        } else if (message.t === "error") {
          console.warn(`media socket: ${message.code}: ${message.message}`); // a levels frame
        } else {
          this.answer(reply(message));
        }
      });
      ws.addEventListener("close", (event) => {
        clearTimeout(giveUp);
        if (this.ws === ws) this.ws = null;
        const outcome = closed(event.code, this.fatal);
        reject(outcome);
        this.answer(outcome);
      });
    }).finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  async send(item) {
    let ws;
    try {
      ws = await this.open();
    } catch (outcome) {
      return outcome;
    }
    const data = new Uint8Array(await item.body.arrayBuffer());
    const message =
      item.kind === "chunk"
        ? { t: "chunk", seq: item.seq, type: item.type, data, client_time: item.clientTime }
        : { t: "snapshot", type: item.type, data };
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.patience = setTimeout(() => ws.close(4000, "no reply"), MEDIA_SOCKET_PATIENCE_MS);
      ws.send(pack(message));
    });
  }

  /** A frame that gets no reply (levels), if the socket is open now; false if it is not. */
  sendNow(message) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(pack(message));
    return true;
  }

  answer(outcome) {
    clearTimeout(this.patience);
    const resolve = this.waiting;
    this.waiting = null;
    resolve?.(outcome);
  }

  close() {
    this.ws?.close(1000, "done");
  }
}

/** What to do with a reply on the media socket: the same codes as the HTTP endpoints. */
function reply(message) {
  if (message.t === "stored") return { result: "done", reply: message };
  const why = `${message.kind} refused: ${message.error}`;
  if (message.error === "busy") return { result: "retry", retryAfterMs: message.retry_after * 1000 };
  if (message.error === "not_stored") return { result: "retry" };
  if (message.error === "sitting_closed") return { result: "stop", why };
  return { result: "refused", why };
}

/** What a closed media socket means for the upload in flight (protocol.md section 3). */
function closed(code, fatal) {
  const why = `media socket closed (${code}${fatal ? ` ${fatal.code}` : ""})`;
  // The token is gone, the sitting is closed or not this token's: nothing will be taken.
  if ([4401, 4403, 4410].includes(code)) return { result: "stop", why };
  // The upload itself was malformed or too large: sending it again cannot help.
  if ([1009, 4400].includes(code)) return { result: "refused", why };
  return { result: "retry", closed: true }; // idle, going away, the network: open it again
}

/** One upload as an HTTP request: for a network where the media socket cannot be opened. */
async function post(item) {
  try {
    const response = await fetch(item.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${item.token}`, "Content-Type": item.type },
      body: item.body,
    });
    const why = `${item.kind} upload: HTTP ${response.status}`;
    const result = classify(response.status);
    // 503 busy: the server is behind with answers and says when to come back.
    const retryAfterMs = (Number(response.headers.get("Retry-After")) || 0) * 1000;
    if (result === "done") return { result, reply: await response.json().catch(() => ({})) };
    return { result, why, retryAfterMs };
  } catch {
    return { result: "retry" }; // the network: keep it and try again
  }
}

/** What to do with an upload's HTTP status (protocol.md 6.3). */
function classify(status) {
  if (status === 200) return "done";
  // 409: the same seq with other bytes; 400/413/415: these bytes will never be taken.
  if ([400, 409, 413, 415].includes(status)) return "refused";
  // 401: the token is gone; 404: this server takes no media; 410: the sitting is closed.
  if ([401, 404, 410].includes(status)) return "stop";
  return "retry";
}

/** Sends in order with retries; bounded so a long outage cannot exhaust the browser's memory. */
class UploadQueue {
  constructor({ token, part, mediaUrl, onProblem, onUploaded }) {
    this.items = [];
    this.bytes = 0;
    this.busy = false;
    this.attempt = 0;
    this.stopped = false;
    this.onProblem = onProblem;
    this.onUploaded = onUploaded;
    this.timer = null;
    this.socket = new MediaSocket({ token, part, url: mediaUrl });
    this.overHttp = false;
  }

  add(item) {
    if (this.stopped) return;
    this.items.push(item);
    this.bytes += item.body.size;
    while (this.bytes > MAX_BACKLOG_BYTES && this.items.length > 1) {
      const dropped = this.items.shift();
      this.bytes -= dropped.body.size;
      this.onProblem("media-error", `upload backlog full: dropped ${dropped.kind} ${dropped.seq ?? ""}`);
    }
    this.pump();
  }

  async pump() {
    if (this.busy || this.stopped || this.items.length === 0) return;
    this.busy = true;
    const item = this.items[0];
    const outcome = this.overHttp ? await post(item) : await this.socket.send(item);
    this.busy = false;
    if (this.stopped) return;
    if (outcome.closed && !this.socket.everOpened && this.attempt >= 2) {
      // Three tries and the media socket never opened (a proxy that passes only the candidate
      // socket, or a server without it): the same uploads over HTTP from now on.
      this.overHttp = true;
    }
    if (outcome.result === "done") this.onUploaded(item, outcome.reply);
    else if (outcome.result === "refused") this.onProblem("media-error", outcome.why);
    else if (outcome.result === "stop") this.stop(outcome.why);
    if (outcome.result === "retry") {
      const delay = outcome.retryAfterMs || RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
      if (!outcome.retryAfterMs) this.attempt += 1;
      this.timer = setTimeout(() => this.pump(), delay);
      return;
    }
    this.attempt = 0;
    if (this.items[0] === item) {
      this.items.shift();
      this.bytes -= item.body.size;
    }
    this.pump();
  }

  pending() {
    return !this.stopped && (this.busy || this.items.length > 0);
  }

  stop(why) {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.items = [];
    this.bytes = 0;
    this.socket.close();
    if (why) this.onProblem("media-error", why);
  }
}

/**
 * Everything the page sends for the proctor while a part runs: recorded chunks, camera stills and
 * microphone levels. `signal(kind, detail)` reports a device problem over the socket.
 */
export class Fixation {
  constructor({ stream, token, part, mediaUrl, socket, storageKey }) {
    this.stream = stream;
    this.token = token;
    this.part = part;
    this.socket = socket;
    this.storageKey = storageKey;
    this.chunkSeq = Number(sessionStorage.getItem(storageKey) ?? "0");
    this.uploads = new UploadQueue({
      token,
      part,
      mediaUrl,
      onProblem: (kind, detail) => this.socket.signal(kind, detail),
      onUploaded: (item, reply) => this.verify(item, reply),
    });
    this.recorder = null;
    this.meter = null;
    this.stopped = false;
    this.timers = [];
    this.levels = [];
    this.levelsStart = null;
    this.lastLevelAt = 0;
    this.video = null;
    this.watchTracks();
  }

  watchTracks() {
    for (const track of this.stream.getTracks()) {
      track.addEventListener("ended", () => {
        this.socket.signal(track.kind === "video" ? "camera-stopped" : "microphone-stopped", track.label);
      });
    }
  }

  /** The server says what it stored (size, SHA-256); a mismatch is told to the proctor. */
  async verify(item, reply) {
    if (typeof reply.size === "number" && reply.size !== item.body.size) {
      this.socket.signal("media-error", `${item.kind} ${item.seq ?? ""}: server stored ${reply.size} of ${item.body.size} bytes`);
      return;
    }
    if (!reply.sha256 || !crypto.subtle) return;
    const digest = await crypto.subtle.digest("SHA-256", await item.body.arrayBuffer());
    const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    if (hex !== reply.sha256) this.socket.signal("media-error", `${item.kind} ${item.seq ?? ""}: SHA-256 differs from the server's`);
  }

  /** Snapshots (so the proctor sees who is there) start before the part does. */
  startSnapshots(video) {
    this.video = video;
    // The first still as soon as the camera shows a picture: the proctor checks identity by it.
    if (video.readyState >= 2) this.snapshot();
    else video.addEventListener("loadeddata", () => this.snapshot(), { once: true });
    this.timers.push(setInterval(() => this.snapshot(), SNAPSHOT_EVERY_MS));
  }

  /** Recording and levels: from the start of the part. */
  startRecording() {
    if (this.recorder) return;
    const type = recordingType();
    if (!type) {
      this.socket.signal("media-error", "MediaRecorder cannot record here");
      return;
    }
    try {
      this.recorder = new MediaRecorder(this.stream, {
        mimeType: type,
        videoBitsPerSecond: 250_000,
        audioBitsPerSecond: 32_000,
      });
    } catch (error) {
      this.socket.signal("media-error", `MediaRecorder: ${error.message}`);
      return;
    }
    const baseType = type.split(";")[0];
    this.recorder.addEventListener("dataavailable", (event) => {
      if (!event.data || event.data.size === 0 || this.stopped) return;
      this.chunkSeq += 1;
      sessionStorage.setItem(this.storageKey, String(this.chunkSeq));
      const clientTime = Date.now() / 1000;
      this.uploads.add({
        kind: "chunk",
        seq: this.chunkSeq,
        clientTime,
        url: `/api/v1/media/${encodeURIComponent(this.part)}/chunk?seq=${this.chunkSeq}&client_time=${clientTime}`,
        token: this.token,
        type: baseType,
        body: event.data,
      });
    });
    this.recorder.addEventListener("error", (event) => {
      this.socket.signal("media-error", `recorder: ${event.error?.message ?? "error"}`);
    });
    this.recorder.start(CHUNK_EVERY_MS);
    try {
      this.meter = new LevelMeter(this.stream);
      this.timers.push(setInterval(() => this.sampleLevel(), LEVEL_INTERVAL_MS));
    } catch (error) {
      this.socket.signal("media-error", `audio levels: ${error.message}`);
    }
  }

  sampleLevel() {
    const now = performance.now();
    // A throttled timer (background tab) leaves a gap: a series must keep its fixed interval,
    // so what was gathered goes out and a new series starts.
    if (this.levels.length > 0 && now - this.lastLevelAt > LEVEL_INTERVAL_MS * 2.5) this.sendLevels();
    if (this.levels.length === 0) this.levelsStart = Date.now() / 1000;
    this.lastLevelAt = now;
    this.levels.push(Math.round(this.meter.level() * 10_000) / 10_000);
    if (this.levels.length >= LEVELS_PER_FRAME) this.sendLevels();
  }

  sendLevels() {
    if (this.levels.length === 0) return;
    // Not queued when offline: loudness of minutes ago is no use to a live proctor. On the
    // media socket while it is open: there the detectors run beside the recording, off the
    // server's answer path; on the candidate socket when it is not (they run there too).
    const frame = { t: "levels", start: this.levelsStart, interval_ms: LEVEL_INTERVAL_MS, values: this.levels };
    if (this.uploads.overHttp || !this.uploads.socket.sendNow(frame)) this.socket.send(frame);
    this.levels = [];
  }

  snapshot() {
    const video = this.video;
    if (!video || video.readyState < 2 || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = Math.round((320 * video.videoHeight) / video.videoWidth);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(
      (blob) => {
        if (!blob) return;
        this.uploads.add({
          kind: "snapshot",
          url: `/api/v1/media/${encodeURIComponent(this.part)}/snapshot`,
          token: this.token,
          type: "image/jpeg",
          body: blob,
        });
      },
      "image/jpeg",
      0.7,
    );
  }

  /** Send what has been recorded so far and wait (at most `timeoutMs`) until it is uploaded. */
  async flush(timeoutMs = 3000) {
    if (this.recorder?.state === "recording") {
      const delivered = new Promise((resolve) =>
        this.recorder.addEventListener("dataavailable", resolve, { once: true }),
      );
      this.recorder.requestData();
      await Promise.race([delivered, sleep(timeoutMs)]);
    }
    const deadline = performance.now() + timeoutMs;
    while (this.uploads.pending() && performance.now() < deadline) await sleep(100);
  }

  /** Stop recording. Called once the sitting is closed, when the server takes no more media, so
   * the recorder's tail is not sent (`flush` before a submit sends it while it still counts). */
  stop() {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.sendLevels();
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    this.recorder = null;
    this.meter?.close();
    this.meter = null;
    this.uploads.stop(); // the server takes no more; its media socket is closed
  }
}
