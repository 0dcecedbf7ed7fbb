"""``locust-rs compare``: the command line of :py:mod:`locust_rs.compare`.

Exit codes: 0 when no row regressed, 1 when one did (slower, or more failures), 2 for a usage error (a path that
names no run, an unreadable file, an option's value) and for anything else that stops the comparison: 1 must
mean a regression and nothing else.
"""

from __future__ import annotations

import argparse
import sys

from locust_rs.compare import formats
from locust_rs.compare.runs import RunNotFound, load
from locust_rs.compare.table import QUANTILES, Options, compare

USAGE_ERROR = 2


def _fraction(text: str, what: str) -> float:
    """``5%`` or ``0.05``."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} is a fraction (0.05) or a percentage (5%), not {text!r}") from None


def _quantiles(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p.strip().removeprefix("p")) / 100 for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"quantiles are percentiles such as 50,95,99.9, not {text!r}") from None
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="locust-rs compare",
        description="Compare a candidate run with a baseline: per request name, the change of each percentile with "
        "its confidence interval, the failure rates, and a verdict (slower, faster, no detectable change). A run is "
        "a --csv prefix, one of its files, or a directory (its newest run).",
        epilog="Exit codes: 0 no regression, 1 a row regressed (slower or more failures), 2 a usage error. "
        "docs/compare.md explains the statistics.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="BASELINE CANDIDATE (or use --baseline and --candidate)")
    p.add_argument("--baseline", nargs="+", default=[], metavar="RUN", help="the baseline's runs (repeats)")
    p.add_argument("--candidate", nargs="+", default=[], metavar="RUN", help="the candidate's runs (repeats)")
    p.add_argument("--format", choices=sorted(formats.FORMATS), default="console", help="what goes to stdout")
    p.add_argument("--markdown", metavar="FILE", help="also write the markdown table here (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report here")
    p.add_argument(
        "--confidence",
        type=lambda t: _fraction(t, "--confidence"),
        default=Options.confidence,
        help="of the whole table (default 95%%)",
    )
    p.add_argument(
        "--noise",
        type=lambda t: _fraction(t, "--noise"),
        default=Options.noise,
        help="changes of a percentile within this are noise (default 5%%)",
    )
    p.add_argument(
        "--percentiles",
        type=_quantiles,
        default=QUANTILES,
        metavar="P,P,...",
        help="the percentiles to compare (default 50,90,95,99,99.9)",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="compare the raw histograms even where both runs have coordinated-omission-corrected ones",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.runs and (args.baseline or args.candidate):
        p.error("give BASELINE CANDIDATE, or --baseline and --candidate, not both")
    if args.runs:
        if len(args.runs) != 2:
            p.error(f"expected BASELINE CANDIDATE, got {len(args.runs)} runs: use --baseline and --candidate")
        args.baseline, args.candidate = [args.runs[0]], [args.runs[1]]
    if not args.baseline or not args.candidate:
        p.error("both a baseline and a candidate are needed")
    try:
        options = Options(args.percentiles, args.confidence, args.noise, not args.raw)
    except ValueError as e:
        p.error(str(e))
    try:
        baseline = [load(r) for r in args.baseline]
        candidate = [load(r) for r in args.candidate]
    except (RunNotFound, OSError) as e:
        print(f"locust-rs compare: {e}", file=sys.stderr)
        return USAGE_ERROR
    try:
        table = compare(baseline, candidate, options)
        for path, render in ((args.markdown, formats.markdown), (args.junit, formats.junit)):
            if path:
                with open(path, "a" if path == args.markdown else "w", encoding="utf-8") as f:
                    f.write(render(table))
        print(formats.FORMATS[args.format](table))
    except OSError as e:
        print(f"locust-rs compare: {e}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as e:  # noqa: BLE001 - exit 1 means "a regression": nothing else may exit so
        print(f"locust-rs compare: could not compare ({type(e).__name__}: {e})", file=sys.stderr)
        return USAGE_ERROR
    return table.exit_code


if __name__ == "__main__":
    sys.exit(main())
