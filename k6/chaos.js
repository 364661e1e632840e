// Chaos traffic: a steady open-model mix while k6/chaos.sh kills and restarts
// the server. Slow requests (SLOW_MS, default 1000) make sure requests are in
// flight whenever a signal lands. No thresholds: the driver reads the JSON
// output and reports failures per window; each sample's metadata holds the
// trace id k6 sent in `traceparent`.
//
//   k6/chaos.sh                               # the full run (Docker host)
//   BASE_URL=http://127.0.0.1:8081 CHAOS_DURATION=20s k6 run k6/chaos.js
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, params } from './lib/common.js';

const RATE = Number(__ENV.RATE || 40);
const SLOW_MS = Number(__ENV.SLOW_MS || 1000);

export const options = {
  scenarios: {
    chaos: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.CHAOS_DURATION || '150s',
      preAllocatedVUs: 20,
      maxVUs: 200,
      gracefulStop: '15s',
    },
  },
  systemTags: ['status', 'method', 'name', 'scenario', 'error_code', 'expected_response'],
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const pick = Math.random();
  let res;
  if (pick < 0.4) {
    res = http.get(`${BASE_URL}/api/slow?ms=${SLOW_MS}`, params('/api/slow', { timeout: '20s' }));
  } else if (pick < 0.7) {
    res = http.get(`${BASE_URL}/api/stats`, params('/api/stats', { timeout: '5s' }));
  } else {
    res = http.get(`${BASE_URL}/`, params('/', { timeout: '5s' }));
  }
  check(res, { 'status 200': (r) => r.status === 200 });
}
