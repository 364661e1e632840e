#!/usr/bin/env bash
# WebSocket benchmark (not part of the test run): echo round trips per second
# with N concurrent clients, glasshouse against an echo server on Node's `ws`
# library, in one run on one machine; then the server's RSS holding many idle
# WebSockets. Traffic stays on 127.0.0.1; every phase is bounded in time.
#
#   bash scripts/ws_bench.sh                 # defaults below
#   CONNS="1 16 64" BENCH_SECONDS=10 SIZE=32 IDLE=10000 bash scripts/ws_bench.sh
#
# glasshouse runs with --workers 2 (the machine has 2 cores); Node runs its
# JavaScript on one thread, so it is measured as 1 process and as a
# 2-process cluster sharing the port. The load client (scripts/ws_bench.rs,
# one thread per connection, blocking send-one/receive-one) runs on the
# same 2 cores for every server alike.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-"1 16 64"}
BENCH_SECONDS=${BENCH_SECONDS:-10}
SIZE=${SIZE:-32}
IDLE=${IDLE:-10000}
SERVERS=${SERVERS:-"glasshouse node node-cluster2"}
ROUNDS=${ROUNDS:-3}   # the servers take turns, ROUNDS times, to spread out noise

cargo build --release --locked --bin glasshouse >&2
BIN=target/release/glasshouse
rustc -O --edition 2021 scripts/ws_bench.rs -o target/ws_bench >&2
(cd scripts/ws-node && npm ci --no-audit --no-fund --loglevel=error >&2)
# 10,000 sockets on each side: raise the soft limit as far as the hard one allows.
ulimit -n "$(ulimit -Hn)"

ROOT=$(mktemp -d)
LOG=$(mktemp)
SPID=""
stop_server() {
  if [ -n "$SPID" ]; then
    kill -TERM "$SPID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
  fi
}
trap 'stop_server; rm -rf "$ROOT" "$LOG"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server NAME: starts it, sets SPID and ADDR.
start_server() {
  : >"$LOG"
  case "$1" in
    glasshouse)
      "$BIN" --listen 127.0.0.1:0 --workers 2 --root "$ROOT" --log-format text \
        --max-connections 30000 2>"$LOG" & ;;
    node)
      node scripts/ws-node/server.js "$(free_port)" 1 2>"$LOG" & ;;
    node-cluster2)
      node scripts/ws-node/server.js "$(free_port)" 2 2>"$LOG" & ;;
  esac
  SPID=$!
  ADDR=""
  for _ in $(seq 1 100); do
    ADDR=$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's|.*http://||' || true)
    [ -n "$ADDR" ] && return
    sleep 0.1
  done
  cat "$LOG" >&2
  echo "ws_bench: $1 did not start" >&2
  exit 1
}

# RSS in KiB of a process and all its descendants.
rss_kib() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

path_for() { [ "$1" = glasshouse ] && echo /ws/echo || echo /; }

echo "# ws_bench $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores; $BENCH_SECONDS s per run, $SIZE-byte binary messages"
echo "# node $(node --version), ws $(node -p 'require("./scripts/ws-node/node_modules/ws/package.json").version')"
echo
echo "| round | server | connections | round trips/s | p50 µs | p99 µs |"
echo "|---:|---|---:|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  for s in $SERVERS; do
    start_server "$s"
    for c in $CONNS; do
      out=$(target/ws_bench echo "$ADDR" "$(path_for "$s")" "$c" "$BENCH_SECONDS" "$SIZE")
      read -r _ _ _ _ _ rate _ p50 _ p99 <<<"$out"
      echo "| $r | $s | $c | $rate | $p50 | $p99 |"
    done
    stop_server
  done
done

echo
echo "| server | idle WebSockets | RSS before | RSS with them open | per connection |"
echo "|---|---:|---:|---:|---:|"
for s in $SERVERS; do
  start_server "$s"
  sleep 0.5
  before=$(rss_kib "$SPID")
  coproc IDLER { exec target/ws_bench idle "$ADDR" "$(path_for "$s")" "$IDLE"; }
  read -r -t 300 _ opened <&"${IDLER[0]}" || opened=0
  sleep 2
  after=$(rss_kib "$SPID")
  eval "exec ${IDLER[1]}>&-"
  wait "$IDLER_PID" 2>/dev/null || true
  per=$(( opened > 0 ? (after - before) * 1024 / opened : 0 ))
  echo "| $s | $opened | $((before / 1024)) MiB | $((after / 1024)) MiB | $per B |"
  stop_server
done
