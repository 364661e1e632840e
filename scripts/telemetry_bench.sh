#!/usr/bin/env bash
# What telemetry costs: requests/s with telemetry off, metrics only, and
# metrics + traces at 10 % and 100 % sampling, measured round-robin with wrk
# in one run (the four servers run side by side, exporting to a local OTLP
# sink). Prints a markdown table of medians and per-round ratios to "off".
# Env: REPS (3), DUR (10s), CONNS (64), PATHS ("/healthz /1k.txt").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/glasshouse}
[ -x "$BIN" ] || cargo build --release --locked
REPS=${REPS:-3} DUR=${DUR:-10s} CONNS=${CONNS:-64} PATHS=${PATHS:-"/healthz /1k.txt"}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

mkdir -p "$work/www"
head -c 1024 /dev/urandom | base64 -w 64 | head -c 1024 > "$work/www/1k.txt"

sink=$(free_port)
python3 scripts/otlp_sink.py "$sink" 2>"$work/sink.log" &
pids+=($!)
wait_port "$sink"

variants=(off metrics traces10 traces100)
declare -A port
for v in "${variants[@]}"; do
  port[$v]=$(free_port)
  env_args=(env -u OTEL_EXPORTER_OTLP_ENDPOINT OTEL_LOGS_EXPORTER=none)
  case $v in
    off) ;;
    metrics) env_args+=("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink" OTEL_TRACES_EXPORTER=none) ;;
    traces10) env_args+=("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink" OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1) ;;
    traces100) env_args+=("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink" OTEL_TRACES_SAMPLER=parentbased_always_on) ;;
  esac
  "${env_args[@]}" "$BIN" --listen "127.0.0.1:${port[$v]}" --root "$work/www" --workers 2 --log-level warn 2>"$work/$v.log" &
  pids+=($!)
  wait_port "${port[$v]}"
done

tsv=$work/results.tsv
for rep in $(seq "$REPS"); do
  for path in $PATHS; do
    for v in "${variants[@]}"; do
      out=$(wrk --latency -t2 -c"$CONNS" -d"$DUR" "http://127.0.0.1:${port[$v]}$path")
      rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
      p99=$(awk '/^ +99%/{print $2}' <<<"$out")
      bad=$(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ' | tr '\n' ';' || true)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$path" "$rep" "$rps" "$p99" "$bad" >> "$tsv"
      sleep 0.5
    done
  done
done

python3 - "$tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
variants = ["off", "metrics", "traces10", "traces100"]
label = {"off": "telemetry off", "metrics": "metrics only (OTLP)", "traces10": "metrics + traces, 10 % sampled", "traces100": "metrics + traces, 100 % sampled"}
paths = sorted({r[1] for r in rows}, key=lambda p: [r[1] for r in rows].index(p))
print("| path | telemetry | req/s median (min-max) | p99 | x off (per-round median) | notes |")
print("|---|---|---|---|---|---|")
for path in paths:
    by = {v: [r for r in rows if r[0] == v and r[1] == path] for v in variants}
    base = {r[2]: float(r[3]) for r in by["off"]}
    for v in variants:
        rps = [float(r[3]) for r in by[v]]
        ratios = [float(r[3]) / base[r[2]] for r in by[v] if base.get(r[2])]
        notes = " ".join(sorted({r[5] for r in by[v] if r[5]}))
        p99 = "/".join(r[4] for r in by[v])
        print(f"| {path} | {label[v]} | {statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f}) | {p99} | {statistics.median(ratios):.3f} | {notes} |")
PY
for v in "${variants[@]}"; do
  echo "$v: $(grep -c WARN "$work/$v.log" || true) warnings; dropped: $(curl -s "http://127.0.0.1:${port[$v]}/metrics" | grep '^glasshouse_telemetry_dropped_total' | tr '\n' ' ')"
done
kill "${pids[0]}" 2>/dev/null || true
sleep 0.5
cat "$work/sink.log"
