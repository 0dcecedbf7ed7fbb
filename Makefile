# One short list of commands; .ci/run calls the same ones.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: help install test-deps format lint stubtest test test-rust test-py test-py-portable test-py-inline test-locust-floor test-last bench smoke dev

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# FEATURES: cargo features of locust_rs._native, e.g. FEATURES=test-hooks for the test suite's panic hook (.ci/run)
FEATURES ?=

install:  ## build (release) and install locust-rs and the voiceassist-demo program, with pinned dependencies
	$(PIP) install -c constraints.txt ./crates/voiceassist-demo
	MATURIN_PEP517_ARGS="$(if $(FEATURES),--features $(FEATURES))" $(PIP) install -c constraints.txt .

# schemathesis goes in a directory of its own, for tests/test_demo_openapi.py's subprocess only:
# installed beside the suite, its pytest plugin breaks gevent's ssl patching.
test-deps:  ## install the pinned test tools
	@echo "== $@ starts at $$(date +%T)"
	$(PIP) install -c constraints.txt pytest pytest-timeout hypothesis ruff trustme hypercorn websockets websocket-client pysocks mypy selenium
	$(PIP) install -q -c constraints.txt --upgrade --target .schemathesis-deps schemathesis
	$(PIP) install -c constraints.txt hdrhistogram pandas matplotlib nbclient nbformat ipykernel
	$(PIP) install -c constraints.txt "locust[otel]"

format:  ## format Rust and Python
	cargo fmt --all
	ruff format .
	ruff check --fix .

lint:  ## check formatting, lints and types (Rust and Python)
	@echo "== $@ starts at $$(date +%T)"
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	ruff check .
	ruff format --check .
	$(PY) scripts/check_imports.py
	$(PY) -m mypy

stubtest:  ## check python/locust_rs/_native.pyi against the installed native module (mypy's stubtest)
	@echo "== $@ starts at $$(date +%T)"
	cd tests && $(PY) -m mypy.stubtest locust_rs._native --allowlist stubtest-allowlist.txt --ignore-unused-allowlist

test-rust:  ## cargo tests of every crate of the workspace
	@echo "== $@ starts at $$(date +%T)"
	cargo test --workspace

test-py:  ## pytest suite against the installed package: the fast tiers first (stopping at a failure), then e2e
	@echo "== $@ starts at $$(date +%T)"
	$(PY) -m pytest -x -m "unit or contract or demo" tests
	@echo "== $@ (e2e, two shards side by side) starts at $$(date +%T)"
	$(PY) scripts/side_by_side.py --pytest-shards 2 -m e2e tests

test-py-portable:  ## the tests that exercise the wakeup, again as on macOS: the engine's own thread and a pipe
	@echo "== $@ starts at $$(date +%T)"
	LOCUST_RS_ENGINE=thread LOCUST_RS_WAKEUP=pipe $(PY) -m pytest -m wakeup tests

test-py-inline:  ## the same tests on the engine on the Python thread (LOCUST_RS_ENGINE=inline, opt-in)
	@echo "== $@ starts at $$(date +%T)"
	LOCUST_RS_ENGINE=inline $(PY) -m pytest -m wakeup tests

test-locust-floor:  ## the lowest Locust we declare, in a fresh venv: the smoke run, contract, web UI and browser tests
	@echo "== $@ starts at $$(date +%T)"
	PY=$(PY) FEATURES=$(FEATURES) bash scripts/test_locust_floor.sh

test-last:  ## the pipe and inline passes, one after the other, beside the Locust floor job (all mostly wait)
	$(PY) scripts/side_by_side.py \
		"$(MAKE) --no-print-directory test-py-portable && $(MAKE) --no-print-directory test-py-inline" \
		"$(MAKE) --no-print-directory test-locust-floor"

test: test-deps lint stubtest test-rust test-py test-last  ## the whole test suite (after `make install`)

smoke:  ## the main job: the VoiceAssist suite's smoke test (locustfiles/) against the bundled demo server, 20 s
	PY=$(PY) bash locustfiles/run-tests.sh smoke --run-time=20s --headless
	$(PY) scripts/check_results.py

bench:  ## side-by-side benchmark against Locust's own users (needs nginx: apt-get install nginx)
	$(PY) benchmarks/run.py --users 50,200 --duration 15

dev:  ## editable install for development
	$(PIP) install -c constraints.txt --no-build-isolation ./crates/voiceassist-demo -e .
