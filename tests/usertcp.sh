#!/usr/bin/env bash
# The whole server over the userland TCP/IP stack, the kernel as its peer,
# on either link: `tun` (the default), a namespace with a TUN device, or
# `packet`, a veth pair between the kernel's namespace and the stack's,
# whose end has no address (scripts/usertcp.sh makes both). glasshouse
# `--stack user` runs on the link, and real clients on the kernel side:
# curl for /healthz and a file (SHA-256 compared), a WebSocket echo
# (Python's standard library, a masked frame out, the frame back), the
# stack's STATUS on /api/tcp, a client routed from a third namespace,
# then SIGTERM and exit 0. On `packet`, a second topology follows: the
# kernel holds the stack's address too, answers its SYNs with RSTs, and
# the README's nft INPUT DROP rule is what lets the stack serve.
# GLASSHOUSE_STACK_DRIVER (single or threaded) is passed to the server.
# Every wait is bounded; the namespaces go in all paths. Needs root.
# Usage: tests/usertcp.sh [path/to/glasshouse] [tun|packet]
set -euo pipefail
BIN=${1:-target/debug/glasshouse}
LINK=${2:-tun}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export USERTCP_LINK=$LINK USERTCP_NS=gh-ut-$$ USERTCP_PEER=10.77.0.1/24
case "$LINK" in
tun) export USERTCP_DEV=tun0; SERVER_NS=$USERTCP_NS ;;
packet) export USERTCP_DEV=veth0; SERVER_NS=$USERTCP_NS-s ;;
*) echo "usage: $0 [path/to/glasshouse] [tun|packet]" >&2; exit 2 ;;
esac
ADDR=10.77.0.2
CL=gh-ut-cl-$$
FW=gh-ut-fw-$$
ROOT=$(mktemp -d)
LOG=$ROOT.log
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    ip netns del "$CL" 2>/dev/null || true
    bash "$HERE/scripts/usertcp.sh" down
    USERTCP_NS=$FW bash "$HERE/scripts/usertcp.sh" down
    rm -rf "$ROOT" "$LOG"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap too.
trap "exit 1" HUP INT TERM
fail() { echo "FAIL: $*" >&2; echo "--- server log" >&2; tail -n 30 "$LOG" >&2 || true; exit 1; }
in_ns() { ip netns exec "$USERTCP_NS" "$@"; }

# Starts the server on the link in namespace $1; sets PID.
serve() {
    ip netns exec "$1" "$BIN" --stack user --link "$LINK:$USERTCP_DEV" --listen "$ADDR:80" --root "$ROOT" \
        --log-format text >"$LOG" 2>&1 &
    PID=$!
}

# SIGTERM, and exit 0 within 15 s.
stop() {
    kill -TERM "$PID"
    local rc=
    for _ in $(seq 1 150); do
        if ! kill -0 "$PID" 2>/dev/null; then wait "$PID" && rc=0 || rc=$?; break; fi
        sleep 0.1
    done
    [ -n "$rc" ] || fail "no exit within 15 s of SIGTERM"
    PID=
    [ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
}

bash "$HERE/scripts/usertcp.sh" up >/dev/null
head -c 3145728 /dev/urandom > "$ROOT/blob.bin"
# The live view, when it was built (make build): its page as /app.html and
# its assets where it asks for them, beside the test's own index.html.
if [ -f "$HERE/frontend/dist/index.html" ]; then
    cp -r "$HERE/frontend/dist/assets" "$ROOT/assets"
    cp "$HERE/frontend/dist/index.html" "$ROOT/app.html"
fi
echo '<h1>over our own TCP</h1>' > "$ROOT/index.html"

# A link the namespace lacks, or (for packet) one without Ethernet, is a
# setup error: one line and exit 2, before anything is served.
refused() {
    local rc=0 out
    out=$(ip netns exec "$SERVER_NS" timeout 10 "$BIN" --stack user --link "$1" --listen "$ADDR:80" --root "$ROOT" 2>&1) || rc=$?
    [ "$rc" = 2 ] || fail "--link $1: exit $rc, want 2 ($out)"
    grep -q "$2" <<<"$out" || fail "--link $1: no '$2' in: $out"
}
refused "$LINK:gh-missing0" "no network device"
[ "$LINK" = tun ] || refused "packet:lo" "not an Ethernet interface"
echo "ok: a missing link is exit 2 with one line"

serve "$SERVER_NS"

ok=
for _ in $(seq 1 100); do
    if in_ns curl -fsS --max-time 2 "http://$ADDR/healthz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$PID" 2>/dev/null || fail "the server exited early"
    sleep 0.1
done
[ -n "$ok" ] || fail "/healthz never answered"
echo "ok: /healthz over the user stack ($LINK link)"

in_ns timeout 10 python3 - "$ADDR" <<'PY' || fail "no ICMP echo reply from the stack"
import os, socket, struct, sys
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(3)
body = b"glasshouse-ping"
ident = os.getpid() & 0xFFFF
hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, 1) + body
s.sendto(pkt, (sys.argv[1], 0))
for _ in range(10):
    data, src = s.recvfrom(2048)
    icmp = data[(data[0] & 15) * 4:]
    if src[0] == sys.argv[1] and icmp[0] == 0 and icmp[8:] == body:
        sys.exit(0)
sys.exit(1)
PY
echo "ok: ICMP echo"

want=$(sha256sum < "$ROOT/blob.bin" | cut -d' ' -f1)
got=$(in_ns curl -fsS --max-time 60 "http://$ADDR/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "3 MiB file: sha256 $got, want $want"
echo "ok: 3 MiB file intact (sha256)"

# Keep-alive: two requests on one connection.
n=$(in_ns curl -fsS --max-time 10 "http://$ADDR/index.html" "http://$ADDR/index.html" | grep -c 'our own TCP')
[ "$n" = 2 ] || fail "keep-alive: $n answers"
echo "ok: keep-alive"

in_ns timeout 20 python3 - "$ADDR" <<'PY' || fail "WebSocket echo"
import base64, os, socket, struct, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    assert chunk, "closed during the handshake"
    head += chunk
assert head.startswith(b"HTTP/1.1 101"), head[:40]
rest = head.split(b"\r\n\r\n", 1)[1]
msg = b"hello over glasshouse's own TCP" * 100
mask = os.urandom(4)
frame = bytes([0x81, 0xFE]) + struct.pack("!H", len(msg)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg))
s.sendall(frame)
buf = rest
def need(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        assert chunk, "closed before the echo"
        buf += chunk
need(2)
assert buf[0] == 0x81, buf[:2]
ln = buf[1] & 0x7F
off = 2
if ln == 126:
    need(4); ln = struct.unpack("!H", buf[2:4])[0]; off = 4
need(off + ln)
assert buf[off:off + ln] == msg, "echo differs"
PY
echo "ok: WebSocket echo"

# STATUS from outside: a connection held open shows in /api/tcp as
# ESTABLISHED, with the kernel's side of it as the remote address.
in_ns timeout 20 python3 - "$ADDR" "$LINK" <<'PY' || fail "/api/tcp"
import json, socket, sys, time
addr, link = sys.argv[1], sys.argv[2]
held = socket.create_connection((addr, 80), timeout=10)
held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
assert held.recv(4096).startswith(b"HTTP/1.1 200")
me = "%s:%d" % held.getsockname()
def status():
    s = socket.create_connection((addr, 80), timeout=10)
    s.sendall(b"GET /api/tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head[:60]
    return json.loads(body)
# The driver copies its STATUS out a few times a second: bounded retries.
for _ in range(50):
    v = status()
    mine = [c for c in v["connections"] if c["remote"] == me]
    if mine and mine[0]["state"] == "ESTABLISHED":
        break
    time.sleep(0.1)
else:
    sys.exit(f"held connection {me} not ESTABLISHED in {v}")
assert v["address"] == addr, v["address"]
assert [l["port"] for l in v["listeners"]] == [80], v["listeners"]
assert v["states"].get("ESTABLISHED", 0) >= 1, v["states"]
assert v["counters"]["packets_in"] > 0 and v["counters"]["packets_out"] > 0, v["counters"]
c = mine[0]
assert c["local"] == addr + ":80", c
assert c["mss"] == 1460 and c["cwnd"] > 0 and c["rto_ms"] > 0, c
assert c["srtt_ms"] is not None, c
# The same figures on /metrics, while the held connection is open.
def metric(text, prefix):
    vals = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(prefix)]
    assert vals, f"no {prefix} in /metrics"
    return sum(vals)
s = socket.create_connection((addr, 80), timeout=10)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
text = data.split(b"\r\n\r\n", 1)[1].decode()
assert metric(text, 'glasshouse_tcp_connections{state="ESTABLISHED"}') >= 1, text
assert metric(text, 'glasshouse_tcp_connections{state="LISTEN"}') == 1
assert metric(text, "glasshouse_tcp_established_total") >= 2
assert metric(text, 'glasshouse_tcp_packets_total{direction="in"}') > 0
assert metric(text, "glasshouse_tcp_retransmissions_total") >= 0
# The Ethernet beneath, on a packet link only: the kernel's end of the
# veth resolved the stack's address (a reply sent) and was learned from it.
if link == "packet":
    e = v["link"]
    assert e["frames"]["ipv4_in"] > 0 and e["frames"]["arp_replies_sent"] >= 1, e
    assert e["neighbours"]["learned"] >= 1 and e["entries"] >= 1, e
    assert metric(text, 'glasshouse_tcp_link_frames_total{kind="ipv4"}') > 0
    assert metric(text, 'glasshouse_tcp_arp_total{event="reply_sent"}') >= 1
    assert metric(text, 'glasshouse_tcp_arp_table{what="entries"}') >= 1
else:
    assert v["link"] is None, v["link"]
    assert "glasshouse_tcp_arp_total" not in text
held.close()
PY
echo "ok: /api/tcp shows the held connection ESTABLISHED, /metrics the stack's figures ($LINK link)"

# Headless Chromium in the namespace loads the live view over the user
# stack, and the page shows the stack's own connections (/api/tcp).
if [ -f "$ROOT/app.html" ] && command -v chromium >/dev/null; then
    dom=$(in_ns timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$ROOT.chromium" --virtual-time-budget=5000 --dump-dom "http://$ADDR/app.html" 2>/dev/null || true)
    rm -rf "$ROOT.chromium"
    echo "$dom" | grep -q 'data-testid="tcp-view"' || fail "the live view shows no TCP view over the user stack"
    echo "$dom" | grep -q 'LISTEN :80' || fail "the TCP view does not list the listener"
    echo "ok: Chromium's live view shows the stack's connections"
else
    echo "skip: Chromium's live view (no frontend/dist or no chromium)"
fi

# A client in a second namespace, routed through the kernel to the link
# (on a packet link, the stack answers it through the MAC that brought
# its packets: the kernel's end of the veth).
ip netns add "$CL"
ip link add cl0 netns "$CL" type veth peer name ut0 netns "$USERTCP_NS"
ip -n "$CL" addr add 10.99.0.1/24 dev cl0
ip -n "$USERTCP_NS" addr add 10.99.0.2/24 dev ut0
ip -n "$CL" link set cl0 up; ip -n "$CL" link set lo up; ip -n "$USERTCP_NS" link set ut0 up
ip -n "$CL" route add 10.77.0.0/24 via 10.99.0.2
ip netns exec "$USERTCP_NS" sysctl -qw net.ipv4.ip_forward=1
got=$(ip netns exec "$CL" curl -fsS --max-time 60 "http://$ADDR/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "routed client: sha256 $got, want $want"
echo "ok: a client in a second namespace, routed to the $LINK link: file intact"

stop
echo "ok: SIGTERM, exit 0"
[ "$LINK" = packet ] || exit 0

# The document's raw-socket design: the kernel has the stack's address
# too. Its TCP answers the SYN for a port it does not serve with a RST;
# an INPUT DROP rule for the address and port hides those packets from
# it, and the stack, whose AF_PACKET tap sees frames before IP input and
# netfilter, serves.
if ! command -v nft >/dev/null; then
    echo "skip: the shared-address topology (no nft; scripts/deps.sh installs it)"
    exit 0
fi
ip netns del "$CL"
bash "$HERE/scripts/usertcp.sh" down
export USERTCP_NS=$FW
SERVER_NS=$FW-s
USERTCP_SHARED=1 USERTCP_ADDR=$ADDR/24 bash "$HERE/scripts/usertcp.sh" up >/dev/null
in_srv() { ip netns exec "$SERVER_NS" "$@"; }
out_rsts() { in_srv awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "OutRsts") c = i; h = 1 } else print $c }' /proc/net/snmp; }
serve "$SERVER_NS"
# Ready when it says it listens (no request can tell: the kernel
# answers every one before the rule).
for _ in $(seq 1 100); do
    if grep -q 'listening on' "$LOG"; then break; fi
    kill -0 "$PID" 2>/dev/null || fail "the server exited early"
    sleep 0.1
done
grep -q 'listening on' "$LOG" || fail "the server never said it listens"
before=$(out_rsts)
for _ in 1 2 3; do in_ns curl -fsS --max-time 3 "http://$ADDR/healthz" >/dev/null 2>&1 || true; done
after=$(out_rsts)
[ "$after" -gt "$before" ] || fail "shared address, no rule: the kernel sent no RST ($before -> $after)"
echo "ok: shared address, no rule: the kernel's TCP answers with RST ($((after - before)) sent)"

in_srv nft -f - <<NFT
table inet glasshouse {
    chain input {
        type filter hook input priority 0; policy accept;
        ip daddr $ADDR tcp dport 80 counter drop
    }
}
NFT
before=$(out_rsts)
in_ns curl -fsS --max-time 10 "http://$ADDR/healthz" >/dev/null || fail "shared address with the rule: /healthz"
got=$(in_ns curl -fsS --max-time 60 "http://$ADDR/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "shared address with the rule: sha256 $got, want $want"
after=$(out_rsts)
[ "$after" = "$before" ] || fail "shared address with the rule: the kernel still sent RSTs ($before -> $after)"
dropped=$(in_srv nft list chain inet glasshouse input | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }')
[ "${dropped:-0}" -gt 0 ] || fail "the rule dropped nothing"
echo "ok: shared address, INPUT DROP: the stack serves (file intact), the kernel dropped $dropped packets and sent no RST"
stop
echo "ok: SIGTERM, exit 0"
