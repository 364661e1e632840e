import { useMemo } from 'react';
import { useNow } from '../hooks';
import { formatBytes, formatClock, formatDuration, formatInt, formatLatency, formatPercent, formatRate } from '../lib/format';
import type { LiveModel, LiveState } from '../lib/live';
import { workersBlurb } from '../lib/models';
import { workerShares } from '../lib/stats';
import { Chart } from './Chart';

interface Props {
  state: LiveState;
  model: LiveModel;
  retryNow: () => void;
}

function Stat({ label, value, sub, testId, raw }: { label: string; value: string; sub?: string; testId: string; raw?: number | null }) {
  return (
    <div className="stat" data-testid={testId} data-value={raw ?? ''}>
      <dt>{label}</dt>
      <dd>
        <span className="stat-value">{value}</span>
        {sub ? <span className="stat-sub">{sub}</span> : null}
      </dd>
    </div>
  );
}

function secondsBetween(a: number, b: number): string {
  return formatDuration(Math.max(0, (b - a) / 1000));
}

export function ConnectionBanner({ state, retryNow }: { state: LiveState; retryNow: () => void }) {
  const { link } = state;
  const now = useNow(1000, link.kind !== 'open');
  if (link.kind === 'open') return null;
  if (link.disconnectedSince === null) {
    return (
      <div className="banner info" role="status" data-testid="connecting-banner">
        Connecting to the live feed…
      </div>
    );
  }
  const retryIn = link.retryAt !== null ? Math.max(0, Math.ceil((link.retryAt - now) / 1000)) : null;
  return (
    <div className="banner alert" role="alert" data-testid="disconnected-banner">
      {link.everOpen ? <strong>Disconnected</strong> : <strong>Cannot reach the live feed</strong>}
      {link.everOpen ? '' : <> (<code>/ws/stats</code>)</>}
      {link.lastCloseCode === 1001 ? ' — the server said it is going away (shutdown or restart)' : ''} since{' '}
      {formatClock(link.disconnectedSince)} (
      {secondsBetween(link.disconnectedSince, now)} ago).{' '}
      {link.everOpen ? 'The numbers below are the last ones received; the charts show the gap. ' : ''}
      {link.kind === 'connecting' ? (
        <span>Reconnecting… (attempt {link.attempts})</span>
      ) : (
        <>
          <span>Retrying in {retryIn ?? 0} s.</span>{' '}
          <button type="button" onClick={retryNow} className="link-button">
            Retry now
          </button>
        </>
      )}
    </div>
  );
}

export function LiveView({ state, model }: Props) {
  const { latest, rates, link } = state;
  const s = latest?.stats ?? null;
  const live = link.kind === 'open';
  const shares = useMemo(() => (s ? workerShares(s.workers) : new Map<number, number>()), [s]);
  // data for the charts, recomputed on every model revision
  const rpsData = useMemo(() => model.history.data(['rps']), [state.revision]); // eslint-disable-line react-hooks/exhaustive-deps
  const latData = useMemo(() => model.history.data(['p50', 'p90', 'p99']), [state.revision]); // eslint-disable-line react-hooks/exhaustive-deps
  const connData = useMemo(() => model.history.data(['connections', 'websockets']), [state.revision]); // eslint-disable-line react-hooks/exhaustive-deps
  // the charts slide on the client clock, so time keeps moving (and the gap grows) while we are cut off
  const now = useNow(1000, !live);
  const tNow = (live && latest ? Math.max(latest.receivedAt, now) : now) / 1000;
  // the window grows from the first sample until it is full, so a fresh page is not an empty chart
  const first = model.history.x[0] ?? tNow;
  const xRange: [number, number] = [Math.min(tNow - 10, Math.max(first, tNow - model.history.windowSeconds)), tNow];
  const gaps = useMemo<[number, number][]>(() => {
    const g: [number, number][] = state.gaps.map((x) => [x.from / 1000, x.to / 1000]);
    if (link.disconnectedSince !== null) g.push([link.disconnectedSince / 1000, tNow]);
    return g;
  }, [state.gaps, link.disconnectedSince, tNow]);
  const chartProps = { xRange, gaps };
  const maxWorker = s ? Math.max(1, ...s.workers.map((w) => w.requests_total)) : 1;

  return (
    <section aria-labelledby="live-title" className="live" data-testid="live-view" data-live={live ? 'yes' : 'no'}>
      <div className="section-head">
        <h2 id="live-title">Live</h2>
        <span className={`pill ${live ? 'ok' : 'bad'}`} data-testid="conn-status" data-state={link.kind}>
          <span className="dot" aria-hidden="true" />
          {live ? 'live' : link.kind === 'connecting' ? 'connecting' : 'disconnected'}
        </span>
        {s?.model ? (
          <span className="pill" data-testid="server-model" data-model={s.model} title="the server model serving (--model)">
            model <strong>{s.model}</strong>
          </span>
        ) : null}
        <span className="muted small">updates once a second from <code>/ws/stats</code></span>
      </div>

      {live && s?.state === 'draining' ? (
        <div className="banner warn" role="status" data-testid="draining-banner">
          <strong>Draining:</strong> the server is shutting down gracefully. It accepts no new connections;{' '}
          {formatInt(s.requests_in_flight)} request{s.requests_in_flight === 1 ? '' : 's'} in flight are finishing.
        </div>
      ) : null}

      <dl className="stats" aria-live="off">
        <Stat label="Requests/s" value={formatRate(rates?.requestsPerSec)} testId="stat-rps" raw={rates?.requestsPerSec ?? null}
          sub={s ? `${formatInt(s.requests_total)} total` : undefined} />
        <Stat label="Latency p50" value={formatLatency(s?.latency_ms?.p50)} testId="stat-p50" raw={s?.latency_ms?.p50 ?? null} />
        <Stat label="Latency p90" value={formatLatency(s?.latency_ms?.p90)} testId="stat-p90" raw={s?.latency_ms?.p90 ?? null} />
        <Stat label="Latency p99" value={formatLatency(s?.latency_ms?.p99)} testId="stat-p99" raw={s?.latency_ms?.p99 ?? null} />
        <Stat label="Open connections" value={formatInt(s?.connections_open)} testId="stat-connections" raw={s?.connections_open ?? null}
          sub={s && s.connections_rejected_total > 0 ? `${formatInt(s.connections_rejected_total)} refused` : undefined} />
        <Stat label="Open WebSockets" value={formatInt(s?.websockets_open)} testId="stat-websockets" raw={s?.websockets_open ?? null} />
        <Stat label="In flight" value={formatInt(s?.requests_in_flight)} testId="stat-inflight" raw={s?.requests_in_flight ?? null} />
        <Stat label="Bytes out" value={formatBytes(s?.bytes_sent_total)} testId="stat-bytes" raw={s?.bytes_sent_total ?? null}
          sub={rates ? `${formatBytes(rates.bytesPerSec)}/s` : undefined} />
        <Stat label="Uptime" value={formatDuration(s?.uptime_seconds)} testId="stat-uptime" raw={s?.uptime_seconds ?? null}
          sub={s?.version ? `v${s.version}` : undefined} />
      </dl>
      <p className="visually-hidden" data-testid="stat-requests-total" data-value={s?.requests_total ?? ''}>
        {s ? `${s.requests_total} requests served` : ''}
      </p>

      {state.gaps.length > 0 || state.restarts > 0 ? (
        <ul className="gaps small" data-testid="gaps" aria-label="Interruptions of the live feed">
          {state.gaps.map((g) => (
            <li key={g.from}>
              Live feed interrupted {formatClock(g.from)}–{formatClock(g.to)} ({secondsBetween(g.from, g.to)}): no data
              for that time.
            </li>
          ))}
          {state.restarts > 0 && state.lastRestartAt !== null ? (
            <li data-testid="restart-note">
              The server restarted (its counters began again); noticed at {formatClock(state.lastRestartAt)}.
            </li>
          ) : null}
        </ul>
      ) : null}

      <div className="charts">
        <Chart {...chartProps} title="Requests per second" testId="chart-rps" series={[{ label: 'req/s', colorVar: '--c-rps' }]}
          data={rpsData} formatY={formatRate} summary={`Now ${formatRate(rates?.requestsPerSec)} requests per second.`} />
        <Chart {...chartProps} title="Latency percentiles (all requests so far)" testId="chart-latency"
          series={[{ label: 'p50', colorVar: '--c-p50' }, { label: 'p90', colorVar: '--c-p90' }, { label: 'p99', colorVar: '--c-p99' }]}
          data={latData} formatY={formatLatency}
          summary={`p50 ${formatLatency(s?.latency_ms?.p50)}, p90 ${formatLatency(s?.latency_ms?.p90)}, p99 ${formatLatency(s?.latency_ms?.p99)}.`} />
        <Chart {...chartProps} title="Open connections and WebSockets" testId="chart-connections"
          series={[{ label: 'connections', colorVar: '--c-conn' }, { label: 'websockets', colorVar: '--c-ws' }]}
          data={connData} formatY={(v) => formatInt(v)}
          summary={`${formatInt(s?.connections_open)} connections, ${formatInt(s?.websockets_open)} WebSockets open.`} />
      </div>

      <h3 id="workers-title">Workers</h3>
      <p className="muted small" data-testid="workers-blurb">{workersBlurb(s?.model ?? '')}; the bars show how they share the work.</p>
      {s && s.workers.length > 0 ? (
        <div className="table-wrap">
        <table className="workers" aria-labelledby="workers-title" data-testid="workers">
          <thead>
            <tr>
              <th scope="col">Worker</th>
              <th scope="col">Requests</th>
              <th scope="col" className="num">Share</th>
              <th scope="col" className="num">Req/s</th>
              <th scope="col" className="num">Conns</th>
              <th scope="col" className="num">WS</th>
            </tr>
          </thead>
          <tbody>
            {s.workers.map((w) => (
              <tr key={w.id} data-testid={`worker-${w.id}`}>
                <th scope="row">#{w.id}</th>
                <td>
                  <div className="bar-cell">
                    <div className="bar" aria-hidden="true">
                      <div className="bar-fill" style={{ width: `${(100 * w.requests_total) / maxWorker}%` }} />
                    </div>
                    <span className="bar-label">{formatInt(w.requests_total)}</span>
                  </div>
                </td>
                <td className="num">{formatPercent(shares.get(w.id) ?? 0)}</td>
                <td className="num">{formatRate(rates?.perWorker.get(w.id))}</td>
                <td className="num">{formatInt(w.connections_open)}</td>
                <td className="num">{formatInt(w.websockets_open)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
      ) : (
        <p className="muted">No worker data yet.</p>
      )}
    </section>
  );
}
