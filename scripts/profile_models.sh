#!/usr/bin/env bash
# Where each model's CPU goes: `perf record` of the server while wrk keeps
# CONNS keep-alive connections busy on one 1 KiB file, for --model epoll and
# --model io_uring of one binary, and `perf stat` of the same window for
# CPU per request. Prints, per model and connection count, req/s, server
# CPU µs per request, context switches per request, the server's self time
# grouped by where it goes (scripts/profile_groups.py) and the top symbols
# (self time, kernel and user), and keeps perf.data under OUT.
#   scripts/profile_models.sh [BIN]
# Environment: CONNS="64 256" DUR=10 (seconds) OUT=bench-out/profile
#   MODELS="epoll io_uring" TOP=22
# Needs perf (linux-perf) and wrk; a quiet machine for the figures (the
# shares of the profile are less sensitive to noise than the rates).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/glasshouse}
CONNS=${CONNS:-64 256}
DUR=${DUR:-10}
OUT=${OUT:-$PWD/bench-out/profile}
MODELS=${MODELS:-epoll io_uring}
TOP=${TOP:-22}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "profile_models: needs perf" >&2; exit 2; }
command -v wrk >/dev/null || { echo "profile_models: needs wrk" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
head -c 1024 /dev/zero | tr '\0' 'x' >"$root/1k.txt"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for c in $CONNS; do
  for model in $MODELS; do
    p=$(port)
    "$BIN" --model "$model" --listen "127.0.0.1:$p" --root "$root" --workers 2 \
      --log-level warn >/dev/null 2>&1 &
    spid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
    # Warm-up: connections made, caches filled, buffers resident.
    wrk -t2 -c"$c" -d2s "http://127.0.0.1:$p/1k.txt" >/dev/null
    tag="$model-c$c"
    wrk -t2 -c"$c" -d"$((DUR + 2))s" "http://127.0.0.1:$p/1k.txt" >"$OUT/wrk-$tag.txt" &
    wpid=$!
    sleep 1
    perf stat -x, -e task-clock,context-switches,cpu-migrations -p "$spid" -o "$OUT/stat-$tag.csv" -- sleep "$DUR" 2>/dev/null &
    perf record -q -g -F 999 -p "$spid" -o "$OUT/perf-$tag.data" -- sleep "$DUR" >/dev/null 2>&1
    wait "$wpid"
    sleep 0.5
    kill -TERM "$spid"
    wait "$spid" || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$tag.txt")
    python3 - "$OUT/stat-$tag.csv" "$rps" "$tag" <<'PY'
import sys
path, rps, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
vals = {}
for line in open(path):
    p = line.strip().split(",")
    if len(p) > 2 and p[0] and p[0][0].isdigit():
        vals[p[2]] = float(p[0])
ms = vals.get("task-clock", 0.0)   # CPU milliseconds over the window
dur = float(__import__("os").environ.get("DUR", "10"))
req = rps * dur
print(f"== {tag}: {rps:,.0f} req/s, server CPU {ms / dur / 10:.0f} % of a core, "
      f"{ms * 1000 / req:.2f} µs/req, {vals.get('context-switches', 0) / req:.4f} cs/req")
PY
    # Self time grouped by where it is spent: what a loop can save
    # (syscall crossings, epoll, io_uring's own code) beside what it
    # cannot (TCP/IP, wake-ups, our own code).
    perf report -i "$OUT/perf-$tag.data" --no-children --sort sym --stdio -q -g none 2>/dev/null \
      | python3 scripts/profile_groups.py
    # awk, not head: it reads to the end, so no stage dies of SIGPIPE.
    perf report -i "$OUT/perf-$tag.data" --no-children --sort sym --stdio -q 2>/dev/null \
      | awk -v n="$TOP" '/^ +[0-9]/ && ++k <= n { print "   " $0 }'
  done
done
