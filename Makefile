# The README's commands. `make run` builds the frontend and the server and
# serves on http://localhost:8080; `make test` runs the whole suite (what CI runs).
.PHONY: deps frontend build run test lint test-rust test-py test-frontend test-e2e test-load test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real native bench

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

test-py: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) python3 -m pytest -q tests/py

test-load: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/load_smoke.sh

test-prometheus: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash scripts/prometheus_smoke.sh

test-bundle:
	bash tests/bundle/check.sh

test-bundle-live: build
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/live.sh

# The real collector, Jaeger, Prometheus (and k6) built from Go modules and
# cached outside the tree (scripts/native_build.sh); minutes when cold.
native:
	bash scripts/native_build.sh all

test-bundle-real: build native
	GLASSHOUSE_BIN=$(CURDIR)/$(BIN) bash tests/bundle/real.sh

test-autobahn: build
	bash scripts/autobahn.sh

test-frontend: frontend
	cd frontend && npm test && npm run size

test-e2e: build
	cd frontend && SERVER_CMD=$(CURDIR)/$(BIN) ARTIFACTS_DIR=$(CURDIR)/test-artifacts npm run e2e

test: deps lint test-rust test-py test-frontend test-e2e test-load test-prometheus test-autobahn test-bundle test-bundle-live test-bundle-real
	@echo "make test: all suites passed"

bench: build
	bash scripts/bench.sh
