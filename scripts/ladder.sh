#!/usr/bin/env bash
# `make ladder`: every --model against the same wrk load at each concurrency
# (scripts/ladder.py), then the plot (scripts/ladder_plot.py, matplotlib).
# Needs a quiet machine for real figures. Settings by environment:
#   MODELS=iterative,forking,...  CONC=20,50,...,10000  DUR=10 (s per point)
#   WORKERS=2 (epoll, threads of other models)  POOL=64 (prethreaded, preforked)
#   OUT=docs/ladder (where ladder.tsv, ladder.svg and ladder.png go)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/glasshouse}
[ -x "$BIN" ] || cargo build --release --locked
command -v wrk >/dev/null || { echo "ladder: needs wrk (apt-get install wrk)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
OUT=${OUT:-docs/ladder}
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
python3 scripts/ladder.py --bin "$BIN" --out "$OUT" --root "$ROOT" \
  --models "${MODELS:-iterative,forking,preforked,threaded,prethreaded,prethreaded:queue,poll,epoll,io_uring}" \
  --conc "${CONC:-20,50,100,200,500,1000,2000,5000,10000}" \
  --dur "${DUR:-10}" --workers "${WORKERS:-2}" --pool "${POOL:-64}"
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
python3 scripts/ladder_plot.py "$OUT/ladder.tsv" "$OUT"
