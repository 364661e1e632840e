// Load test: open-model arrival rate over static files, the JSON API and slow
// requests, with thresholds.
//
//   k6 run k6/load.js                                     # against 127.0.0.1:8080
//   BASE_URL=http://127.0.0.1:8081 DURATION_S=20 RATE_SCALE=0.2 k6 run k6/load.js
//   docker compose --profile load run --rm k6-load        # inside the stack
//
// Env: BASE_URL, DURATION_S (default 120), RATE_SCALE (multiplies the peak
// rates, default 1), SLOW_MS (default 200).
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { BASE_URL, params, rampStages, seconds } from './lib/common.js';

const DURATION_S = seconds('DURATION_S', 120);
const SCALE = Number(__ENV.RATE_SCALE || 1) > 0 ? Number(__ENV.RATE_SCALE || 1) : 1;
const SLOW_MS = seconds('SLOW_MS', 200);
const peak = (n) => Math.max(1, Math.round(n * SCALE));

// Whether glasshouse continued our trace (traceresponse carries our trace id).
const traceContinued = new Rate('glasshouse_trace_continued');

function scenario(exec, peakRate, maxVUs) {
  return {
    executor: 'ramping-arrival-rate',
    exec,
    startRate: 1,
    timeUnit: '1s',
    preAllocatedVUs: Math.min(maxVUs, 10),
    maxVUs,
    stages: rampStages(DURATION_S, peakRate),
    gracefulStop: '5s',
  };
}

export const options = {
  scenarios: {
    static_files: scenario('staticFiles', peak(100), 50),
    json_api: scenario('jsonApi', peak(50), 50),
    // Each slow request holds a VU for SLOW_MS: size maxVUs for rate * time.
    slow: scenario('slow', peak(10), 50),
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{scenario:static_files}': ['p(95)<100', 'p(99)<250'],
    'http_req_duration{scenario:json_api}': ['p(95)<100', 'p(99)<250'],
    [`http_req_duration{scenario:slow}`]: [`p(95)<${SLOW_MS + 250}`, `p(99)<${SLOW_MS + 1000}`],
  },
  // The `name` tag groups URLs; no per-URL tags.
  systemTags: ['status', 'method', 'name', 'scenario', 'group', 'check', 'error_code', 'expected_response'],
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

// Finds the hashed Vite assets that index.html references.
export function setup() {
  const res = http.get(`${BASE_URL}/`, params('/'));
  const assets = [];
  if (res.status === 200 && typeof res.body === 'string') {
    const re = /(?:src|href)="(\/assets\/[^"]+)"/g;
    let m;
    while ((m = re.exec(res.body)) !== null && assets.length < 20) {
      assets.push(m[1]);
    }
  }
  return { assets };
}

function traced(res, p) {
  const tr = res.headers['Traceresponse'] || res.headers['traceresponse'];
  const want = p.headers.traceparent.split('-')[1];
  traceContinued.add(typeof tr === 'string' && tr.split('-')[1] === want);
  return res;
}

export function staticFiles(data) {
  const paths = ['/', '/index.html'].concat(data.assets || []);
  const path = paths[Math.floor(Math.random() * paths.length)];
  const name = path.startsWith('/assets/') ? '/assets/*' : path;
  const p = params(name);
  const res = traced(http.get(`${BASE_URL}${path}`, p), p);
  check(res, {
    'static: 200': (r) => r.status === 200,
    'static: has etag': (r) => !!(r.headers['Etag'] || r.headers['ETag']),
  });
}

export function jsonApi() {
  const pick = Math.random();
  if (pick < 0.5) {
    const sent = { hello: 'glasshouse', n: Math.floor(Math.random() * 1e6), vu: __VU, ok: true };
    const body = JSON.stringify(sent);
    const p = params('/api/echo', { headers: { 'Content-Type': 'application/json' } });
    const res = traced(http.post(`${BASE_URL}/api/echo`, body, p), p);
    check(res, {
      'echo: 200': (r) => r.status === 200,
      // Compare values: key order may differ (serde_json, k6's r.json()).
      'echo: same JSON': (r) => {
        try {
          const got = r.json();
          return Object.keys(sent).length === Object.keys(got).length &&
            Object.keys(sent).every((k) => got[k] === sent[k]);
        } catch (e) {
          return false;
        }
      },
    });
  } else if (pick < 0.9) {
    const p = params('/api/stats');
    const res = traced(http.get(`${BASE_URL}/api/stats`, p), p);
    check(res, {
      'stats: 200': (r) => r.status === 200,
      'stats: has workers': (r) => {
        try {
          return Array.isArray(r.json('workers'));
        } catch (e) {
          return false;
        }
      },
    });
  } else {
    const p = params('/api/config');
    const res = traced(http.get(`${BASE_URL}/api/config`, p), p);
    check(res, { 'config: 200': (r) => r.status === 200 });
  }
}

export function slow() {
  const p = params('/api/slow', { timeout: `${SLOW_MS + 10000}ms` });
  const res = traced(http.get(`${BASE_URL}/api/slow?ms=${SLOW_MS}`, p), p);
  check(res, {
    'slow: 200': (r) => r.status === 200,
    'slow: took at least ms': (r) => r.timings.duration >= SLOW_MS * 0.9,
  });
}
