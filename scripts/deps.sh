#!/usr/bin/env bash
# Installs what the build and the test suite need on Debian/Ubuntu, skipping
# what is already there: system tools (apt), Python test libraries (pip),
# the frontend's packages (npm ci) and the crates (cargo fetch).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
want curl curl
want ip iproute2
# The firewall rule of the packet link's shared-address test (tests/usertcp.sh).
want nft nftables
# Veth offloads off, so that captures see segments as sent
# (tests/tcp_differential.sh, scripts/usertcp_bench.sh).
want ethtool ethtool
want wrk wrk
want ab apache2-utils
want chromium chromium
want certutil libnss3-tools
want promtool prometheus
want pkg-config pkg-config
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's prometheus package starts a service we do not want running.
$SUDO systemctl stop prometheus >/dev/null 2>&1 || true

python3 -m pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt

if [ -f frontend/package-lock.json ]; then
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo fetch --locked 2>/dev/null || cargo fetch
