import { beforeEach, describe, expect, it } from 'vitest';
import { StatsStream, type Gap, type LinkStatus, type SocketLike, type StreamDeps } from './stream';
import type { Sample } from './stats';
import { LiveModel } from './live';

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  closed = false;
  constructor(readonly url: string) {}
  close() {
    this.closed = true;
  }
  // server side
  open() {
    this.onopen?.({});
  }
  send(obj: unknown) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
}

/** A manual clock: timers run only when the test advances time. */
class Clock {
  t = 1_000_000;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  private seq = 0;
  set = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  };
  clear = (id: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== id);
  };
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
  get pending() {
    return this.timers.length;
  }
}

const snap = (requests: number, uptime: number, ts: number) => ({
  state: 'serving',
  uptime_seconds: uptime,
  timestamp_ms: ts,
  requests_total: requests,
  bytes_sent_total: requests * 100,
  connections_open: 1,
  websockets_open: 1,
  latency_ms: { p50: 0.2, p90: 0.4, p99: 1 },
  workers: [{ id: 0, requests_total: requests, connections_open: 1, websockets_open: 1 }],
});

describe('StatsStream', () => {
  let clock: Clock;
  let sockets: FakeSocket[];
  let samples: Sample[];
  let statuses: LinkStatus[];
  let gaps: Gap[];
  let stream: StatsStream;

  beforeEach(() => {
    clock = new Clock();
    sockets = [];
    samples = [];
    statuses = [];
    gaps = [];
    const deps: StreamDeps = {
      createSocket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      now: () => clock.t,
      setTimer: clock.set,
      clearTimer: clock.clear,
      backoff: { initial: 100, max: 1000, factor: 2, jitter: 0 },
      staleMs: 3000,
    };
    stream = new StatsStream('ws://h/ws/stats', { onSample: (s) => samples.push(s), onStatus: (s) => statuses.push(s), onGap: (g) => gaps.push(g) }, deps);
  });

  const last = () => statuses[statuses.length - 1];

  it('connects, parses messages and becomes live on the first one', () => {
    stream.start();
    expect(sockets).toHaveLength(1);
    expect(sockets[0].url).toBe('ws://h/ws/stats');
    expect(last().kind).toBe('connecting');
    sockets[0].open();
    sockets[0].send(snap(10, 1, 5000));
    expect(last().kind).toBe('open');
    expect(last().everOpen).toBe(true);
    expect(samples).toHaveLength(1);
    expect(samples[0].stats.requests_total).toBe(10);
    expect(samples[0].receivedAt).toBe(clock.t);
  });

  it('counts and skips bad messages without dropping the connection', () => {
    stream.start();
    sockets[0].open();
    sockets[0].send('not json');
    sockets[0].send({ hello: 1 });
    sockets[0].send(snap(1, 1, 1));
    expect(samples).toHaveLength(1);
    expect(last().badMessages).toBe(2);
    expect(sockets).toHaveLength(1);
  });

  it('reconnects by itself with growing delays and reports since when it is down', () => {
    stream.start();
    sockets[0].open();
    sockets[0].send(snap(1, 1, 1));
    const lostAt = clock.t;
    sockets[0].drop(1001);
    expect(last()).toMatchObject({ kind: 'closed', disconnectedSince: lostAt, retryAt: lostAt + 100, lastCloseCode: 1001 });
    clock.advance(99);
    expect(sockets).toHaveLength(1);
    clock.advance(1);
    expect(sockets).toHaveLength(2);
    expect(last()).toMatchObject({ kind: 'connecting', attempts: 1, disconnectedSince: lostAt });
    sockets[1].drop(); // server still down
    expect(last().retryAt).toBe(clock.t + 200);
    clock.advance(200);
    sockets[2].drop();
    expect(last().retryAt).toBe(clock.t + 400);
    clock.advance(400);
    expect(sockets).toHaveLength(4);
    expect(last().disconnectedSince).toBe(lostAt); // still the first loss
    // the server is back
    sockets[3].open();
    expect(last().kind).toBe('connecting'); // open socket, but no data yet
    sockets[3].send(snap(1, 0.5, 2));
    expect(last()).toMatchObject({ kind: 'open', disconnectedSince: null, attempts: 0, lastCloseCode: null });
    expect(gaps).toEqual([{ from: lostAt, to: clock.t }]);
    // backoff was reset: the next loss retries fast again
    sockets[3].drop();
    expect(last().retryAt).toBe(clock.t + 100);
  });

  it('caps the delay, and says when the feed was never reached', () => {
    stream.start();
    sockets[0].drop();
    expect(last()).toMatchObject({ kind: 'closed', everOpen: false });
    for (let i = 0; i < 8; i++) {
      sockets[sockets.length - 1].drop();
      clock.advance(1000);
    }
    expect(last().kind).toBe('connecting');
    sockets[sockets.length - 1].drop();
    expect(last().retryAt! - clock.t).toBe(1000);
  });

  it('treats a silent open socket as dead', () => {
    stream.start();
    sockets[0].open();
    sockets[0].send(snap(1, 1, 1));
    clock.advance(2999);
    expect(last().kind).toBe('open');
    clock.advance(1);
    expect(last().kind).toBe('closed');
    expect(sockets[0].closed).toBe(true);
  });

  it('retryNow skips the wait; stop closes and stops retrying', () => {
    stream.start();
    sockets[0].drop();
    stream.retryNow();
    expect(sockets).toHaveLength(2);
    stream.stop();
    expect(sockets[1].closed).toBe(true);
    clock.advance(60_000);
    expect(sockets).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it('ignores events from a socket it already gave up on', () => {
    stream.start();
    const old = sockets[0];
    old.drop();
    clock.advance(100);
    old.send(snap(5, 5, 5)); // late message from the dead socket
    expect(samples).toHaveLength(0);
  });
});

describe('LiveModel', () => {
  const sample = (req: number, up: number, at: number): Sample => ({
    stats: {
      version: '', model: '', state: 'serving', uptime_seconds: up, timestamp_ms: null, connections_open: 1, websockets_open: 0,
      requests_total: req, requests_in_flight: 0, bytes_sent_total: req * 10, connections_rejected_total: 0,
      latency_ms: { p50: 1, p90: 2, p99: 3 }, workers: [],
    },
    receivedAt: at,
  });
  const status = (kind: LinkStatus['kind'], since: number | null): LinkStatus => ({
    kind, disconnectedSince: since, attempts: 0, retryAt: null, badMessages: 0, everOpen: false, lastCloseCode: null,
  });

  it('derives rates from successive snapshots and records history', () => {
    const m = new LiveModel();
    m.ingest(sample(100, 10, 10_000));
    expect(m.getState().rates).toBe(null);
    m.ingest(sample(300, 11, 11_000));
    expect(m.getState().rates!.requestsPerSec).toBe(200);
    expect(m.history.data(['rps'])).toEqual([[10, 11], [null, 200]]);
  });

  it('breaks the chart and drops the rate baseline on disconnect', () => {
    const m = new LiveModel();
    m.linkChanged(status('open', null));
    m.ingest(sample(100, 10, 10_000));
    m.ingest(sample(200, 11, 11_000));
    m.linkChanged(status('closed', 11_500));
    expect(m.getState().rates).toBe(null);
    m.linkChanged(status('connecting', 11_500)); // a retry: no second gap row
    m.linkChanged(status('closed', 11_500));
    m.linkChanged(status('open', null));
    m.ingest(sample(900, 20, 20_000));
    expect(m.getState().rates).toBe(null); // no average over the unseen gap
    m.ingest(sample(1000, 21, 21_000));
    expect(m.getState().rates!.requestsPerSec).toBe(100);
    const [x, rps] = m.history.data(['rps']);
    expect(x).toEqual([10, 11, 11.5, 20, 21]);
    expect(rps).toEqual([null, 100, null, null, 100]);
  });

  it('notices a server restart between two snapshots', () => {
    const m = new LiveModel();
    m.ingest(sample(1000, 100, 10_000));
    m.ingest(sample(5, 1, 11_000));
    expect(m.getState().restarts).toBe(1);
    expect(m.getState().rates).toBe(null);
    m.ingest(sample(15, 2, 12_000));
    expect(m.getState().rates!.requestsPerSec).toBe(10);
  });

  it('notices a restart that happened while disconnected', () => {
    const m = new LiveModel();
    m.ingest(sample(1000, 100, 10_000));
    m.linkChanged(status('closed', 10_500));
    m.linkChanged(status('open', null));
    m.ingest(sample(2, 1, 15_000));
    expect(m.getState().restarts).toBe(1);
    expect(m.getState().lastRestartAt).toBe(15_000);
  });

  it('uses the HTTP seed only before the stream delivers, and keeps the last gaps', () => {
    const m = new LiveModel();
    m.seed(sample(1, 1, 1000));
    m.seed(sample(2, 2, 2000));
    expect(m.getState().latest!.stats.requests_total).toBe(1);
    for (let i = 0; i < 8; i++) m.gap({ from: i, to: i + 1 });
    expect(m.getState().gaps).toHaveLength(5);
    expect(m.getState().gaps[0].from).toBe(7);
  });

  it('history keeps only its window', () => {
    const m = new LiveModel(10);
    for (let i = 0; i < 30; i++) m.ingest(sample(i * 10, i, i * 1000));
    const [x] = m.history.data(['rps']);
    expect(x[0]).toBeGreaterThanOrEqual(19);
    expect(x[x.length - 1]).toBe(29);
  });
});
