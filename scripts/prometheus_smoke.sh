#!/usr/bin/env bash
# A real Prometheus scraping a live glasshouse: starts the server on a free
# loopback port, writes a prometheus.yml scraping its /metrics every second,
# runs Prometheus on another loopback port with a throw-away TSDB, sends a few
# requests, then polls (bounded) the query API until the request-duration
# series of the routes hit are there. Prints `N passed, N failed` and exits
# non-zero on any failure. Both processes are stopped by their own pid.
#
#   scripts/prometheus_smoke.sh             # uses target/release or target/debug
#   GLASSHOUSE_BIN=path/to/glasshouse scripts/prometheus_smoke.sh
#
# Needs: prometheus (Debian package; installed if missing), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v prometheus >/dev/null 2>&1; then
  echo "prometheus_smoke: installing Debian's prometheus"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a system service on :9090 that we do not want.
  $SUDO systemctl stop prometheus >/dev/null 2>&1 || $SUDO service prometheus stop >/dev/null 2>&1 || true
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "prometheus_smoke: $tool is required" >&2; exit 2; }
done

BIN="${GLASSHOUSE_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/glasshouse ]; then BIN=target/release/glasshouse
  elif [ -x target/debug/glasshouse ]; then BIN=target/debug/glasshouse
  else
    cargo build --release --locked
    BIN=target/release/glasshouse
  fi
fi
echo "prometheus_smoke: $("$BIN" --version 2>/dev/null || echo "$BIN"), $(prometheus --version 2>&1 | head -1)"

work="$(mktemp -d)"
gh_pid=""
prom_pid=""
cleanup() {
  for pid in $prom_pid $gh_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in $prom_pid $gh_pid; do
    # Bounded wait, then SIGKILL.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- glasshouse on a free port (port 0: the log line names the real one)
mkdir -p "$work/root"
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u RUST_LOG \
  "$BIN" --listen 127.0.0.1:0 --workers 2 --root "$work/root" 2>"$work/glasshouse.log" &
gh_pid=$!
gh_port=""
for _ in $(seq 1 300); do
  gh_port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/glasshouse.log" | head -1)"
  [ -n "$gh_port" ] && break
  kill -0 "$gh_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$gh_port" ]; then
  fail "glasshouse did not start:"
  cat "$work/glasshouse.log"
  echo "$passed passed, $failed failed"
  exit 1
fi
pass "glasshouse listening on 127.0.0.1:$gh_port"
base="http://127.0.0.1:$gh_port"

# --- Prometheus scraping it every second
prom_port="$(free_port)"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: glasshouse
    scrape_interval: 1s
    static_configs:
      - targets: ["127.0.0.1:$gh_port"]
EOF
if command -v promtool >/dev/null 2>&1; then
  if promtool check config "$work/prometheus.yml" >/dev/null 2>&1; then
    pass "promtool check config"
  else
    fail "promtool check config"; promtool check config "$work/prometheus.yml" || true
  fi
fi
prometheus --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" \
  >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom="http://127.0.0.1:$prom_port"
ready=""
for _ in $(seq 1 300); do
  if curl -fsS "$prom/-/ready" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$prom_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -n "$ready" ]; then
  pass "prometheus ready on 127.0.0.1:$prom_port"
else
  fail "prometheus did not become ready:"
  tail -20 "$work/prometheus.log"
  echo "$passed passed, $failed failed"
  exit 1
fi

# --- traffic
hit_ok=1
for _ in 1 2 3; do
  for path in /healthz /api/stats; do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$base$path")"
    [ "$code" = 200 ] || { hit_ok=""; echo "  $path answered $code"; }
  done
done
[ -n "$hit_ok" ] && pass "requests to /healthz and /api/stats answered 200" \
  || fail "requests to /healthz and /api/stats"

# The exposition itself passes promtool's checks.
if command -v promtool >/dev/null 2>&1; then
  if curl -fsS "$base/metrics" | promtool check metrics >"$work/promtool.out" 2>&1; then
    pass "promtool check metrics on /metrics"
  else
    fail "promtool check metrics on /metrics:"; cat "$work/promtool.out"
  fi
fi

# --- poll the query API (bounded) until the series are there
query() {
  curl -fsS -G "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null || true
}
# Prints the sorted http_route values of a query answer, one per line.
routes_of() {
  python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for r in sorted({s["metric"].get("http_route", "") for s in d.get("data", {}).get("result", [])}):
    print(r)
'
}
found=""
for _ in $(seq 1 60); do
  routes="$(query 'http_server_request_duration_seconds_count' | routes_of)"
  if grep -qx '/healthz' <<<"$routes" && grep -qx '/api/stats' <<<"$routes"; then
    found=1
    break
  fi
  sleep 0.5
done
if [ -n "$found" ]; then
  pass "http_server_request_duration_seconds_count has series for /healthz and /api/stats ($(tr '\n' ' ' <<<"$routes"))"
else
  fail "no http_server_request_duration_seconds_count series for /healthz and /api/stats (routes: $(tr '\n' ' ' <<<"${routes:-}"))"
fi

# The scrape target is up and the labelled count is what was sent.
health="$(curl -fsS "$prom/api/v1/targets" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(",".join(t["health"] for t in d["data"]["activeTargets"]))' 2>/dev/null || true)"
[ "$health" = up ] && pass "scrape target health: up" || fail "scrape target health: ${health:-unknown}"

value_of() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d.get("data", {}).get("result", [])
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
stats_count=""
for _ in $(seq 1 20); do
  stats_count="$(query 'sum(http_server_request_duration_seconds_count{http_route="/api/stats",http_request_method="GET",http_response_status_code="200"})' | value_of)"
  [ "${stats_count%.*}" = 3 ] && break
  sleep 0.5
done
[ "${stats_count%.*}" = 3 ] && pass "GET /api/stats 200 counted 3 times" \
  || fail "GET /api/stats 200 count: ${stats_count:-none} (expected 3)"

up="$(query 'glasshouse_ready' | value_of)"
[ "$up" = 1 ] && pass "glasshouse_ready = 1" || fail "glasshouse_ready = ${up:-none}"

q="$(query 'histogram_quantile(0.99, sum by (le) (http_server_request_duration_seconds_bucket{http_route="/healthz"}))' | value_of)"
if [ -n "$q" ] && [ "$q" != NaN ]; then
  pass "histogram_quantile over the buckets works (p99 /healthz = ${q}s)"
else
  fail "histogram_quantile over the buckets: ${q:-none}"
fi

# --- a graceful stop of glasshouse
kill -TERM "$gh_pid"
rc=""
for _ in $(seq 1 300); do
  if ! kill -0 "$gh_pid" 2>/dev/null; then
    wait "$gh_pid" && rc=0 || rc=$?
    break
  fi
  sleep 0.1
done
[ "$rc" = 0 ] && pass "glasshouse exited 0 after SIGTERM" || fail "glasshouse exit after SIGTERM: ${rc:-still running}"
# Reaped: nothing left for the cleanup to stop.
[ -z "$rc" ] || gh_pid=""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
