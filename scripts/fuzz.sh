#!/usr/bin/env bash
# Runs a cargo-fuzz target of fuzz/ for a while.
#   scripts/fuzz.sh [TARGET] [SECONDS]     (default: engine 60)
# Environment:
#   FUZZ_SANITIZER  address (default) | none. `none` builds without
#                   AddressSanitizer but with debug assertions and overflow
#                   checks (cargo fuzz -a): the targets are safe Rust over
#                   safe Rust, so ASan guards only the unsafe in src/sys that
#                   they do not reach, and the count of executions goes up
#                   about tenfold for the same core-hour.
#   FUZZ_RUNS       stop after this many executions (libFuzzer -runs)
#                   instead of, or as well as, after SECONDS.
# New inputs go to a scratch corpus outside the work tree; the seeds in
# fuzz/corpus/TARGET are read, never written. The head and engine targets
# are also seeded with the llhttp vectors of ../shared, decoded at run time
# by tests/llhttp_conformance.rs into the cache (never into the repository). Builds are cached outside the
# work tree (by toolchain) so that a CI run on a fresh clone stays quick.
# cargo-fuzz needs a nightly toolchain (sanitizer flags): when none is
# installed and none can be installed, say so and stop without failing —
# the same invariants still run on stable in `cargo test --test engine`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-engine}
seconds=${2:-60}
cache=${GLASSHOUSE_CACHE:-$HOME/.cache/glasshouse}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
fi
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain here and none could be installed; skipped (stable replay runs in cargo test)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz >/dev/null
fi

nightly=$(rustup run nightly rustc --version | awk '{print $2 "-" $4}' | tr -d ')')
sanitizer=${FUZZ_SANITIZER:-address}
case "$sanitizer" in
  address) build_flags=() ;;
  none) build_flags=(-s none -a) ;;
  *) echo "fuzz: FUZZ_SANITIZER must be address or none, not '$sanitizer'" >&2; exit 2 ;;
esac
target_dir="$cache/fuzz-target-$nightly"
[ "$sanitizer" = address ] || target_dir="$target_dir-$sanitizer"
scratch="$cache/fuzz-corpus/$target"
mkdir -p "$target_dir" "$scratch"
corpora=("$scratch" "fuzz/corpus/$target")
if [ "$target" = head ] || [ "$target" = engine ]; then
  seeds="$cache/fuzz-llhttp"
  if [ ! -d "$seeds/$target" ] && [ -d ../shared/conformance/llhttp ]; then
    GLASSHOUSE_LLHTTP_SEEDS="$seeds" cargo test -q --locked --test llhttp_conformance \
      -- --exact the_fuzz_invariants_hold_on_the_llhttp_vectors >/dev/null
  fi
  [ -d "$seeds/$target" ] && corpora+=("$seeds/$target")
fi
limits=(-max_total_time="$seconds")
[ -n "${FUZZ_RUNS:-}" ] && limits+=(-runs="$FUZZ_RUNS")
log=$(mktemp)
echo "fuzz: $target for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs} (sanitizer $sanitizer, nightly $nightly, build cache $target_dir)"
set +e
cargo +nightly fuzz run --fuzz-dir fuzz --target-dir "$target_dir" "${build_flags[@]}" "$target" \
  "${corpora[@]}" -- "${limits[@]}" -print_final_stats=1 \
  >"$log" 2>&1
status=$?
set -e
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" || true
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz: $target FAILED (status $status); the crashing input is under fuzz/artifacts/$target"
  exit 1
fi
echo "fuzz: $target passed"
