"""Runs one pytest selection as N shards side by side, then prints each shard's output whole, in order.

    python3 scripts/run_shards.py 2 -m e2e tests

Each shard is ``python -m pytest ARGS --shard K/N`` (tests/conftest.py gives it whole files, balanced by their usual
time). The end-to-end runs mostly wait on their subprocesses, so two shards on two cores take about half the time of
one. A shard's output goes to a file while it runs, so the outputs do not interleave. The exit code is the first
shard's that failed, else 0.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: run_shards.py N PYTEST_ARGS...", file=sys.stderr)
        return 2
    count, args = int(argv[0]), argv[1:]
    started = time.monotonic()
    shards = []
    for k in range(1, count + 1):
        log = tempfile.TemporaryFile(mode="w+", prefix=f"shard{k}-")
        cmd = [sys.executable, "-m", "pytest", *args, "--shard", f"{k}/{count}"]
        shards.append((k, cmd, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
    codes = []
    for k, cmd, log, proc in shards:
        code = proc.wait()
        codes.append(code)
        log.seek(0)
        print(f"== shard {k}/{count}: {' '.join(cmd[1:])} (exit {code})", flush=True)
        sys.stdout.write(log.read())
        log.close()
    print(f"== {count} shards took {time.monotonic() - started:.0f} s; exit codes {codes}", flush=True)
    return next((code for code in codes if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
