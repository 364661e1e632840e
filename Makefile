# The README's commands. `make run` builds the frontend and the server and
# serves on http://localhost:8080; `make test` runs the whole suite (what CI runs).
.PHONY: soak ladder deps frontend build run test lint test-rust test-models test-ws-models test-tls-suites test-py-models test-py-tls test-py test-frontend test-e2e test-load test-usertcp test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real native test-fuzz fuzz bench

CARGO ?= cargo
BIN := target/release/glasshouse

deps:
	bash scripts/deps.sh

frontend:
	@if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; fi

build: frontend
	$(CARGO) build --release --locked

run: build
	$(BIN) --listen 0.0.0.0:8080 --root frontend/dist

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) test --locked

# The raw-HTTP, llhttp replay, shutdown and HTTPS suites again, against every
# server model besides the default (epoll, covered by test-rust); the
# harness reads GLASSHOUSE_TEST_MODEL. tests/models.rs (in test-rust) adds
# each model's slow-client and SIGTERM-under-load cases.
# `prethreaded:queue` is prethreaded with `--prethreaded-accept queue`
# (an acceptor feeding the pool; the harness splits at the colon).
MODELS ?= iterative forking preforked threaded prethreaded prethreaded:queue poll io_uring
# TLS over every model (epoll's run is in test-rust): each transport holds
# a tls::Session. (A certificate reload under preforked
# replaces the pool, closing idle keep-alive sessions, as tests/tls.rs
# expects of it.)
# (Forking was left out while a child now and then hung on its first log
# line: the stderr lock, held by another thread at fork(2);
# sys::process::fork now holds it across the fork.)
TLS_MODELS ?= iterative forking preforked threaded prethreaded prethreaded:queue poll io_uring
# Out of descriptors (tests/emfile.rs) where one process holds many
# connections: not iterative (one connection at a time), forking and
# preforked (a process per connection never runs out), nor prethreaded
# (the harness's pool of 256 threads does not start within ulimit -n 64:
# the process fails with EMFILE at start, as it should).
EMFILE_MODELS ?= threaded poll io_uring
test-models:
	@set -e; for m in $(MODELS); do \
		echo "== --model $$m"; \
		GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test http_raw --test shutdown --test llhttp_conformance --test limits --test faults; \
		case " $(TLS_MODELS) " in *" $$m "*) GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test tls;; esac; \
		case " $(EMFILE_MODELS) " in *" $$m "*) GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test emfile;; esac; \
	done

# The WebSocket suites against the models whose transport differs from
# epoll's there (a completion transport lends the session's bytes out).
WS_MODELS ?= io_uring
test-ws-models:
	@set -e; for m in $(WS_MODELS); do \
		echo "== --model $$m (WebSocket)"; \
		GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test ws_raw --test websocket; \
	done

# The raw-HTTP, WebSocket, llhttp replay and shutdown suites again over
# TLS: with GLASSHOUSE_TEST_TLS=1 the harness gives every server it starts
# a test certificate (rcgen) and the suites' clients speak rustls (see
# tests/README.md). About 35 s per model on two cores once built. The
# readiness reactors (epoll, poll), the completion one (io_uring) and the
# two thread pools; forking, preforked (about 110 s: 256 processes) and
# prethreaded:queue pass too (TLS_SUITE_MODELS="forking preforked
# prethreaded:queue" make test-tls-suites) and are left out for CI's
# time: their TLS is in test-models (tests/tls.rs). Not iterative: the
# WebSocket suites hold one socket open while they open another.
TLS_SUITE_MODELS ?= epoll poll threaded prethreaded io_uring
test-tls-suites:
	@set -e; for m in $(TLS_SUITE_MODELS); do \
		echo "== --model $$m (over TLS)"; \
		GLASSHOUSE_TEST_TLS=1 GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test http_raw --test websocket --test ws_raw --test llhttp_conformance --test shutdown; \
	done

test-py: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py

# The Python clients (http.client, urllib, curl, websockets) over HTTPS:
# a certificate made at test time, Python's ssl trusting its CA.
test-py-tls: build
	GLASSHOUSE_TEST_TLS=1 GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py/test_clients.py tests/py/test_ws_interop.py

# The Python clients against every other model: the Python harness passes
# its environment (GLASSHOUSE_MODEL among it) to the server it starts.
test-py-models: build
	@set -e; for m in $(MODELS); do \
		echo "== --model $$m"; \
		case $$m in *:*) feed=$${m#*:};; *) feed=turn;; esac; \
		GLASSHOUSE_MODEL=$${m%%:*} GLASSHOUSE_PRETHREADED_ACCEPT=$$feed GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py/test_clients.py; \
	done

# The whole server over the userland TCP/IP stack (issue 13) on each link
# and each driver: a network namespace with a TUN device, then a veth pair
# with the stack on raw frames (AF_PACKET, ARP), and the shared-address
# topology the nft INPUT DROP rule is for; needs root (CI runs as root).
# Last, the raw
# HTTP, WebSocket, llhttp and shutdown suites over the user stack: every
# server the harness starts gets a namespace and TUN device of its own
# (tests/support/netns.rs); then the Python clients (http.client, urllib,
# curl) from a namespace of their own, a TUN device per server in it
# (tests/py/stack_mode.py).
test-usertcp: build
	bash tests/usertcp.sh $(CURDIR)/$(BIN) tun
	GLASSHOUSE_STACK_DRIVER=threaded bash tests/usertcp.sh $(CURDIR)/$(BIN) tun
	bash tests/usertcp.sh $(CURDIR)/$(BIN) packet
	GLASSHOUSE_STACK_DRIVER=threaded bash tests/usertcp.sh $(CURDIR)/$(BIN) packet
	bash tests/tcp_differential.sh $(CURDIR)/$(BIN)
	GLASSHOUSE_TEST_STACK=user $(CARGO) test --locked --test http_raw --test websocket --test ws_raw --test llhttp_conformance --test shutdown --test usertcp_spans
	@ns=gh-py-ut-$$$$; ip netns add $$ns && ip -n $$ns link set lo up && \
	{ ip netns exec $$ns env GLASSHOUSE_TEST_STACK=user GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py/test_clients.py; \
	  rc=$$?; ip netns del $$ns; exit $$rc; }

test-load: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/load_smoke.sh

test-prometheus: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash scripts/prometheus_smoke.sh

test-bundle:
	bash tests/bundle/check.sh

test-bundle-live: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/live.sh

# A short run of every fuzz target (cargo-fuzz, nightly); `make fuzz` runs
# each longer: FUZZ_SECONDS=600 make fuzz (or FUZZ_TARGETS=head make fuzz).
FUZZ_TARGETS ?= engine head chunked ws_session inflate static_path net_segment ether_frame
FUZZ_SECONDS ?= 600
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do bash scripts/fuzz.sh $$t 20; done

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do bash scripts/fuzz.sh $$t $(FUZZ_SECONDS); done

# The soak (not in CI): 30 minutes of mixed load, RSS/descriptors/threads
# sampled every 10 s, plot into bench-out/soak (matplotlib).
SOAK_MINUTES ?= 30
soak: build
	python3 scripts/soak.py $(BIN) --minutes $(SOAK_MINUTES)

# The real collector, Jaeger, Prometheus (and k6) built from Go modules and
# cached outside the tree (scripts/native_build.sh); minutes when cold.
native:
	bash scripts/native_build.sh all

# The plain stack, then the HTTPS one (docker-compose.tls.yml over it).
test-bundle-real: build native
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/real.sh
	REAL_TLS=1 GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/real.sh

# epoll and io_uring side by side, all 517 cases each (a runner per
# model: about the wall time of one on two cores; see docs/websocket.md).
test-autobahn: build
	AUTOBAHN_MODEL="epoll io_uring" bash scripts/autobahn.sh

test-frontend: frontend
	cd frontend && npm test && npm run size

test-e2e: build
	cd frontend && SERVER_CMD=$(CURDIR)/$(BIN) ARTIFACTS_DIR=$(CURDIR)/test-artifacts npm run e2e

test: deps lint test-rust test-models test-ws-models test-tls-suites test-fuzz test-py test-py-tls test-py-models test-frontend test-e2e test-usertcp test-load test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real
	@echo "make test: all suites passed"

# Every --model under the same load, table and plot in docs/ladder (see
# docs/ladder.md; needs a quiet machine).
ladder: build
	bash scripts/ladder.sh

bench: build
	bash scripts/bench.sh
