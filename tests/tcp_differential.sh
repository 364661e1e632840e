#!/usr/bin/env bash
# Differential TCP tests: tests/tcp_peer.py (scapy, a crafted peer) runs
# the same scenarios against glasshouse's userland TCP/IP (through its TUN
# device, scripts/usertcp.sh) and against the kernel's TCP (glasshouse on
# the kernel's stack in a namespace of its own, over a veth), and the
# verdicts are printed side by side. Either target failing a scenario
# fails the test; where both pass but behave apart, the table says how.
# The peer speaks from an address no kernel owns (x.x.x.5): a blackhole
# route on its side keeps its kernel quiet, and a static neighbour entry
# lets the kernel target answer it. Needs root and scapy. Every wait is
# bounded; the namespaces go in all paths.
# Usage: tests/tcp_differential.sh [path/to/glasshouse]
set -euo pipefail
BIN=${1:-target/debug/glasshouse}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export USERTCP_NS=gh-td-$$ USERTCP_DEV=tun0 USERTCP_PEER=10.77.0.1/24
KS=gh-td-ks-$$ KT=gh-td-kt-$$
ROOT=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$KS" 2>/dev/null || true
    ip netns del "$KT" 2>/dev/null || true
    bash "$HERE/scripts/usertcp.sh" down
    rm -rf "$ROOT"
}
trap cleanup EXIT
python3 -c 'import scapy' 2>/dev/null || { echo "FAIL: scapy is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
echo ok > "$ROOT/index.html"
head -c 20000 /dev/urandom > "$ROOT/big.bin"

# The user stack, the peer beside the kernel on the TUN's other end.
bash "$HERE/scripts/usertcp.sh" up >/dev/null
ip -n "$USERTCP_NS" route add blackhole 10.77.0.5/32
USER_PID='' KERNEL_PID=''
start_user() {
    # Offload off: the capture sees each segment as sent, as the kernel
    # target's with its veth offloads off.
    ip netns exec "$USERTCP_NS" "$BIN" --stack user --link tun:tun0 --listen 10.77.0.2:80 --root "$ROOT" \
        --stack-offload off --log-format text "$@" >>"$ROOT/user.log" 2>&1 &
    USER_PID=$!; PIDS+=("$USER_PID"); disown
}
start_user

# The kernel's TCP: glasshouse on it in one namespace, the peer in another.
ip netns add "$KS"; ip netns add "$KT"
ip link add kp0 netns "$KS" type veth peer name kt0 netns "$KT"
ip -n "$KS" addr add 10.88.0.1/24 dev kp0; ip -n "$KT" addr add 10.88.0.2/24 dev kt0
ip -n "$KS" link set kp0 up; ip -n "$KT" link set kt0 up; ip -n "$KT" link set lo up
ip -n "$KS" route add blackhole 10.88.0.5/32
mac=$(ip -n "$KS" -br link show kp0 | awk '{print $3}')
ip -n "$KT" neigh add 10.88.0.5 lladdr "$mac" dev kt0 nud permanent
# The same segments on both sides: no offloads merging or splitting them
# (the duplicate-ACK scenario needs the answer's segments one by one).
command -v ethtool >/dev/null || { echo "FAIL: no ethtool (scripts/deps.sh installs it)" >&2; exit 1; }
for ns_dev in "$KS kp0" "$KT kt0"; do
    set -- $ns_dev
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off >/dev/null
done
start_kernel() {
    ip netns exec "$KT" "$BIN" --listen 10.88.0.2:80 --root "$ROOT" --workers 1 --log-format text "$@" \
        >>"$ROOT/kernel.log" 2>&1 &
    KERNEL_PID=$!; PIDS+=("$KERNEL_PID"); disown
}
start_kernel

wait_up() {
    for probe in "$USERTCP_NS 10.77.0.2" "$KS 10.88.0.2"; do
        set -- $probe
        ok=
        for _ in $(seq 1 100); do
            if ip netns exec "$1" curl -fsS --max-time 2 "http://$2/healthz" >/dev/null 2>&1; then ok=1; break; fi
            sleep 0.1
        done
        [ -n "$ok" ] || { echo "FAIL: no server at $2" >&2; tail -n 20 "$ROOT"/*.log >&2; exit 1; }
    done
}
wait_up

rc=0
peer() {
    ip netns exec "$USERTCP_NS" timeout 300 python3 "$HERE/tests/tcp_peer.py" user 10.77.0.2 80 10.77.0.5 tun0 \
        >>"$ROOT/user.jsonl" || rc=1
    ip netns exec "$KS" timeout 300 python3 "$HERE/tests/tcp_peer.py" kernel 10.88.0.2 80 10.88.0.5 kp0 \
        >>"$ROOT/kernel.jsonl" || rc=1
}
peer

# The tuned phase (tcp_peer.py says why): both servers again with
# keep-alive every second and a least RTO of 10 s; the kernel's tail loss
# probes and RACK off, so that three duplicate ACKs are its only early
# retransmission, as they are the user stack's.
kill -TERM "$USER_PID" "$KERNEL_PID" 2>/dev/null || true
for p in "$USER_PID" "$KERNEL_PID"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
ip netns exec "$KT" sysctl -qw net.ipv4.tcp_early_retrans=0 net.ipv4.tcp_recovery=0
ip -n "$KT" route add 10.88.0.5/32 dev kt0 rto_min 10s
start_user --tcp-keepalive 1:1:2 --tcp-rto-min 10000 --header-timeout 60
start_kernel --tcp-keepalive 1:1:2 --header-timeout 60
wait_up
TCP_PEER_PHASE=tuned peer
python3 - "$ROOT/user.jsonl" "$ROOT/kernel.jsonl" <<'PY'
import json, sys
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        rows.setdefault(r["scenario"], {})[r["target"]] = r
for scenario, by in rows.items():
    print(f"- {scenario}")
    for t in ("user", "kernel"):
        r = by.get(t)
        if r is None:
            print(f"    {t:6} MISSING")
        else:
            print(f"    {t:6} {'ok  ' if r['ok'] else 'FAIL'} {r['saw']}")
PY
if [ "$rc" != 0 ]; then
    echo "FAIL: a target failed a scenario (above)" >&2
    tail -n 20 "$ROOT/user.log" >&2
    exit 1
fi
echo "ok: every scenario passed against both stacks"
