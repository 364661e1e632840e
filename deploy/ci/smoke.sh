#!/usr/bin/env bash
# End-to-end smoke test of the compose stack on a real Docker host (CI:
# .github/workflows/bundle.yml). Builds the image, starts the stack, waits for
# health, runs a short k6 smoke, asserts through the HTTP APIs that Jaeger has
# glasshouse traces, Prometheus its series (scraped, OTLP-pushed, span metrics
# with exemplars) and Loki its logs, then sends SIGTERM and asserts a clean
# exit (0) and the `shutdown` span in Jaeger.
#
# Usage: deploy/ci/smoke.sh    (from anywhere; leaves the stack running unless
#                               SMOKE_DOWN=1; logs go to test-artifacts/)
set -euo pipefail
cd "$(dirname "$0")/../.."

COMPOSE=${COMPOSE:-docker compose}
JAEGER=${JAEGER_URL:-http://localhost:16686}
PROM=${PROMETHEUS_URL:-http://localhost:9090}
GRAFANA=${GRAFANA_URL:-http://localhost:3000}
GRAFANA_AUTH=${GRAFANA_AUTH:-admin:admin}
APP=${GLASSHOUSE_URL:-http://localhost:8080}
# The tag compose builds (image: glasshouse:${GLASSHOUSE_VERSION:-0.1.0}).
IMAGE=glasshouse:${GLASSHOUSE_VERSION:-0.1.0}
ARTIFACTS=test-artifacts/smoke
mkdir -p "$ARTIFACTS"

passed=0
failed=0
step() { printf '\n=== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

# retry SECONDS CMD...: runs CMD every 2 s until it succeeds or time is up.
retry() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 2
  done
}
expect() { # expect DESCRIPTION SECONDS CMD...
  local what=$1 secs=$2
  shift 2
  if retry "$secs" "$@"; then ok "$what"; else bad "$what"; fi
}

dump_logs() {
  $COMPOSE ps -a > "$ARTIFACTS/ps.txt" 2>&1 || true
  $COMPOSE logs --no-color --timestamps > "$ARTIFACTS/compose.log" 2>&1 || true
}
trap dump_logs EXIT

since_ns=$(($(date +%s) - 60))000000000
jq_true() { jq -e "$1" > /dev/null; }

jaeger_traces() { # jaeger_traces QUERYSTRING -> at least one trace
  curl -fsS "$JAEGER/api/traces?service=glasshouse&limit=20&lookback=1h&$1" | jq_true '(.data | length) > 0'
}
prom_series() {
  curl -fsS -G "$PROM/api/v1/series" --data-urlencode "match[]=$1" \
    --data-urlencode "start=$(($(date +%s) - 3600))" | jq_true '(.data | length) > 0'
}
prom_query() { # an instant query with at least one result
  curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq_true '(.data.result | length) > 0'
}
prom_exemplars() {
  curl -fsS -G "$PROM/api/v1/query_exemplars" --data-urlencode "query=$1" \
    --data-urlencode "start=$(($(date +%s) - 3600))" --data-urlencode "end=$(date +%s)" \
    | jq_true '[.data[]?.exemplars[]?.labels.trace_id] | length > 0'
}
loki_logs() { # through Grafana's datasource proxy: also proves the datasource works
  curl -fsS -u "$GRAFANA_AUTH" -G "$GRAFANA/api/datasources/proxy/uid/loki/loki/api/v1/query_range" \
    --data-urlencode "query=$1" --data-urlencode "start=$since_ns" --data-urlencode "limit=20" \
    | jq_true '(.data.result | length) > 0'
}
grafana_ds_ok() {
  curl -fsS -u "$GRAFANA_AUTH" "$GRAFANA/api/datasources/uid/$1/health" | jq_true '.status == "OK"'
}
grafana_dashboard() {
  curl -fsS -u "$GRAFANA_AUTH" "$GRAFANA/api/dashboards/uid/$1" | jq_true '.dashboard.panels | length > 0'
}

step "build the image"
$COMPOSE build --build-arg VCS_REF="$(git rev-parse HEAD 2>/dev/null || echo unknown)" glasshouse
img_user=$(docker image inspect "$IMAGE" --format '{{.Config.User}}')
img_stop=$(docker image inspect "$IMAGE" --format '{{.Config.StopSignal}}')
img_hc=$(docker image inspect "$IMAGE" --format '{{json .Config.Healthcheck.Test}}')
[ "$img_user" = "65532:65532" ] && ok "image runs as non-root ($img_user)" || bad "image user is '$img_user'"
[ "$img_stop" = "SIGTERM" ] && ok "image STOPSIGNAL SIGTERM" || bad "image STOPSIGNAL '$img_stop'"
case "$img_hc" in *glasshouse*healthcheck*) ok "image HEALTHCHECK $img_hc" ;; *) bad "image HEALTHCHECK '$img_hc'" ;; esac

step "start the stack and wait for health"
if $COMPOSE up -d --wait --wait-timeout 300; then ok "stack healthy"; else bad "stack did not become healthy"; exit 1; fi
expect "glasshouse /healthz" 30 curl -fsS "$APP/healthz"
expect "glasshouse /readyz" 30 curl -fsS "$APP/readyz"
expect "glasshouse /metrics has the contract's metrics" 30 \
  sh -c "curl -fsS '$APP/metrics' | grep -q '^glasshouse_connections_accepted_total'"

step "k6 smoke"
if $COMPOSE --profile load run --rm -e DURATION_S=20 -e RATE_SCALE=0.2 k6-load; then
  ok "k6 load.js smoke (thresholds held)"; else bad "k6 load.js smoke"; fi
if $COMPOSE --profile load run --rm -e DURATION_S=10 -e VUS=2 k6-ws; then
  ok "k6 ws.js smoke (thresholds held)"; else bad "k6 ws.js smoke"; fi

step "telemetry arrived"
expect "Jaeger has glasshouse traces" 60 jaeger_traces ""
expect "Jaeger has GET /api/stats spans" 60 jaeger_traces "operation=GET%20%2Fapi%2Fstats"
expect "Prometheus scraped http_server_request_duration_seconds" 60 \
  prom_series 'http_server_request_duration_seconds_count{job="glasshouse"}'
expect "Prometheus scraped glasshouse_connections_accepted_total" 60 \
  prom_series 'glasshouse_connections_accepted_total{job="glasshouse"}'
expect "Prometheus got glasshouse's OTLP metrics" 90 prom_series '{job="glasshouse/glasshouse"}'
expect "Prometheus got span metrics" 90 prom_series 'traces_span_metrics_calls_total{service_name="glasshouse"}'
expect "Prometheus has span-metric exemplars with trace ids" 90 \
  prom_exemplars 'traces_span_metrics_duration_seconds_bucket{service_name="glasshouse"}'
expect "Prometheus scraped the collector's own metrics" 60 prom_query 'up{job="otel-collector"} == 1'
expect "k6 results arrived by remote write" 60 prom_series 'k6_http_reqs_total'
expect "Loki has glasshouse logs" 90 loki_logs '{service_name="glasshouse"}'
expect "Loki logs carry trace_id" 90 loki_logs '{service_name="glasshouse"} | trace_id != ""'
for ds in prometheus jaeger loki; do
  expect "Grafana datasource $ds healthy" 30 grafana_ds_ok "$ds"
done
for d in glasshouse-overview glasshouse-graceful-failure; do
  expect "Grafana dashboard $d provisioned" 30 grafana_dashboard "$d"
done

step "graceful stop"
cid=$($COMPOSE ps -q glasshouse)
t_kill_us=$(($(date +%s) * 1000000))
$COMPOSE kill -s SIGTERM glasshouse
code=$(timeout 60 docker wait "$cid" || echo timeout)
[ "$code" = 0 ] && ok "SIGTERM: exit code 0" || bad "SIGTERM: exit code $code"
docker logs "$cid" > "$ARTIFACTS/glasshouse.log" 2>&1 || true
grep -q 'drain started' "$ARTIFACTS/glasshouse.log" && ok "log: drain started" || bad "log: no 'drain started'"
grep -q 'drain finished' "$ARTIFACTS/glasshouse.log" && ok "log: drain finished" || bad "log: no 'drain finished'"
expect "Jaeger has the shutdown span" 60 jaeger_traces "operation=shutdown&start=$t_kill_us"

if [ "${SMOKE_DOWN:-0}" = 1 ]; then
  $COMPOSE --profile load --profile chaos down -v
fi

printf '\n%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
