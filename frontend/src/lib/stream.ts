// The `/ws/stats` client: connects, parses, reconnects by itself with backoff, and
// reports its connection state honestly (since when it is disconnected, next retry).
// Browser globals are injected so that the logic runs under Vitest with fakes.

import { Backoff, type BackoffOptions } from './backoff';
import { parseStats, type Sample } from './stats';

export type LinkKind = 'connecting' | 'open' | 'closed';

export interface LinkStatus {
  kind: LinkKind;
  /** client ms when the feed was lost; null while it has never been lost or is open again */
  disconnectedSince: number | null;
  /** reconnect attempts since the feed was lost */
  attempts: number;
  /** client ms of the next attempt while closed */
  retryAt: number | null;
  /** messages that could not be parsed, since start */
  badMessages: number;
  /** whether the feed has ever delivered data since start */
  everOpen: boolean;
  /** close code of the last lost connection (1001: the server is going away), null if none */
  lastCloseCode: number | null;
}

export interface Gap {
  from: number;
  to: number;
}

export interface StreamHandlers {
  onSample(sample: Sample): void;
  onStatus(status: LinkStatus): void;
  /** the feed came back after a gap */
  onGap?(gap: Gap): void;
}

/** The small part of the WebSocket interface we use. */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface StreamDeps {
  createSocket(url: string): SocketLike;
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  backoff: Partial<BackoffOptions>;
  /** an open socket that says nothing for this long is treated as dead */
  staleMs: number;
}

export function browserDeps(): StreamDeps {
  return {
    createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    now: () => Date.now(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    backoff: {},
    staleMs: 5000,
  };
}

export class StatsStream {
  private socket: SocketLike | null = null;
  private retryTimer: unknown = null;
  private staleTimer: unknown = null;
  private stopped = true;
  private readonly backoff: Backoff;
  private status: LinkStatus = {
    kind: 'connecting',
    disconnectedSince: null,
    attempts: 0,
    retryAt: null,
    badMessages: 0,
    everOpen: false,
    lastCloseCode: null,
  };

  constructor(
    private readonly url: string,
    private readonly handlers: StreamHandlers,
    private readonly deps: StreamDeps = browserDeps(),
  ) {
    this.backoff = new Backoff(deps.backoff);
  }

  get current(): LinkStatus {
    return this.status;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = s.onerror = null;
      try {
        s.close(1000, 'page closed');
      } catch {
        /* already closed */
      }
    }
  }

  /** Skip the remaining backoff delay (a "retry now" button). */
  retryNow(): void {
    if (this.stopped || this.status.kind !== 'closed') return;
    this.clearTimers();
    this.connect();
  }

  private setStatus(patch: Partial<LinkStatus>): void {
    this.status = { ...this.status, ...patch };
    this.handlers.onStatus(this.status);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) this.deps.clearTimer(this.retryTimer);
    if (this.staleTimer !== null) this.deps.clearTimer(this.staleTimer);
    this.retryTimer = this.staleTimer = null;
  }

  private armStale(): void {
    if (this.staleTimer !== null) this.deps.clearTimer(this.staleTimer);
    this.staleTimer = this.deps.setTimer(() => {
      this.staleTimer = null;
      this.lost(null); // silent for too long
    }, this.deps.staleMs);
  }

  private connect(): void {
    this.retryTimer = null;
    const wasLost = this.status.disconnectedSince !== null;
    this.setStatus({ kind: 'connecting', retryAt: null, attempts: wasLost ? this.status.attempts + 1 : 0 });
    let s: SocketLike;
    try {
      s = this.deps.createSocket(this.url);
    } catch {
      this.socket = null;
      this.lost(null);
      return;
    }
    this.socket = s;
    s.onopen = () => {
      if (this.socket !== s) return;
      this.armStale();
    };
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      const data = typeof ev.data === 'string' ? ev.data : null;
      const parsed = data === null ? null : parseStats(data);
      if (!parsed || !parsed.ok) {
        this.setStatus({ badMessages: this.status.badMessages + 1 });
        return;
      }
      this.armStale();
      const now = this.deps.now();
      if (this.status.kind !== 'open') {
        // the feed is live once data flows, not merely once the socket opens
        const since = this.status.disconnectedSince;
        this.backoff.reset();
        this.setStatus({ kind: 'open', disconnectedSince: null, attempts: 0, retryAt: null, lastCloseCode: null, everOpen: true });
        if (since !== null) this.handlers.onGap?.({ from: since, to: now });
      }
      this.handlers.onSample({ stats: parsed.stats, receivedAt: now });
    };
    s.onerror = () => {
      /* a close event follows */
    };
    s.onclose = (ev) => {
      if (this.socket !== s) return;
      this.lost(typeof ev?.code === 'number' ? ev.code : null);
    };
  }

  private lost(code: number | null): void {
    if (this.stopped) return;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = s.onerror = null;
      try {
        s.close();
      } catch {
        /* ignore */
      }
    }
    this.clearTimers();
    const now = this.deps.now();
    const delay = this.backoff.next();
    this.setStatus({
      kind: 'closed',
      disconnectedSince: this.status.disconnectedSince ?? now,
      retryAt: now + delay,
      lastCloseCode: code ?? this.status.lastCloseCode,
    });
    this.retryTimer = this.deps.setTimer(() => this.connect(), delay);
  }
}
