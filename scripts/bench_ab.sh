#!/usr/bin/env bash
# Two glasshouse binaries side by side, alternated in one run: each round
# runs ../shared/bench/side-by-side.sh once (REPS=1) for OLD, then once for
# NEW, so both share the machine's noise; then prints per row the median
# req/s of each, the median of the per-round NEW/OLD ratios, p99 and CPU µs
# per request, and the geometric mean of the row ratios.
#   scripts/bench_ab.sh OLD_BIN NEW_BIN      (env: ROUNDS=3 DUR=10s ONLY=regex OUT=dir)
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench_ab.sh OLD_BIN NEW_BIN}
new=${2:?usage: bench_ab.sh OLD_BIN NEW_BIN}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$PWD/bench-out/ab}
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for who in old new; do
    bin=$old; [ "$who" = new ] && bin=$new
    echo "round $r: $who ($bin)" >&2
    REPS=1 OUT="$OUT/$who-$r" bash ../shared/bench/side-by-side.sh \
      "$bin --listen 127.0.0.1:{PORT} --root {ROOT} --workers 2 --log-level warn" >"$OUT/$who-$r.md"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import csv, math, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(who, r):
    rows = {}
    with open(f"{out}/{who}-{r}/results.tsv") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] != "candidate":
                continue
            rows[p[1]] = dict(rps=float(p[3] or 0), p99=p[5], err=p[6], cpu=p[8])
    return rows
old = [load("old", r) for r in range(1, rounds + 1)]
new = [load("new", r) for r in range(1, rounds + 1)]
print("| row | old req/s | new req/s | new/old (per-round median) | rounds | p99 old → new | CPU µs/req old → new |")
print("|---|---|---|---|---|---|---|")
logs = []
for row in old[0]:
    o = [x[row]["rps"] for x in old]; n = [x[row]["rps"] for x in new]
    ratios = [b / a for a, b in zip(o, n) if a]
    med = statistics.median(ratios)
    logs.append(math.log(med))
    flag = " ⚠ errors" if any(x[row]["err"] for x in old + new) else ""
    print(f"| {row} | {statistics.median(o):,.0f} | {statistics.median(n):,.0f} | **{med:.3f}** | "
          + " ".join(f"{x:.3f}" for x in ratios)
          + f" | {old[-1][row]['p99']} → {new[-1][row]['p99']} | {old[-1][row]['cpu']} → {new[-1][row]['cpu']} |{flag}")
print(f"\ngeometric mean of the row ratios: **{math.exp(sum(logs)/len(logs)):.3f}**")
PY
