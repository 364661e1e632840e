// Reconnect delays: exponential, capped, with jitter so that many tabs do not all
// reconnect in the same millisecond after a restart. Pure apart from `random`.

export interface BackoffOptions {
  /** first delay, ms */
  initial: number;
  /** cap, ms */
  max: number;
  factor: number;
  /** 0..1: the share of each delay that is randomised ("equal jitter" at 0.5) */
  jitter: number;
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initial: 250,
  max: 5000,
  factor: 2,
  jitter: 0.3,
  random: Math.random,
};

export class Backoff {
  private attempt = 0;
  private readonly opts: BackoffOptions;

  constructor(opts: Partial<BackoffOptions> = {}) {
    this.opts = { ...DEFAULT_BACKOFF, ...opts };
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call grows the next one. */
  next(): number {
    const { initial, max, factor, jitter, random } = this.opts;
    const base = Math.min(max, initial * Math.pow(factor, this.attempt));
    this.attempt++;
    const j = Math.min(1, Math.max(0, jitter));
    // keep (1-j) of the delay fixed, randomise the rest: never 0, never above the cap
    return Math.round(base * (1 - j) + base * j * random());
  }

  reset(): void {
    this.attempt = 0;
  }
}
