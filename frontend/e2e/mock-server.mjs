#!/usr/bin/env node
// DEV ONLY: a tiny stand-in for glasshouse that follows the contract closely enough to
// develop the frontend and prove the e2e script (shared/contract.md, docs/api.md).
// It is not the server and is never shipped. Loopback by default.
//
//   node e2e/mock-server.mjs [--listen 127.0.0.1:8080] [--root dist] [--workers 2]
//        [--drain-timeout 10] [--jaeger-url URL] [--grafana-url URL] [--prometheus-url URL]
//
// Like glasshouse it logs `listening on http://HOST:PORT` on stderr, picks a free port
// for `:0`, and drains on SIGTERM/SIGINT (state "draining", WebSockets closed with 1001,
// requests in flight finish, exit 0; a second signal exits 1).
import { createServer } from 'node:http';
import { createReadStream, statSync, existsSync } from 'node:fs';
import { extname, join, normalize, resolve, sep, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function flag(name, env, def) {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  return (env && process.env[env]) || def;
}
const listen = flag('listen', 'GLASSHOUSE_LISTEN', '127.0.0.1:8080');
const root = resolve(flag('root', 'GLASSHOUSE_ROOT', join(here, '..', 'dist')));
const nWorkers = Math.max(1, Number(flag('workers', 'GLASSHOUSE_WORKERS', '2')));
const drainTimeout = Number(flag('drain-timeout', 'GLASSHOUSE_DRAIN_TIMEOUT', '10'));
const config = {
  version: '0.0.0-mock',
  grafana_url: flag('grafana-url', 'GLASSHOUSE_GRAFANA_URL', null),
  jaeger_url: flag('jaeger-url', 'GLASSHOUSE_JAEGER_URL', null),
  prometheus_url: flag('prometheus-url', 'GLASSHOUSE_PROMETHEUS_URL', null),
};
const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen);
if (!m) {
  console.error(`invalid --listen ${listen}`);
  process.exit(2);
}
const host = m[1] || '127.0.0.1';
const port = Number(m[2]);

const started = performance.now();
let state = 'serving';
let requestsTotal = 0;
let inFlight = 0;
let bytesSent = 0;
let rejected = 0;
const durations = []; // ms, last 10k
const workers = Array.from({ length: nWorkers }, (_, id) => ({ id, requests_total: 0, connections_open: 0, websockets_open: 0 }));
let rr = 0;
const sockets = new Set();

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 1000) / 1000;
}
function stats() {
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    version: config.version,
    model: 'mock',
    state,
    uptime_seconds: Math.round((performance.now() - started) / 10) / 100,
    timestamp_ms: Date.now(),
    connections_open: workers.reduce((s, w) => s + w.connections_open, 0),
    websockets_open: workers.reduce((s, w) => s + w.websockets_open, 0),
    requests_total: requestsTotal,
    requests_in_flight: inFlight,
    bytes_sent_total: bytesSent,
    connections_rejected_total: rejected,
    latency_ms: sorted.length ? { p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99) } : null,
    workers: workers.map((w) => ({ ...w })),
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
};
const hex = (n) => randomBytes(n).toString('hex');

function finish(req, res, status, headers, body) {
  const buf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, { 'traceresponse': `00-${hex(16)}-${hex(8)}-01`, ...(buf ? { 'content-length': buf.length } : {}), ...headers });
  res.end(req.method === 'HEAD' ? undefined : buf ?? undefined);
}
function json(req, res, status, obj, extra = {}) {
  finish(req, res, status, { 'content-type': 'application/json', ...extra }, JSON.stringify(obj));
}

function serveStatic(req, res, path) {
  const rel = decodeURIComponent(path);
  const file = normalize(join(root, rel));
  if (!file.startsWith(root + sep) && file !== root) return json(req, res, 404, { error: 'not found' });
  let target = file;
  if (existsSync(target) && statSync(target).isDirectory()) target = join(target, 'index.html');
  if (!existsSync(target)) {
    const accept = req.headers.accept ?? '';
    if (extname(rel) === '' && accept.includes('text/html') && existsSync(join(root, 'index.html'))) target = join(root, 'index.html');
    else return json(req, res, 404, { error: 'not found' });
  }
  const st = statSync(target);
  res.writeHead(200, {
    'content-type': TYPES[extname(target)] ?? 'application/octet-stream',
    'content-length': st.size,
    'traceresponse': `00-${hex(16)}-${hex(8)}-01`,
    'cache-control': target.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(target).pipe(res);
}

const server = createServer((req, res) => {
  const t0 = performance.now();
  const w = workers[req.socket.__worker ?? 0];
  inFlight++;
  req.socket.__busy = true;
  let counted = false;
  const done = () => {
    if (counted) return;
    counted = true;
    inFlight--;
    req.socket.__busy = false;
    if (state === 'draining') req.socket.end();
    requestsTotal++;
    w.requests_total++;
    bytesSent += req.socket.bytesWritten - (req.socket.__written ?? 0);
    req.socket.__written = req.socket.bytesWritten;
    durations.push(performance.now() - t0);
    if (durations.length > 10000) durations.shift();
    if (state === 'draining') maybeExit();
  };
  res.on('finish', done);
  res.on('close', done);
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (state === 'draining') return json(req, res, 503, { error: 'draining' }, { connection: 'close' });
  if (p === '/healthz') return json(req, res, 200, { status: 'ok' });
  if (p === '/readyz') return json(req, res, state === 'serving' ? 200 : 503, { status: state });
  if (p === '/api/stats') return json(req, res, 200, stats());
  if (p === '/api/config') return json(req, res, 200, config);
  if (p === '/metrics') return finish(req, res, 200, { 'content-type': 'text/plain; version=0.0.4' }, `glasshouse_connections_open ${stats().connections_open}\n`);
  if (p === '/api/echo') {
    if (req.method !== 'POST') return json(req, res, 405, { error: 'method not allowed' }, { allow: 'POST' });
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) return json(req, res, 415, { error: 'expected application/json' });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        JSON.parse(body.toString('utf8'));
      } catch {
        return json(req, res, 400, { error: 'invalid JSON' });
      }
      finish(req, res, 200, { 'content-type': 'application/json' }, body);
    });
    return;
  }
  if (p === '/api/slow') {
    const ms = Number(url.searchParams.get('ms') ?? '1000');
    if (!Number.isFinite(ms) || ms < 0 || ms > 60000) return json(req, res, 400, { error: 'ms must be 0..60000' });
    const t = setTimeout(() => json(req, res, 200, { slept_ms: ms }), ms);
    res.on('close', () => clearTimeout(t));
    return;
  }
  if (p.startsWith('/api/') || p.startsWith('/ws/')) return json(req, res, 404, { error: 'not found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(req, res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
  return serveStatic(req, res, p);
});

server.on('connection', (sock) => {
  sock.__worker = rr++ % nWorkers;
  const w = workers[sock.__worker];
  w.connections_open++;
  sockets.add(sock);
  sock.on('close', () => {
    w.connections_open--;
    sockets.delete(sock);
    if (state === 'draining') maybeExit();
  });
});

const wss = new WebSocketServer({ noServer: true });
const statsClients = new Set();
server.on('upgrade', (req, sock, head) => {
  const p = new URL(req.url, 'http://x').pathname;
  if (state !== 'serving' || (p !== '/ws/echo' && p !== '/ws/stats')) {
    sock.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    return;
  }
  requestsTotal++;
  const w = workers[sock.__worker ?? 0];
  w.requests_total++;
  wss.handleUpgrade(req, sock, head, (ws) => {
    w.websockets_open++;
    ws.on('close', () => {
      w.websockets_open--;
      statsClients.delete(ws);
    });
    if (p === '/ws/echo') ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    else statsClients.add(ws);
  });
});

const tick = setInterval(() => {
  const msg = JSON.stringify(stats());
  for (const ws of statsClients) ws.send(msg);
}, 1000);

let exiting = false;
function maybeExit() {
  if (exiting || inFlight > 0) return;
  exiting = true;
  console.error(JSON.stringify({ level: 'INFO', message: 'drained, exiting' }));
  clearInterval(tick);
  for (const s of sockets) s.destroy();
  process.exit(0);
}
let signals = 0;
function onSignal(sig) {
  signals++;
  if (signals > 1) {
    console.error(JSON.stringify({ level: 'WARN', message: `second ${sig}: stopping now` }));
    process.exit(1);
  }
  console.error(JSON.stringify({ level: 'INFO', message: `${sig}: draining`, in_flight: inFlight }));
  state = 'draining';
  server.close();
  const last = JSON.stringify(stats());
  for (const ws of wss.clients) {
    if (statsClients.has(ws)) ws.send(last);
    ws.close(1001, 'server shutting down');
  }
  for (const s of sockets) if (!s.__busy) s.destroy(); // idle keep-alive connections close
  setTimeout(() => {
    console.error(JSON.stringify({ level: 'WARN', message: 'drain timeout', forced: inFlight }));
    process.exit(0);
  }, drainTimeout * 1000).unref();
  setTimeout(maybeExit, 10);
}
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

server.keepAliveTimeout = 60000;
server.on('error', (e) => {
  console.error(`cannot listen on ${listen}: ${e.message}`);
  process.exit(2);
});
server.listen(port, host, () => {
  const a = server.address();
  const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  console.error(JSON.stringify({ level: 'INFO', message: `listening on http://${h}:${a.port}`, root }));
});
