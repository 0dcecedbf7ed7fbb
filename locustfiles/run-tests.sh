#!/usr/bin/env bash
# Run the VoiceAssist load tests. `./run-tests.sh --help` for the modes and options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PY:-python3}"
RESULTS_DIR="${RESULTS_DIR:-$(cd "$HERE/.." && pwd)/results/locust}"
DEFAULT_HOST="${VOICEASSIST_DEFAULT_HOST:-http://localhost:8000}"
# seconds locust gets to stop and write its reports after Ctrl-C or SIGTERM
STOP_GRACE_S=30

usage() {
    cat <<'USAGE'
Usage: ./run-tests.sh MODE [options] [-- extra locust arguments]

Modes (users, spawn rate per second, run time):
  smoke            10 users, 10/s, 2m     quick sanity check (locustfile.py)
  load             100 users, 10/s, 10m   expected load (locustfile.py)
  stress           500 users, 50/s, 15m   find the breaking point (scenarios/stress_scenario.py)
  spike            1000 users, 200/s, 5m  sudden spike and recovery (scenarios/spike_scenario.py, a load shape)
  soak             100 users, 5/s, 60m    stability over time (scenarios/soak_scenario.py)
  user-journey     5 users, 5/s, 2m       Register -> Login -> Query -> Logout (scenarios/user_journey.py)
  admin-workflow   2 users, 2/s, 2m       Login -> Upload -> Manage -> Monitor (scenarios/admin_workflow.py)
  arrival          20 users, 20/s, 5m     open model: chat queries at 20/s, a spike to 60/s and back
                   (scenarios/arrival_rate_scenario.py; users are the pool, more start as needed up to 100;
                   after --: --arrival-rate R, --arrival-max-users N)
  web              the web UI on http://localhost:8089 (locustfile.py); set users and host there
  distributed      a master and N workers (locustfile.py): docker-compose when a Docker engine is running,
                   else local processes; the web UI unless --headless (then 100 users, 10/s, 10m)

Options:
  --users=N         number of users (the peak, for spike; the pool started at once, for arrival)
  --spawn-rate=R    users started per second (arrival: --users, the whole pool in the first second)
  --run-time=T      run time, e.g. 30s, 10m, 1h
  --headless        no web UI (all modes but web and distributed are headless anyway)
  --host=URL        the API under test (default: $VOICEASSIST_BASE_URL, else http://localhost:8000 if it
                    answers /health, else the bundled demo server, started now and stopped afterwards)
  --workers=N       distributed: number of workers (default 4)
  --tags=T1,T2      run only tasks with these tags (chat, admin, websocket, health, auth)
  --exclude-tags=T  leave out tasks with these tags
  --baseline=RUN    compare this run with an earlier one, and fail on a real regression: RUN is a run's prefix,
                    one of its files, a directory (its newest run), or "last" (the newest run of this mode in
                    the results directory that passed). After the run, `locust-rs compare` prints per request name whether
                    each percentile and the failure rate got worse beyond the sampling noise; a row that did
                    exits 1. The run also gets `--baseline RUN`, for relative thresholds given after -- (e.g.
                    -- --threshold 'p(95)<+10%'). COMPARE_ARGS adds options of locust-rs compare
                    (e.g. "--noise 10%").
  -h, --help        this help

Results: results/locust/<mode>_test_<timestamp>.html, <mode>_test_<timestamp>_stats.csv (and _failures.csv,
_stats_history.csv, _exceptions.csv, _custom_metrics.json, .log). Check them with scripts/check_results.py.
With --baseline also <prefix>_compare.md and <prefix>_compare.xml (JUnit: one test case per request name); the
markdown is appended to $GITHUB_STEP_SUMMARY too when that is set (a GitHub Actions step).

Environment: VOICEASSIST_BASE_URL, VOICEASSIST_WS_URL (see config.py), PY (python, default python3),
RESULTS_DIR (default results/locust at the repository root), DEMO_ARGS (options of the bundled demo server,
e.g. "--login-attempts-per-minute 10"; see python -m locust_rs.demo --help), VOICEASSIST_DEFAULT_HOST (the
address probed before starting the demo server, default http://localhost:8000).
USAGE
}

die() {
    echo "run-tests.sh: $*" >&2
    exit 2
}

[ $# -ge 1 ] || {
    usage
    exit 2
}
case "$1" in
-h | --help)
    usage
    exit 0
    ;;
esac
MODE="$1"
shift

locustfile="$HERE/locustfile.py"
headless=1
case "$MODE" in
smoke) users=10 rate=10 run_time=2m ;;
load) users=100 rate=10 run_time=10m ;;
stress) users=500 rate=50 run_time=15m locustfile="$HERE/scenarios/stress_scenario.py" ;;
spike) users=1000 rate=200 run_time=5m locustfile="$HERE/scenarios/spike_scenario.py" ;;
soak) users=100 rate=5 run_time=60m locustfile="$HERE/scenarios/soak_scenario.py" ;;
user-journey) users=5 rate=5 run_time=2m locustfile="$HERE/scenarios/user_journey.py" ;;
admin-workflow) users=2 rate=2 run_time=2m locustfile="$HERE/scenarios/admin_workflow.py" ;;
arrival) users=20 rate=20 run_time=5m locustfile="$HERE/scenarios/arrival_rate_scenario.py" ;;
web) users="" rate="" run_time="" headless=0 ;;
distributed) users=100 rate=10 run_time=10m headless=0 ;;
*) die "unknown mode '$MODE' (see --help)" ;;
esac

host="${VOICEASSIST_BASE_URL:-}"
workers=4
rate_given=""
baseline=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --users=*) users="${1#*=}" ;;
    --spawn-rate=*) rate="${1#*=}" rate_given=1 ;;
    --run-time=*) run_time="${1#*=}" ;;
    --host=*) host="${1#*=}" ;;
    --workers=*) workers="${1#*=}" ;;
    --tags=* | --exclude-tags=*)
        # Locust takes the tags as separate words: --tags=chat,health -> --tags chat health
        IFS=, read -r -a tags <<<"${1#*=}"
        extra+=("${1%%=*}" ${tags[@]+"${tags[@]}"})
        ;;
    --headless) headless=1 ;;
    --baseline=*) baseline="${1#*=}" ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        extra+=("$@")
        break
        ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[ "$MODE" = web ] && headless=0
# arrival: the whole pool at once (-r equal to -u), or iterations due while it spawns wait or drop
[ "$MODE" = arrival ] && [ -z "$rate_given" ] && rate="$users"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive number"

mkdir -p "$RESULTS_DIR"
stamp="$(date +%Y%m%d_%H%M%S)"
prefix="$RESULTS_DIR/${MODE}_test_${stamp}"

baseline_prefix=""
if [ -n "$baseline" ]; then
    # Resolved now: a directory's newest run must be the one before this run, not this run itself.
    if [ "$baseline" = last ]; then
        # the newest earlier run of this mode that passed (its .exit says 0): a run that failed or regressed is
        # never a baseline
        baseline=""
        while IFS= read -r exit_file; do
            if [ "$(cat "$exit_file")" = 0 ] && [ -f "${exit_file%.exit}.hlog" ]; then
                baseline="${exit_file%.exit}"
                break
            fi
        done < <(ls -t "$RESULTS_DIR/${MODE}"_test_*.exit 2>/dev/null || true)
        [ -n "$baseline" ] || die "--baseline=last: no earlier $MODE run that passed, with its .hlog, in $RESULTS_DIR"
    fi
    baseline_prefix="$("$PY" -c 'import sys
from locust_rs.compare.runs import RunNotFound, load
try:
    print(load(sys.argv[1]).prefix)
except (RunNotFound, OSError) as e:
    sys.exit(f"run-tests.sh: --baseline: {e}")' "$baseline")" || exit 2
    echo "run-tests.sh: baseline: $baseline_prefix"
fi

pids=()
demo_pid=""
cleanup() {
    # locust first (on SIGINT it stops the test and writes all its reports, the HTML one included), then the demo
    # server
    for pid in ${pids[@]+"${pids[@]}"}; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in ${pids[@]+"${pids[@]}"}; do
        for _ in $(seq 1 "$STOP_GRACE_S"); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        kill -TERM "$pid" 2>/dev/null || true # still there: no reports then, but no orphan either
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$demo_pid" ]; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
        echo "run-tests.sh: stopped the demo server"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

answers_health() {
    "$PY" - "$1" <<'PYCODE'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1].rstrip("/") + "/health", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PYCODE
}

rc=0
# locust runs in the background and the script waits for it, so that Ctrl-C or a SIGTERM reaches the traps at once
# (a foreground child would delay them until it ends); its output goes to the terminal and to $prefix.log. Job
# control puts it in a process group of its own with SIGINT left on (a background job of a plain script ignores
# it), so the traps can stop it the way Ctrl-C would.
set -m
run_locust() {
    # `python -m locust`, with Ctrl-C's handler put back: a process started from a non-interactive shell's background
    # inherits SIGINT ignored, and Locust writes its HTML report on KeyboardInterrupt, not on SIGTERM
    "$PY" -c 'import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = "locust"
from locust.main import main; main()' "$@" > >(tee "$prefix.log") 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait "$pid" || rc=$?
}

use_docker=0
if [ "$MODE" = distributed ] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    use_docker=1
fi

if [ -z "$host" ] && [ "$use_docker" = 0 ]; then
    if answers_health "$DEFAULT_HOST"; then
        host="$DEFAULT_HOST"
        echo "run-tests.sh: using the VoiceAssist API answering at $host"
    else
        # The log exists before the server starts: the background job opens it itself, maybe after the first read
        # below, which would then fail (and end this script, under set -e)
        : >"$prefix.demo.log"
        # shellcheck disable=SC2086 # DEMO_ARGS: demo server options, word-split on purpose
        "$PY" -m locust_rs.demo --port 0 ${DEMO_ARGS:-} >"$prefix.demo.log" 2>&1 &
        demo_pid=$!
        for _ in $(seq 1 100); do
            host="$(sed -n 's/^VoiceAssist demo server listening on \(http[^ ]*\)$/\1/p' "$prefix.demo.log")"
            [ -n "$host" ] && break
            kill -0 "$demo_pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$host" ] || {
            cat "$prefix.demo.log" >&2
            die "nothing answers at $DEFAULT_HOST and the demo server did not start"
        }
        echo "run-tests.sh: nothing answers at $DEFAULT_HOST: started the bundled demo server at $host"
    fi
fi

load_args=()
if [ "$headless" = 1 ]; then
    load_args+=(--headless)
    [ -n "$users" ] && load_args+=(--users "$users")
    [ -n "$rate" ] && load_args+=(--spawn-rate "$rate")
    [ -n "$run_time" ] && load_args+=(--run-time "$run_time")
else
    [ -n "$users" ] && load_args+=(--users "$users")
    [ -n "$rate" ] && load_args+=(--spawn-rate "$rate")
fi
report_args=(--csv "$prefix" --csv-full-history --html "$prefix.html")
[ -n "$baseline_prefix" ] && report_args+=(--baseline "$baseline_prefix")

if [ "$use_docker" = 1 ]; then
    compose=(docker-compose)
    command -v docker-compose >/dev/null 2>&1 || compose=(docker compose)
    cd "$HERE"
    export LOCUST_WORKERS="$workers" VOICEASSIST_BASE_URL="${host:-}"
    echo "run-tests.sh: docker-compose: demo server, master and $workers workers; web UI on http://localhost:8089"
    "${compose[@]}" up -d --build --scale locust-worker="$workers"
    echo "run-tests.sh: logs: docker-compose logs -f locust-master; stop: docker-compose down"
    trap - EXIT
    exit 0
fi

echo "run-tests.sh: $MODE: $(basename "$locustfile") against $host${users:+, $users users}${run_time:+ for $run_time}"
echo "run-tests.sh: results: $prefix.html, ${prefix}_stats.csv"
if [ "$MODE" = distributed ]; then
    port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # the workers first: they keep trying until the master listens, and learn the host from it
    for i in $(seq 1 "$workers"); do
        "$PY" -m locust -f "$locustfile" --worker --master-host 127.0.0.1 --master-port "$port" \
            >"$prefix.worker$i.log" 2>&1 &
        pids+=($!)
    done
    echo "run-tests.sh: local master on 127.0.0.1:$port with $workers workers (logs: $prefix.worker*.log)"
    run_locust -f "$locustfile" --master --master-bind-host 127.0.0.1 --master-bind-port "$port" \
        --expect-workers "$workers" --host "$host" ${load_args[@]+"${load_args[@]}"} "${report_args[@]}" \
        ${extra[@]+"${extra[@]}"}
    # the master tells the workers to quit at its end
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
else
    run_locust -f "$locustfile" --host "$host" ${load_args[@]+"${load_args[@]}"} "${report_args[@]}" \
        ${extra[@]+"${extra[@]}"}
fi
pids=()
echo "run-tests.sh: locust exited with $rc; results in $prefix.html and ${prefix}_*.csv"
if [ -n "$baseline_prefix" ]; then
    compare_rc=0
    if [ -f "$prefix.hlog" ]; then
        # shellcheck disable=SC2086 # COMPARE_ARGS: options of locust-rs compare, word-split on purpose
        "$PY" -m locust_rs.compare "$baseline_prefix" "$prefix" --markdown "${prefix}_compare.md" \
            --junit "${prefix}_compare.xml" ${COMPARE_ARGS:-} || compare_rc=$?
        if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "${prefix}_compare.md" ]; then
            cat "${prefix}_compare.md" >>"$GITHUB_STEP_SUMMARY"
        fi
        echo "run-tests.sh: compared with the baseline $(basename "$baseline_prefix"): exit $compare_rc" \
            "(${prefix}_compare.md, ${prefix}_compare.xml)"
    else
        echo "run-tests.sh: --baseline: this run wrote no $prefix.hlog (--no-hdr-metrics?): nothing to compare" >&2
        compare_rc=2
    fi
    # A regression fails a run that passed; a run that failed keeps its own exit code (99: a threshold crossed).
    if [ "$rc" = 0 ] && [ "$compare_rc" != 0 ]; then rc="$compare_rc"; fi
fi
# what --baseline=last reads: a run that ended with 0 can be the next run's baseline
echo "$rc" >"$prefix.exit"
exit "$rc"
