# syntax=docker/dockerfile:1.7
#
# glasshouse container image: three stages.
#   frontend  - Node builds the Vite frontend to frontend/dist
#   server    - Rust builds target/release/glasshouse; dependencies are compiled
#               in their own layer (stub sources) so editing src/ does not
#               rebuild the crate graph
#   runtime   - distroless "cc" (glibc + libgcc_s, no shell), non-root
#
# Build:  docker build -t glasshouse:0.1.0 \
#           --build-arg VERSION=$(git describe --always) \
#           --build-arg VCS_REF=$(git rev-parse HEAD) .

ARG RUST_VERSION=1.95
ARG NODE_VERSION=24

# ---------------------------------------------------------------- frontend --
FROM node:${NODE_VERSION}-trixie-slim AS frontend
WORKDIR /src/frontend
# Manifests first: the npm ci layer is reused until the lockfile changes.
COPY frontend/package.json frontend/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ------------------------------------------------------------------ server --
FROM rust:${RUST_VERSION}-slim-trixie AS server
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# 1) dependency layer: the real manifests with stub sources. This layer is
#    rebuilt only when Cargo.toml or Cargo.lock change. Cargo refuses a
#    manifest whose declared [[bench]]/[[test]]/[[example]] files are missing,
#    so each gets a stub too (they stay: `cargo build` never compiles them).
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && awk 'function flush() { if (kind != "") print (path != "" ? path : dir "/" name ".rs"); kind = "" } \
         /^\[\[(bench|test|example)\]\]/ { flush(); kind = $0; gsub(/[][]/, "", kind); \
           dir = (kind == "bench" ? "benches" : (kind == "test" ? "tests" : "examples")); name = ""; path = ""; next } \
         /^\[/ { flush(); next } \
         kind != "" && /^name *=/ { name = $0; sub(/^name *= *"/, "", name); sub(/".*/, "", name) } \
         kind != "" && /^path *=/ { path = $0; sub(/^path *= *"/, "", path); sub(/".*/, "", path) } \
         END { flush() }' Cargo.toml \
    | while read -r stub; do mkdir -p "$(dirname "$stub")" && echo 'fn main() {}' > "$stub"; done \
 && cargo build --release --locked \
 && rm -rf src \
           target/release/glasshouse* \
           target/release/deps/glasshouse-* \
           target/release/deps/libglasshouse-* \
           target/release/.fingerprint/glasshouse-*
# 2) the crate itself.
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked \
 && install -D -m 0755 target/release/glasshouse /out/glasshouse

# ----------------------------------------------------------------- runtime --
# distroless cc: glibc and libgcc_s (the release profile unwinds on panic),
# CA certificates, no shell, no package manager. Debian 13 matches the
# trixie build stage's glibc (tests/bundle checks the pairing).
FROM gcr.io/distroless/cc-debian13:nonroot AS runtime

ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="glasshouse" \
      org.opencontainers.image.description="An observable HTTP/1.1 + WebSocket server written on Linux syscalls" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="https://github.com/glasshouse/glasshouse" \
      org.opencontainers.image.documentation="docs/deployment.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian13:nonroot"

COPY --from=server /out/glasshouse /usr/local/bin/glasshouse
COPY --from=frontend /src/frontend/dist /srv/www

ENV GLASSHOUSE_LISTEN=0.0.0.0:8080 \
    GLASSHOUSE_ROOT=/srv/www \
    GLASSHOUSE_LOG_FORMAT=json \
    GLASSHOUSE_DRAIN_TIMEOUT=10 \
    OTEL_SERVICE_NAME=glasshouse

# 65532 is distroless's "nonroot" user.
USER 65532:65532
EXPOSE 8080

# Graceful drain on SIGTERM (exit 0 once drained). Orchestrators must allow
# longer than GLASSHOUSE_DRAIN_TIMEOUT before they SIGKILL
# (compose: stop_grace_period, Kubernetes: terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM

# The binary probes its own /healthz: no shell, curl or wget in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/glasshouse", "healthcheck"]

# --model io_uring needs a seccomp profile that allows io_uring_setup,
# io_uring_enter and io_uring_register (Docker's default blocks them:
# `docker run --security-opt seccomp=unconfined ...`, or a custom profile);
# refused, the server says so in one line and exits 2 (README).
# Exec form: glasshouse is PID 1 and receives the signals itself.
ENTRYPOINT ["/usr/local/bin/glasshouse"]
