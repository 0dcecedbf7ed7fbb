"""Runs commands side by side, then prints each one's output whole, in the order given.

    python3 scripts/side_by_side.py "make test-py-portable" "make test-locust-floor"
    python3 scripts/side_by_side.py --pytest-shards 2 -m e2e tests

Each command is a shell command line. With ``--pytest-shards N``, the rest of the arguments are one pytest selection,
run as N commands ``python -m pytest ARGS --shard K/N`` (tests/conftest.py gives each shard whole files, balanced by
their usual time). Most of what runs this way waits (on locust subprocesses, a browser, a package index), so two of
them on two cores take about the time of the longer one. A command's output goes to a file while it runs, so the
outputs never interleave. The exit code is that of the first command that failed, else 0.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time


def _commands(argv: list[str]) -> list[str]:
    if argv[:1] == ["--pytest-shards"]:
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            raise SystemExit("usage: side_by_side.py --pytest-shards N PYTEST_ARGS...")
        count, args = int(argv[1]), argv[2:]
        pytest = shlex.join([sys.executable, "-m", "pytest", *args])
        return [f"{pytest} --shard {k}/{count}" for k in range(1, count + 1)]
    if not argv:
        raise SystemExit("usage: side_by_side.py COMMAND [COMMAND...]  (or --pytest-shards N PYTEST_ARGS...)")
    return argv


def main(argv: list[str]) -> int:
    commands = _commands(argv)
    started = time.monotonic()
    running = []
    for command in commands:
        log = tempfile.TemporaryFile(mode="w+")
        running.append((command, log, subprocess.Popen(command, shell=True, stdout=log, stderr=subprocess.STDOUT)))
    codes = []
    for command, log, proc in running:
        code = proc.wait()
        codes.append(code)
        log.seek(0)
        print(f"== side by side: {command} (exit {code})", flush=True)
        sys.stdout.write(log.read())
        sys.stdout.flush()
        log.close()
    print(f"== side by side: {len(commands)} commands took {time.monotonic() - started:.0f} s; exit codes {codes}")
    return next((code for code in codes if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
