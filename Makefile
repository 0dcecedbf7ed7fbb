# One short list of commands; .ci/run calls the same ones.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: help install test-deps format lint test test-rust test-py bench smoke dev

help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## build (release) and install the package with its pinned dependencies
	$(PIP) install -c constraints.txt .

test-deps:  ## install the pinned test tools
	$(PIP) install -c constraints.txt pytest pytest-timeout ruff trustme hypercorn
	$(PIP) install -c constraints.txt hdrhistogram pandas matplotlib nbclient nbformat ipykernel

format:  ## format Rust and Python
	cargo fmt
	ruff format .
	ruff check --fix .

lint:  ## check formatting and lints (Rust and Python)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	ruff check .
	ruff format --check .

test-rust:  ## cargo tests of the native crate
	cargo test

test-py:  ## pytest suite against the installed package
	$(PY) -m pytest tests

test: test-deps lint test-rust test-py  ## the whole test suite (after `make install`)

smoke:  ## the main job: the example locustfile against a local target, headless, a few seconds
	bash examples/smoke.sh

bench:  ## side-by-side benchmark against Locust's own users (needs nginx: apt-get install nginx)
	$(PY) benchmarks/run.py --users 50,200 --duration 15

dev:  ## editable install for development
	$(PIP) install -c constraints.txt --no-build-isolation -e .
