#!/usr/bin/env bash
# Chaos run for the compose stack (needs a Docker host):
#   1. starts k6/chaos.js in the k6-chaos service (profile "chaos")
#   2. after a warm-up, sends SIGTERM, SIGINT and SIGKILL to the glasshouse
#      container in turn (docker compose kill -s ...), waits for it to exit,
#      records the exit code, restarts it and waits until it is healthy
#   3. prints, per window, how many requests k6 sent and how many failed (by
#      status / k6 error code), a few failed trace ids, and where the shutdown
#      traces are (Jaeger search, Grafana dashboard)
#
# Usage: k6/chaos.sh            (the stack must be up: docker compose up -d --wait)
# Env:   WARMUP (s, default 20), GAP (s after each restart, default 20),
#        COMPOSE (default "docker compose"), JAEGER_URL, GRAFANA_URL,
#        CHAOS_STRICT=1 (exit 1 when SIGTERM/SIGINT did not exit 0 or their
#        shutdown traces are missing in Jaeger)
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-docker compose}
SERVICE=glasshouse
WARMUP=${WARMUP:-20}
GAP=${GAP:-20}
JAEGER_URL=${JAEGER_URL:-http://localhost:16686}
GRAFANA_URL=${GRAFANA_URL:-http://localhost:3000}
RESULTS=k6/results
SIGNALS=(SIGTERM SIGINT SIGKILL)

# k6 runs for the whole schedule: warm-up, and per signal up to ~drain
# timeout (10 s) + restart + GAP; a margin at the end.
export CHAOS_DURATION="${CHAOS_DURATION:-$((WARMUP + ${#SIGNALS[@]} * (GAP + 25) + 10))s}"

now() { date +%s.%N; }
log() { printf '%s chaos: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

mkdir -p "$RESULTS"
chmod 0777 "$RESULTS"   # the k6 image runs as an unprivileged user
rm -f "$RESULTS/chaos.json" "$RESULTS/windows.tsv"

if [ -z "$($COMPOSE ps -q "$SERVICE")" ]; then
  log "starting the stack"
  $COMPOSE up -d --wait
fi

log "k6 chaos.js for $CHAOS_DURATION against http://$SERVICE:8080"
$COMPOSE --profile chaos up -d --force-recreate --no-deps k6-chaos
K6_CID=$($COMPOSE --profile chaos ps -a -q k6-chaos)

t0=$(now)
sleep "$WARMUP"
printf 'baseline\t%s\t%s\t-\t-\t-\n' "$t0" "$(now)" >> "$RESULTS/windows.tsv"

for sig in "${SIGNALS[@]}"; do
  cid=$($COMPOSE ps -q "$SERVICE")
  start=$(now)
  log "docker compose kill -s $sig $SERVICE"
  $COMPOSE kill -s "$sig" "$SERVICE"
  code=$(timeout 60 docker wait "$cid" || echo timeout)
  stopped=$(now)
  log "$SERVICE exited with $code after $(awk -v a="$start" -v b="$stopped" 'BEGIN{printf "%.1f", b-a}') s"
  $COMPOSE up -d --wait "$SERVICE"
  ready=$(now)
  log "$SERVICE healthy again; observing for ${GAP}s"
  sleep "$GAP"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sig" "$start" "$(now)" "$code" \
    "$(awk -v a="$start" -v b="$ready" 'BEGIN{printf "%.1f", b-a}')" "$stopped" >> "$RESULTS/windows.tsv"
done

log "waiting for k6 to finish"
timeout 300 docker wait "$K6_CID" >/dev/null || true
t_end=$(now)

python3 k6/chaos_report.py "$RESULTS/chaos.json" "$RESULTS/windows.tsv" "$JAEGER_URL" "$GRAFANA_URL" "$t0" "$t_end"
