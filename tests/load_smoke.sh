#!/usr/bin/env bash
# Load smoke test (not a benchmark, no timing assertions): runs `ab -k` and
# `wrk` against /healthz of a real server on 127.0.0.1 and fails unless every
# request succeeded: zero failed requests, zero socket errors, zero non-2xx.
#
# Usage: tests/load_smoke.sh            (binary: $GLASSHOUSE_BIN, else
#        target/release/glasshouse if built, else target/debug/glasshouse)
# Installs apache2-utils (ab) and wrk with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "load_smoke: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

if [ -n "${GLASSHOUSE_BIN:-}" ]; then
  BIN=$GLASSHOUSE_BIN
elif [ -x target/release/glasshouse ]; then
  BIN=target/release/glasshouse
else
  BIN=target/debug/glasshouse
fi
[ -x "$BIN" ] || fail "server binary $BIN not found (cargo build first)"

missing=()
command -v ab >/dev/null 2>&1 || missing+=(apache2-utils)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/root"
echo '<!doctype html><title>load smoke</title>' > "$WORK/root/index.html"
"$BIN" --listen 127.0.0.1:0 --workers 2 --log-format json --root "$WORK/root" \
  2> "$WORK/server.log" &
SERVER_PID=$!

PORT=""
for _ in $(seq 1 100); do
  PORT=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$WORK/server.log" 2>/dev/null | head -1 | sed 's/.*://' || true)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "server exited before it was ready"; }
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; fail "no ready line within 10 s"; }
URL="http://127.0.0.1:$PORT/healthz"
log "server $BIN on port $PORT"

# ---- ab -k: HTTP/1.0 keep-alive (needs the Connection: keep-alive echo) ----
timeout 300 ab -k -n 20000 -c 50 -s 30 "$URL" > "$WORK/ab.out" 2>&1 \
  || { cat "$WORK/ab.out" >&2; fail "ab exited with an error"; }
field() { { grep -E "^$1:" "$WORK/ab.out" || true; } | head -1 | awk -F: '{gsub(/ /, "", $2); print $2}'; }
complete=$(field "Complete requests")
failed=$(field "Failed requests")
non2xx=$(field "Non-2xx responses")
keepalive=$(field "Keep-Alive requests")
log "ab: complete=$complete failed=$failed non2xx=${non2xx:-0} keep-alive=$keepalive"
[ "$complete" = "20000" ] || { cat "$WORK/ab.out" >&2; fail "ab completed $complete of 20000"; }
[ "$failed" = "0" ] || { cat "$WORK/ab.out" >&2; fail "ab: $failed failed requests"; }
[ "${non2xx:-0}" = "0" ] || { cat "$WORK/ab.out" >&2; fail "ab: $non2xx non-2xx responses"; }
[ "${keepalive:-0}" -gt 0 ] || { cat "$WORK/ab.out" >&2; fail "ab: no keep-alive requests"; }

# ---- wrk: HTTP/1.1 keep-alive ----
timeout 60 wrk -t2 -c64 -d5s "$URL" > "$WORK/wrk.out" 2>&1 \
  || { cat "$WORK/wrk.out" >&2; fail "wrk exited with an error"; }
requests=$(grep -oE '^ *[0-9]+ requests in' "$WORK/wrk.out" | grep -oE '[0-9]+' || true)
log "wrk: $requests requests; $(grep -E 'Socket errors|Non-2xx' "$WORK/wrk.out" | tr '\n' ' ')"
[ -n "$requests" ] && [ "$requests" -gt 0 ] || { cat "$WORK/wrk.out" >&2; fail "wrk made no requests"; }
# wrk prints these lines only when there is something to report.
if grep -q 'Socket errors' "$WORK/wrk.out"; then
  cat "$WORK/wrk.out" >&2; fail "wrk reported socket errors"
fi
if grep -q 'Non-2xx or 3xx responses' "$WORK/wrk.out"; then
  cat "$WORK/wrk.out" >&2; fail "wrk reported non-2xx responses"
fi

# ---- the server survived and stops cleanly ----
curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL" | grep -qx 200 || fail "/healthz after the load"
kill -TERM "$SERVER_PID"
status=0
for _ in $(seq 1 150); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" = "0" ] || { tail -5 "$WORK/server.log" >&2; fail "server exited with $status after SIGTERM"; }
log "OK"
