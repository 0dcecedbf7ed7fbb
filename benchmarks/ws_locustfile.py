"""WebSocket ping-pong round trips, one locustfile for every variant of benchmarks/ws_run.py.

    LOCUST_RS_BENCH_VARIANT=locust_rs|wsclient|wsclient_direct locust -f benchmarks/ws_locustfile.py --host ws://127.0.0.1:PORT

Each user opens one connection in on_start and then, with no wait time, sends a small text message and waits for its
echo, reporting the round trip as a ``WSRT`` request named ``ping``:

- ``locust_rs``: :py:class:`locust_rs.WebSocketUser`, ``self.ws.request(...)`` (times measured in Rust).
- ``wsclient``: the Python ``websocket-client`` package as locust-plugins built its WebSocket users: a connection
  from ``websocket.create_connection``, a receive-loop greenlet calling ``on_message``, the task sending and waiting
  for ``on_message`` to see the reply; times from ``time.perf_counter`` around it.
- ``wsclient_direct``: ``websocket-client`` used as simply as possible, ``ws.send`` then ``ws.recv`` in the task (no
  receive loop). Not how locust-plugins did it, but the cheapest way to use that package, for a fairer floor.

When run by ws_run.py, LOCUST_RS_BENCH_WINDOW_FILE is set and a sampler inside this process records the measurement
window (round trips, latency histogram and the process's CPU time, Rust threads included, read at the same instant).
"""

from locust import User, constant, events, task
from locust.stats import calculate_response_time_percentile, diff_response_time_dicts

import json
import os
import sys
import time

import gevent
import gevent.event
import psutil

VARIANT = os.environ.get("LOCUST_RS_BENCH_VARIANT", "")
WINDOW_FILE = os.environ.get("LOCUST_RS_BENCH_WINDOW_FILE", "")
WARMUP = float(os.environ.get("LOCUST_RS_BENCH_WARMUP", "3"))
DURATION = float(os.environ.get("LOCUST_RS_BENCH_DURATION", "15"))
PAYLOAD = '{"type": "ping", "pad": "0123456789abcdef"}'
NAME = "ping"


def _rs_user() -> type:
    from locust_rs import WebSocketUser

    class RsUser(WebSocketUser):
        abstract = True

        def on_start(self) -> None:
            self.ws = self.connect("/", name="connect", timeout=30)

        @task
        def ping(self) -> None:
            self.ws.request(PAYLOAD, name=NAME, timeout=30)

    return RsUser


def _wsclient_user(direct: bool) -> type:
    import websocket  # websocket-client

    class WsClientUser(User):
        """After locust-plugins' SocketIOUser: websocket-client, a receive loop greenlet, events fired in Python."""

        abstract = True

        def on_start(self) -> None:
            start = time.perf_counter()
            self.ws = websocket.create_connection(self.host, timeout=30, enable_multithread=False)
            self._fire("WS", "connect", (time.perf_counter() - start) * 1000, 0)
            self.reply = gevent.event.Event()
            self.sent_at = 0.0
            if not direct:
                self.ws_greenlet = gevent.spawn(self.receive_loop)

        def on_stop(self) -> None:
            self.ws.close()

        def _fire(self, request_type: str, name: str, response_time: float, length: int) -> None:
            self.environment.events.request.fire(
                request_type=request_type,
                name=name,
                response_time=response_time,
                response_length=length,
                exception=None,
                context={},
                response=None,
                start_time=time.time(),
                url=self.host,
            )

        def receive_loop(self) -> None:
            while True:
                message = self.ws.recv()
                self.on_message(message)

        def on_message(self, message) -> None:
            self._fire("WSRT", NAME, (time.perf_counter() - self.sent_at) * 1000, len(message))
            self.reply.set()

        @task
        def ping(self) -> None:
            if direct:
                start = time.perf_counter()
                self.ws.send(PAYLOAD)
                message = self.ws.recv()
                self._fire("WSRT", NAME, (time.perf_counter() - start) * 1000, len(message))
                return
            self.reply.clear()
            self.sent_at = time.perf_counter()
            self.ws.send(PAYLOAD)
            self.reply.wait(30)

    return WsClientUser


def _base_class() -> type:
    if VARIANT == "locust_rs":
        return _rs_user()
    if VARIANT in ("wsclient", "wsclient_direct"):
        return _wsclient_user(direct=VARIANT == "wsclient_direct")
    raise SystemExit(f"LOCUST_RS_BENCH_VARIANT must be locust_rs, wsclient or wsclient_direct (got {VARIANT!r})")


class BenchUser(_base_class()):
    wait_time = constant(0)


_PROC = psutil.Process()


def _snapshot(environment) -> dict:
    entry = environment.stats.get(NAME, "WSRT")
    cpu = _PROC.cpu_times()  # all threads of this process, so the tokio thread is included
    return {
        "time": time.time(),
        "monotonic": time.monotonic(),
        "requests": entry.num_requests,
        "failures": environment.stats.total.num_failures,
        "cpu_user": cpu.user,
        "cpu_system": cpu.system,
        "user_count": environment.runner.user_count if environment.runner is not None else None,
        "threads": _PROC.num_threads(),
        "response_times": dict(entry.response_times),
    }


# Locust's own percentiles round to whole milliseconds, too coarse for loopback round trips: keep the exact
# times of the window (same small cost for every variant).
_exact: list[float] = []
_recording = False


@events.request.add_listener
def _record(request_type, response_time, **_kwargs) -> None:
    if _recording and request_type == "WSRT":
        _exact.append(response_time)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure_window(environment) -> None:
    global _recording
    gevent.sleep(WARMUP)
    start = _snapshot(environment)
    _recording = True
    gevent.sleep(DURATION)
    _recording = False
    end = _snapshot(environment)
    window = diff_response_time_dicts(end.pop("response_times"), start.pop("response_times"))
    count = sum(window.values())
    result = {
        "variant": VARIANT,
        "class": f"{BenchUser.__mro__[1].__module__}.{BenchUser.__mro__[1].__qualname__}",
        "python": sys.version.split()[0],
        "start": start,
        "end": end,
        "window_s": end["monotonic"] - start["monotonic"],
        "round_trips": end["requests"] - start["requests"],
        "failures": end["failures"] - start["failures"],
        "cpu_s": (end["cpu_user"] + end["cpu_system"]) - (start["cpu_user"] + start["cpu_system"]),
        "p50_ms": _percentile(_exact, 0.50),
        "p99_ms": _percentile(_exact, 0.99),
        "locust_p50_ms": calculate_response_time_percentile(window, count, 0.50) if count else None,
        "locust_p99_ms": calculate_response_time_percentile(window, count, 0.99) if count else None,
    }
    tmp = WINDOW_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, WINDOW_FILE)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    if WINDOW_FILE:
        gevent.spawn(_measure_window, environment)
