"""One locustfile for every benchmarked user class, so the variants differ only in the class they inherit from.

    LOCUST_RS_BENCH_VARIANT=httpuser|fasthttpuser|locust_rs locust -f benchmarks/locustfile.py --host http://127.0.0.1:PORT

A variant ending in ``_otel`` (``locust_rs_otel``, ``locust_rs_http_otel``, ``httpuser_otel``) uses the class of the
variant without the suffix; run.py adds ``--otel`` and the OTEL_* variables for it.

When run by benchmarks/run.py, LOCUST_RS_BENCH_WINDOW_FILE is also set and a sampler inside this process records the
measurement window (see `_measure_window`). Measuring from inside the process means the request count, the latency
histogram and the CPU time are all read at the same instant, which an outside observer polling CSV files cannot do:
the CSV history has whole-second timestamps and is flushed only every few seconds.
"""

from locust import constant, events, task
from locust.stats import calculate_response_time_percentile, diff_response_time_dicts

import json
import os
import sys
import time

import gevent
import psutil

VARIANT = os.environ.get("LOCUST_RS_BENCH_VARIANT", "")
WINDOW_FILE = os.environ.get("LOCUST_RS_BENCH_WINDOW_FILE", "")
WARMUP = float(os.environ.get("LOCUST_RS_BENCH_WARMUP", "3"))
DURATION = float(os.environ.get("LOCUST_RS_BENCH_DURATION", "15"))


def _base_class() -> type:
    # Imported inside a function so that no User class other than BenchUser sits in the module namespace, where
    # locust would offer it as a user class too.
    variant = VARIANT.removesuffix("_otel")
    if variant == "httpuser":
        from locust import HttpUser

        return HttpUser
    if variant == "fasthttpuser":
        from locust.contrib.fasthttp import FastHttpUser

        return FastHttpUser
    if variant in ("locust_rs", "locust_rs_nometrics", "locust_rs_baseline"):
        # No fallback on ImportError: a benchmark that quietly ran another class would report wrong numbers.
        from locust_rs import FastHttpUser

        return FastHttpUser
    if variant == "locust_rs_http":
        from locust_rs import HttpUser as RsHttpUser

        return RsHttpUser
    raise SystemExit(
        "LOCUST_RS_BENCH_VARIANT must be one of httpuser, fasthttpuser, locust_rs, locust_rs_nometrics, "
        f"locust_rs_http, each optionally with _otel (got {VARIANT!r})",
    )


class BenchUser(_base_class()):
    wait_time = constant(0)

    @task
    def index(self) -> None:
        self.client.get("/")


def _describe_class() -> dict:
    base = BenchUser.__mro__[1]
    info = {
        "variant": VARIANT,
        "base_class": f"{base.__module__}.{base.__qualname__}",
        "mro": [f"{c.__module__}.{c.__qualname__}" for c in BenchUser.__mro__],
        "python": sys.version.split()[0],
    }
    mod = sys.modules.get(base.__module__.split(".")[0])
    info["base_module_file"] = getattr(mod, "__file__", None)
    info["base_module_version"] = getattr(mod, "__version__", None)
    info["otel"] = _otel_state()
    return info


def _otel_state() -> dict:
    """Whether OpenTelemetry is on in this process (run.py checks it against the variant): an SDK tracer provider set
    (by ``--otel``), and locust-rs's sessions instrumented. Imports nothing that was not imported already."""
    trace = sys.modules.get("opentelemetry.trace")
    provider = trace.get_tracer_provider() if trace is not None else None
    rs_otel = sys.modules.get("locust_rs.otel")
    return {
        "sdk_tracer_provider": type(provider).__module__.startswith("opentelemetry.sdk") if provider else False,
        "locust_rs_instrumented": rs_otel.instrumented() if rs_otel is not None else None,
    }


_PROC = psutil.Process()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name (the Python thread is "python"; the engine's are "locust-rs-tokio"), summed over
    threads of the same name. Linux only (/proc); elsewhere empty."""
    out: dict[str, float] = {}
    for t in _PROC.threads():
        try:
            with open(f"/proc/self/task/{t.id}/comm") as f:
                name = f.read().strip()
        except OSError:
            return {}
        out[name] = out.get(name, 0.0) + t.user_time + t.system_time
    return out


def _snapshot(environment) -> dict:
    total = environment.stats.total
    cpu = _PROC.cpu_times()  # all threads of this process, so native (e.g. tokio) threads are included
    return {
        "time": time.time(),  # wall clock: run.py aligns its own samples of nginx CPU with it
        "monotonic": time.monotonic(),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "cpu_user": cpu.user,
        "cpu_system": cpu.system,
        "user_count": environment.runner.user_count if environment.runner is not None else None,
        "threads": _PROC.num_threads(),
        "thread_cpu": _thread_cpu(),
        "response_times": dict(total.response_times),
    }


def _measure_window(environment) -> None:
    gevent.sleep(WARMUP)
    start = _snapshot(environment)
    gevent.sleep(DURATION)
    end = _snapshot(environment)

    window = diff_response_time_dicts(end.pop("response_times"), start.pop("response_times"))
    count = sum(window.values())
    result = {
        "class": _describe_class(),
        "start": start,
        "end": end,
        "window_s": end["monotonic"] - start["monotonic"],
        "requests": end["requests"] - start["requests"],
        "failures": end["failures"] - start["failures"],
        "cpu_s": (end["cpu_user"] + end["cpu_system"]) - (start["cpu_user"] + start["cpu_system"]),
        "cpu_user_s": end["cpu_user"] - start["cpu_user"],
        "cpu_system_s": end["cpu_system"] - start["cpu_system"],
        "thread_cpu_s": {k: v - start["thread_cpu"].get(k, 0.0) for k, v in end["thread_cpu"].items()},
        # Same percentile function and rounding as locust's own report, restricted to the window.
        "p50_ms": calculate_response_time_percentile(window, count, 0.50) if count else None,
        "p99_ms": calculate_response_time_percentile(window, count, 0.99) if count else None,
    }
    _write_json(WINDOW_FILE, result)


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)  # run.py never sees a half-written file


_environment = None


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    if WINDOW_FILE:
        gevent.spawn(_measure_window, environment)


@events.quit.add_listener
def _on_quit(exit_code: int, **_kwargs) -> None:
    # Locust's _stats.csv is rewritten only once a second and not at shutdown, so it can miss the last second,
    # failures included. `quit` fires after the runner has stopped, when the totals are final.
    if not WINDOW_FILE or _environment is None:
        return
    total = _environment.stats.total
    _write_json(
        WINDOW_FILE.removesuffix(".json") + "_final.json",
        {
            "exit_code": exit_code,
            "requests_total": total.num_requests,
            "failures_total": total.num_failures,
            "p50_ms_total": total.get_response_time_percentile(0.50) if total.num_requests else None,
            "p99_ms_total": total.get_response_time_percentile(0.99) if total.num_requests else None,
            "failure_messages": [
                f"{e.occurrences}x {e.method} {e.name}: {e.error}"
                for e in sorted(_environment.stats.errors.values(), key=lambda e: -e.occurrences)[:5]
            ],
        },
    )
