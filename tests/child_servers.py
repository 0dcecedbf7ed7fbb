"""Test servers that run as child processes (``servers.py``, ``ws_server.py``, ``otlp_receiver.py``): each prints one
JSON line with its ports when it is ready, and exits when its stdin closes. Shared by conftest and the test modules."""

import json
import os
import subprocess
import sys

import gevent


def spawn(script, *args: str, what: str, timeout: float = 20) -> tuple[subprocess.Popen, dict]:
    """Starts ``python script *args`` and returns it with the JSON line it printed; kills it if that line does not
    come within ``timeout`` seconds."""
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the server's tracebacks reach pytest's captured output
        cwd=os.path.dirname(os.path.abspath(script)),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        with gevent.Timeout(timeout, RuntimeError(f"{what} did not report its port in time")):
            line = proc.stdout.readline()
        return proc, json.loads(line)
    except BaseException:
        proc.kill()
        proc.wait(timeout=5)
        raise


def stop(proc: subprocess.Popen) -> None:
    """Closing stdin is the server's own way out; kill() covers a wedged server."""
    if proc.poll() is None:
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
