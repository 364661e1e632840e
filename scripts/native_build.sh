#!/usr/bin/env bash
# Builds the bundle's real programs from Go modules and caches them by version
# OUTSIDE the work tree, so a second run (and CI on the same machine) reuses
# them:
#
#   otelcol     the OpenTelemetry Collector, built by the Collector Builder
#               (ocb) from deploy/native/otelcol-builder.yaml, at the release
#               of COLLECTOR_IMAGE in .env
#   jaeger      Jaeger v2 (cmd/jaeger) from the wrapper deploy/native/jaeger
#   prometheus  Prometheus 3 and promtool from the wrapper deploy/native/prometheus
#               (built with -tags remove_all_sd: static, file and http
#               service discovery only, which is what deploy/prometheus.yml uses)
#   k6          k6 (go.k6.io/k6 at K6_NATIVE_VERSION in .env), one that knows
#               the k6/websockets module that k6/ws.js imports
#   kustomize   kustomize (sigs.k8s.io/kustomize/kustomize/v5 at
#               KUSTOMIZE_VERSION in .env), which renders deploy/k8s-tls for
#               the static checks
#
#   scripts/native_build.sh [otelcol|jaeger|prometheus|k6|kustomize|all]...   # build what is missing
#   scripts/native_build.sh --path NAME                            # build if needed, print its bin dir
#
# Cache: $GLASSHOUSE_CACHE, else /var/cache/glasshouse as root, else
# ~/.cache/glasshouse; one directory per program, version and recipe hash
# (<name>-<version>-<hash of the manifest/wrapper, RECIPE and the Go version>)
# holding bin/ and a .complete stamp written last. Builds run under `nice`,
# hold a lock per program, and never touch the work tree (they build in a
# copy under the cache). Needs Go and its module proxy (installs Debian's
# golang-go when there is no go; Go fetches a newer toolchain if a module
# asks for one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
native=$repo/deploy/native

if [ -n "${GLASSHOUSE_CACHE:-}" ]; then
  cache=$GLASSHOUSE_CACHE
elif [ "$(id -u)" = 0 ]; then
  cache=/var/cache/glasshouse
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/glasshouse
fi
log() { echo "native_build: $*" >&2; }
die() { log "$*"; exit 2; }

if ! command -v go > /dev/null; then
  # Debian's Go; a module that needs a newer one makes it fetch that
  # toolchain from the module proxy (GOTOOLCHAIN=auto, Go's default).
  log "go not found: apt-get install golang-go"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq > /dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends golang-go > /dev/null \
    || die "could not install Go"
fi
export GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0
gover=$(go env GOVERSION)

# KEY from .env (KEY=value lines; the same file docker compose reads).
env_value() {
  sed -n "s/^$1=//p" "$repo/.env" | tail -1
}
image_tag() { local v; v=$(env_value "$1"); [ -n "$v" ] || die ".env has no $1"; echo "${v##*:}"; }

# Versions, and the Go versions they correspond to (checked, not assumed).
collector_version() {
  local tag m
  tag=$(image_tag COLLECTOR_IMAGE)
  m=$(sed -n 's/^  version: //p' "$native/otelcol-builder.yaml")
  [ "$m" = "$tag" ] || die "otelcol-builder.yaml dist.version $m != COLLECTOR_IMAGE tag $tag"
  if grep -E '^\s+- gomod: ' "$native/otelcol-builder.yaml" | grep -qv " v$tag\$"; then
    die "otelcol-builder.yaml: every component must be at v$tag"
  fi
  echo "$tag"
}
jaeger_version() {   # image 2.M.P <-> Go module v1.(M+63).P
  local tag req maj min pat
  tag=$(image_tag JAEGER_IMAGE)
  IFS=. read -r maj min pat <<< "$tag"
  [ "$maj" = 2 ] || die "JAEGER_IMAGE $tag is not Jaeger v2"
  req=$(sed -n 's/^require github.com\/jaegertracing\/jaeger //p' "$native/jaeger/go.mod")
  [ "$req" = "v1.$((min + 63)).$pat" ] || die "deploy/native/jaeger/go.mod requires $req, JAEGER_IMAGE $tag is v1.$((min + 63)).$pat"
  echo "$tag"
}
prometheus_version() {   # image v3.M.P <-> Go module v0.3MM.P
  local tag req maj min pat
  tag=$(image_tag PROMETHEUS_IMAGE)
  tag=${tag#v}
  IFS=. read -r maj min pat <<< "$tag"
  [ "$maj" = 3 ] || die "PROMETHEUS_IMAGE $tag is not Prometheus 3"
  req=$(sed -n 's/^require github.com\/prometheus\/prometheus //p' "$native/prometheus/go.mod")
  [ "$req" = "$(printf 'v0.3%02d.%s' "$min" "$pat")" ] || die "deploy/native/prometheus/go.mod requires $req, PROMETHEUS_IMAGE is $tag"
  echo "$tag"
}
k6_version() {
  local v
  v=$(env_value K6_NATIVE_VERSION)
  [ -n "$v" ] || die ".env has no K6_NATIVE_VERSION"
  echo "$v"
}
kustomize_version() {
  local v
  v=$(env_value KUSTOMIZE_VERSION)
  [ -n "$v" ] || die ".env has no KUSTOMIZE_VERSION"
  echo "$v"
}

# Bump when a change to this script changes what it builds (flags, tags,
# steps), so cached builds of the old recipe are not reused.
RECIPE=1
recipe_hash() {   # NAME FILES...: the files' contents (not their paths), the recipe, the Go version
  local name=$1
  shift
  { cat "$@"; echo "$name recipe $RECIPE $gover"; } | sha256sum | cut -c1-12
}

# dir_for NAME: the cache directory for the current recipe of NAME.
dir_for() {
  local name=$1 v h
  case "$name" in
    otelcol) v=$(collector_version); h=$(recipe_hash otelcol "$native/otelcol-builder.yaml") ;;
    jaeger) v=$(jaeger_version); h=$(recipe_hash jaeger "$native/jaeger/go.mod") ;;
    prometheus) v=$(prometheus_version); h=$(recipe_hash prometheus "$native/prometheus/go.mod") ;;
    k6) v=$(k6_version); h=$(recipe_hash k6 /dev/null) ;;
    kustomize) v=$(kustomize_version); h=$(recipe_hash kustomize /dev/null) ;;
    *) die "unknown program $name (otelcol, jaeger, prometheus, k6, kustomize)" ;;
  esac
  echo "$cache/$name-$v-$h"
}

build_otelcol() {   # $1 = cache dir
  local d=$1 v
  v=$(collector_version)
  GOBIN=$d/work/tools nice -n 10 go install "go.opentelemetry.io/collector/cmd/builder@v$v"
  cp "$native/otelcol-builder.yaml" "$d/work/manifest.yaml"
  (cd "$d/work" && nice -n 10 ./tools/builder --config manifest.yaml)
  install -m 0755 "$d/work/dist/otelcol-glasshouse" "$d/bin/otelcol-glasshouse"
}

# A wrapper module: copy it (go.sum is resolved in the copy, -mod=mod), build its tools.
build_wrapper() {   # $1 = cache dir, $2 = wrapper dir, $3 = -tags value, $4 = ldflags, rest = packages
  local d=$1 src=$2 tags=$3 ldflags=$4
  shift 4
  cp "$src/go.mod" "$d/work/go.mod"
  (cd "$d/work" && nice -n 10 go build -mod=mod -tags "$tags" -ldflags "$ldflags" -o "$d/bin/" "$@")
}

build_jaeger() {
  local d=$1 v
  v=$(jaeger_version)
  build_wrapper "$d" "$native/jaeger" "" \
    "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$v" \
    github.com/jaegertracing/jaeger/cmd/jaeger
}

build_prometheus() {
  local d=$1 v pv=github.com/prometheus/common/version
  v=$(prometheus_version)
  build_wrapper "$d" "$native/prometheus" "netgo remove_all_sd" \
    "-X $pv.Version=$v -X $pv.Revision=v$v -X $pv.Branch=release -X $pv.BuildUser=glasshouse" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
}

build_k6() {
  local d=$1
  GOBIN=$d/bin nice -n 10 go install "go.k6.io/k6@v$(k6_version)"
}

build_kustomize() {
  local d=$1
  GOBIN=$d/bin nice -n 10 go install "sigs.k8s.io/kustomize/kustomize/v5@v$(kustomize_version)"
}

# ensure NAME: build into the cache unless a complete build is there.
ensure() {
  local name=$1 d t0
  d=$(dir_for "$name")
  if [ -f "$d/.complete" ]; then
    return 0
  fi
  mkdir -p "$cache"
  exec 9> "$cache/$name.lock"
  flock 9
  if [ ! -f "$d/.complete" ]; then
    t0=$(date +%s)
    log "building $name into $d ($gover; this takes minutes on a cold machine)"
    rm -rf "$d"
    mkdir -p "$d/bin" "$d/work"
    if ! "build_$name" "$d" >&2; then
      rm -rf "$d"
      die "building $name failed"
    fi
    rm -rf "$d/work"
    echo "built $(date -u +%FT%TZ) in $(( $(date +%s) - t0 )) s with $gover" > "$d/.complete"
    log "$name built in $(( $(date +%s) - t0 )) s"
  fi
  exec 9>&-
}

if [ "${1:-}" = "--path" ]; then
  [ $# -eq 2 ] || die "usage: $0 --path NAME"
  ensure "$2"
  echo "$(dir_for "$2")/bin"
  exit 0
fi
progs=("$@")
[ ${#progs[@]} -gt 0 ] || progs=(all)
for p in "${progs[@]}"; do
  if [ "$p" = all ]; then
    for q in otelcol jaeger prometheus k6 kustomize; do ensure "$q"; done
  else
    ensure "$p"
  fi
done
for p in otelcol jaeger prometheus k6 kustomize; do
  d=$(dir_for "$p")
  [ -f "$d/.complete" ] && log "$p: $d ($(cat "$d/.complete"))"
done
exit 0
