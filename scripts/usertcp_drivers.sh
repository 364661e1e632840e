#!/usr/bin/env bash
# The two drivers of --stack user side by side on small requests (issue
# 13): wrk -c 64 on /healthz for 8 s against each, alternated, ROUNDS
# times; prints req/s, server CPU per request (utime+stime of every
# thread, /proc/PID/task/*/stat) and context switches per request
# (/proc/PID/task/*/status). Needs root, wrk, a release build.
#   scripts/usertcp_drivers.sh [path/to/glasshouse] [ROUNDS]
set -euo pipefail
BIN=${1:-target/release/glasshouse}
ROUNDS=${2:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export USERTCP_NS=gh-drivers USERTCP_DEV=tun0 USERTCP_PEER=10.77.0.1/24
ROOT=$(mktemp -d)
P=
cleanup() {
    if [ -n "$P" ]; then kill -KILL "$P" 2>/dev/null || true; fi
    bash "$HERE/scripts/usertcp.sh" down
    rm -rf "$ROOT"
}
trap cleanup EXIT
bash "$HERE/scripts/usertcp.sh" up >/dev/null
in_ns() { ip netns exec "$USERTCP_NS" "$@"; }
sum_ctx() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
sum_cpu() { cat /proc/"$1"/task/*/stat | awk '{s += $14 + $15} END {print s}'; }
HZ=$(getconf CLK_TCK)
for r in $(seq 1 "$ROUNDS"); do
    for d in single threaded; do
        # Not through in_ns: $! must be the server (ip netns exec execs it).
        ip netns exec "$USERTCP_NS" "$BIN" --stack user --stack-driver "$d" --link tun:tun0 --listen 10.77.0.2:80 \
            --root "$ROOT" --log-level warn >/dev/null 2>&1 &
        P=$!
        for _ in $(seq 1 50); do
            in_ns curl -fsS --max-time 1 http://10.77.0.2/healthz >/dev/null 2>&1 && break
            sleep 0.1
        done
        c0=$(sum_ctx "$P"); u0=$(sum_cpu "$P")
        out=$(in_ns wrk -t 2 -c 64 -d 8s http://10.77.0.2/healthz)
        c1=$(sum_ctx "$P"); u1=$(sum_cpu "$P")
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        awk -v r="$r" -v d="$d" -v n="$reqs" -v rate="$rate" -v c="$((c1 - c0))" \
            -v u="$((u1 - u0))" -v hz="$HZ" 'BEGIN {
                printf "round %s: %-8s %s req/s, %.2f us CPU/req, %.3f context switches/req\n",
                    r, d, rate, u * 1e6 / hz / n, c / n }'
        kill -TERM "$P"; wait "$P" || true
        P=
    done
done
