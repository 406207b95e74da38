// The server owns time (docs/protocol.md 2.3): the page shows the server's remaining time counted
// down with the monotonic clock from the moment it arrived, never from the wall clock.

export class ServerClock {
  constructor() {
    this.remainingMs = null;
    this.receivedAt = 0;
    this.running = false;
  }

  /** Take the server's word: from welcome, clock or pong. `ageMs` is how old the figure is. */
  update(remainingMs, state, ageMs = 0) {
    this.remainingMs = remainingMs;
    this.receivedAt = performance.now() - ageMs;
    this.running = state === "running";
  }

  get known() {
    return this.remainingMs !== null;
  }

  /** Time left now as the page shows it. */
  remaining() {
    if (this.remainingMs === null) return null;
    if (!this.running) return Math.max(0, this.remainingMs);
    return Math.max(0, this.remainingMs - (performance.now() - this.receivedAt));
  }
}
