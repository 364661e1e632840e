import { useId, useState, type FormEvent } from 'react';
import { formatLatency } from '../lib/format';
import { TraceId } from './TraceId';

interface Answer {
  status: number;
  statusText: string;
  ms: number;
  headers: [string, string][];
  body: string;
  trace: string | null;
}

const EXAMPLE = '{\n  "hello": "glasshouse",\n  "n": 42\n}';

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function EchoForm({ jaegerUrl }: { jaegerUrl: string | null }) {
  const id = useId();
  const [body, setBody] = useState(EXAMPLE);
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<string | null>(null);
  let valid = true;
  try {
    JSON.parse(body);
  } catch {
    valid = false;
  }

  async function send(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const t0 = performance.now();
    try {
      const r = await fetch('/api/echo', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        cache: 'no-store',
      });
      const text = await r.text();
      const ms = performance.now() - t0;
      const headers: [string, string][] = [];
      r.headers.forEach((v, k) => headers.push([k, v]));
      headers.sort((a, b) => a[0].localeCompare(b[0]));
      setAnswer({ status: r.status, statusText: r.statusText, ms, headers, body: text, trace: r.headers.get('traceresponse') });
    } catch (err) {
      setAnswer(null);
      setError(`request failed: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby={`${id}-t`} data-testid="echo">
      <h3 id={`${id}-t`}>JSON echo</h3>
      <p className="muted small">
        <code>POST /api/echo</code> with <code>Content-Type: application/json</code>: the body comes back.
      </p>
      <form onSubmit={send}>
        <label htmlFor={`${id}-body`}>JSON body</label>
        <textarea id={`${id}-body`} data-testid="echo-input" rows={5} spellCheck={false} value={body}
          onChange={(e) => setBody(e.target.value)} aria-describedby={`${id}-hint`} />
        <div className="row">
          <button type="submit" disabled={busy} data-testid="echo-send">
            {busy ? 'Sending…' : 'Send'}
          </button>
          <span id={`${id}-hint`} className={`small ${valid ? 'muted' : 'warn-text'}`} aria-live="polite">
            {valid ? 'valid JSON' : 'not valid JSON — the server should answer 400'}
          </span>
        </div>
      </form>
      <div aria-live="polite" data-testid="echo-result">
        {error ? <p className="error-text" data-testid="echo-error">{error}</p> : null}
        {answer ? (
          <div className="answer">
            <p className="row">
              <span className={`status s${Math.floor(answer.status / 100)}xx`} data-testid="echo-status" data-status={answer.status}>
                {answer.status} {answer.statusText}
              </span>
              <span className="muted" data-testid="echo-time">{formatLatency(answer.ms)}</span>
              <TraceId header={answer.trace} jaegerUrl={jaegerUrl} testId="echo-trace" />
            </p>
            <pre className="code" data-testid="echo-body" tabIndex={0} aria-label="Response body">{pretty(answer.body)}</pre>
            <details>
              <summary>Response headers ({answer.headers.length})</summary>
              <dl className="headers" data-testid="echo-headers">
                {answer.headers.map(([k, v]) => (
                  <div key={k}>
                    <dt>{k}</dt>
                    <dd>{v}</dd>
                  </div>
                ))}
              </dl>
            </details>
          </div>
        ) : null}
      </div>
    </section>
  );
}
