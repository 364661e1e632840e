// The live model: turns the stream of samples and link changes into what the page
// shows (latest numbers, rates, gaps, restarts, chart history). No DOM, no sockets.

import { History } from './history';
import type { Gap, LinkStatus } from './stream';
import { computeRates, isRestart, type Rates, type Sample } from './stats';

export interface LiveState {
  link: LinkStatus;
  latest: Sample | null;
  rates: Rates | null;
  /** most recent first, at most MAX_GAPS */
  gaps: Gap[];
  restarts: number;
  lastRestartAt: number | null;
  /** bumps on every change, so charts know to redraw */
  revision: number;
}

export const MAX_GAPS = 5;

export class LiveModel {
  readonly history: History;
  private base: Sample | null = null;
  private state: LiveState = {
    link: { kind: 'connecting', disconnectedSince: null, attempts: 0, retryAt: null, badMessages: 0, everOpen: false, lastCloseCode: null },
    latest: null,
    rates: null,
    gaps: [],
    restarts: 0,
    lastRestartAt: null,
    revision: 0,
  };
  private listeners = new Set<() => void>();

  constructor(windowSeconds = 120) {
    this.history = new History(windowSeconds);
  }

  getState = (): LiveState => this.state;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private set(patch: Partial<LiveState>): void {
    this.state = { ...this.state, ...patch, revision: this.state.revision + 1 };
    this.listeners.forEach((fn) => fn());
  }

  /** A snapshot fetched over HTTP before the stream delivers one: only used if nothing came yet. */
  seed(sample: Sample): void {
    if (this.state.latest === null) this.ingest(sample);
  }

  ingest(sample: Sample): void {
    let rates = this.state.rates;
    let restarts = this.state.restarts;
    let lastRestartAt = this.state.lastRestartAt;
    const t = sample.receivedAt / 1000;
    const prev = this.state.latest; // survives disconnects, unlike the rate baseline
    if (prev && isRestart(prev.stats, sample.stats)) {
      // new process: counters started again from zero; never draw a rate across that
      restarts++;
      lastRestartAt = sample.receivedAt;
      rates = null;
      this.base = sample;
      this.history.pushGap(t - 0.001);
    } else if (this.base) {
      const r = computeRates(this.base, sample);
      if (r) {
        rates = r;
        this.base = sample;
      }
    } else {
      this.base = sample;
    }
    const s = sample.stats;
    this.history.push(t, {
      rps: rates ? rates.requestsPerSec : null,
      p50: s.latency_ms?.p50 ?? null,
      p90: s.latency_ms?.p90 ?? null,
      p99: s.latency_ms?.p99 ?? null,
      connections: s.connections_open,
      websockets: s.websockets_open,
    });
    this.set({ latest: sample, rates, restarts, lastRestartAt });
  }

  linkChanged(link: LinkStatus): void {
    const lostNow = link.kind === 'closed' && this.state.link.kind !== 'closed' && link.disconnectedSince !== null;
    if (lostNow) {
      // rates over a gap would be averages over time we did not see: start afresh
      this.base = null;
      this.history.pushGap(link.disconnectedSince! / 1000);
      this.set({ link, rates: null });
    } else {
      this.set({ link });
    }
  }

  gap(g: Gap): void {
    this.set({ gaps: [g, ...this.state.gaps].slice(0, MAX_GAPS) });
  }
}
