// W3C Trace Context `traceresponse` header: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.

export interface TraceResponse {
  version: string;
  traceId: string;
  spanId: string;
  flags: string;
  sampled: boolean;
}

const RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceResponse(header: string | null | undefined): TraceResponse | null {
  if (!header) return null;
  const m = RE.exec(header.trim().toLowerCase());
  if (!m) return null;
  const [, version, traceId, spanId, flags] = m;
  if (version === 'ff') return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { version, traceId, spanId, flags, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** Only http(s) URLs are ever turned into links (config comes from the server, still). */
export function safeHttpUrl(u: unknown): string | null {
  if (typeof u !== 'string' || u.trim() === '') return null;
  try {
    const url = new URL(u.trim());
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href.replace(/\/+$/, '');
  } catch {
    return null;
  }
}

export function jaegerTraceUrl(jaegerUrl: string | null | undefined, traceId: string): string | null {
  const base = safeHttpUrl(jaegerUrl);
  if (!base || !/^[0-9a-f]{32}$/.test(traceId)) return null;
  return `${base}/trace/${traceId}`;
}
