import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { formatClock, formatLatency } from '../lib/format';
import { wsUrl } from '../lib/urls';

interface Line {
  n: number;
  at: number;
  dir: 'out' | 'in' | 'sys';
  text: string;
  rtt?: number;
}

type WsState = 'closed' | 'connecting' | 'open';

const MAX_LINES = 100;

export function WsConsole() {
  const id = useId();
  const [state, setState] = useState<WsState>('closed');
  const [lines, setLines] = useState<Line[]>([]);
  const [text, setText] = useState('hello, glasshouse');
  const sock = useRef<WebSocket | null>(null);
  const seq = useRef(0);
  const pending = useRef<number[]>([]); // send times, FIFO: an echo server answers in order
  const queued = useRef<string[]>([]);

  const add = (l: Omit<Line, 'n' | 'at'>) =>
    setLines((old) => [...old.slice(-(MAX_LINES - 1)), { ...l, n: ++seq.current, at: Date.now() }]);

  function open(): WebSocket {
    const ws = new WebSocket(wsUrl('/ws/echo', window.location));
    sock.current = ws;
    pending.current = [];
    setState('connecting');
    ws.onopen = () => {
      if (sock.current !== ws) return;
      setState('open');
      add({ dir: 'sys', text: 'connected to /ws/echo' });
      for (const m of queued.current.splice(0)) transmit(ws, m);
    };
    ws.onmessage = (ev) => {
      if (sock.current !== ws) return;
      const t0 = pending.current.shift();
      const data = typeof ev.data === 'string' ? ev.data : `[binary ${(ev.data as Blob).size ?? '?'} bytes]`;
      add({ dir: 'in', text: data, rtt: t0 === undefined ? undefined : performance.now() - t0 });
    };
    ws.onclose = (ev) => {
      if (sock.current !== ws) return;
      sock.current = null;
      setState('closed');
      add({ dir: 'sys', text: `closed (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ''})` });
    };
    return ws;
  }

  function transmit(ws: WebSocket, m: string) {
    pending.current.push(performance.now());
    ws.send(m);
    add({ dir: 'out', text: m });
  }

  useEffect(() => () => {
    const ws = sock.current;
    sock.current = null;
    ws?.close(1000);
  }, []);

  function toggle() {
    if (sock.current) sock.current.close(1000, 'closed by user');
    else open();
  }

  function send(e: FormEvent) {
    e.preventDefault();
    if (text === '') return;
    const ws = sock.current;
    if (ws && ws.readyState === WebSocket.OPEN) transmit(ws, text);
    else {
      queued.current.push(text);
      if (!ws) open();
    }
  }

  return (
    <section className="card" aria-labelledby={`${id}-t`} data-testid="ws-echo">
      <h3 id={`${id}-t`}>WebSocket echo</h3>
      <p className="muted small">
        <code>/ws/echo</code> sends every message back. Browsers cannot read the trace header of a WebSocket upgrade.
      </p>
      <div className="row">
        <span className={`pill ${state === 'open' ? 'ok' : 'idle'}`} data-testid="ws-state" data-state={state}>
          <span className="dot" aria-hidden="true" />
          {state}
        </span>
        <button type="button" onClick={toggle} data-testid="ws-connect" className="secondary">
          {state === 'closed' ? 'Connect' : 'Disconnect'}
        </button>
      </div>
      <form onSubmit={send} className="row">
        <label htmlFor={`${id}-msg`} className="visually-hidden">Message</label>
        <input id={`${id}-msg`} data-testid="ws-input" value={text} onChange={(e) => setText(e.target.value)}
          placeholder="Message" autoComplete="off" />
        <button type="submit" data-testid="ws-send">Send</button>
      </form>
      <ol className="log" data-testid="ws-log" aria-label="WebSocket messages" aria-live="polite" tabIndex={0}>
        {lines.length === 0 ? <li className="muted">No messages yet. Send one: it connects by itself.</li> : null}
        {lines.map((l) => (
          <li key={l.n} className={`log-${l.dir}`} data-dir={l.dir} data-text={l.text}>
            <span className="muted">{formatClock(l.at)}</span>{' '}
            <span aria-label={l.dir === 'out' ? 'sent' : l.dir === 'in' ? 'received' : 'status'}>
              {l.dir === 'out' ? '→' : l.dir === 'in' ? '←' : '•'}
            </span>{' '}
            <span className="log-text">{l.text}</span>
            {l.rtt !== undefined ? <span className="muted"> ({formatLatency(l.rtt)})</span> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}
