#!/usr/bin/env bash
# Throughput and request rate over the userland TCP/IP stack beside the
# kernel's, on one machine (issue 13). Needs root, a quiet machine, a
# release build (make build), curl, and wrk for the request rate.
#   scripts/usertcp_bench.sh [path/to/glasshouse] [ROUNDS]
# 1. a 100 MiB file with curl from the kernel side of the TUN to
#    glasshouse --stack user (10.77.0.2), ROUNDS times, under each driver
#    of DRIVERS (default "single threaded", alternated within a round);
# 2. the same file from glasshouse on the kernel's stack across a veth
#    pair between two namespaces with offloads off (TSO/GSO/GRO), the
#    closest kernel path to one packet per read/write;
# 3. wrk -c 64 on /healthz against each.
# Prints one line per measurement; docs/benchmarks.md keeps the figures.
set -euo pipefail
BIN=${1:-target/release/glasshouse}
ROUNDS=${2:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export USERTCP_NS=gh-bench-ut USERTCP_DEV=tun0 USERTCP_PEER=10.77.0.1/24
CL=gh-bench-cl
ROOT=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$CL" 2>/dev/null || true
    bash "$HERE/scripts/usertcp.sh" down
    rm -rf "$ROOT"
}
trap cleanup EXIT
bash "$HERE/scripts/usertcp.sh" up >/dev/null
head -c $((100 << 20)) /dev/urandom > "$ROOT/big.bin"

# The kernel path: cl0 (client) <-> ut0 (server), offloads off.
ip netns add "$CL"
ip link add cl0 netns "$CL" type veth peer name ut0 netns "$USERTCP_NS"
ip -n "$CL" addr add 10.99.0.1/24 dev cl0
ip -n "$USERTCP_NS" addr add 10.99.0.2/24 dev ut0
ip -n "$CL" link set cl0 up; ip -n "$CL" link set lo up; ip -n "$USERTCP_NS" link set ut0 up
if command -v ethtool >/dev/null; then
    ip netns exec "$CL" ethtool -K cl0 tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$USERTCP_NS" ethtool -K ut0 tso off gso off gro off >/dev/null 2>&1 || true
else
    echo "note: no ethtool, veth offloads left on" >&2
fi

ip netns exec "$USERTCP_NS" "$BIN" --listen 10.99.0.2:8080 --root "$ROOT" --workers 1 \
    --log-level warn >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    ip netns exec "$CL" curl -fsS --max-time 1 http://10.99.0.2:8080/healthz >/dev/null 2>&1 && break
    sleep 0.1
done

# The user stack under one driver at a time (both answer for 10.77.0.2:80).
user_up() { # DRIVER
    ip netns exec "$USERTCP_NS" "$BIN" --stack user --stack-driver "$1" --link tun:tun0 \
        --listen 10.77.0.2:80 --root "$ROOT" --log-level warn >/dev/null 2>&1 &
    USER_PID=$!
    PIDS+=("$USER_PID")
    for _ in $(seq 1 100); do
        ip netns exec "$USERTCP_NS" curl -fsS --max-time 1 http://10.77.0.2/healthz >/dev/null 2>&1 && return
        sleep 0.1
    done
}
user_down() {
    kill -TERM "$USER_PID" 2>/dev/null || true
    wait "$USER_PID" 2>/dev/null || true
}

fetch() { # NS URL
    ip netns exec "$1" curl -fsS --max-time 120 -o /dev/null -w '%{speed_download}' "$2" |
        awk '{ printf "%.2f", $1 * 8 / 1e9 }'
}
DRIVERS=${DRIVERS:-single threaded}
wrk_rate() { # NS URL
    ip netns exec "$1" wrk -t 2 -c 64 -d 10s "$2" | awk '/Requests\/sec/ {print $2}'
}
for r in $(seq 1 "$ROUNDS"); do
    for d in $DRIVERS; do
        user_up "$d"
        echo "round $r: user stack ($d driver, TUN) 100 MiB: $(fetch "$USERTCP_NS" http://10.77.0.2/big.bin) Gbit/s"
        if command -v wrk >/dev/null; then
            echo "round $r: user stack ($d driver), wrk -c 64 /healthz: $(wrk_rate "$USERTCP_NS" http://10.77.0.2/healthz) req/s"
        fi
        user_down
    done
    echo "round $r: kernel (veth, offloads off) 100 MiB: $(fetch "$CL" http://10.99.0.2:8080/big.bin) Gbit/s"
    if command -v wrk >/dev/null; then
        echo "round $r: kernel, wrk -c 64 /healthz: $(wrk_rate "$CL" http://10.99.0.2:8080/healthz) req/s"
    fi
done
command -v wrk >/dev/null || echo "note: no wrk, request rate skipped" >&2
