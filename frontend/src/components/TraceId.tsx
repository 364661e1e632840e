import { jaegerTraceUrl, parseTraceResponse } from '../lib/trace';

/** Shows the trace id from a `traceresponse` header, linked to Jaeger when configured. */
export function TraceId({ header, jaegerUrl, testId }: { header: string | null; jaegerUrl: string | null; testId: string }) {
  const t = parseTraceResponse(header);
  if (!t) {
    return (
      <span className="trace muted" data-testid={testId} data-trace-id="">
        no trace id (no <code>traceresponse</code> header)
      </span>
    );
  }
  const href = jaegerTraceUrl(jaegerUrl, t.traceId);
  return (
    <span className="trace" data-testid={testId} data-trace-id={t.traceId}>
      trace{' '}
      {href ? (
        <a href={href} target="_blank" rel="noopener noreferrer" title="Open this trace in Jaeger">
          <code>{t.traceId}</code>
        </a>
      ) : (
        <code title={`span ${t.spanId}, flags ${t.flags}`}>{t.traceId}</code>
      )}
    </span>
  );
}
