#!/usr/bin/env bash
# Static checks of the deployment bundle (no Docker needed). Installs what it
# needs (PyPI tools in a venv, promtool and shellcheck from Debian, k6 built
# from its Go module by scripts/native_build.sh), runs
# tests/bundle/check_bundle.py, exits non-zero on any failure and ends with
# the line "N passed, N failed".
#
#   bash tests/bundle/check.sh            # all checks
#   BUNDLE_VENV=/path bash tests/bundle/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${BUNDLE_VENV:-$repo/.venv/bundle}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Python tools in a venv, pinned.
stamp="$venv/.bundle-requirements"
want=$(sha256sum < "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "check.sh: preparing $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
# k6 that knows k6/websockets (K6_NATIVE_VERSION in .env), built from its Go
# module and cached outside the tree by scripts/native_build.sh.
k6_dir=$(bash "$repo/scripts/native_build.sh" --path k6)
# kustomize (KUSTOMIZE_VERSION in .env), likewise: renders deploy/k8s-tls.
kustomize_dir=$(bash "$repo/scripts/native_build.sh" --path kustomize)

# Debian/Ubuntu packages. promtool: taken out of the `prometheus` package with
# dpkg-deb into the venv, so no Prometheus service gets installed or started
# (apt-get install would start one where systemd runs); shellcheck: installed.
apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq > /dev/null
    apt_updated=1
  fi
}
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$venv/bin"
if ! command -v promtool > /dev/null && [ ! -x "$venv/bin/promtool" ]; then
  echo "check.sh: fetching promtool from Debian's prometheus package"
  apt_update
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download prometheus > /dev/null 2>&1 && dpkg-deb -x prometheus_*.deb x); then
    install -m 0755 "$tmp/x/usr/bin/promtool" "$venv/bin/promtool"
  else
    as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus > /dev/null
  fi
  rm -rf "$tmp"
fi
if ! command -v shellcheck > /dev/null; then
  echo "check.sh: installing shellcheck (apt)"
  apt_update
  as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends shellcheck > /dev/null
fi

export PATH="$k6_dir:$kustomize_dir:$venv/bin:$PATH"
exec "$venv/bin/python" "$here/check_bundle.py" --repo "$repo" "$@"
