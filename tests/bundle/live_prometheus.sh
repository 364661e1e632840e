#!/usr/bin/env bash
# Live local smoke of the scrape path, without Docker: glasshouse on a free
# loopback port, Prometheus 2.x (Debian's) on another with deploy/prometheus.yml
# adapted to 127.0.0.1 by tests/bundle/prometheus_local.py, and a short k6
# load.js run that also remote-writes k6's metrics to that Prometheus (as the
# compose k6 services do). Then the query API must show
# sum(http_server_request_duration_seconds_count) rising between two queries
# a few seconds apart, the glasshouse and prometheus targets up, and k6's
# remote-written k6_http_reqs_total (an allow-listed dashboard name) there.
#
#   tests/bundle/live_prometheus.sh GLASSHOUSE_BIN      (K6, PROMETHEUS, PROMTOOL, PYTHON from env)
# Prints `ok   ...`/`FAIL ...`; exits non-zero on any failure. Both servers are
# stopped by their own pid.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$1
K6=${K6:-k6}
PROMETHEUS=${PROMETHEUS:-prometheus}
PROMTOOL=${PROMTOOL:-promtool}
PYTHON=${PYTHON:-python3}
failed=0
pass() { echo "ok   prometheus: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL prometheus: $*"; }

work=$(mktemp -d)
gh_pid=""
prom_pid=""
k6_pid=""
cleanup() {
  for pid in $k6_pid $prom_pid $gh_pid; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in $k6_pid $prom_pid $gh_pid; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# glasshouse
mkdir -p "$work/www"
printf '<!doctype html><title>glasshouse</title>\n' > "$work/www/index.html"
env -u OTEL_EXPORTER_OTLP_ENDPOINT "$BIN" --listen 127.0.0.1:0 --root "$work/www" --workers 2 \
  2> "$work/glasshouse.log" &
gh_pid=$!
gh_port=""
for _ in $(seq 100); do
  gh_port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/glasshouse.log" | head -1)
  [ -n "$gh_port" ] && break
  kill -0 "$gh_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$gh_port" ] || { cat "$work/glasshouse.log"; fail "glasshouse did not start"; exit 1; }

# Prometheus with the bundle's config, adapted
prom_port=$(free_port)
prom="http://127.0.0.1:$prom_port"
if "$PYTHON" tests/bundle/prometheus_local.py deploy/prometheus.yml "$work/prometheus.yml" \
     "127.0.0.1:$gh_port" "127.0.0.1:$prom_port" \
   && "$PROMTOOL" check config "$work/prometheus.yml" > "$work/promtool.out" 2>&1; then
  pass "deploy/prometheus.yml adapted to 127.0.0.1 passes promtool check config"
else
  cat "$work/promtool.out" 2>/dev/null || true
  fail "deploy/prometheus.yml could not be adapted"; exit 1
fi
# The compose stack's flags that 2.42 has (not --web.enable-otlp-receiver: Prometheus 3).
"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --web.enable-remote-write-receiver \
  --enable-feature=exemplar-storage > "$work/prometheus.log" 2>&1 &
prom_pid=$!
ready=""
for _ in $(seq 150); do
  curl -fsS "$prom/-/ready" > /dev/null 2>&1 && { ready=1; break; }
  kill -0 "$prom_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -n "$ready" ]; then
  pass "$($PROMETHEUS --version 2>&1 | head -1 | cut -d' ' -f1-3) ready on 127.0.0.1:$prom_port"
else
  tail -20 "$work/prometheus.log"; fail "Prometheus did not become ready"; exit 1
fi

# k6 load, remote-writing its own metrics like the compose k6-load service
K6_PROMETHEUS_RW_SERVER_URL="$prom/api/v1/write" K6_PROMETHEUS_RW_PUSH_INTERVAL=2s \
K6_PROMETHEUS_RW_TREND_STATS='p(50),p(95),p(99)' \
BASE_URL="http://127.0.0.1:$gh_port" DURATION_S=${DURATION_S:-14} RATE_SCALE=${RATE_SCALE:-0.2} \
  "$K6" run --quiet --no-summary --out experimental-prometheus-rw --tag testid=live k6/load.js \
  > "$work/k6.log" 2>&1 &
k6_pid=$!

query() {
  curl -fsS -G "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null | "$PYTHON" -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
except Exception:
    r = []
print(r[0]["value"][1] if r else "")' || true
}
# First value once the first scrapes with traffic are in (scrape_interval 5s).
v1=""
for _ in $(seq 60); do
  v1=$(query 'sum(http_server_request_duration_seconds_count)')
  [ -n "$v1" ] && [ "${v1%.*}" -gt 0 ] 2>/dev/null && break
  sleep 0.5
done
sleep 7
v2=$(query 'sum(http_server_request_duration_seconds_count)')
if [ -n "$v1" ] && [ -n "$v2" ] && "$PYTHON" -c "import sys; sys.exit(0 if float('$v2') > float('$v1') > 0 else 1)"; then
  pass "sum(http_server_request_duration_seconds_count) rose from $v1 to $v2 during the k6 load"
else
  fail "sum(http_server_request_duration_seconds_count) did not rise: first '${v1}', 7 s later '${v2}'"
fi

health=$(curl -fsS "$prom/api/v1/targets" 2>/dev/null | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(sorted(t["labels"]["job"] + "=" + t["health"] for t in d["data"]["activeTargets"])))' || true)
if [ "$health" = "glasshouse=up prometheus=up" ]; then pass "targets: $health"
else fail "targets: ${health:-none} (want glasshouse=up prometheus=up)"; fi

up=$(query 'up{job="glasshouse",service_name="glasshouse"}')
[ "$up" = 1 ] && pass 'up{job="glasshouse",service_name="glasshouse"} = 1 (the label the dashboards select on)' \
  || fail "up{job=\"glasshouse\",service_name=\"glasshouse\"} = ${up:-none}"

k6_code=0
wait "$k6_pid" || k6_code=$?
k6_pid=""
if [ "$k6_code" -eq 0 ]; then pass "k6 load.js (remote-write to this Prometheus) passed its thresholds"
else tail -30 "$work/k6.log"; fail "k6 load.js exited $k6_code"; fi
k6n=""
for _ in $(seq 20); do
  k6n=$(query 'sum(k6_http_reqs_total{testid="live"})')
  [ -n "$k6n" ] && break
  sleep 0.5
done
[ -n "$k6n" ] && pass "k6's remote-written k6_http_reqs_total{testid=\"live\"} = $k6n" \
  || fail "no k6_http_reqs_total from k6's remote write"

echo "      prometheus: $failed failed"
[ "$failed" -eq 0 ]
