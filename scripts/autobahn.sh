#!/usr/bin/env bash
# Runs the Autobahn TestSuite (fuzzingclient mode) against glasshouse's
# /ws/echo and fails unless every case passes (scripts/autobahn_check.py).
#
# Runner: PyPI's `autobahntestsuite` under CPython 2.7 (pyenv's 2.7.18, or a
# python2.7 on PATH), installed with that interpreter's pip into
# target/autobahn/py27 and loaded with site.addsitedir (its zope namespace
# package needs the .pth file processed). Without a Python 2.7, PyPI's
# `kosoku` (a Python 3 runner of the same case files) runs instead.
#
# Environment:
#   AUTOBAHN_CASES    space-separated case globs (default: 1.* .. 10.*, 12.*, 13.*)
#   AUTOBAHN_EXCLUDE  space-separated case globs to leave out (default: none)
#   AUTOBAHN_RUNNER   auto | wstest | kosoku (default: auto)
#   AUTOBAHN_PROFILE  release | debug (default: release)
#   AUTOBAHN_OUT      report directory (default: target/autobahn/reports)
#   AUTOBAHN_WORKERS  server workers (default: 2)
#   AUTOBAHN_MODEL    server model(s), --model; several, space-separated, run
#                     side by side, each reporting into AUTOBAHN_OUT/MODEL
#                     (default: epoll)
set -euo pipefail
cd "$(dirname "$0")/.."

# Autobahn has no groups 8 and 11 (kosoku refuses a pattern that matches nothing).
CASES=${AUTOBAHN_CASES:-"1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 12.* 13.*"}
EXCLUDE=${AUTOBAHN_EXCLUDE:-}
RUNNER=${AUTOBAHN_RUNNER:-auto}
PROFILE=${AUTOBAHN_PROFILE:-release}
WORK=target/autobahn
OUT=${AUTOBAHN_OUT:-$WORK/reports}
WORKERS=${AUTOBAHN_WORKERS:-2}
MODEL=${AUTOBAHN_MODEL:-epoll}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "autobahn: $*" >&2; }

# ---- the server binary --------------------------------------------------
if [ "$PROFILE" = release ]; then
  cargo build --release --locked --bin glasshouse >&2
else
  cargo build --locked --bin glasshouse >&2
fi
BIN=target/$PROFILE/glasshouse

# ---- the runner ---------------------------------------------------------
find_py27() {
  local p
  if command -v pyenv >/dev/null 2>&1; then
    p="$(pyenv root)/versions/2.7.18/bin/python"
    [ -x "$p" ] && { echo "$p"; return; }
  fi
  p="${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python"
  [ -x "$p" ] && { echo "$p"; return; }
  command -v python2.7 2>/dev/null || true
}

PY27=""
if [ "$RUNNER" != kosoku ]; then
  PY27=$(find_py27)
  if [ -z "$PY27" ] && [ "$RUNNER" = wstest ]; then
    log "AUTOBAHN_RUNNER=wstest but no CPython 2.7 found"; exit 2
  fi
fi

SITE27=$WORK/py27
wstest_ready() {
  "$PY27" -c "import site; site.addsitedir('$SITE27'); import autobahntestsuite.wstest" >/dev/null 2>&1
}
if [ -n "$PY27" ]; then
  if ! wstest_ready; then
    log "installing autobahntestsuite for $PY27 into $SITE27"
    "$PY27" -m pip --version >/dev/null 2>&1 || "$PY27" -m ensurepip --default-pip >&2
    "$PY27" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$SITE27" autobahntestsuite >&2
    wstest_ready || { log "autobahntestsuite does not import under $PY27"; exit 2; }
  fi
  RUNNER=wstest
else
  SITE3=$WORK/kosoku
  if ! PYTHONPATH=$SITE3 python3 -c "import kosoku._cli" >/dev/null 2>&1; then
    log "no CPython 2.7: installing kosoku into $SITE3"
    python3 -m pip install --quiet --disable-pip-version-check --target "$SITE3" kosoku >&2
  fi
  RUNNER=kosoku
fi

# ---- one run per model ------------------------------------------------
# run_model MODEL: its own server, report directory and logs, so that
# several models run side by side (the runner is one CPU-bound Python
# process per model; the server is mostly idle).
run_model() {
  local model=$1 out slog spec rlog root spid addr start end status
  out=$OUT
  [ "$NMODELS" -gt 1 ] && out=$OUT/$model
  mkdir -p "$out"
  slog=$WORK/server-$model.log
  spec=$WORK/fuzzingclient-$model.json
  rlog=$WORK/runner-$model.log
  root=$(mktemp -d)
  # 9.* sends messages of up to 16 MiB, which is the default --ws-max-message.
  "$BIN" --listen 127.0.0.1:0 --model "$model" --root "$root" --workers "$WORKERS" --log-format text 2>"$slog" &
  spid=$!
  # shellcheck disable=SC2064 # the values are this run's, fixed now
  trap "kill -TERM $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; rm -rf '$root'" EXIT
  addr=""
  for _ in $(seq 1 100); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$slog" | head -1 | sed 's|.*http://||' || true)
    [ -n "$addr" ] && break
    kill -0 "$spid" 2>/dev/null || { cat "$slog" >&2; log "$model: server exited"; return 2; }
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$slog" >&2; log "$model: server did not report its address"; return 2; }
  local url="ws://$addr/ws/echo"
  log "$model: runner $RUNNER against $url, cases: $CASES${EXCLUDE:+, excluding: $EXCLUDE}"

  # Only the runner's own files: AUTOBAHN_OUT may name a shared directory.
  rm -f "$out"/index.json "$out"/index.html "$out"/*_case_*.json "$out"/*_case_*.html
  start=$(date +%s)
  if [ "$RUNNER" = wstest ]; then
    python3 - "$spec" "$url" "$out" "$CASES" "$EXCLUDE" <<'EOF2'
import json, sys
spec, url, out, cases, exclude = sys.argv[1:]
json.dump({
    "outdir": out,
    "servers": [{"agent": "glasshouse", "url": url}],
    "cases": cases.split(),
    "exclude-cases": exclude.split(),
    "exclude-agent-cases": {},
}, open(spec, "w"), indent=2)
EOF2
    (cd "$WORK" && "$PY27" -c "
import site, sys
site.addsitedir('$SITE27')
sys.argv = ['wstest', '-m', 'fuzzingclient', '-s', '$spec']
from autobahntestsuite.wstest import run
run()
") >"$rlog" 2>&1 || { tail -30 "$rlog" >&2; log "$model: wstest failed"; return 1; }
  else
    local args=() c
    for c in $CASES; do args+=(-i "$c"); done
    for c in $EXCLUDE; do args+=(-x "$c"); done
    # kosoku exits non-zero when a case fails; the check below says which.
    PYTHONPATH=$WORK/kosoku python3 -c "
import sys
sys.argv = ['kosoku'] + sys.argv[1:]
from kosoku._cli import main
sys.exit(main())
" -m fuzzingclient -o "$out" "${args[@]}" "$url" >"$rlog" 2>&1 || true
  fi
  end=$(date +%s)
  log "$model: runner took $((end - start)) s (log: $rlog, reports: $out)"

  if ! kill -0 "$spid" 2>/dev/null; then
    log "$model: the server died during the run"; tail -30 "$slog" >&2; return 1
  fi
  status=0
  python3 scripts/autobahn_check.py "$out/index.json" --seconds "$((end - start))" \
    | sed "s/^/[$model] /" || status=$?
  return "$status"
}

# Each run in a subshell of its own (its EXIT trap stops its server);
# the script fails if any of them does, after all have finished.
read -r -a MODEL_LIST <<<"$MODEL"
NMODELS=${#MODEL_LIST[@]}
pids=()
for m in "${MODEL_LIST[@]}"; do
  ( run_model "$m" ) &
  pids+=($!)
done
worst=0
for i in "${!pids[@]}"; do
  st=0
  wait "${pids[$i]}" || st=$?
  if [ "$st" -ne 0 ]; then
    log "${MODEL_LIST[$i]}: FAILED (status $st)"
    [ "$st" -gt "$worst" ] && worst=$st
  fi
done
[ "$worst" -eq 0 ] && log "every model passed: ${MODEL_LIST[*]}"
exit "$worst"
