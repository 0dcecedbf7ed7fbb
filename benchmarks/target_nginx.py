"""A throwaway nginx on 127.0.0.1 used as the benchmark target.

The target has to be much cheaper per request than any load generator under test, otherwise the benchmark measures
nginx. One worker, no access log, `return 200` (no file I/O) and effectively unlimited keep-alive keep its cost to a
fraction of a core on loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BODY = "hello world\\n"  # nginx string escape, the client sees "hello world\n"

CONF_TEMPLATE = """\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
# A worker that cannot open sockets fails the benchmark with connection errors, not a clear message.
worker_rlimit_nofile 65536;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    default_type text/plain;
    server_tokens off;
    # Every user keeps one connection for the whole run; reconnects would add handshake cost to the clients.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    # Written to the prefix so nginx never needs the distribution's /var/lib/nginx paths.
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            return 200 "{body}";
        }}
    }}
}}
"""


def interrupt_on_sigterm() -> None:
    """Make SIGTERM (timeout, kill, CI cancel) unwind like Ctrl-C so `finally` blocks stop nginx and locust.

    Both run in their own sessions, so nothing else would stop them if this process died without cleanup.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_version(binary: str = "nginx") -> str:
    path = shutil.which(binary)
    if path is None:
        return "not installed"
    # nginx prints its version on stderr.
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")


def http_get_ok(host: str, port: int, path: str = "/", timeout: float = 2.0) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except OSError:
        return False
    finally:
        conn.close()


class NginxTarget:
    """Start with `with NginxTarget() as t:`; `t.url`, `t.pid` (master) while running. Always stopped on exit."""

    def __init__(self, binary: str = "nginx", startup_timeout: float = 10.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise RuntimeError("nginx not found; install it (apt-get install -y nginx) or pass --target URL")
        self.binary = path
        self.startup_timeout = startup_timeout
        self.prefix: Path | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> NginxTarget:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="locust-rs-bench-nginx-"))
        last_error = ""
        # The free port is only free until nginx binds it; another process can win the race, so retry a few times.
        for _ in range(3):
            self.port = free_loopback_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(CONF_TEMPLATE.format(prefix=self.prefix, port=self.port, body=BODY))
            log = open(self.prefix / "stderr.log", "wb")  # noqa: SIM115 - handed over to the child
            self.proc = subprocess.Popen(
                # -e: nginx opens its compiled-in error log before reading the config; keep it in the prefix too.
                [self.binary, "-c", str(conf), "-p", str(self.prefix), "-e", str(self.prefix / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only the runner, which then stops nginx in order.
                start_new_session=True,
            )
            log.close()
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if http_get_ok("127.0.0.1", self.port):
                    return
                time.sleep(0.05)
            last_error = self._log_tail()
            self._stop_proc()
        raise RuntimeError(f"nginx did not start: {last_error}")

    def _log_tail(self) -> str:
        assert self.prefix is not None
        parts = []
        for name in ("stderr.log", "error.log"):
            p = self.prefix / name
            if p.exists():
                parts.append(p.read_text(errors="replace")[-2000:])
        return "\n".join(parts).strip()

    def _stop_proc(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM is nginx's fast shutdown: the master stops its workers before exiting.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Only our own nginx: its session contains nothing else we did not start.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop(self) -> None:
        self._stop_proc()
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None


if __name__ == "__main__":
    # Handy for trying the target by hand: `python benchmarks/target_nginx.py`, Ctrl-C to stop.
    interrupt_on_sigterm()
    with NginxTarget() as target:
        print(f"nginx {nginx_version()} serving {target.url} (pid {target.pid}); Ctrl-C to stop", flush=True)
        try:
            while target.proc is not None and target.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
