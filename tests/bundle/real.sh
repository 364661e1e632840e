#!/usr/bin/env bash
# The bundle run by the real programs, without Docker: the OpenTelemetry
# Collector, Jaeger v2 and Prometheus 3 built from Go modules at the versions
# .env pins (scripts/native_build.sh, cached outside the work tree), run as
# native processes with the project's own files as they are
# (otel-collector.yaml, deploy/jaeger.yaml, deploy/prometheus.yml), glasshouse
# exporting OTLP to that collector, k6 load, a SIGTERM in the middle of it and
# a restart. Loki is replaced by tests/bundle/otlp_log_receiver.py (Loki and
# Grafana are AGPL: neither built nor vendored).
#
#   1. validate   `otelcol validate` on otel-collector.yaml and the k8s agent's
#                 and gateway's configs, `jaeger validate` on deploy/jaeger.yaml,
#                 `promtool check config` (3.x) on deploy/prometheus.yml as it
#                 is (otlp: block included); each with a broken variant that
#                 must be refused
#   2. run        one network namespace per compose service (otel-collector,
#                 jaeger, prometheus, loki, glasshouse, and one for k6 and the
#                 checks) on a bridge in a namespace of its own, so the
#                 configs' service names and ports work unchanged: each
#                 namespace gets /etc/netns/NS/hosts naming every service.
#                 Command lines and environments come from docker-compose.yml
#                 (tests/bundle/real_plan.py maps the container paths to the
#                 files compose mounts there). k6 load.js and ws.js, then
#                 chaos.js during which glasshouse gets SIGTERM, must exit 0,
#                 and is restarted; a readiness poller watches /readyz.
#   3. check      tests/bundle/real_checks.py through the programs' APIs:
#                 Jaeger traces (contract attributes, the shutdown span and the
#                 requests it drained), Prometheus series (scraped, OTLP-pushed,
#                 span metrics, collector, k6), exemplars whose trace ids are in
#                 Jaeger, every PromQL expression of every Grafana panel, and
#                 the stand-in's log records with trace ids
#
#   bash tests/bundle/real.sh
#   REAL_TLS=1 bash tests/bundle/real.sh   the HTTPS stack: docker-compose.tls.yml
#                 over docker-compose.yml, certificates from scripts/dev-cert.sh
#                 made for the run; k6 trusts their CA, Prometheus and the
#                 readiness poller use the plain metrics listener (:8080)
#   GLASSHOUSE_BIN=path/to/glasshouse bash tests/bundle/real.sh
#   REAL_KEEP=1 ...   keeps the namespaces' logs in test-artifacts/bundle-real
#
# Needs root (network namespaces), iproute2, Go for the first build (minutes;
# then cached). Every wait is bounded; the whole run takes about 3 minutes
# once the programs are cached. Prints `ok   ...`/`FAIL ...`, ends with
# `N passed, N failed`, exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
venv=${BUNDLE_VENV:-$repo/.venv/bundle}
started=$(date +%s)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
log() { echo "real.sh: $*"; }

[ "$(id -u)" = 0 ] || { log "needs root (network namespaces); run as root or with sudo"; exit 2; }
need=()
command -v ip > /dev/null || need+=(iproute2)
command -v curl > /dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt)"
  apt-get -o DPkg::Lock::Timeout=600 update -qq > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" > /dev/null || exit 2
fi

# --- tools: the venv of check.sh (PyYAML), the cached real programs
stamp="$venv/.bundle-requirements"
want=$(sha256sum < "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "preparing $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" || exit 2
  echo "$want" > "$stamp"
fi
PY=$venv/bin/python
t0=$(date +%s)
bins=()
for p in otelcol jaeger prometheus k6; do
  d=$(bash scripts/native_build.sh --path "$p") || { log "could not build $p"; exit 2; }
  bins+=("$d")
done
OTELCOL=${bins[0]}/otelcol-glasshouse JAEGER=${bins[1]}/jaeger
PROMETHEUS=${bins[2]}/prometheus PROMTOOL=${bins[2]}/promtool K6=${bins[3]}/k6
log "programs ready in $(( $(date +%s) - t0 )) s"
if [ -n "${GLASSHOUSE_BIN:-}" ]; then
  BIN=$GLASSHOUSE_BIN
else
  BIN=target/release/glasshouse
  [ -x "$BIN" ] || { log "$BIN missing; cargo build --release --locked"; nice cargo build --release --locked || exit 2; }
fi
[ -x "$BIN" ] || { log "GLASSHOUSE_BIN=$BIN is not an executable"; exit 2; }
case "$BIN" in /*) ;; *) BIN="$repo/$BIN" ;; esac
log "$("$BIN" --version) | $("$OTELCOL" --version) | $("$JAEGER" version 2>/dev/null | grep -o '"gitVersion":"[^"]*"' | head -1) | $("$PROMETHEUS" --version 2>&1 | head -1) | $("$K6" version | head -1)"

work=$repo/test-artifacts/bundle-real
rm -rf "$work"
mkdir -p "$work/logs"

# ------------------------------------------------------------ 1. validate --
echo "--- validate"
"$PY" - "$work" <<'EOF'
# The k8s collector configs, taken out of their ConfigMaps as they are.
import sys, yaml
work = sys.argv[1]
for f, name in (("deploy/k8s/otel-agent.yaml", "agent"), ("deploy/k8s/otel-gateway.yaml", "gateway")):
    for d in yaml.safe_load_all(open(f)):
        if d and d.get("kind") == "ConfigMap":
            open(f"{work}/k8s-{name}.yaml", "w").write(d["data"]["config.yaml"])
        if d and d.get("kind") in ("DaemonSet", "Deployment"):
            env = d["spec"]["template"]["spec"]["containers"][0].get("env", [])
            open(f"{work}/k8s-{name}.env", "w").write("".join(f"{e['name']}={e['value']}\n" for e in env))
EOF
validate() { # validate WHAT CMD... : must exit 0
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | tail -15 | sed 's/^/      /'; fi
}
refuse() { # refuse WHAT CMD... : must exit non-zero (the validator can fail)
  local what=$1
  shift
  if "$@" > /dev/null 2>&1; then bad "$what: a broken config was accepted"; else ok "$what"; fi
}
validate "otelcol validate otel-collector.yaml (collector $("$OTELCOL" --version | awk '{print $NF}'), the builder manifest's components)" \
  "$OTELCOL" validate --config otel-collector.yaml
for n in agent gateway; do
  mapfile -t kenv < "$work/k8s-$n.env"
  validate "otelcol validate on the k8s $n's config (its ConfigMap, with its container env)" \
    env "${kenv[@]}" "$OTELCOL" validate --config "$work/k8s-$n.yaml"
done
sed 's/^  memory_limiter:/  memory_limiterr:/' otel-collector.yaml > "$work/broken-collector.yaml"
refuse "otelcol validate refuses a pipeline naming an undefined processor" "$OTELCOL" validate --config "$work/broken-collector.yaml"
sed 's/^processors:/processors:\n  batch:/; s/processors: \[memory_limiter\]/processors: [memory_limiter, batch]/' otel-collector.yaml > "$work/batch-collector.yaml"
refuse "the built collector has no legacy batch processor (a config using it is refused)" "$OTELCOL" validate --config "$work/batch-collector.yaml"
validate "jaeger validate deploy/jaeger.yaml" "$JAEGER" validate --config deploy/jaeger.yaml
sed 's/max_traces: [0-9]*/max_traces: many/' deploy/jaeger.yaml > "$work/broken-jaeger.yaml"
refuse "jaeger validate refuses max_traces: many" "$JAEGER" validate --config "$work/broken-jaeger.yaml"
validate "promtool check config deploy/prometheus.yml as it is ($("$PROMTOOL" --version 2>&1 | head -1 | awk '{print $3}'), otlp: block included)" \
  "$PROMTOOL" check config deploy/prometheus.yml
sed 's/promote_resource_attributes:/promote_resource_attributez:/' deploy/prometheus.yml > "$work/broken-prometheus.yml"
refuse "promtool refuses a misspelt otlp: field" "$PROMTOOL" check config "$work/broken-prometheus.yml"

# ----------------------------------------------------------------- 2. run --
echo "--- run"
plan_args=()
gh_url=http://glasshouse:8080
curl_tls=()
if [ -n "${REAL_TLS:-}" ]; then
  DEV_CERT_DIR=$work/tls DEV_CERT_FORCE=1 bash scripts/dev-cert.sh > "$work/logs/dev-cert.log" || { cat "$work/logs/dev-cert.log"; exit 2; }
  plan_args=(--compose docker-compose.yml --compose docker-compose.tls.yml --secrets-dir "$work/tls")
  gh_url=https://glasshouse:8443
  curl_tls=(--cacert "$work/tls/ca.pem")
  log "HTTPS stack (docker-compose.tls.yml): $gh_url, metrics and probes on http://glasshouse:8080"
fi
"$PY" tests/bundle/real_plan.py --repo "$repo" --work "$work" "${plan_args[@]}" > "$work/logs/plan.log" || { cat "$work/logs/plan.log"; exit 2; }
sed 's/^/      /' "$work/logs/plan.log"
tag=ghr$$
# service -> address on the bridge (inside our namespaces only).
declare -A addr=([otel-collector]=10.77.0.11 [jaeger]=10.77.0.12 [prometheus]=10.77.0.13
                 [loki]=10.77.0.14 [glasshouse]=10.77.0.15 [client]=10.77.0.20)
nets=(otel-collector jaeger prometheus loki glasshouse client)
pids=()
glasshouse_pid=""
cleanup() {
  local p n
  [ -z "$glasshouse_pid" ] || kill -KILL "$glasshouse_pid" 2> /dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2> /dev/null
    wait "$p" 2> /dev/null
  done
  for n in "${nets[@]}" hub; do
    ip netns del "$tag-$n" 2> /dev/null
    rm -rf "/etc/netns/$tag-$n"
  done
  rmdir /etc/netns 2> /dev/null
  [ -n "${REAL_KEEP:-}" ] || rm -rf "$work/volumes" "$work/mounts"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns() { echo "$tag-$1"; }
ip netns add "$(ns hub)" || exit 2
ip -n "$(ns hub)" link add br0 type bridge
ip -n "$(ns hub)" link set br0 up
hosts=$work/hosts
{ echo "127.0.0.1 localhost"; echo "::1 localhost ip6-localhost"; for n in "${nets[@]}"; do echo "${addr[$n]} $n"; done; } > "$hosts"
i=0
for n in "${nets[@]}"; do
  i=$((i + 1))
  ip netns add "$(ns "$n")" || exit 2
  ip link add name "v$i" netns "$(ns hub)" type veth peer name eth0 netns "$(ns "$n")" || exit 2
  ip -n "$(ns hub)" link set "v$i" master br0 up
  ip -n "$(ns "$n")" addr add "${addr[$n]}/24" dev eth0
  ip -n "$(ns "$n")" link set eth0 up
  ip -n "$(ns "$n")" link set lo up
  mkdir -p "/etc/netns/$(ns "$n")"
  cp "$hosts" "/etc/netns/$(ns "$n")/hosts"
done
log "namespaces $tag-{${nets[*]}} on a bridge; hosts: $(tr '\n' ' ' < "$hosts")"

# start SERVICE NETNS BINARY: runs BINARY with the plan's args and env in
# NETNS, as a child of this shell (so `wait` gets its exit code); sets $spawned.
start() {
  local svc=$1 net=$2 bin=$3 a e
  mapfile -t a < "$work/plan/$svc.args"
  mapfile -t e < "$work/plan/$svc.env"
  ip netns exec "$(ns "$net")" env "${e[@]}" "$bin" "${a[@]}" >> "$work/logs/$svc.log" 2>&1 &
  spawned=$!
}
spawned=
in_client() { ip netns exec "$(ns client)" "$@"; }
# wait_http WHAT URL SECONDS: polls URL from the client namespace.
wait_http() {
  local what=$1 url=$2 secs=$3 deadline
  deadline=$(( $(date +%s) + secs ))
  until in_client curl -fsS -o /dev/null --max-time 2 "$url" 2> /dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then bad "$what did not answer $url in ${secs}s"; return 1; fi
    sleep 0.5
  done
  ok "$what answers $url"
}

start prometheus prometheus "$PROMETHEUS"
pids+=("$spawned")
start jaeger jaeger "$JAEGER"
pids+=("$spawned")
ip netns exec "$(ns loki)" "$PY" tests/bundle/otlp_log_receiver.py --listen 0.0.0.0:3100 \
  --out "$work/loki-records.jsonl" >> "$work/logs/loki-stand-in.log" 2>&1 &
pids+=($!)
backends=1
wait_http "prometheus" http://prometheus:9090/-/ready 60 || backends=0
wait_http "jaeger" http://jaeger:13133/status 60 || backends=0
wait_http "loki stand-in" http://loki:3100/ready 20 || backends=0
# The collector after its backends, as compose's depends_on orders it.
start otel-collector otel-collector "$OTELCOL"
pids+=("$spawned")
wait_http "otel-collector (health_check)" http://otel-collector:13133/ 60 || backends=0
if [ "$backends" = 0 ]; then
  for f in "$work"/logs/*.log; do echo "== $f"; tail -20 "$f"; done
  echo "$passed passed, $failed failed"
  exit 1
fi

events=$work/events
: > "$events"
event() { echo "$1 $(date +%s.%N)" >> "$events"; }
start_glasshouse() {
  local n=$1
  start glasshouse glasshouse "$BIN"
  glasshouse_pid=$spawned
  event "glasshouse$n-started"
  for _ in $(seq 100); do
    grep -q 'listening on https\?://' "$work/logs/glasshouse.log" 2> /dev/null && [ "$(grep -c 'listening on https\?://' "$work/logs/glasshouse.log")" -ge "$n" ] && break
    kill -0 "$glasshouse_pid" 2> /dev/null || break
    sleep 0.1
  done
  if wait_http "glasshouse #$n" http://glasshouse:8080/readyz 20; then event "glasshouse$n-ready"; else return 1; fi
}
# k6run SERVICE SECONDS-LIMIT [ENV=VALUE...]: a compose k6 service's command in the client namespace.
k6run() {
  local svc=$1 limit=$2 a e
  shift 2
  mapfile -t a < "$work/plan/$svc.args"
  mapfile -t e < "$work/plan/$svc.env"
  in_client env "${e[@]}" "$@" timeout "$limit" "$K6" "${a[@]}" --quiet --no-summary > "$work/logs/$svc.log" 2>&1
}

start_glasshouse 1 || { tail -20 "$work/logs/glasshouse.log"; exit 1; }
event load-start
# A client's mistakes beside k6's (whose scripts send only good requests):
# 404, 400 and 405 every 2 s for 20 s, so the error panels have something.
# shellcheck disable=SC2016 # $0 and $@ are the inner shell's
in_client sh -c 'u=$0; for i in 1 2 3 4 5 6 7 8 9 10; do
  curl -s -o /dev/null --max-time 2 "$@" "$u/no-such-file.js"
  curl -s -o /dev/null --max-time 2 "$@" -H "Content-Type: application/json" -d "{not json" "$u/api/echo"
  curl -s -o /dev/null --max-time 2 "$@" -X DELETE "$u/api/stats"
  sleep 2; done' "$gh_url" "${curl_tls[@]}" > /dev/null 2>&1 &
pids+=($!)
if k6run k6-load 120 DURATION_S="${REAL_LOAD_S:-30}" RATE_SCALE=0.3; then
  ok "k6 load.js (${REAL_LOAD_S:-30}s, remote-write to Prometheus) held its thresholds"
else bad "k6 load.js exited non-zero"; tail -20 "$work/logs/k6-load.log" | sed 's/^/      /'; fi
if k6run k6-ws 60 DURATION_S=10 VUS=3 MESSAGES=10; then
  ok "k6 ws.js (k6/websockets, 10s) held its thresholds"
else bad "k6 ws.js exited non-zero"; tail -20 "$work/logs/k6-ws.log" | sed 's/^/      /'; fi

# chaos.js (40 % one-second slow requests) with a SIGTERM in the middle.
event chaos-start
k6run k6-chaos 120 CHAOS_DURATION=36s RATE=20 &
k6_pid=$!
# A readiness poller, as Kubernetes would (every 200 ms, bounded).
in_client sh -c 'i=0; while [ $i -lt 300 ]; do printf "%s %s\n" "$(date +%s.%N)" "$(curl -s -o /dev/null -w "%{http_code}" --max-time 1 http://glasshouse:8080/readyz)"; sleep 0.2; i=$((i+1)); done' > "$work/readyz.log" 2>&1 &
poller_pid=$!
pids+=("$poller_pid")
sleep 12
event sigterm
kill -TERM "$glasshouse_pid"
code=""
for _ in $(seq 250); do   # drain timeout (10 s) + flush, bounded at 25 s
  if ! kill -0 "$glasshouse_pid" 2> /dev/null; then wait "$glasshouse_pid"; code=$?; break; fi
  sleep 0.1
done
event exited
if [ "$code" = 0 ]; then ok "glasshouse exited 0 after SIGTERM under load"
elif [ -z "$code" ]; then bad "glasshouse still running 25 s after SIGTERM"; kill -KILL "$glasshouse_pid"
else bad "glasshouse exited $code after SIGTERM"; fi
glasshouse_pid=""
echo "exit ${code:-none}" >> "$events"
start_glasshouse 2 || { tail -20 "$work/logs/glasshouse.log"; }
wait "$k6_pid"
k6_code=$?
event chaos-end
# chaos.js has no thresholds: its exit code says only that k6 ran.
[ "$k6_code" = 0 ] && ok "k6 chaos.js ran through the SIGTERM and the restart" || bad "k6 chaos.js exited $k6_code"
kill "$poller_pid" 2> /dev/null

# Until the span metrics' flush (15 s), the exporters' batches (2 s) and a
# scrape (5 s) have landed; light traffic meanwhile so rates have two points.
k6run k6-load 60 DURATION_S=24 RATE_SCALE=0.1 || bad "k6 load.js (settle phase) exited non-zero"
event settled

# --------------------------------------------------------------- 3. check --
echo "--- check"
in_client "$PY" tests/bundle/real_checks.py --repo "$repo" --work "$work" \
  --jaeger http://jaeger:16686 --prometheus http://prometheus:9090 > "$work/logs/checks.log" 2>&1
checks_rc=$?
cat "$work/logs/checks.log"
p=$(grep -c '^ok   ' "$work/logs/checks.log")
f=$(grep -c '^FAIL ' "$work/logs/checks.log")
[ "$checks_rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
passed=$((passed + p))
failed=$((failed + f))

# Under HTTPS the load really went over TLS: handshakes counted by the
# server, scraped through the plain metrics listener.
if [ -n "${REAL_TLS:-}" ]; then
  hs=$(in_client curl -s --max-time 5 http://prometheus:9090/api/v1/query \
    --data-urlencode 'query=sum(glasshouse_tls_handshakes_total{job="glasshouse"})' \
    | "$PY" -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2> /dev/null)
  if [ "${hs:-0}" -gt 0 ]; then ok "HTTPS: Prometheus has $hs TLS handshakes, scraped from the metrics listener"
  else bad "HTTPS: no TLS handshake counted in Prometheus (sum(glasshouse_tls_handshakes_total) = ${hs:-none})"; fi
fi

# The restarted server stops cleanly too.
kill -TERM "$glasshouse_pid"
code=""
for _ in $(seq 250); do
  if ! kill -0 "$glasshouse_pid" 2> /dev/null; then wait "$glasshouse_pid"; code=$?; break; fi
  sleep 0.1
done
glasshouse_pid=""
[ "$code" = 0 ] && ok "restarted glasshouse exited 0 on the final SIGTERM" || bad "restarted glasshouse: exit ${code:-none (still running)}"
if [ "$failed" -gt 0 ]; then
  for f in "$work"/logs/{otel-collector,jaeger,prometheus,loki-stand-in,glasshouse}.log; do
    echo "== tail $f"; tail -8 "$f" | cut -c1-300
  done
fi
log "$(( $(date +%s) - started )) s; logs in ${work#"$repo"/}/logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
