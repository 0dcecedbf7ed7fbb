#!/usr/bin/env bash
# The main job: examples/locustfile.py against examples/target.py, headless, for a few seconds.
#
#   bash examples/smoke.sh            (or: make smoke)
#
# Results (CSV, HTML report, logs) go to results/example/. Exits non-zero if locust failed, made no requests or
# saw any failure. Environment: PY (python interpreter, default python3), USERS (default 20), RUN_TIME (default 5s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PY:-python3}"
USERS="${USERS:-20}"
RUN_TIME="${RUN_TIME:-5s}"
OUT="results/example"
# the target outlives the run by far but never the machine's patience
TARGET_LIFETIME=120
# -t plus start-up and shutdown; past this the run counts as hung
LOCUST_TIMEOUT=90

mkdir -p "$OUT"
rm -f "$OUT"/example_*.csv "$OUT/example.html"

target_pid=""
cleanup() {
    if [ -n "$target_pid" ] && kill -0 "$target_pid" 2>/dev/null; then
        kill "$target_pid" 2>/dev/null || true
        wait "$target_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --port 0: the target picks a free loopback port and prints it, so nothing can race us for it
"$PY" examples/target.py --port 0 --lifetime "$TARGET_LIFETIME" >"$OUT/target.log" 2>&1 &
target_pid=$!

host=""
for _ in $(seq 1 100); do
    host="$(sed -n 's/^target listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$OUT/target.log")"
    [ -n "$host" ] && break
    kill -0 "$target_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$host" ]; then
    echo "smoke: the target did not start; its log:" >&2
    cat "$OUT/target.log" >&2
    exit 1
fi

# coreutils timeout where there is one (not on stock macOS); -t bounds the run anyway. The odd expansion below
# keeps bash 3.2 (macOS) from calling an empty array unbound under `set -u`.
timeout_cmd=()
if command -v timeout >/dev/null 2>&1; then
    timeout_cmd=(timeout -k 10 "$LOCUST_TIMEOUT")
fi

echo "smoke: $USERS users for $RUN_TIME against $host"
rc=0
${timeout_cmd[@]+"${timeout_cmd[@]}"} "$PY" -m locust -f examples/locustfile.py --headless -u "$USERS" -r "$USERS" -t "$RUN_TIME" \
    --host "$host" --csv "$OUT/example" --html "$OUT/example.html" --only-summary \
    >"$OUT/locust.log" 2>&1 || rc=$?

stats="$OUT/example_stats.csv"
if [ ! -s "$stats" ]; then
    echo "smoke: FAILED, locust exited with $rc and wrote no $stats; end of its log:" >&2
    tail -n 30 "$OUT/locust.log" >&2
    exit 1
fi

# Columns are found by their header names, so a reordering by a future locust cannot shift the numbers. Locust
# rewrites the CSV once a second, not at shutdown, so these can miss the last second of the run; a failure in that
# second still shows in locust's exit code (non-zero whenever any request failed), which is checked too.
requests="" failures="" rps=""
read -r requests failures rps < <(awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $2 == "Aggregated" { printf "%d %d %.1f\n", $col["Request Count"], $col["Failure Count"], $col["Requests/s"] }
' "$stats") || true  # no Aggregated row: caught just below

echo "smoke: requests=${requests:-?} failures=${failures:-?} req/s=${rps:-?} (locust exit code $rc)"
echo "smoke: results in $OUT/ (example_stats.csv, example_failures.csv, example.html, locust.log)"

if [ "$rc" -ne 0 ] || [ -z "${requests:-}" ] || [ "$requests" -eq 0 ] || [ "${failures:-1}" -ne 0 ]; then
    echo "smoke: FAILED" >&2
    if [ -s "$OUT/example_failures.csv" ]; then
        cat "$OUT/example_failures.csv" >&2
    fi
    tail -n 30 "$OUT/locust.log" >&2
    exit 1
fi
echo "smoke: OK"
