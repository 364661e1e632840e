// Minimal echo server on the npm `ws` library, for scripts/ws_bench.sh.
//   node server.js PORT [PROCESSES]
// PROCESSES > 1 forks a cluster sharing the port (Node runs JavaScript on one
// thread per process). Prints "listening on http://127.0.0.1:PORT" when ready.
'use strict';
const cluster = require('node:cluster');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9100);
const processes = Number(process.argv[3] || 1);

if (processes > 1 && cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < processes; i++) {
    cluster.fork().on('message', (m) => {
      if (m === 'ready' && ++ready === processes) {
        console.error(`listening on http://127.0.0.1:${port} (${processes} processes)`);
      }
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  // Compression off, as on the glasshouse side (the client offers none).
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => {
    if (process.send) process.send('ready');
    else console.error(`listening on http://127.0.0.1:${port}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
