// The server owns time (docs/protocol.md 2.3): the page shows the server's remaining time counted
// down with the monotonic clock from the moment it arrived, never from the wall clock.
//
// A figure that arrives late shows more time than is left, by as long as it was on its way.
// So while the server's deadline stays where it was, the page keeps whichever recent figure shows
// the least: the countdown does not jump back up because one frame was slow. A new deadline (time
// granted, a pause, a resume) or a new state is taken as it comes. A kept figure gives way after
// `KEEP_MS`, so a device clock that runs fast cannot pull the countdown down for long.

export const KEEP_MS = 60_000;

export class ServerClock {
  constructor() {
    this.remainingMs = null;
    this.receivedAt = 0;
    this.running = false;
    this.deadline = null;
  }

  /**
   * The server's clock as it stands: from welcome and every `clock`. `deadline` is the server's
   * (nil while paused); `ageMs` is how old the figure is. Returns whether the page took it.
   */
  update(remainingMs, state, ageMs = 0, deadline = null) {
    const running = state === "running";
    const sameDeadline = running && this.running && deadline !== null && deadline === this.deadline;
    if (sameDeadline && !this.#better(remainingMs, ageMs)) return false;
    this.#take(remainingMs, running, ageMs);
    this.deadline = running ? deadline : null;
    return true;
  }

  /**
   * A figure that does not say where the deadline is (pong, warning): while the clock runs it
   * is taken only where it shows less, as a late `clock` would be.
   */
  offer(remainingMs, state, ageMs = 0) {
    const running = state === "running";
    if (running && this.running && !this.#better(remainingMs, ageMs)) return false;
    if (running !== this.running) this.deadline = null;
    this.#take(remainingMs, running, ageMs);
    return true;
  }

  get known() {
    return this.remainingMs !== null;
  }

  /** Time left now as the page shows it. */
  remaining() {
    if (this.remainingMs === null) return null;
    return Math.max(0, this.#unclamped());
  }

  #unclamped() {
    if (!this.running) return this.remainingMs;
    return this.remainingMs - (performance.now() - this.receivedAt);
  }

  /** Whether a figure `ageMs` old should replace the one kept. */
  #better(remainingMs, ageMs) {
    if (this.remainingMs === null) return true;
    if (performance.now() - this.receivedAt > KEEP_MS) return true;
    return remainingMs - ageMs < this.#unclamped();
  }

  #take(remainingMs, running, ageMs) {
    this.remainingMs = remainingMs;
    this.receivedAt = performance.now() - ageMs;
    this.running = running;
  }
}
