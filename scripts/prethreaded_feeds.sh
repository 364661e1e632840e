#!/usr/bin/env bash
# prethreaded's two feeds (--prethreaded-accept turn|queue) under short
# connections (Connection: close, so the feed runs once per request):
# req/s and the server's CPU per request, each feed twice, alternating.
# Figures in docs/ladder.md. Needs wrk and a quiet machine.
# Usage: bash scripts/prethreaded_feeds.sh [BIN]   (CONC="20 200 1000" DUR=10 POOL=64)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/glasshouse}
[ -x "$BIN" ] || cargo build --release --locked
command -v wrk >/dev/null || { echo "prethreaded_feeds: needs wrk" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
tick=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
printf 'feed\tconnections\treq_per_s\tcpu_us_per_req\terrors\n'
for c in ${CONC:-20 200 1000}; do
  for feed in turn queue turn queue; do
    port=$(free_port)
    "$BIN" --model prethreaded --prethreaded-accept "$feed" --listen "127.0.0.1:$port" \
      --workers "${POOL:-64}" --max-connections 20000 --log-level warn --root /tmp --drain-timeout 5 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    out=$(wrk -t2 -c"$c" -d"${DUR:-10}s" --timeout 2s -H "Connection: close" "http://127.0.0.1:$port/healthz")
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill -TERM "$pid"; wait "$pid" || true
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    errors=$(echo "$out" | awk '/Socket errors/{s=0; for (i=4;i<=NF;i+=2) s+=$i; print s}')
    us=$(awk -v t="$ticks" -v hz="$tick" -v n="$requests" 'BEGIN{printf "%.1f", t / hz * 1e6 / (n > 0 ? n : 1)}')
    printf '%s\t%s\t%s\t%s\t%s\n' "$feed" "$c" "$rps" "$us" "${errors:-0}"
  done
done
