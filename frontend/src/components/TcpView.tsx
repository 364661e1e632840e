import { useEffect, useState } from 'react';
import { formatInt } from '../lib/format';
import { parseTcp, stateCounts, type TcpResult } from '../lib/tcp';

/** Connections listed in the table at most (the document may hold 1,000). */
const ROWS = 50;

/**
 * The userland TCP/IP's own view of its connections (`/api/tcp`, `--stack user`),
 * polled once a second. Under the kernel's stack the endpoint answers 404 and the
 * panel stays out of the page.
 */
export function TcpView() {
  const [result, setResult] = useState<TcpResult | null>(null);

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function poll() {
      let next: TcpResult;
      try {
        const r = await fetch('/api/tcp', { cache: 'no-store' });
        next = parseTcp(r.status, await r.text());
      } catch (err) {
        next = { kind: 'error', error: (err as Error).message };
      }
      if (stop) return;
      setResult(next);
      // Absent is an answer about the server's build of the page, not a fault:
      // asked again only on reload.
      if (next.kind !== 'absent') timer = setTimeout(poll, 1000);
    }
    void poll();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, []);

  if (result === null || result.kind === 'absent') return null;
  if (result.kind === 'error') {
    return (
      <section className="tcp" data-testid="tcp-view" aria-labelledby="tcp-title">
        <h2 id="tcp-title">Our own TCP</h2>
        <p className="muted small">/api/tcp: {result.error}</p>
      </section>
    );
  }
  const v = result.view;
  return (
    <section className="tcp" data-testid="tcp-view" aria-labelledby="tcp-title">
      <div className="section-head">
        <h2 id="tcp-title">Our own TCP</h2>
        <span className="muted small">
          glasshouse's userland TCP/IP on {v.address}, from <code>/api/tcp</code> once a second
        </span>
      </div>
      <ul className="gaps small" data-testid="tcp-states" aria-label="Connections by state">
        {v.listeners.map((l) => (
          <li key={l.port}>
            LISTEN :{l.port} ({l.queued} queued, {l.half_open} half-open)
          </li>
        ))}
        {stateCounts(v).map(([state, count]) => (
          <li key={state} data-state={state}>
            {state} {formatInt(count)}
          </li>
        ))}
        <li>
          packets {formatInt(v.packets_in)} in / {formatInt(v.packets_out)} out
        </li>
        <li>retransmissions {formatInt(v.retransmissions)}</li>
        <li>out of order {formatInt(v.out_of_order_segments)}</li>
      </ul>
      <div className="table-wrap">
        <table className="workers" data-testid="tcp-connections" aria-labelledby="tcp-title">
          <thead>
            <tr>
              <th scope="col">Peer</th>
              <th scope="col">State</th>
              <th scope="col" className="num">cwnd</th>
              <th scope="col" className="num">SRTT</th>
              <th scope="col" className="num">RTO</th>
              <th scope="col" className="num">Retx</th>
              <th scope="col" className="num">Unsent</th>
            </tr>
          </thead>
          <tbody>
            {v.connections.slice(0, ROWS).map((c) => (
              <tr key={`${c.local}-${c.remote}`}>
                <th scope="row">{c.remote}</th>
                <td>{c.state}</td>
                <td className="num">{formatInt(c.cwnd)}</td>
                <td className="num">{c.srtt_ms === null ? '—' : `${c.srtt_ms} ms`}</td>
                <td className="num">{c.rto_ms} ms</td>
                <td className="num">{formatInt(c.retransmissions)}</td>
                <td className="num">{formatInt(c.unsent)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {v.connections.length > ROWS || v.truncated ? (
        <p className="muted small">the first {ROWS} connections are shown</p>
      ) : null}
    </section>
  );
}
