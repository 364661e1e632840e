#!/usr/bin/env bash
# `--model epoll` against `--model io_uring` of one binary: first the
# side-by-side rows alternated in one run (scripts/bench_ab.sh: old =
# epoll, new = io_uring; req/s, p99, server CPU µs per request, geometric
# mean of the per-row ratios), then the syscalls per request of each model
# (`strace -c -f` over a short `ab -k` run of 1 KiB keep-alive requests).
# Timing needs a quiet machine; the syscall count does not.
#   scripts/bench_models.sh [BIN]
# Environment: ROUNDS=3 DUR=10s ONLY=regex OUT=dir (as bench_ab.sh);
#   SYSCALL_REQUESTS=20000 SYSCALL_CONC=64; SYSCALLS_ONLY=1 skips the timing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/glasshouse}
OUT=${OUT:-$PWD/bench-out/models}
N=${SYSCALL_REQUESTS:-20000}
C=${SYSCALL_CONC:-64}
mkdir -p "$OUT"

if [ -z "${SYSCALLS_ONLY:-}" ]; then
  OUT="$OUT/ab" bash scripts/bench_ab.sh "$BIN --model epoll" "$BIN --model io_uring"
fi

command -v strace >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq strace >/dev/null; }
command -v ab >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq apache2-utils >/dev/null; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
head -c 1024 /dev/urandom | base64 -w 64 | head -c 1024 >"$root/1k.txt"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo
echo "| model | requests | syscalls | syscalls/request | top calls |"
echo "|---|---|---|---|---|"
for model in epoll io_uring; do
  p=$(port)
  trace="$OUT/strace-$model.txt"
  strace -c -f -o "$trace" "$BIN" --model "$model" --listen "127.0.0.1:$p" --root "$root" \
    --workers 2 --log-level warn >/dev/null 2>&1 &
  spid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  # Warm-up outside the count would need a second trace; 20k requests make
  # the start-up calls a rounding error.
  ab -q -k -n "$N" -c "$C" "http://127.0.0.1:$p/1k.txt" >"$OUT/ab-$model.txt"
  # SIGTERM to the server (strace's only child, by its pid); strace then
  # writes its table and exits.
  server=$(cat "/proc/$spid/task/$spid/children" 2>/dev/null | awk '{print $1}')
  [ -n "$server" ] && kill -TERM "$server"
  wait "$spid" || true
  python3 - "$trace" "$N" "$model" <<'PY'
import sys
path, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows, total = [], 0
for line in open(path):
    p = line.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
        calls = int(p[3])
        rows.append((calls, p[-1]))
    elif p and p[-1] == "total":
        total = int(p[3])
rows.sort(reverse=True)
top = ", ".join(f"{name} {calls / n:.2f}" for calls, name in rows[:4])
print(f"| {model} | {n} | {total} | {total / n:.2f} | {top} |")
PY
done
