// WebSocket echo test: each iteration opens /ws/echo, sends MESSAGES messages
// (text, every fifth one binary) one after the other, checks each echo and
// closes.
//
//   k6 run k6/ws.js
//   BASE_URL=http://127.0.0.1:8081 VUS=5 DURATION_S=20 k6 run k6/ws.js
//   docker compose --profile load run --rm k6-ws
//
import { Counter, Rate, Trend } from 'k6/metrics';
import { WebSocket } from 'k6/websockets';
import { WS_URL, newTrace, seconds } from './lib/common.js';

// k6/websockets is the stable WebSocket module (k6 >= 1.6; the grafana/k6
// 2.x image, and the k6 that scripts/native_build.sh builds for the checks).
// An older k6 fails here loudly ("unknown module") instead of falling back.
// setTimeout/clearTimeout are globals (k6 >= 0.51).

const VUS = seconds('VUS', 10);
const DURATION_S = seconds('DURATION_S', 60);
const MESSAGES = seconds('MESSAGES', 20);
const SESSION_TIMEOUT_MS = 10000;

const echoOk = new Rate('ws_echo_ok');
const echoRtt = new Trend('ws_echo_rtt', true);
const sessionsOk = new Rate('ws_session_ok');
const wsErrors = new Counter('ws_errors');

export const options = {
  scenarios: {
    echo: {
      executor: 'constant-vus',
      vus: VUS,
      duration: `${DURATION_S}s`,
      gracefulStop: '10s',
    },
  },
  thresholds: {
    ws_echo_ok: ['rate>0.99'],
    ws_session_ok: ['rate>0.99'],
    ws_echo_rtt: ['p(95)<50', 'p(99)<200'],
    ws_connecting: ['p(95)<500'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

function binaryPayload(seq) {
  const bytes = new Uint8Array(64);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
  return bytes.buffer;
}

function sameBytes(a, b) {
  if (!(a instanceof ArrayBuffer) || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export default function () {
  const trace = newTrace();
  const ws = new WebSocket(`${WS_URL}/ws/echo`, null, {
    headers: { traceparent: trace.header },
    tags: { name: '/ws/echo' },
  });
  ws.binaryType = 'arraybuffer';

  let seq = 0;
  let expected = null;
  let sentAt = 0;
  let done = false;

  const timer = setTimeout(() => {
    if (!done) {
      done = true;
      sessionsOk.add(false);
      ws.close();
    }
  }, SESSION_TIMEOUT_MS);

  function sendNext() {
    if (seq % 5 === 4) {
      expected = binaryPayload(seq);
    } else {
      expected = JSON.stringify({ seq, vu: __VU, pad: 'x'.repeat(48) });
    }
    sentAt = Date.now();
    ws.send(expected);
    seq++;
  }

  ws.onopen = () => sendNext();

  ws.onmessage = (event) => {
    echoRtt.add(Date.now() - sentAt);
    const ok = typeof expected === 'string' ? event.data === expected : sameBytes(event.data, expected);
    echoOk.add(ok);
    if (seq < MESSAGES) {
      sendNext();
    } else if (!done) {
      done = true;
      sessionsOk.add(true);
      clearTimeout(timer);
      ws.close();
    }
  };

  ws.onerror = (e) => {
    wsErrors.add(1);
    if (!done) {
      done = true;
      sessionsOk.add(false);
      clearTimeout(timer);
    }
  };

  ws.onclose = () => {
    if (!done) {
      // Closed by the server before all echoes came back (e.g. 1001 on drain).
      done = true;
      sessionsOk.add(false);
      clearTimeout(timer);
    }
  };
}
