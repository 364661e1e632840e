#!/usr/bin/env bash
# Runs the k6 scripts against a glasshouse binary on 127.0.0.1 (no Docker):
# starts it on an ephemeral port with a small static root, runs each script
# for DURATION_S seconds (default 20), then sends SIGTERM and checks that the
# server drains and exits 0.
#
# Usage: k6/local.sh [BINARY] [SCRIPT...]      e.g. k6/local.sh target/release/glasshouse load ws
# Env:   DURATION_S (20), RATE_SCALE (0.3), VUS (5), K6 (k6 on PATH), ROOT (a
#        directory to serve; default: a generated one)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/release/glasshouse}
shift || true
SCRIPTS=("$@")
[ ${#SCRIPTS[@]} -gt 0 ] || SCRIPTS=(load ws)
K6=${K6:-k6}
export DURATION_S=${DURATION_S:-20} RATE_SCALE=${RATE_SCALE:-0.3} VUS=${VUS:-5}

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

root=${ROOT:-$work/www}
if [ -z "${ROOT:-}" ]; then
  mkdir -p "$root/assets"
  printf '<!doctype html><html><head><script type="module" src="/assets/app.js"></script><link rel="stylesheet" href="/assets/app.css"></head><body>glasshouse</body></html>\n' > "$root/index.html"
  printf 'console.log("glasshouse");\n' > "$root/assets/app.js"
  printf 'body { color: #222; }\n' > "$root/assets/app.css"
fi

"$BIN" --listen 127.0.0.1:0 --root "$root" --drain-timeout 5 --log-format json 2> "$work/server.log" &
server_pid=$!
base=""
for _ in $(seq 100); do
  base=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$work/server.log" | head -1 | sed 's/listening on //') || true
  [ -n "$base" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "local.sh: server exited"; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/server.log"; echo "local.sh: no 'listening on' line"; exit 1; }
echo "local.sh: glasshouse at $base (pid $server_pid)"

status=0
for s in "${SCRIPTS[@]}"; do
  echo "local.sh: k6 run k6/$s.js for ${DURATION_S}s"
  if ! BASE_URL=$base "$K6" run --quiet "k6/$s.js"; then
    echo "local.sh: k6/$s.js failed (thresholds or errors)"
    status=1
  fi
done

kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=""
echo "local.sh: glasshouse exited with $code after SIGTERM"
grep -E 'drain (started|finished)' "$work/server.log" | head -4 || true
[ "$code" -eq 0 ] || status=1
exit "$status"
