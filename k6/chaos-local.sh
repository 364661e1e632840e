#!/usr/bin/env bash
# Chaos run without Docker: k6/chaos.js against a glasshouse binary on
# 127.0.0.1 while this script sends SIGTERM (or, with SIGNAL=KILL, SIGKILL)
# mid-run, waits for the server to exit, records its exit code and restarts
# it on the same port. Then
# k6/chaos_local_report.py sorts every request by when it started (before the
# signal / during the restart gap / after the restart) and fails on any failed
# request that started before the signal or after the restart, on a non-zero
# exit, or on a forced drain. Refused connections (and 503s) during the gap
# are reported by kind, not failures. Under SIGKILL nothing can be drained:
# the requests in flight at the kill are lost (reported by kind: a reset or
# refused connection, never a wrong answer), every request that ended before
# it and every request after the restart must have succeeded, and the
# server must have died of the signal (exit 137).
#
# Usage: k6/chaos-local.sh [BINARY]        (default target/release/glasshouse)
# Env:   WARMUP (s before the signal, 6), AFTER (s of traffic after the
#        restart, 6), RATE (requests/s, 20), SLOW_MS (1000), K6 (k6 on PATH),
#        KEEP=DIR (keep the k6 JSON, events and logs there), SIGNAL (TERM
#        or KILL, TERM)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/release/glasshouse}
K6=${K6:-k6}
WARMUP=${WARMUP:-6}
AFTER=${AFTER:-6}
SIGNAL=${SIGNAL:-TERM}
case "$SIGNAL" in TERM|KILL) ;; *) echo "chaos-local: SIGNAL must be TERM or KILL, not $SIGNAL"; exit 2;; esac
export RATE=${RATE:-20} SLOW_MS=${SLOW_MS:-1000}

work=$(mktemp -d)
server_pid=""
k6_pid=""
cleanup() {
  for pid in $k6_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in $k6_pid $server_pid; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.json "$work"/*.log "$work"/events "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
log() { printf '%s chaos-local: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

mkdir -p "$work/www"
printf '<!doctype html><title>glasshouse</title>\n' > "$work/www/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# start_server LOGFILE: glasshouse on the fixed port; waits for `listening on`.
start_server() {
  env -u OTEL_EXPORTER_OTLP_ENDPOINT "$BIN" --listen "127.0.0.1:$port" --root "$work/www" --workers 2 \
    --drain-timeout 5 --log-format json 2> "$1" &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q 'listening on' "$1" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$1"; echo "FAIL chaos: glasshouse did not start on 127.0.0.1:$port"; return 1
}

start_server "$work/server1.log"
log "glasshouse on 127.0.0.1:$port (pid $server_pid); k6 chaos.js at ${RATE}/s, /api/slow ${SLOW_MS} ms"

# k6 runs through warm-up, the stop (<= drain timeout), the restart and AFTER.
BASE_URL="http://127.0.0.1:$port" CHAOS_DURATION="$((WARMUP + AFTER + 3))s" \
  "$K6" run --quiet --no-summary --out "json=$work/chaos.json" k6/chaos.js > "$work/k6.log" 2>&1 &
k6_pid=$!

sleep "$WARMUP"
echo "signal $(now)" > "$work/events"
log "SIG$SIGNAL to $server_pid"
kill "-$SIGNAL" "$server_pid"
code=timeout
for _ in $(seq 200); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    code=0; wait "$server_pid" || code=$?
    break
  fi
  sleep 0.05
done
echo "stopped $(now)" >> "$work/events"
echo "exit $code" >> "$work/events"
log "glasshouse exited with $code; restarting on the same port"
[ "$code" != timeout ] || kill -KILL "$server_pid" 2>/dev/null || true
start_server "$work/server2.log"
echo "ready $(now)" >> "$work/events"
log "restarted (pid $server_pid); waiting for k6"

k6_code=0
wait "$k6_pid" || k6_code=$?
k6_pid=""
[ "$k6_code" -eq 0 ] || { tail -20 "$work/k6.log"; log "k6 exited with $k6_code"; }

status=0
python3 k6/chaos_local_report.py "$work/chaos.json" "$work/events" "$work/server1.log" "$SIGNAL" || status=1

kill -TERM "$server_pid"
code2=0
wait "$server_pid" || code2=$?
server_pid=""
if [ "$code2" -eq 0 ]; then echo "ok   chaos: the restarted glasshouse exited 0 on SIGTERM too"
else echo "FAIL chaos: the restarted glasshouse exited $code2 on SIGTERM"; status=1; fi
exit "$status"
