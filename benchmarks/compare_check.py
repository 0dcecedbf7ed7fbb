"""Does ``locust-rs compare`` tell noise from a regression? Runs against a local target whose delay is set, then
compares them.

    python benchmarks/compare_check.py                      # 11 runs at 10 ms, 1 at 11 ms, 10 s each
    python benchmarks/compare_check.py --runs 11 --delay 0.010 --slower 1.10 --duration 10 --users 10

1. ``--runs`` runs of locust-rs FastHttpUser (``--users`` users, no wait) against tests/stall_server.py answering
   after ``--delay`` seconds, one after another; each pair of consecutive runs is one comparison of two runs at the
   same delay (10 comparisons from 11 runs). Each should say *no detectable change* on every row.
2. One run at ``--delay x --slower``: compared with the last same-delay run, it should be *slower* at p50 and p95,
   and the command should exit 1.
3. With ``--repeats K``: the first K same-delay runs against the slower run repeated K times, through
   ``--baseline ... --candidate ...``.

``--large`` instead: two runs of ``--large-requests`` requests or more (1 million by default) over 100 request names
against a throwaway nginx, then ``locust-rs compare`` between them, timed, with the comparing process's peak RSS.

The console table of each comparison is in the work directory (``--keep`` keeps it). Standard library only;
locust runs in child processes, each with a timeout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from open_model import StallServer, child_env  # noqa: E402
from target_nginx import NginxTarget  # noqa: E402

LOCUSTFILE = """
from locust import constant, task
from locust_rs import FastHttpUser


class Hit(FastHttpUser):
    wait_time = constant(0)

    @task(3)
    def items(self):
        self.client.get("/items")

    @task(1)
    def item(self):
        self.client.get("/item/1", name="/item/[id]")
"""


MANY_NAMES = """
from locust import constant, task
from locust_rs import FastHttpUser


class Many(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.i = 0

    @task
    def hit(self):
        self.i += 1
        self.client.get("/", name=f"/name/{self.i % 100}")
"""


def run_once(workdir: Path, name: str, url: str, users: int, duration: int, locustfile: str = "locustfile.py") -> Path:
    prefix = workdir / name
    cmd = [
        sys.executable,
        "-m",
        "locust_rs.cli",
        "-f",
        str(workdir / locustfile),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration}s",
        "-H",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
    ]
    with open(workdir / f"{name}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(), timeout=duration + 60, check=False)
    if not Path(f"{prefix}.hlog").exists():
        raise RuntimeError(f"run {name} wrote no .hlog: see {workdir / (name + '.log')}")
    return prefix


def compare(workdir: Path, name: str, args: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "locust_rs.compare.command", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=120, check=False)
    (workdir / f"{name}.txt").write_text(out.stdout + out.stderr)
    return out.returncode, out.stdout


def verdicts(table: str) -> list[str]:
    """The last word(s) of each row of the console table: its verdict."""
    rows = []
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("----")) + 1
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def requests_of(prefix: Path) -> int:
    with open(f"{prefix}_stats.csv") as f:
        last = f.read().strip().splitlines()[-1].split(",")
    return int(last[2])


def large(args, workdir: Path) -> int:
    (workdir / "many.py").write_text(MANY_NAMES)
    runs = []
    with NginxTarget() as target:
        for label in ("large_a", "large_b"):
            duration = args.large_seconds
            while True:
                prefix = run_once(workdir, label, target.url, 50, duration, "many.py")
                n = requests_of(prefix)
                print(f"{label}: {n:,} requests in {duration} s", flush=True)
                if n >= args.large_requests or duration >= 600:
                    break
                duration = int(duration * args.large_requests / max(n, 1) * 1.1) + 1
            runs.append(prefix)
    hlog_mib = sum(Path(f"{p}.hlog").stat().st_size for p in runs) / 2**20
    for attempt in (1, 2):
        cmd = ["/usr/bin/time", "-f", "%e s elapsed, %M KiB peak RSS", sys.executable, "-m",
               "locust_rs.compare.command", str(runs[0]), str(runs[1])]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=300, check=False)
        lines = out.stdout.strip().splitlines()
        print(f"compare, attempt {attempt}: {out.stderr.strip().splitlines()[-1]} ({len(lines)} lines; "
              f"{hlog_mib:.1f} MiB of .hlog; exit {out.returncode})")  # fmt: skip
    print("\n".join(lines[:6] + ["..."] + lines[-3:]))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=11)
    p.add_argument("--delay", type=float, default=0.010)
    p.add_argument("--slower", type=float, default=1.10)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--repeats", type=int, default=0)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--large", action="store_true", help="the large-run timing instead (see above)")
    p.add_argument("--large-requests", type=int, default=1_000_000)
    p.add_argument("--large-seconds", type=int, default=40, help="the first try's run time; longer if too few")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="compare_check_"))
    (workdir / "locustfile.py").write_text(LOCUSTFILE)
    print(f"work directory: {workdir}")
    if args.large:
        return large(args, workdir)
    same = []
    with StallServer(args.delay) as server:
        for i in range(args.runs):
            same.append(run_once(workdir, f"same{i}", server.url, args.users, args.duration))
            print(f"run {i + 1}/{args.runs} at {1000 * args.delay:g} ms done", flush=True)
    slower = []
    with StallServer(args.delay * args.slower) as server:
        for i in range(max(1, args.repeats)):
            slower.append(run_once(workdir, f"slower{i}", server.url, args.users, args.duration))
    print(f"\n1. {len(same) - 1} comparisons of two runs at {1000 * args.delay:g} ms")
    clean = 0
    for i in range(len(same) - 1):
        t0 = time.perf_counter()
        code, out = compare(workdir, f"same{i}-{i + 1}", [str(same[i]), str(same[i + 1])])
        took = time.perf_counter() - t0
        rows = verdicts(out)
        changed = [r for r in rows if not r.rstrip().endswith("no detectable change")]
        clean += not changed and code == 0
        print(
            f"  same{i} vs same{i + 1}: exit {code}, {len(rows) - len(changed)}/{len(rows)} rows no detectable "
            f"change ({took:.2f} s)"
        )
        for r in changed:
            print(f"    {' '.join(r.split())}")
    print(f"  {clean} of {len(same) - 1} comparisons with no detectable change on every row")
    print(f"\n2. {1000 * args.delay * args.slower:g} ms against {1000 * args.delay:g} ms")
    code, out = compare(workdir, "slower", [str(same[-1]), str(slower[0])])
    print("\n".join("  " + line for line in out.splitlines()))
    print(f"  exit code {code}")
    if args.repeats:
        base = [str(s) for s in same[: args.repeats]]
        code, out = compare(workdir, "repeats", ["--baseline", *base, "--candidate", *map(str, slower)])
        print(f"\n3. {args.repeats} runs a side")
        print("\n".join("  " + line for line in out.splitlines()))
        print(f"  exit code {code}")
    if not args.keep:
        print(f"(results kept in {workdir}; delete it when done)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
