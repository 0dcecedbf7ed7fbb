# One short list of commands; .ci/run calls the same ones.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: help install test-deps format lint test test-rust test-py bench smoke dev

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## build (release) and install locust-rs and the voiceassist-demo program, with pinned dependencies
	$(PIP) install -c constraints.txt ./crates/voiceassist-demo .

# schemathesis goes in a directory of its own, for tests/test_demo_openapi.py's subprocess only:
# installed beside the suite, its pytest plugin breaks gevent's ssl patching.
test-deps:  ## install the pinned test tools
	$(PIP) install -c constraints.txt pytest pytest-timeout ruff trustme hypercorn websockets websocket-client pysocks
	$(PIP) install -q -c constraints.txt --upgrade --target .schemathesis-deps schemathesis
	$(PIP) install -c constraints.txt hdrhistogram pandas matplotlib nbclient nbformat ipykernel

format:  ## format Rust and Python
	cargo fmt
	ruff format .
	ruff check --fix .

lint:  ## check formatting and lints (Rust and Python)
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff check .
	ruff format --check .

test-rust:  ## cargo tests of every crate of the workspace
	cargo test --workspace

test-py:  ## pytest suite against the installed package
	$(PY) -m pytest tests

test: test-deps lint test-rust test-py  ## the whole test suite (after `make install`)

smoke:  ## the main job: the VoiceAssist suite's smoke test (locustfiles/) against the bundled demo server, 20 s
	PY=$(PY) bash locustfiles/run-tests.sh smoke --run-time=20s --headless
	$(PY) scripts/check_results.py

bench:  ## side-by-side benchmark against Locust's own users (needs nginx: apt-get install nginx)
	$(PY) benchmarks/run.py --users 50,200 --duration 15

dev:  ## editable install for development
	$(PIP) install -c constraints.txt --no-build-isolation ./crates/voiceassist-demo -e .
