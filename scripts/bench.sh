#!/usr/bin/env bash
# The benchmarks behind docs/benchmarks.md, outside the test run: the shared
# side-by-side HTTP benchmark (glasshouse beside nginx and a no-work C epoll
# ceiling, round-robin in one run) and the memory held by 10,000 idle
# keep-alive connections. Needs a quiet machine; REPS/DUR as in side-by-side.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/glasshouse}
[ -x "$BIN" ] || cargo build --release --locked
ulimit -n "$(ulimit -Hn)"

REPS=${REPS:-3} DUR=${DUR:-10s} OUT=${OUT:-bench-out} \
  bash ../shared/bench/side-by-side.sh "$BIN --listen 127.0.0.1:{PORT} --root {ROOT} --workers 2 --log-level warn"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --listen "127.0.0.1:$port" --workers 2 --max-connections 20000 --log-level warn --root "$(mktemp -d)" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
python3 scripts/idle_conns.py --pid "$pid" --port "$port" --n 10000
