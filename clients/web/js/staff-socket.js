// The proctor socket (docs/protocol.md 7.2): watch a site's feed, send actions and detail
// requests, each answered by id. Reconnects by itself; a new connection starts with a full feed.

import { pack, unpack } from "./msgpack.js";
import { socketUrl } from "./sitting-socket.js";

const FINAL_CLOSE_CODES = new Set([1000, 4400, 4401, 4403, 4426]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const REPLY_WITHIN_MS = 15_000;
const PING_EVERY_MS = 15_000;

export class StaffSocket extends EventTarget {
  constructor({ token, site }) {
    super();
    this.token = token;
    this.site = site; // null: every site of the token
    this.ws = null;
    this.status = "idle";
    this.attempt = 0;
    this.nextId = 1;
    this.waiting = new Map(); // id -> {resolve, reject, timer}
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.roundTripMs = null;
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    this.setStatus("connecting");
    const ws = new WebSocket(socketUrl("/ws/proctor"));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      ws.send(pack({ t: "watch", v: 1, token: this.token, site: this.site }));
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
      this.ws = null;
      clearInterval(this.pingTimer);
      this.failWaiting();
      if (this.status === "ended") return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.setStatus("ended", { code: event.code, reason: event.reason });
        return;
      }
      this.setStatus("lost", { code: event.code });
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  receive(message) {
    if (message.t === "feed" && message.full) {
      this.attempt = 0;
      if (this.status !== "open") {
        this.setStatus("open");
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
      }
    }
    if ((message.t === "result" || message.t === "detail-reply" || message.t === "pong") && this.waiting.has(message.id)) {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
      return;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  /** Send a request with a fresh id; resolves with the reply carrying that id. */
  request(message) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== "open") {
        reject(new Error("not connected"));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error("no reply"));
      }, REPLY_WITHIN_MS);
      this.waiting.set(id, { resolve, reject, timer });
      this.ws.send(pack({ ...message, id }));
    });
  }

  async ping() {
    const sentAt = performance.now();
    try {
      await this.request({ t: "ping", client_time: Date.now() / 1000 });
      this.roundTripMs = Math.round(performance.now() - sentAt);
      this.setStatus("open");
    } catch {
      // no pong: the close handler or the next ping tells
    }
  }

  failWaiting() {
    for (const waiter of this.waiting.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("disconnected"));
    }
    this.waiting.clear();
  }

  setStatus(status, detail = {}) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, ...detail } }));
  }

  close() {
    this.setStatus("ended", { code: 1000 });
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    this.ws?.close();
    this.ws = null;
  }
}
