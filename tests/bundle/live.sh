#!/usr/bin/env bash
# Live checks of the deployment bundle, without Docker: everything runs on
# 127.0.0.1 against a real glasshouse binary, bounded in time (~1.5 min).
#
#   1. metrics  every metric name a dashboard queries is on a live /metrics
#               after traffic (routes, WebSocket, 503 refusals), or is in
#               tests/bundle/metrics-allowlist.tsv with its reason
#               (tests/bundle/live_metrics.py)
#   2. k6       k6/load.js and k6/ws.js run (the built k6) with their thresholds,
#               and the server exits 0 on SIGTERM after each (k6/local.sh)
#   3. prom     Debian's Prometheus 2.x with deploy/prometheus.yml adapted to
#               127.0.0.1, a k6 load: the request counter rises in the query
#               API (tests/bundle/live_prometheus.sh)
#   4. chaos    k6/chaos.js while the server gets SIGTERM and is restarted on
#               the same port: no failed request among those started before
#               the signal, exit 0 (k6/chaos-local.sh)
#   5. chaos-kill  the same with SIGKILL: what ended before the kill and
#               everything after the restart succeeded, the requests in
#               flight were lost as connection errors only, exit 137
#
#   bash tests/bundle/live.sh                  # all
#   bash tests/bundle/live.sh metrics chaos    # some
#   GLASSHOUSE_BIN=path/to/glasshouse bash tests/bundle/live.sh
#
# Installs what it lacks like check.sh (PyYAML into .venv/bundle, k6 built by
# scripts/native_build.sh, Prometheus from Debian's package unpacked into the
# venv, no service). Each
# check prints `ok   ...`/`FAIL ...`; ends with `N passed, N failed` and exits
# non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
venv=${BUNDLE_VENV:-$repo/.venv/bundle}
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(metrics k6 prom chaos chaos-kill)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
started=$(date +%s)

# --- tools (the same venv and stamp as check.sh)
stamp="$venv/.bundle-requirements"
want=$(sha256sum < "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "live.sh: preparing $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" || exit 2
  echo "$want" > "$stamp"
fi
# k6 >= 1.6 (k6/websockets), built and cached by scripts/native_build.sh.
k6_dir=$(bash scripts/native_build.sh --path k6) || exit 2
export PATH="$k6_dir:$venv/bin:$PATH"
if ! command -v prometheus > /dev/null || ! command -v promtool > /dev/null; then
  echo "live.sh: unpacking Debian's prometheus package into $venv/bin (no service)"
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq > /dev/null
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download prometheus > /dev/null 2>&1 && dpkg-deb -x prometheus_*.deb x) || exit 2
  install -m 0755 "$tmp/x/usr/bin/prometheus" "$tmp/x/usr/bin/promtool" "$venv/bin/"
  rm -rf "$tmp"
fi
export K6="$k6_dir/k6" PYTHON="$venv/bin/python"
export PROMETHEUS PROMTOOL
PROMETHEUS=$(command -v prometheus) PROMTOOL=$(command -v promtool)

if [ -n "${GLASSHOUSE_BIN:-}" ]; then
  BIN=$GLASSHOUSE_BIN
  [ -x "$BIN" ] || { echo "live.sh: GLASSHOUSE_BIN=$BIN is not an executable"; exit 2; }
else
  BIN=target/release/glasshouse
  if [ ! -x "$BIN" ]; then
    echo "live.sh: $BIN missing; cargo build --release --locked"
    cargo build --release --locked || exit 2
  fi
fi
case "$BIN" in /*) ;; *) BIN="$repo/$BIN" ;; esac
echo "live.sh: $("$BIN" --version), $("$K6" version 2>/dev/null | head -1 | cut -d' ' -f1-2), $("$PROMETHEUS" --version 2>&1 | head -1 | cut -d' ' -f1-3)"

passed=0
failed=0
# step NAME CMD...: runs CMD (output shown), counts its ok/FAIL lines; a
# non-zero exit without a FAIL line counts as one failure.
step() {
  local name=$1 out rc p f t0
  shift
  t0=$(date +%s)
  echo "--- $name: $*"
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  p=$(grep -c '^ok   ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited $rc"
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  echo "--- $name: $p ok, $f failed, $(( $(date +%s) - t0 )) s"
  rm -f "$out"
}

# k6/local.sh prints no ok/FAIL lines: one verdict per script from its exit
# code (thresholds, errors, and the server's exit 0 on SIGTERM).
k6_local() {
  local s
  for s in load ws; do
    if DURATION_S=${K6_DURATION_S:-10} bash k6/local.sh "$BIN" "$s" > "$tmpk6" 2>&1; then
      grep -E '(checks_succeeded|http_req_failed|http_reqs|ws_echo_ok|ws_session_ok|ws_sessions)\.\.\.|exited' "$tmpk6" | sed 's/^ */      /' || true
      echo "ok   k6: k6/$s.js ran ${K6_DURATION_S:-10}s against a live glasshouse, thresholds passed, server exited 0 on SIGTERM"
    else
      tail -40 "$tmpk6" | sed 's/^/      /'
      echo "FAIL k6: k6/$s.js (thresholds, errors or the server's exit after SIGTERM)"
    fi
  done
}
tmpk6=$(mktemp)
trap 'rm -f "$tmpk6"' EXIT

for s in "${STEPS[@]}"; do
  case "$s" in
    metrics) step metrics "$PYTHON" tests/bundle/live_metrics.py --repo "$repo" --bin "$BIN" ;;
    k6) step k6 k6_local ;;
    prom) step prom bash tests/bundle/live_prometheus.sh "$BIN" ;;
    chaos) step chaos bash k6/chaos-local.sh "$BIN" ;;
    chaos-kill) step chaos-kill env SIGNAL=KILL bash k6/chaos-local.sh "$BIN" ;;
    *) echo "live.sh: unknown step $s (metrics, k6, prom, chaos, chaos-kill)"; exit 2 ;;
  esac
done

echo "live.sh: $(( $(date +%s) - started )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
