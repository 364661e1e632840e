#!/usr/bin/env bash
# scripts/usertcp.sh up|down: the network namespace, TUN device and
# address for `glasshouse --stack user`. The kernel owns only the peer
# address on the TUN (10.77.0.1), so it never answers for the stack's
# (10.77.0.2) and no firewall rule is needed. Then:
#   ip netns exec ut glasshouse --stack user --link tun:tun0 --listen 10.77.0.2:80
#   ip netns exec ut curl http://10.77.0.2/healthz
# Names and addresses can be changed through USERTCP_NS, USERTCP_DEV and
# USERTCP_PEER (the kernel side, with its prefix). Needs root.
set -euo pipefail
NS=${USERTCP_NS:-ut}
DEV=${USERTCP_DEV:-tun0}
PEER=${USERTCP_PEER:-10.77.0.1/24}

case "${1:-}" in
up)
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip -n "$NS" tuntap add dev "$DEV" mode tun
    ip -n "$NS" addr add "$PEER" dev "$DEV"
    # "NO-CARRIER" until the stack attaches: harmless.
    ip -n "$NS" link set "$DEV" up
    echo "namespace $NS: $DEV with $PEER (the stack answers for another address in it)"
    ;;
down)
    # Deleting the namespace deletes the device in it.
    ip netns del "$NS" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
