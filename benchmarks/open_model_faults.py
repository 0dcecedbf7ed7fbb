"""The open model's offered rate when a worker is cut off, paused or killed: a master and two workers on loopback.

    python benchmarks/open_model_faults.py                       # every case, 40 s each
    python benchmarks/open_model_faults.py --cases cut --rate 200 --duration 40

Each case is one distributed run (``--master`` and two ``--worker`` processes) of a user class with
``constant_arrival_rate(RATE)``, one ``GET /`` per iteration, against a local counting server that records when
each request arrived. At ``--fault-at`` seconds into the test, the first worker is:

- ``cut``: its link to the master (through a TCP relay this script runs) stops passing bytes, both ways, for
  ``--fault-for`` seconds, then passes them again;
- ``paused``: stopped (SIGSTOP) for ``--fault-for`` seconds, then continued (SIGCONT);
- ``killed``: killed (SIGKILL), for good.

Printed per case: the requests the target got per second before, during and after the fault (mean and the highest
second), all of them against RATE x the test's length, and the master's _arrival.csv (scheduled, iterations,
dropped, skipped) and lost-worker lines. The offered rate is what the target saw: every iteration sends one request.
Loopback only; every child runs with a timeout and is killed on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

LOCUSTFILE = textwrap.dedent(
    """
    import os
    from locust import task
    from locust_rs import FastHttpUser, constant_arrival_rate

    class Steady(FastHttpUser):
        wait_time = constant_arrival_rate(float(os.environ["RATE"]), max_users=100)

        @task
        def hit(self):
            self.client.get("/")
    """
)


class CountingServer:
    """Answers every GET at once and keeps when each arrived (time.monotonic())."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        arrivals = self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - the standard library's name
                arrivals.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a killed worker's connection: nothing to say

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


class Relay:
    """A TCP relay from a local port to the master's: while ``blocked``, no bytes pass either way (they wait)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.blocked = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # the worker connects again
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                while self.blocked.is_set():
                    time.sleep(0.01)
                dst.sendall(data)

    def close(self) -> None:
        self.listener.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the master does not listen on {port}")


def run_case(case: str, args, workdir: Path) -> dict:
    server = CountingServer()
    port = free_port()
    lf = workdir / "locustfile.py"
    lf.write_text(LOCUSTFILE)
    env = {**os.environ, "RATE": str(args.rate)}
    prefix = workdir / case
    logs = {name: open(workdir / f"{case}-{name}.log", "w") for name in ("master", "w1", "w2")}  # noqa: SIM115
    base = [sys.executable, "-m", "locust", "-f", str(lf)]
    master = subprocess.Popen(
        [*base, "--master", "--headless", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), "-u", "100", "-r", "100", "-t", f"{args.duration}s", "--host", server.url,
         "--csv", str(prefix), "--only-summary"],
        env=env, stdout=logs["master"], stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for_port(port, master)
    relay = Relay(port) if case == "cut" else None
    workers = []
    for name, via in (("w1", relay.port if relay else port), ("w2", port)):
        workers.append(
            subprocess.Popen(
                [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(via)],
                env=env,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )
    try:
        # The test starts once both workers are in; its clock is the first request's arrival.
        deadline = time.monotonic() + 60
        while not server.arrivals:
            if time.monotonic() > deadline or master.poll() is not None:
                raise RuntimeError(f"{case}: the test did not start; see {workdir}")
            time.sleep(0.01)
        t0 = server.arrivals[0]
        time.sleep(max(0.0, t0 + args.fault_at - time.monotonic()))
        victim = workers[0]
        if case == "cut" and relay is not None:
            relay.blocked.set()
            time.sleep(args.fault_for)
            relay.blocked.clear()
        elif case == "paused":
            os.kill(victim.pid, signal.SIGSTOP)
            time.sleep(args.fault_for)
            os.kill(victim.pid, signal.SIGCONT)
        elif case == "killed":
            os.kill(victim.pid, signal.SIGKILL)
        master.wait(timeout=args.duration + 120)
    finally:
        for p in (master, *workers):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        for f in logs.values():
            f.close()
        if relay is not None:
            relay.close()
        server.close()
    arrivals = [t - t0 for t in server.arrivals]
    fault_end = args.fault_at + (args.fault_for if case != "killed" else args.duration)

    def window(a: float, b: float) -> tuple[float, int]:
        seconds = [0] * max(int(b - a), 1)
        for t in arrivals:
            if a <= t < b and int(t - a) < len(seconds):
                seconds[int(t - a)] += 1
        return sum(seconds) / len(seconds), max(seconds)

    end = min(args.duration, max(arrivals) if arrivals else 0)
    with open(f"{prefix}_arrival.csv", newline="") as f:
        row = next(csv.DictReader(f), {})
    said = [f"master: {line.strip()}" for line in (workdir / f"{case}-master.log").read_text().splitlines()
            if "stopped reporting" in line or "is back" in line]  # fmt: skip
    said += [f"worker 1: {line.strip()}" for line in (workdir / f"{case}-w1.log").read_text().splitlines()
             if "word from the master" in line or "heard again" in line]  # fmt: skip
    return {
        "case": case,
        "before": window(1, args.fault_at),
        "during": window(args.fault_at, min(fault_end, end)),
        "after": window(fault_end, end) if fault_end < end - 1 else None,
        "requests": len(arrivals),
        "expected": args.rate * args.duration,
        "arrival_csv": {k: row.get(k) for k in ("Scheduled", "Iterations", "Dropped iterations", "Skipped iterations")},
        "said": said,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="cut,paused,killed")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=int, default=40)
    parser.add_argument("--fault-at", type=float, default=10.0)
    parser.add_argument("--fault-for", type=float, default=16.0)
    args = parser.parse_args()
    print(f"constant_arrival_rate({args.rate:g}), a master and 2 workers, {args.duration} s; the fault at "
          f"{args.fault_at:g} s for {args.fault_for:g} s (killed: for good)")  # fmt: skip
    print(
        "| case | req/s before (max) | during (max) | after (max) | requests / rate x length | master's _arrival.csv |"
    )
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            workdir = Path(tmp) / case
            workdir.mkdir()
            r = run_case(case, args, workdir)

            def fmt(w):
                return "–" if w is None else f"{w[0]:.1f} ({w[1]})"

            csv_row = ", ".join(f"{k} {v}" for k, v in r["arrival_csv"].items())
            print(
                f"| {case} | {fmt(r['before'])} | {fmt(r['during'])} | {fmt(r['after'])} | "
                f"{r['requests']} / {r['expected']:.0f} ({r['requests'] / r['expected']:.3f}) | {csv_row} |",
                flush=True,
            )
            for line in r["said"]:
                print(f"    {line[:500]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
