// The candidate socket (docs/protocol.md 2–4): hello, then messages both ways, reconnecting by
// itself. Every answer keeps its sequence number until the server acknowledges it; the outbox is
// kept in sessionStorage, so neither a lost connection nor a reload of the page loses an answer.

import { pack, unpack } from "./msgpack.js";

/** Close codes after which reconnecting cannot help (protocol.md section 3). */
const FINAL_CLOSE_CODES = new Set([1000, 1009, 4400, 4401, 4403, 4409, 4410, 4426]);
const BACKOFF_MS = [300, 1000, 2000, 3000, 5000];
const PING_EVERY_MS = 10_000;
const PONG_WITHIN_MS = 8_000;
/** Signals seen while offline are kept (a page hidden during a disconnect matters), up to this. */
const MAX_QUEUED_SIGNALS = 200;

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class SittingSocket extends EventTarget {
  constructor({ token, part, storageKey }) {
    super();
    this.token = token;
    this.part = part;
    this.storageKey = storageKey;
    const saved = readStored(storageKey);
    /** Answers not yet acknowledged, in sequence order: {t, seq, item, choice, flagged, client_time}. */
    this.outbox = saved.outbox ?? [];
    this.nextSeq = saved.nextSeq ?? 1;
    this.ws = null;
    this.status = "idle"; // connecting | open | lost | ended
    this.welcomed = false;
    this.acceptsAnswers = false; // the sitting is running, so answers are sent rather than held
    this.sentSeqs = new Set(); // what this connection already carried
    this.queuedSignals = [];
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pingId = 0;
    this.pendingPings = new Map();
    this.roundTripMs = null;
    this.closeInfo = null;
    this.finished = false;
    this.onOnline = () => {
      if (this.status === "lost") this.connectNow();
    };
    window.addEventListener("online", this.onOnline);
  }

  connect() {
    if (this.status === "ended") return;
    this.connectNow();
  }

  connectNow() {
    clearTimeout(this.reconnectTimer);
    this.setStatus("connecting");
    const ws = new WebSocket(socketUrl("/ws/candidate"));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomed = false;
    this.sentSeqs = new Set();
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.rawSend({ t: "hello", v: 1, token: this.token, part: this.part, client: "examhall-web" });
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws || !(event.data instanceof ArrayBuffer)) return;
      let message;
      try {
        message = unpack(event.data);
      } catch (error) {
        console.error("a frame from the server is not msgpack", error);
        return;
      }
      this.receive(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.lost(event.code, event.reason);
    });
  }

  /** The connection is gone: reconnect unless the server said it is over. */
  lost(code, reason) {
    this.stopPinging();
    this.ws = null;
    this.welcomed = false;
    if (this.status === "ended") return;
    if (this.finished || FINAL_CLOSE_CODES.has(code)) {
      this.end(code, reason);
      return;
    }
    this.setStatus("lost", { code });
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    // A little jitter so a room of candidates does not come back in one burst.
    this.reconnectTimer = setTimeout(() => this.connectNow(), delay + Math.random() * 300);
  }

  end(code, reason) {
    this.closeInfo = { code, reason };
    this.setStatus("ended", { code, reason });
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.reconnectTimer);
    this.stopPinging();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
  }

  /** Cut the connection as a network failure would (used when a pong does not come). */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    try {
      ws.close(4000, "no pong");
    } catch {
      // already closing
    }
    this.lost(1006, "dropped");
  }

  setStatus(status, detail = {}) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, ...detail } }));
  }

  rawSend(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(pack(message));
    return true;
  }

  // -- what the server says ---------------------------------------------------------------------

  receive(message) {
    switch (message.t) {
      case "welcome":
        this.onWelcome(message);
        break;
      case "ack":
        this.onAck(message);
        break;
      case "error":
        this.onError(message);
        break;
      case "pong":
        this.onPong(message);
        break;
      case "clock":
      case "status":
        this.acceptsAnswers = message.state === "running";
        if (this.acceptsAnswers) this.flush();
        break;
      case "closed":
        // The socket closes right after (1000 or 4410): that close ends it, no reconnect.
        this.acceptsAnswers = false;
        this.finished = true;
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  onWelcome(welcome) {
    this.welcomed = true;
    this.attempt = 0;
    this.acceptsAnswers = welcome.state === "running";
    // Everything below next_seq is on the server's disk; the rest was never stored, so it is
    // numbered again from next_seq (a no-op when the numbers already follow on).
    this.outbox = this.outbox.filter((answer) => answer.seq >= welcome.next_seq);
    this.outbox.forEach((answer, index) => {
      answer.seq = welcome.next_seq + index;
    });
    this.nextSeq = welcome.next_seq + this.outbox.length;
    this.save();
    this.setStatus("open");
    this.startPinging();
    this.flush();
    const signals = this.queuedSignals.splice(0);
    for (const signal of signals) this.rawSend(signal);
  }

  onAck(ack) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((answer) => answer.seq !== ack.seq);
    if (this.outbox.length !== before) this.save();
  }

  onError(error) {
    if (error.seq === null || error.seq === undefined) return;
    if (error.code === "unknown_item") {
      // A page bug, not something a retry fixes: drop it so the rest can go through.
      this.outbox = this.outbox.filter((answer) => answer.seq !== error.seq);
      this.save();
      this.resync();
    } else if (error.code !== "too_late") {
      // seq_gap, seq_replayed, illegal_state: the server did not store it; start again from
      // the server's next_seq on a fresh connection.
      this.resync();
    }
  }

  resync() {
    if (!this.ws) return;
    const ws = this.ws;
    this.ws = null;
    ws.close(4000, "resync");
    this.stopPinging();
    this.welcomed = false;
    this.setStatus("connecting");
    this.connectNow();
  }

  // -- what the page says -----------------------------------------------------------------------

  /** Queue an answer under the next sequence number and send it when the sitting runs. */
  answer(item, choice, flagged) {
    const message = {
      t: "answer",
      seq: this.nextSeq,
      item,
      choice,
      flagged,
      client_time: Date.now() / 1000,
    };
    this.nextSeq += 1;
    this.outbox.push(message);
    this.save();
    this.flush();
    return message.seq;
  }

  flush() {
    if (!this.welcomed || !this.acceptsAnswers) return;
    for (const answer of this.outbox) {
      if (this.sentSeqs.has(answer.seq)) continue;
      if (!this.rawSend(answer)) return;
      this.sentSeqs.add(answer.seq);
    }
  }

  /** The latest unacknowledged answer per item: {item: {choice, flagged}}. */
  pendingByItem() {
    const pending = new Map();
    for (const answer of this.outbox) {
      pending.set(answer.item, { choice: answer.choice, flagged: answer.flagged });
    }
    return pending;
  }

  send(message) {
    return this.welcomed && this.rawSend(message);
  }

  signal(kind, detail = "") {
    const message = { t: "signal", kind, at: Date.now() / 1000, detail: String(detail).slice(0, 200) };
    if (this.welcomed && this.rawSend(message)) return;
    this.queuedSignals.push(message);
    if (this.queuedSignals.length > MAX_QUEUED_SIGNALS) this.queuedSignals.shift();
  }

  // -- keeping the connection honest ------------------------------------------------------------

  startPinging() {
    this.stopPinging();
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    this.ping();
  }

  stopPinging() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    for (const pending of this.pendingPings.values()) clearTimeout(pending.timeout);
    this.pendingPings.clear();
  }

  ping() {
    this.pingId += 1;
    const id = this.pingId;
    if (!this.send({ t: "ping", id, client_time: Date.now() / 1000 })) return;
    // No pong in time: the connection is dead even if the socket has not noticed yet.
    const timeout = setTimeout(() => {
      if (this.pendingPings.has(id)) this.drop();
    }, PONG_WITHIN_MS);
    this.pendingPings.set(id, { sentAt: performance.now(), timeout });
  }

  onPong(pong) {
    const pending = this.pendingPings.get(pong.id);
    if (!pending) return;
    clearTimeout(pending.timeout);
    this.pendingPings.delete(pong.id);
    this.roundTripMs = Math.round(performance.now() - pending.sentAt);
    pong.roundTripMs = this.roundTripMs;
  }

  // -- kept across reloads ----------------------------------------------------------------------

  save() {
    try {
      sessionStorage.setItem(
        this.storageKey,
        JSON.stringify({ outbox: this.outbox, nextSeq: this.nextSeq }),
      );
    } catch (error) {
      console.warn("could not keep unsent answers in sessionStorage", error);
    }
  }

  close() {
    this.end(1000, "page closed the connection");
  }
}

function readStored(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "{}");
  } catch {
    return {};
  }
}
