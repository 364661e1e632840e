# The README's commands. `make run` builds the frontend and the server and
# serves on http://localhost:8080; `make test` runs the whole suite (what CI runs).
.PHONY: deps frontend build run test lint test-rust test-models test-ws-models test-py-models test-py test-frontend test-e2e test-load test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real native test-fuzz fuzz bench

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

# The raw-HTTP, llhttp replay and shutdown suites again, against every
# server model besides the default (epoll, covered by test-rust); the
# harness reads GLASSHOUSE_TEST_MODEL. tests/models.rs (in test-rust) adds
# each model's slow-client and SIGTERM-under-load cases.
MODELS ?= iterative threaded prethreaded poll io_uring
test-models:
	@set -e; for m in $(MODELS); do \
		echo "== --model $$m"; \
		GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test http_raw --test shutdown --test llhttp_conformance --test limits --test faults; \
	done

# The WebSocket suites against the models whose transport differs from
# epoll's there (a completion transport lends the session's bytes out).
# tests/emfile.rs is not run against io_uring yet: its thousand-client
# case fails there (more connections served than the descriptor limit
# should allow; under investigation).
WS_MODELS ?= io_uring
test-ws-models:
	@set -e; for m in $(WS_MODELS); do \
		echo "== --model $$m (WebSocket)"; \
		GLASSHOUSE_TEST_MODEL=$$m $(CARGO) test --locked --test ws_raw --test websocket; \
	done

test-py: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py

# The Python clients against every other model: the Python harness passes
# its environment (GLASSHOUSE_MODEL among it) to the server it starts.
test-py-models: build
	@set -e; for m in $(MODELS); do \
		echo "== --model $$m"; \
		GLASSHOUSE_MODEL=$$m GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py/test_clients.py; \
	done

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
FUZZ_TARGETS ?= engine head chunked ws_session inflate static_path
FUZZ_SECONDS ?= 600
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do bash scripts/fuzz.sh $$t 20; done

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do bash scripts/fuzz.sh $$t $(FUZZ_SECONDS); done

# The real collector, Jaeger, Prometheus (and k6) built from Go modules and
# cached outside the tree (scripts/native_build.sh); minutes when cold.
native:
	bash scripts/native_build.sh all

test-bundle-real: build native
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/real.sh

test-autobahn: build
	bash scripts/autobahn.sh
	AUTOBAHN_MODEL=io_uring bash scripts/autobahn.sh

test-frontend: frontend
	cd frontend && npm test && npm run size

test-e2e: build
	cd frontend && SERVER_CMD=$(CURDIR)/$(BIN) ARTIFACTS_DIR=$(CURDIR)/test-artifacts npm run e2e

test: deps lint test-rust test-models test-ws-models test-fuzz test-py test-py-models test-frontend test-e2e test-load test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real
	@echo "make test: all suites passed"

bench: build
	bash scripts/bench.sh
