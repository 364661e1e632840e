#!/usr/bin/env bash
# scripts/usertcp.sh up|down: the network namespaces, link and addresses
# for `glasshouse --stack user`, on either link (USERTCP_LINK):
#
# tun (the default): one namespace with a TUN device. The kernel owns only
# the peer address on it (10.77.0.1), so it never answers for the stack's
# (10.77.0.2) and no firewall rule is needed. Then:
#   ip netns exec ut glasshouse --stack user --link tun:tun0 --listen 10.77.0.2:80
#   ip netns exec ut curl http://10.77.0.2/healthz
#
# packet: two namespaces joined by a veth pair, the kernel's end
# (DEV-k, 10.77.0.1/24) in USERTCP_NS, where clients run, and the stack's
# end (DEV) in USERTCP_NS-s with no address: that kernel neither answers
# ARP for the stack's address nor RSTs its connections (and with
# forwarding off, the default in a new namespace, it drops what it sees
# for an address it lacks), so again no rule is needed. Then:
#   ip netns exec ut-s glasshouse --stack user --link packet:veth0 --listen 10.77.0.2:80
#   ip netns exec ut curl http://10.77.0.2/healthz
# With USERTCP_SHARED=1 the stack's end gets USERTCP_ADDR (10.77.0.2/24)
# as well, the kernel's own stack answers for it too, and the README's
# INPUT DROP rule is what lets the userland stack serve (tests/usertcp.sh
# shows both).
#
# Names and addresses can be changed through USERTCP_NS, USERTCP_DEV,
# USERTCP_PEER (the kernel side, with its prefix) and USERTCP_ADDR. Needs
# root.
set -euo pipefail
LINK=${USERTCP_LINK:-tun}
NS=${USERTCP_NS:-ut}
PEER=${USERTCP_PEER:-10.77.0.1/24}
ADDR=${USERTCP_ADDR:-10.77.0.2/24}
case "$LINK" in
tun) DEV=${USERTCP_DEV:-tun0} ;;
packet) DEV=${USERTCP_DEV:-veth0} ;;
*)
    echo "USERTCP_LINK is tun or packet, not $LINK" >&2
    exit 2
    ;;
esac
STACK_NS=$NS-s

case "${1:-}" in
up)
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    if [ "$LINK" = tun ]; then
        ip -n "$NS" tuntap add dev "$DEV" mode tun
        ip -n "$NS" addr add "$PEER" dev "$DEV"
        # "NO-CARRIER" until the stack attaches: harmless.
        ip -n "$NS" link set "$DEV" up
        echo "namespace $NS: $DEV with $PEER (the stack answers for another address in it)"
    else
        ip netns add "$STACK_NS"
        ip -n "$STACK_NS" link set lo up
        ip link add "$DEV-k" netns "$NS" type veth peer name "$DEV" netns "$STACK_NS"
        ip -n "$NS" addr add "$PEER" dev "$DEV-k"
        ip -n "$NS" link set "$DEV-k" up
        ip -n "$STACK_NS" link set "$DEV" up
        if [ "${USERTCP_SHARED:-0}" = 1 ]; then
            ip -n "$STACK_NS" addr add "$ADDR" dev "$DEV"
            echo "namespace $STACK_NS: $DEV with $ADDR, shared with the stack (a firewall rule is needed)"
        else
            echo "namespace $STACK_NS: $DEV with no address (the stack's)"
        fi
        echo "namespace $NS: $DEV-k with $PEER (the kernel's, for clients)"
    fi
    ;;
down)
    # Deleting a namespace deletes the devices in it (a veth, both ends).
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$STACK_NS" 2>/dev/null || true
    ;;
*)
    echo "usage: [USERTCP_LINK=tun|packet] $0 up|down" >&2
    exit 2
    ;;
esac
