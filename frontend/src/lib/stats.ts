// Types and pure functions for the glasshouse stats stream (`/ws/stats`, `/api/stats`).
// Schema: docs/api.md. Everything here is side-effect free and unit-tested.

export type ServerState = 'serving' | 'draining';

export interface Latency {
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface WorkerStats {
  id: number;
  requests_total: number;
  connections_open: number;
  websockets_open: number;
}

export interface Stats {
  version: string;
  /** the server model serving (`--model`: epoll, io_uring, poll, ...); '' when not sent */
  model: string;
  state: ServerState;
  uptime_seconds: number;
  timestamp_ms: number | null;
  connections_open: number;
  websockets_open: number;
  requests_total: number;
  requests_in_flight: number;
  bytes_sent_total: number;
  connections_rejected_total: number;
  latency_ms: Latency | null;
  workers: WorkerStats[];
}

export type ParseResult = { ok: true; stats: Stats } | { ok: false; error: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function count(o: Record<string, unknown>, key: string, fallback = 0): number {
  const v = num(o[key]);
  return v === null || v < 0 ? fallback : v;
}

/**
 * Parse one stats message. Tolerant where the schema may grow (unknown fields are
 * ignored, missing optional counters become 0), strict where a wrong value would
 * mislead the user (not JSON, not an object, no cumulative request counter).
 */
export function parseStats(input: string | unknown): ParseResult {
  let data: unknown = input;
  if (typeof input === 'string') {
    try {
      data = JSON.parse(input);
    } catch {
      return { ok: false, error: 'not JSON' };
    }
  }
  if (!isObject(data)) return { ok: false, error: 'not a JSON object' };
  const requests = num(data.requests_total);
  if (requests === null || requests < 0) return { ok: false, error: 'missing requests_total' };
  const uptime = num(data.uptime_seconds);
  if (uptime === null || uptime < 0) return { ok: false, error: 'missing uptime_seconds' };

  let latency: Latency | null = null;
  if (isObject(data.latency_ms)) {
    const l = data.latency_ms;
    latency = { p50: num(l.p50), p90: num(l.p90), p99: num(l.p99) };
    if (latency.p50 === null && latency.p90 === null && latency.p99 === null) latency = null;
  }

  const workers: WorkerStats[] = [];
  if (Array.isArray(data.workers)) {
    data.workers.forEach((w, i) => {
      if (!isObject(w)) return;
      const id = num(w.id);
      workers.push({
        id: id === null ? i : id,
        requests_total: count(w, 'requests_total'),
        connections_open: count(w, 'connections_open'),
        websockets_open: count(w, 'websockets_open'),
      });
    });
  }

  const ts = num(data.timestamp_ms);
  return {
    ok: true,
    stats: {
      version: typeof data.version === 'string' ? data.version : '',
      model: typeof data.model === 'string' ? data.model : '',
      state: data.state === 'draining' ? 'draining' : 'serving',
      uptime_seconds: uptime,
      timestamp_ms: ts !== null && ts > 0 ? ts : null,
      connections_open: count(data, 'connections_open'),
      websockets_open: count(data, 'websockets_open'),
      requests_total: requests,
      requests_in_flight: count(data, 'requests_in_flight'),
      bytes_sent_total: count(data, 'bytes_sent_total'),
      connections_rejected_total: count(data, 'connections_rejected_total'),
      latency_ms: latency,
      workers,
    },
  };
}

/** A snapshot as the client received it: the server's numbers plus the local receive time. */
export interface Sample {
  stats: Stats;
  /** client clock, ms (Date.now()) when the snapshot arrived */
  receivedAt: number;
}

export interface Rates {
  /** seconds between the two snapshots used */
  interval: number;
  requestsPerSec: number;
  bytesPerSec: number;
  /** worker id -> requests/s */
  perWorker: Map<number, number>;
}

/** True when `next` cannot follow `prev` in the same server process (restart). */
export function isRestart(prev: Stats, next: Stats): boolean {
  return (
    next.uptime_seconds + 0.001 < prev.uptime_seconds ||
    next.requests_total < prev.requests_total ||
    next.bytes_sent_total < prev.bytes_sent_total
  );
}

/** Seconds elapsed between two snapshots, preferring the server's clocks. */
export function elapsedSeconds(prev: Sample, next: Sample): number {
  const a = prev.stats;
  const b = next.stats;
  if (a.timestamp_ms !== null && b.timestamp_ms !== null && b.timestamp_ms > a.timestamp_ms) {
    return (b.timestamp_ms - a.timestamp_ms) / 1000;
  }
  const up = b.uptime_seconds - a.uptime_seconds;
  if (up > 0) return up;
  return (next.receivedAt - prev.receivedAt) / 1000;
}

/** Shortest interval we compute a rate over; shorter ones are too noisy. */
export const MIN_RATE_INTERVAL_S = 0.25;

/**
 * Rates from two successive cumulative snapshots. Returns null when no honest rate
 * exists: the server restarted in between (counters went back), or the interval is
 * too short or not positive.
 */
export function computeRates(prev: Sample, next: Sample): Rates | null {
  if (isRestart(prev.stats, next.stats)) return null;
  const dt = elapsedSeconds(prev, next);
  if (!(dt >= MIN_RATE_INTERVAL_S)) return null;
  const perWorker = new Map<number, number>();
  const before = new Map(prev.stats.workers.map((w) => [w.id, w.requests_total]));
  for (const w of next.stats.workers) {
    const b = before.get(w.id);
    if (b !== undefined && w.requests_total >= b) perWorker.set(w.id, (w.requests_total - b) / dt);
  }
  return {
    interval: dt,
    requestsPerSec: (next.stats.requests_total - prev.stats.requests_total) / dt,
    bytesPerSec: (next.stats.bytes_sent_total - prev.stats.bytes_sent_total) / dt,
    perWorker,
  };
}

/** Each worker's share (0..1) of all requests served so far; all 0 when none. */
export function workerShares(workers: WorkerStats[]): Map<number, number> {
  const total = workers.reduce((s, w) => s + w.requests_total, 0);
  return new Map(workers.map((w) => [w.id, total > 0 ? w.requests_total / total : 0]));
}
