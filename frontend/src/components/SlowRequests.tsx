import { useId, useRef, useState, type FormEvent } from 'react';
import { useNow } from '../hooks';
import { formatLatency } from '../lib/format';
import { TraceId } from './TraceId';

interface Slow {
  n: number;
  ms: number;
  started: number;
  state: 'pending' | 'done' | 'failed' | 'aborted';
  status?: number;
  took?: number;
  trace?: string | null;
  error?: string;
  ctl: AbortController;
}

export const MAX_SLOW_MS = 60000;

export function SlowRequests({ jaegerUrl }: { jaegerUrl: string | null }) {
  const id = useId();
  const [ms, setMs] = useState(5000);
  const [items, setItems] = useState<Slow[]>([]);
  const seq = useRef(0);
  const anyPending = items.some((i) => i.state === 'pending');
  const now = useNow(250, anyPending);

  const update = (n: number, patch: Partial<Slow>) =>
    setItems((old) => old.map((i) => (i.n === n ? { ...i, ...patch } : i)));

  async function start(e: FormEvent) {
    e.preventDefault();
    const wait = Math.min(MAX_SLOW_MS, Math.max(0, Math.round(ms || 0)));
    const n = ++seq.current;
    const ctl = new AbortController();
    const started = performance.now();
    setItems((old) => [{ n, ms: wait, started, state: 'pending' as const, ctl }, ...old].slice(0, 20));
    try {
      const r = await fetch(`/api/slow?ms=${wait}`, { signal: ctl.signal, cache: 'no-store' });
      await r.text();
      update(n, { state: 'done', status: r.status, took: performance.now() - started, trace: r.headers.get('traceresponse') });
    } catch (err) {
      const aborted = ctl.signal.aborted;
      update(n, {
        state: aborted ? 'aborted' : 'failed',
        took: performance.now() - started,
        error: aborted ? 'cancelled' : `connection failed (${(err as Error).message})`,
      });
    }
  }

  const elapsed = (i: Slow) => (i.took ?? performance.now() - i.started) / 1000;
  void now;

  return (
    <section className="card" aria-labelledby={`${id}-t`} data-testid="slow">
      <h3 id={`${id}-t`}>Slow requests</h3>
      <p className="muted small">
        <code>GET /api/slow?ms=N</code> answers after N ms without blocking its worker. Start a few, then stop the
        server (Ctrl-C / SIGTERM): it drains — these finish, new ones are refused.
      </p>
      <form onSubmit={start} className="row">
        <label htmlFor={`${id}-ms`}>Delay (ms)</label>
        <input id={`${id}-ms`} data-testid="slow-ms" type="number" min={0} max={MAX_SLOW_MS} step={100} value={ms}
          onChange={(e) => setMs(Number(e.target.value))} className="narrow" />
        <button type="submit" data-testid="slow-start">Start slow request</button>
      </form>
      <ul className="slow-list" data-testid="slow-list" aria-live="polite" aria-label="Slow requests">
        {items.map((i) => (
          <li key={i.n} data-testid="slow-item" data-state={i.state} data-status={i.status ?? ''}>
            <span className="mono">#{i.n} ms={i.ms}</span>{' '}
            {i.state === 'pending' ? (
              <>
                <span className="status pending">waiting {elapsed(i).toFixed(1)} s</span>{' '}
                <button type="button" className="link-button" onClick={() => i.ctl.abort()}>cancel</button>
              </>
            ) : i.state === 'done' ? (
              <>
                <span className={`status s${Math.floor((i.status ?? 0) / 100)}xx`}>{i.status}</span>{' '}
                <span className="muted">{formatLatency(i.took ?? null)}</span>{' '}
                <TraceId header={i.trace ?? null} jaegerUrl={jaegerUrl} testId="slow-trace" />
              </>
            ) : (
              <span className={i.state === 'failed' ? 'error-text' : 'muted'}>
                {i.error} after {elapsed(i).toFixed(1)} s
              </span>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
