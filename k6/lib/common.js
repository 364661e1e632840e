// Shared helpers for the glasshouse k6 scripts.
//
// Every request carries a fresh W3C `traceparent`, so glasshouse's server span
// becomes the child of a trace k6 started: a failed request's trace id (kept
// in the sample's metadata, not a tag, to keep cardinality low) can be looked
// up in Jaeger.
import exec from 'k6/execution';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws');

function hex(len) {
  let s = '';
  for (let i = 0; i < len; i++) {
    s += Math.floor(Math.random() * 16).toString(16);
  }
  return s;
}

// Returns { header, traceId } for a new sampled root context.
export function newTrace() {
  let traceId = hex(32);
  let spanId = hex(16);
  // All-zero ids are invalid in W3C Trace Context.
  if (/^0+$/.test(traceId)) traceId = '1' + traceId.slice(1);
  if (/^0+$/.test(spanId)) spanId = '1' + spanId.slice(1);
  return { header: `00-${traceId}-${spanId}-01`, traceId };
}

// Request params: traceparent header, a low-cardinality `name` tag, and the
// trace id and start time as sample metadata (JSON output shows it; Prometheus does not).
export function params(name, extra) {
  const t = newTrace();
  try {
    exec.vu.metrics.metadata.trace_id = t.traceId;
    // When the request started (epoch ms): a sample's own time is when it
    // ended; k6/chaos_local_report.py sorts requests by start.
    exec.vu.metrics.metadata.started_ms = String(Date.now());
  } catch (e) {
    // Outside a VU context (init) there is no metadata to set.
  }
  const p = extra ? Object.assign({}, extra) : {};
  p.headers = Object.assign({ traceparent: t.header }, p.headers || {});
  p.tags = Object.assign({ name }, p.tags || {});
  return p;
}

// Whole seconds from an env var, with a default.
export function seconds(name, dflt) {
  const v = Number(__ENV[name]);
  return Number.isFinite(v) && v > 0 ? Math.round(v) : dflt;
}

// ramp up (25 %), hold, ramp down (25 %) over `total` seconds to `peak` per second.
export function rampStages(total, peak) {
  const ramp = Math.max(1, Math.round(total * 0.25));
  const hold = Math.max(1, total - 2 * ramp);
  return [
    { target: peak, duration: `${ramp}s` },
    { target: peak, duration: `${hold}s` },
    { target: 0, duration: `${ramp}s` },
  ];
}
