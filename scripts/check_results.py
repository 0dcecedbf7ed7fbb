#!/usr/bin/env python3
"""Check a load test's results: fail when the error rate is over the limit (5 % by default) or a performance
threshold failed, and print a readable summary.

    python scripts/check_results.py                                   # the newest run in results/locust/
    python scripts/check_results.py results/locust/load_test_20250101_020000
    python scripts/check_results.py --max-error-rate 0.01 results/locust/smoke_test_20250101_020000_stats.csv

The argument is a run's prefix (as given to ``--csv``), its ``_stats.csv``, or a directory (its newest run).

How rate limits are counted: a 429 is the API's rate limit working as designed, not an error. The VoiceAssist
suite reports a 429 as a success under the request's name plus `` [429 rate-limited]``, so it never enters
Locust's failure count; this script lists those rows as rate-limit hits. A 429 that another locustfile reported
as a failure (Locust's default for any 4xx) is recognised in ``_failures.csv`` by its ``429`` status and is
moved from the errors to the rate-limit hits as well. The error rate is then

    (failures - failures that were 429s) / all requests (rate-limited ones included)

Thresholds are not judged here again: ``<prefix>_custom_metrics.json``, written by the suite at the end of the run,
holds the verdict locust-rs took on them (the one the run printed last and set its exit code from; a threshold whose
requests the run never made fails). Without that file (a run of another locustfile) only the error rate is checked.

Exit codes: 0 passed, 1 failed (error rate or threshold), 2 no results found or unreadable.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

RATE_LIMITED_SUFFIX = " [429 rate-limited]"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "results" / "locust"
# "429" as a status in a failure message: Locust's "HTTPError('429 Client Error...')", FastHttpUser's "code=429",
# the suite's "unexpected status 429"
STATUS_429 = re.compile(r"(?<![\d.])429(?![\d.])")


def find_prefix(arg: str | None) -> Path:
    path = Path(arg) if arg else DEFAULT_DIR
    if path.is_dir():
        runs = sorted(path.glob("*_stats.csv"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise FileNotFoundError(f"no *_stats.csv in {path}")
        return Path(str(runs[-1])[: -len("_stats.csv")])
    if path.name.endswith("_stats.csv"):
        return Path(str(path)[: -len("_stats.csv")])
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _observed(t: dict) -> str:
    """A threshold's observed value as the run's verdict showed it (locust-rs's ``Result.as_dict``)."""
    value = t.get("observed", t.get("observed_ms"))
    if value is None:
        hint = f" (did you mean {t['did_you_mean']!r}?)" if t.get("did_you_mean") else ""
        return "no data: the run made none of these requests" + hint
    unit = t.get("unit", "ms")
    shown = f"{value * 100:.2f} %" if unit == "%" else f"{value:.3f} ms" if unit == "ms" else f"{value:g}"
    return f"observed {shown}, limit {t['limit']}" if t.get("limit") else f"observed {shown}"


def check(prefix: Path, max_error_rate: float, out=None) -> bool:
    stats = read_rows(Path(f"{prefix}_stats.csv"))
    if not stats:
        raise FileNotFoundError(f"{prefix}_stats.csv is missing or empty")
    rows = [r for r in stats if r.get("Name") != "Aggregated"]
    total = next((r for r in stats if r.get("Name") == "Aggregated"), None)
    requests = int(total["Request Count"]) if total else sum(int(r["Request Count"]) for r in rows)
    failures = int(total["Failure Count"]) if total else sum(int(r["Failure Count"]) for r in rows)

    rate_limited = {
        r["Type"] + " " + r["Name"]: int(r["Request Count"]) for r in rows if r["Name"].endswith(RATE_LIMITED_SUFFIX)
    }
    failure_429 = 0
    other_failures: list[tuple[int, str]] = []
    for f in read_rows(Path(f"{prefix}_failures.csv")):
        n = int(f.get("Occurrences") or 0)
        label = f"{f.get('Method', '')} {f.get('Name', '')}: {f.get('Error', '')}"
        if STATUS_429.search(f.get("Error", "")):
            failure_429 += n
            rate_limited[f"{f.get('Method', '')} {f.get('Name', '')} (reported as failure)"] = n
        else:
            other_failures.append((n, label))
    errors = max(0, failures - failure_429)
    error_rate = errors / requests if requests else 0.0

    metrics_file = Path(f"{prefix}_custom_metrics.json")
    custom = json.loads(metrics_file.read_text()) if metrics_file.exists() else None

    ok = True
    out = out or sys.stdout
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"Results: {prefix}")
    p(f"  requests        {requests}")
    p(f"  errors          {errors}  ({error_rate:.2%}; limit {max_error_rate:.2%})")
    p(f"  rate-limit hits {sum(rate_limited.values())}  (429s: expected under load, not errors)")
    for name, n in sorted(rate_limited.items()):
        p(f"      {n:>7}  {name}")
    if requests == 0:
        p("  FAIL: no requests were made")
        ok = False
    if error_rate > max_error_rate:
        ok = False
        p(f"  FAIL: error rate {error_rate:.2%} is over {max_error_rate:.2%}")
    for n, label in sorted(other_failures, reverse=True)[:10]:
        p(f"      {n:>7}  {label[:160]}")

    if custom is None:
        p("  thresholds      not checked (no _custom_metrics.json: not a VoiceAssist suite run)")
    else:
        p("  thresholds")
        for t in custom.get("thresholds", []):
            verdict = "PASS" if t.get("passed") else "FAIL"
            label = t.get("label") or t.get("target") or t.get("key")
            p(f"      {verdict}  {label:<20} {t.get('expression', ''):<14} {_observed(t)} (n={t.get('count', 0)})")
            if not t.get("passed"):
                ok = False
        for t in custom.get("thresholds_not_checked", []):
            p(f"      SKIP  {t.get('label', ''):<20} {t.get('expression', ''):<14} not checked: {t.get('reason', '')}")
        if not custom.get("thresholds"):
            p("      none checked")
        m = custom.get("custom_metrics", {})
        rate = m.get("citation_rate")
        p("  custom metrics")
        p(
            f"      auth failures {m.get('auth_failures', 0)}, rate-limit hits {m.get('rate_limit_hits', 0)}, "
            f"WebSocket connections {m.get('ws_connections', 0)}, document uploads {m.get('document_uploads', 0)}, "
            f"citation rate {'n/a' if rate is None else f'{rate:.0%}'} of {m.get('queries_answered', 0)} queries"
        )
    p("PASSED" if ok else "FAILED")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results", nargs="?", help="run prefix, its _stats.csv, or a directory (default: newest run in results/locust)"
    )
    parser.add_argument(
        "--max-error-rate", type=float, default=0.05, help="largest error rate that passes (default 0.05)"
    )
    args = parser.parse_args(argv)
    try:
        prefix = find_prefix(args.results)
        return 0 if check(prefix, args.max_error_rate) else 1
    except (OSError, ValueError, KeyError) as e:
        print(f"check_results: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
