#!/usr/bin/env bash
# Throughput and request rate over the userland TCP/IP stack beside the
# kernel's, on one machine (issue 13). Needs root, a quiet machine, a
# release build (make build), curl, and wrk for the request rate.
#   scripts/usertcp_bench.sh [path/to/glasshouse] [ROUNDS]
# 1. a 100 MiB file with curl from the kernel side of the TUN to
#    glasshouse --stack user (10.77.0.2), ROUNDS times, under each
#    driver:offload pair of MODES (default "single:on threaded:on
#    single:off threaded:off": --stack-driver and --stack-offload,
#    alternated within a round);
# 2. the same file from glasshouse on the kernel's stack across a veth
#    pair between two namespaces, with offloads off (TSO/GSO/GRO, the
#    closest kernel path to one packet per read/write) and on;
# 3. wrk -c 64 on /healthz against each (the kernel with offloads off);
# 4. with SMOLTCP_BENCH=path/to/smoltcp/target/release/examples/benchmark,
#    smoltcp's own benchmark on a TAP device (reader: smoltcp sends, the
#    kernel reads, as in 1; writer: the other way), in a namespace.
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
command -v ethtool >/dev/null || echo "note: no ethtool, veth offloads stay on in every kernel row" >&2

ip netns exec "$USERTCP_NS" "$BIN" --listen 10.99.0.2:8080 --root "$ROOT" --workers 1 \
    --log-level warn >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    ip netns exec "$CL" curl -fsS --max-time 1 http://10.99.0.2:8080/healthz >/dev/null 2>&1 && break
    sleep 0.1
done

# The user stack under one driver at a time (both answer for 10.77.0.2:80).
user_up() { # DRIVER:OFFLOAD
    ip netns exec "$USERTCP_NS" "$BIN" --stack user --stack-driver "${1%%:*}" --stack-offload "${1##*:}" --link tun:tun0 \
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
MODES=${MODES:-single:on threaded:on single:off threaded:off}
wrk_rate() { # NS URL
    ip netns exec "$1" wrk -t 2 -c 64 -d 10s "$2" | awk '/Requests\/sec/ {print $2}'
}
veth_offloads() { # on|off
    ip netns exec "$CL" ethtool -K cl0 tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || true
    ip netns exec "$USERTCP_NS" ethtool -K ut0 tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || true
}
if [ -n "${SMOLTCP_BENCH:-}" ]; then
    ip -n "$USERTCP_NS" tuntap add name tap0 mode tap
    ip -n "$USERTCP_NS" addr add 192.168.69.100/24 dev tap0
    ip -n "$USERTCP_NS" link set tap0 up
fi
for r in $(seq 1 "$ROUNDS"); do
    for m in $MODES; do
        user_up "$m"
        echo "round $r: user stack ($m, TUN) 100 MiB: $(fetch "$USERTCP_NS" http://10.77.0.2/big.bin) Gbit/s"
        if command -v wrk >/dev/null; then
            echo "round $r: user stack ($m), wrk -c 64 /healthz: $(wrk_rate "$USERTCP_NS" http://10.77.0.2/healthz) req/s"
        fi
        user_down
    done
    for o in off on; do
        veth_offloads "$o"
        echo "round $r: kernel (veth, offloads $o) 100 MiB: $(fetch "$CL" http://10.99.0.2:8080/big.bin) Gbit/s"
    done
    veth_offloads off
    if command -v wrk >/dev/null; then
        echo "round $r: kernel (offloads off), wrk -c 64 /healthz: $(wrk_rate "$CL" http://10.99.0.2:8080/healthz) req/s"
    fi
    if [ -n "${SMOLTCP_BENCH:-}" ]; then
        for m in reader writer; do
            echo "round $r: smoltcp benchmark ($m, TAP): $(ip netns exec "$USERTCP_NS" timeout 120 "$SMOLTCP_BENCH" --tap tap0 "$m" 2>&1 | awk '/throughput/ {print $2}') Gbit/s"
        done
    fi
done
command -v wrk >/dev/null || echo "note: no wrk, request rate skipped" >&2
