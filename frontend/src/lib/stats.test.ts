import { describe, expect, it } from 'vitest';
import { computeRates, elapsedSeconds, isRestart, parseStats, workerShares, type Sample, type Stats } from './stats';

const EXAMPLE = {
  version: '0.1.0',
  model: 'epoll',
  state: 'serving',
  uptime_seconds: 12.5,
  timestamp_ms: 1764072000000,
  connections_open: 5,
  websockets_open: 2,
  requests_total: 1234,
  requests_in_flight: 1,
  bytes_sent_total: 123456,
  connections_rejected_total: 0,
  latency_ms: { p50: 0.21, p90: 0.5, p99: 1.1 },
  workers: [
    { id: 0, requests_total: 600, connections_open: 3, websockets_open: 1 },
    { id: 1, requests_total: 634, connections_open: 2, websockets_open: 1 },
  ],
};

function stats(over: Partial<Stats> = {}): Stats {
  const p = parseStats(JSON.stringify(EXAMPLE));
  if (!p.ok) throw new Error(p.error);
  return { ...p.stats, ...over };
}
const sample = (over: Partial<Stats>, receivedAt = 0): Sample => ({ stats: stats(over), receivedAt });

describe('parseStats', () => {
  it('parses the documented example (docs/api.md)', () => {
    const p = parseStats(JSON.stringify(EXAMPLE));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.stats.state).toBe('serving');
    expect(p.stats.model).toBe('epoll');
    expect(p.stats.requests_total).toBe(1234);
    expect(p.stats.latency_ms).toEqual({ p50: 0.21, p90: 0.5, p99: 1.1 });
    expect(p.stats.workers).toHaveLength(2);
    expect(p.stats.workers[1]).toEqual({ id: 1, requests_total: 634, connections_open: 2, websockets_open: 1 });
  });

  it('accepts an already-parsed object', () => {
    expect(parseStats(EXAMPLE).ok).toBe(true);
  });

  it('rejects non-JSON, non-objects and messages without the cumulative counter', () => {
    expect(parseStats('{oops')).toEqual({ ok: false, error: 'not JSON' });
    expect(parseStats('[1,2]')).toEqual({ ok: false, error: 'not a JSON object' });
    expect(parseStats('null').ok).toBe(false);
    expect(parseStats(JSON.stringify({ ...EXAMPLE, requests_total: 'many' })).ok).toBe(false);
    expect(parseStats(JSON.stringify({ ...EXAMPLE, requests_total: -1 })).ok).toBe(false);
    expect(parseStats(JSON.stringify({ ...EXAMPLE, uptime_seconds: undefined })).ok).toBe(false);
  });

  it('treats null latency (no requests yet) and all-null percentiles as no latency', () => {
    const a = parseStats(JSON.stringify({ ...EXAMPLE, latency_ms: null }));
    const b = parseStats(JSON.stringify({ ...EXAMPLE, latency_ms: { p50: null, p90: null, p99: null } }));
    expect(a.ok && a.stats.latency_ms).toBe(null);
    expect(b.ok && b.stats.latency_ms).toBe(null);
  });

  it('is tolerant of missing optional fields and unknown ones', () => {
    const p = parseStats(JSON.stringify({ requests_total: 3, uptime_seconds: 1, extra: { x: 1 } }));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.stats.workers).toEqual([]);
    expect(p.stats.connections_open).toBe(0);
    expect(p.stats.timestamp_ms).toBe(null);
    expect(p.stats.state).toBe('serving');
    expect(p.stats.model).toBe('');
  });

  it('reads the draining state and ignores unknown states', () => {
    const d = parseStats(JSON.stringify({ ...EXAMPLE, state: 'draining' }));
    const u = parseStats(JSON.stringify({ ...EXAMPLE, state: 'exploding' }));
    expect(d.ok && d.stats.state).toBe('draining');
    expect(u.ok && u.stats.state).toBe('serving');
  });

  it('gives workers without an id their index and drops junk entries', () => {
    const p = parseStats(JSON.stringify({ ...EXAMPLE, workers: [{ requests_total: 1 }, 7, { id: 5, requests_total: 2 }] }));
    expect(p.ok && p.stats.workers.map((w) => w.id)).toEqual([0, 5]);
  });
});

describe('rates from successive cumulative snapshots', () => {
  it('uses the server timestamps when both carry one', () => {
    const a = sample({ requests_total: 1000, bytes_sent_total: 10000, timestamp_ms: 1_000_000, uptime_seconds: 10 }, 5);
    const b = sample({ requests_total: 1500, bytes_sent_total: 30000, timestamp_ms: 1_002_000, uptime_seconds: 12 }, 9999);
    expect(elapsedSeconds(a, b)).toBe(2);
    const r = computeRates(a, b)!;
    expect(r.requestsPerSec).toBe(250);
    expect(r.bytesPerSec).toBe(10000);
    expect(r.interval).toBe(2);
  });

  it('falls back to uptime, then to the receive times', () => {
    const a = sample({ timestamp_ms: null, uptime_seconds: 10 }, 0);
    const b = sample({ timestamp_ms: null, uptime_seconds: 10.5 }, 5000);
    expect(elapsedSeconds(a, b)).toBe(0.5);
    const c = sample({ timestamp_ms: null, uptime_seconds: 10 }, 2000);
    expect(elapsedSeconds(a, c)).toBe(2);
  });

  it('computes per-worker rates for workers present in both snapshots', () => {
    const a = sample({ timestamp_ms: 0 + 1, workers: [{ id: 0, requests_total: 10, connections_open: 0, websockets_open: 0 }, { id: 1, requests_total: 20, connections_open: 0, websockets_open: 0 }] });
    const b = sample({ timestamp_ms: 1001, workers: [{ id: 0, requests_total: 15, connections_open: 0, websockets_open: 0 }, { id: 2, requests_total: 5, connections_open: 0, websockets_open: 0 }] });
    const r = computeRates(a, b)!;
    expect(r.perWorker.get(0)).toBe(5);
    expect(r.perWorker.has(1)).toBe(false);
    expect(r.perWorker.has(2)).toBe(false);
  });

  it('gives no rate across a restart (counters or uptime went back)', () => {
    const a = sample({ requests_total: 1000, uptime_seconds: 100, timestamp_ms: 1000 });
    const b = sample({ requests_total: 3, uptime_seconds: 1, timestamp_ms: 5000 });
    expect(isRestart(a.stats, b.stats)).toBe(true);
    expect(computeRates(a, b)).toBe(null);
    // a restart that already served more requests is still caught by uptime
    const c = sample({ requests_total: 5000, uptime_seconds: 2, timestamp_ms: 6000 });
    expect(isRestart(a.stats, c.stats)).toBe(true);
  });

  it('gives no rate over too short or non-positive intervals', () => {
    const a = sample({ timestamp_ms: 1000, uptime_seconds: 10 }, 100);
    const same = sample({ timestamp_ms: 1000, uptime_seconds: 10 }, 100);
    const short = sample({ timestamp_ms: 1100, uptime_seconds: 10.1 }, 200);
    expect(computeRates(a, same)).toBe(null);
    expect(computeRates(a, short)).toBe(null);
  });

  it('a constant counter gives a zero rate, not a missing one', () => {
    const a = sample({ timestamp_ms: 1000, uptime_seconds: 10 });
    const b = sample({ timestamp_ms: 2000, uptime_seconds: 11 });
    expect(computeRates(a, b)!.requestsPerSec).toBe(0);
  });
});

describe('workerShares', () => {
  it('splits the requests served so far', () => {
    const s = workerShares(stats().workers);
    expect(s.get(0)! + s.get(1)!).toBeCloseTo(1);
    expect(s.get(0)).toBeCloseTo(600 / 1234);
  });
  it('is all zero before any request', () => {
    const s = workerShares([{ id: 0, requests_total: 0, connections_open: 0, websockets_open: 0 }]);
    expect(s.get(0)).toBe(0);
  });
});
