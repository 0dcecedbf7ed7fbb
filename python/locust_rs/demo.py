"""The VoiceAssist demo server: a stand-in for the API the VoiceAssist suite load-tests.

The server is its own program, ``voiceassist-demo`` (Rust, axum, its own tokio runtime), installed by the
``voiceassist-demo`` wheel (``pip install locust-rs[demo]``). ``start()`` runs it as a child process on a free
port, so the target never shares the load generator's threads. From Python::

    from locust_rs import demo

    with demo.start(port=0, register_per_minute=0) as server:
        print(server.url)  # http://127.0.0.1:PORT

From a shell::

    voiceassist-demo --port 8000 --login-attempts-per-minute 0
    python -m locust_rs.demo --port 8000          # the same program

Options, defaults and routes are in ``docs/demo-server.md``; ``voiceassist-demo --help`` lists them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from types import SimpleNamespace
from typing import Any, Literal

__all__ = ["DemoServer", "executable", "main", "settings_from_args", "start"]

_NAME = "voiceassist-demo"
_LISTENING = "VoiceAssist demo server listening on "
# the program's exit code for a setting that would make the server useless (see its main.rs)
_EXIT_BAD_SETTING = 3


def executable() -> str:
    """The path of the ``voiceassist-demo`` program.

    ``VOICEASSIST_DEMO_BIN`` wins; then the scripts directory of this Python (where its wheel puts it, even in a
    virtual environment that is not activated); then ``PATH``.
    """
    chosen = os.environ.get("VOICEASSIST_DEMO_BIN")
    if chosen:
        return chosen
    exe = _NAME + (".exe" if os.name == "nt" else "")
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, exe)
        if os.path.isfile(path):
            return path
    found = shutil.which(_NAME)
    if found:
        return found
    raise FileNotFoundError(
        f"{_NAME} is not installed: pip install 'locust-rs[demo]' (or the voiceassist-demo wheel), "
        "or set VOICEASSIST_DEMO_BIN to the program's path"
    )


def _run(*args: str) -> str:
    done = subprocess.run([executable(), *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise (ValueError if done.returncode == _EXIT_BAD_SETTING else RuntimeError)(
            f"{_NAME} {' '.join(args)}: {done.stderr.strip()}"
        )
    return done.stdout


@functools.lru_cache(maxsize=1)
def _defaults() -> str:
    return _run("--print-config")


def settings_from_args(argv: list[str]) -> SimpleNamespace:
    """The server settings that ``voiceassist-demo`` command-line options give, as the program itself parses
    them: ``settings_from_args(["--error-rate", "0.5"]).error_rate == 0.5``."""
    return SimpleNamespace(**json.loads(_run(*argv, "--print-config")))


class DemoServer:
    """A running demo server (a child process), listening once the constructor returns.

    :param host: address to bind; loopback unless told otherwise.
    :param port: port to bind; 0 picks a free one (read it back from ``.port`` or ``.url``).
    :param options: any of the server options (``DemoServer.default_options()`` lists them), e.g.
        ``access_token_ttl=60``; ``None`` keeps the default.
    :raises TypeError: an option the server does not have.
    :raises ValueError: a value the server refuses (the message names the option).
    :raises OSError: the address cannot be bound.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        known = self.default_options()
        for name in options:
            if name not in known:
                raise TypeError(f"DemoServer() got an unexpected keyword argument {name!r}")
        # --name=value, so that a negative number is read as a value and refused by name, not as a flag
        args = [f"--{name.replace('_', '-')}={value}" for name, value in options.items() if value is not None]
        # Standard input ties the server to this process: when it ends (stop(), or this process dying on any
        # platform), the server stops. Standard error is this process's, for the access log's "-".
        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            [executable(), "--host", host, f"--port={port}", "--stdin-control", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._final_stats: dict[str, int] | None = None
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().rstrip("\n")
        if not first.startswith(_LISTENING):
            rc = self._proc.wait()
            self._proc = None
            message = first.removeprefix(f"{_NAME}: ") or f"{_NAME} exited with code {rc}"
            raise (ValueError if rc == _EXIT_BAD_SETTING else OSError)(message)
        self.url: str = first[len(_LISTENING) :]
        """``http://host:port``, ready to be a Locust ``host``."""
        netloc = self.url.removeprefix("http://")
        host_part, _, port_part = netloc.rpartition(":")
        self.host: str = host_part.strip("[]")
        """The address the server listens on."""
        self.port: int = int(port_part)

    @property
    def pid(self) -> int | None:
        """The server process's id, while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the server: no new connections, open ones may finish for up to ``timeout`` seconds, then they are
        dropped. Returns True when it stopped cleanly. Safe to call twice."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return True
        try:
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            clean = proc.wait(timeout=max(0.0, timeout)) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            clean = False
        if proc.stdout is not None:
            # what is left: the final counters (one JSON line) and the "stopped" line
            for line in proc.stdout.read().splitlines():
                if line.startswith("{"):
                    self._final_stats = json.loads(line)
            proc.stdout.close()
        return clean

    def realtime_stats(self) -> dict[str, int]:
        """The realtime WebSocket endpoint's counters (connections open/total/refused, messages and bytes in/out,
        ...), as ``/api/admin/metrics`` reports them; see docs/demo-server.md. After ``stop()``, the final ones."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                if self._final_stats is not None:
                    return dict(self._final_stats)
                raise RuntimeError("the demo server is stopped, and left no counters")
            proc.stdin.write("stats\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *_args: object) -> Literal[False]:
        self.stop()
        return False

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def __repr__(self) -> str:
        return f"<DemoServer {self.url} {'running' if self.running else 'stopped'}>"

    @staticmethod
    def default_options() -> dict[str, Any]:
        """The default of every server option, as a dict (None: off, or random per start)."""
        return json.loads(_defaults())

    @staticmethod
    def openapi_json() -> str:
        """The OpenAPI document of the demo API (what ``/openapi.json`` serves), as JSON text."""
        return _run("--print-openapi")


def start(host: str = "127.0.0.1", port: int = 0, **options: Any) -> DemoServer:
    """Start a demo server and return once it listens.

    :param host: address to bind; loopback unless told otherwise.
    :param port: port to bind; 0 picks a free one (read it back from ``.port`` or ``.url``).
    :param options: any of the server options (see ``docs/demo-server.md``), e.g.
        ``access_token_ttl=60`` or ``register_per_minute=0``.
    :return: the running server; ``.stop()`` it, or use it as a context manager.
    """
    return DemoServer(host, port, **options)


def main(argv: list[str] | None = None) -> int:
    """``python -m locust_rs.demo``: the ``voiceassist-demo`` program, with the same arguments."""
    args = [executable(), *(sys.argv[1:] if argv is None else argv)]
    if os.name == "posix":
        sys.stdout.flush()
        os.execv(args[0], args)  # signals then reach the server itself
    return subprocess.call(args)


if __name__ == "__main__":
    sys.exit(main())
