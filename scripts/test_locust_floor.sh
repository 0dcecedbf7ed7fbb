#!/usr/bin/env bash
# The lowest Locust release locust-rs declares (locust_rs/_locust_version.py), tested as a user with Locust pinned
# there meets it: a fresh venv with that Locust and our wheels, the suite's smoke run against the bundled demo
# server, and the tests that depend most on Locust's own code (the contract tests against Locust's clients, the
# web UI in a browser, the names locust-rs relies on, a locustfile with every kind of user). The newest Locust is
# the one constraints.txt pins, which `make test` runs everything against.
#
#   bash scripts/test_locust_floor.sh          # FEATURES=test-hooks as in .ci/run; LOCUST_FLOOR to try another
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
floor="${LOCUST_FLOOR:-$("$PY" -c 'import re; print(re.search(r"RANGE = \">=([0-9.]+),", open("python/locust_rs/_locust_version.py").read()).group(1))')}"
work="${LOCUST_FLOOR_DIR:-target/locust-floor}"
rm -rf "$work" && mkdir -p "$work/wheels"

# The wheels: the release build `make install` made is reused (same profile and features), so this only packs it.
MATURIN_PEP517_ARGS="${FEATURES:+--features $FEATURES}" "$PY" -m pip wheel -q --no-deps -w "$work/wheels" .
"$PY" -m pip wheel -q --no-deps -w "$work/wheels" ./crates/voiceassist-demo

# The pinned set, with Locust at the floor (its other requirements are within constraints.txt's pins).
sed "s/^locust==.*/locust==$floor/" constraints.txt >"$work/constraints.txt"
"$PY" -m venv "$work/venv"
venv_py="$work/venv/bin/python"
"$venv_py" -m pip install -q --disable-pip-version-check -c "$work/constraints.txt" "locust==$floor" "$work"/wheels/*.whl \
    pytest pytest-timeout trustme hypercorn websockets websocket-client pysocks selenium
"$venv_py" -c 'import locust, locust_rs; print("Locust", locust.__version__, "with locust_rs", locust_rs.__version__)'

# The main job, as the README runs it, with this venv's Python.
# The smoke run ends once chat answers have come over HTTP and the WebSocket (tests/stop_when.py; 10 s at most)
STOP_WHEN="requests('/api/chat/query') >= 3 and requests('ws: message')" PY="$venv_py" RESULTS_DIR="$work/results" \
    bash locustfiles/run-tests.sh smoke --run-time=10s --headless -- -f locustfiles/locustfile.py,tests/stop_when.py
RESULTS_DIR="$work/results" "$venv_py" scripts/check_results.py "$work/results"

"$venv_py" -m pytest -p no:cacheprovider tests/test_locust_compat.py tests/test_contract_fasthttp.py \
    tests/test_contract_httpsession.py tests/test_web_ui.py tests/test_web_ui_browser.py
