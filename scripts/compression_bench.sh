#!/usr/bin/env bash
# Compression's cost and savings, and the cost of a rule engine that matches
# nothing, in one run (alternated rounds so every case shares the machine's
# noise). Needs a quiet machine: do not run it beside builds.
#
# Cases, each with wrk on a 100 KiB JavaScript file:
#   identity      no Accept-Encoding
#   on-the-fly    Accept-Encoding: br (made once, then from the worker cache)
#   precompressed Accept-Encoding: br with app.js.br beside it
#   gzip-fly      Accept-Encoding: gzip
# and the A/B of rules: /digits.txt with no config vs a config of 20 rules
# none of which matches (paths under /nowhere/**).
#   scripts/compression_bench.sh [BIN]   (env: ROUNDS=3 DUR=10s CONNS=64 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/glasshouse}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/plain" "$work/pre"
python3 - "$work" <<'PY'
import sys, random
random.seed(7)
words = ["const", "function", "return", "export", "import", "value", "state", "render", "props", "=>"]
lines = []
while sum(len(l) for l in lines) < 100 * 1024:
    lines.append(" ".join(random.choice(words) for _ in range(12)) + f" {random.randint(0, 99999)};\n")
text = "".join(lines)[: 100 * 1024]
for d in ("plain", "pre"):
    open(f"{sys.argv[1]}/{d}/app.js", "w").write(text)
    open(f"{sys.argv[1]}/{d}/digits.txt", "w").write("0123456789\n")
PY
{
  for i in $(seq 1 20); do
    printf '[[rules]]\npath = "/nowhere/%s/**"\nheaders = { "X-Rule-%s" = "x" }\n' "$i" "$i"
  done
} >"$work/rules.toml"

start() { # root [extra args...] -> sets PORT, PID
  local root=$1; shift
  "$BIN" --listen 127.0.0.1:0 --root "$root" --workers 2 --log-level info --log-format text "$@" 2>"$work/log" &
  PID=$!
  for _ in $(seq 1 100); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
measure() { # name url [header] -> appends "name rps bytes/req" to results
  local name=$1 url=$2 hdr=${3:-}
  local args=(-t"$THREADS" -c"$CONNS" -d"$DUR" --latency)
  [ -n "$hdr" ] && args+=(-H "$hdr")
  local out; out=$(wrk "${args[@]}" "$url")
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local size; size=$(curl -s -o /dev/null -w '%{size_download}' ${hdr:+-H "$hdr"} "$url")
  echo "$name $rps $size" >>"$work/results"
}
: >"$work/results"
# The precompressed sibling: the server's own brotli output, saved once.
start "$work/plain"
curl -sf -H 'Accept-Encoding: br' -o "$work/pre/app.js.br" "http://127.0.0.1:$PORT/app.js"
stop
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r" >&2
  start "$work/plain"
  measure identity "http://127.0.0.1:$PORT/app.js"
  measure on-the-fly-br "http://127.0.0.1:$PORT/app.js" "Accept-Encoding: br"
  measure on-the-fly-gzip "http://127.0.0.1:$PORT/app.js" "Accept-Encoding: gzip"
  measure no-rules "http://127.0.0.1:$PORT/digits.txt"
  stop
  start "$work/pre"
  measure precompressed-br "http://127.0.0.1:$PORT/app.js" "Accept-Encoding: br"
  stop
  start "$work/plain" --config "$work/rules.toml"
  measure 20-rules-none-match "http://127.0.0.1:$PORT/digits.txt"
  stop
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, size = line.split()
    rows.setdefault(name, []).append((float(rps), int(size)))
print("| case | req/s (median) | rounds | body bytes |")
print("|---|---|---|---|")
for name, v in rows.items():
    print(f"| {name} | {statistics.median(r for r, _ in v):,.0f} | " + " ".join(f"{r:,.0f}" for r, _ in v) + f" | {v[0][1]:,} |")
a = statistics.median(r for r, _ in rows["no-rules"]); b = statistics.median(r for r, _ in rows["20-rules-none-match"])
print(f"\n20 non-matching rules / no rules: **{b / a:.3f}**")
PY
