"""A comparison as text: a console table, GitHub-flavoured markdown (a step summary) and JUnit XML (Jenkins' and
GitLab's test reports: one test case per row)."""

from __future__ import annotations

import math

from locust_rs.compare import junit as junit_xml
from locust_rs.compare.table import FASTER, SLOWER, Comparison, QuantileChange, Row

_MARK = {SLOWER: "▲", FASTER: "▼"}


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def percent(v: float | None, digits: int = 1) -> str:
    """A change as a signed percentage (``+9.8 %``), ∞ for an open end, – for none."""
    if v is None:
        return "–"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return f"{100 * v:+.{digits}f} %"


def _interval(c: QuantileChange) -> str:
    if c.interval is None:
        return ""
    lo, hi = c.interval
    return f"{percent(lo)} … {percent(hi)}"


def _rate(row: Row, side: str) -> str:
    counts = row.baseline if side == "a" else row.candidate
    if counts is None:
        return "–"
    if counts.failures < 0:
        return "?"
    return f"{100 * counts.failures / counts.requests:.2f} %" if counts.requests else "–"


def _requests(row: Row) -> str:
    a = f"{row.baseline.requests:,}" if row.baseline else "–"
    b = f"{row.candidate.requests:,}" if row.candidate else "–"
    return f"{a} → {b}"


def _heading(c: Comparison) -> str:
    def side(runs) -> str:
        return runs[0].label if len(runs) == 1 else f"{len(runs)} runs ({', '.join(r.label for r in runs)})"

    o = c.options
    return (
        f"Candidate {side(c.candidate)} against baseline {side(c.baseline)}: "
        f"{100 * o.confidence:g} % confidence over the table, noise {100 * o.noise:g} %"
    )


def _details(row: Row) -> list[str]:
    """What decided a row that changed: each judged quantile with both values and its interval."""
    out = []
    for c in row.quantiles:
        if c.verdict in (SLOWER, FASTER):
            spread = f"; runs {_values(c.runs[0])} → {_values(c.runs[1])}" if c.p_spread is not None else ""
            out.append(
                f"  {row.label} {c.label}: {_ms(c.baseline)} → {_ms(c.candidate)} ms, {percent(c.change)} "
                f"(interval {_interval(c)}){spread}: {c.verdict}"
            )
    if row.failure_verdict and row.failure_interval is not None:
        lo, hi = row.failure_interval
        out.append(
            f"  {row.label} failure rate: {_rate(row, 'a')} → {_rate(row, 'b')}, difference "
            f"{100 * lo:+.2f} … {100 * hi:+.2f} points: {row.failure_verdict}"
        )
    return out


def _values(values) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def console(c: Comparison) -> str:
    """One line per row (the change of each quantile, ▲ slower, ▼ faster), then what decided each change."""
    labels = [q.label for q in (c.rows[0].quantiles if c.rows else [])]
    head = ["Name", "Requests", "Fail % (a → b)", *labels, "max", "Verdict"]
    table = [head]
    for r in c.rows:
        cells = [r.label + (" (corrected)" if r.corrected else ""), _requests(r), f"{_rate(r, 'a')} → {_rate(r, 'b')}"]
        for q in r.quantiles:
            cells.append(percent(q.change) + _MARK.get(q.verdict, ""))
        cells += [""] * (len(labels) - len(r.quantiles))
        mx = None
        if r.max_baseline and r.max_candidate is not None:
            mx = r.max_candidate / r.max_baseline - 1
        cells += [percent(mx), r.verdict]
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = [_heading(c), ""]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    details = [line for r in c.rows for line in _details(r)]
    if details:
        lines += ["", "Changes:", *details]
    lines += ["", *c.notes, _closing(c)]
    return "\n".join(line for line in lines if line is not None)


def _closing(c: Comparison) -> str:
    n = len(c.regressions)
    verdict = f"{n} row{'s' if n != 1 else ''} regressed" if n else "no regression"
    return f"{c.summary()}. {verdict} (exit code {c.exit_code})"


def markdown(c: Comparison) -> str:
    """A GitHub-flavoured markdown table: both values, the change and its interval in each cell."""
    labels = [q.label for q in (c.rows[0].quantiles if c.rows else [])]
    icon = "❌" if c.regressions else "✅"
    lines = [f"### {icon} {_heading(c)}", ""]
    head = ["Name", "Verdict", "Requests", "Failures", *(f"{label} (ms)" for label in labels), "max (ms)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for r in c.rows:
        verdict = f"**{r.verdict}**" if r.regression else r.verdict
        cells = [_md(r.label + (" (corrected)" if r.corrected else "")), verdict, _requests(r)]
        cells.append(f"{_rate(r, 'a')} → {_rate(r, 'b')}")
        for q in r.quantiles:
            cell = f"{_ms(q.baseline)} → {_ms(q.candidate)}"
            if q.change is not None:
                cell += f" ({percent(q.change)}{', ' + _interval(q) if q.interval else ''})"
            cells.append(cell + (f" {_MARK[q.verdict]}" if q.verdict in _MARK else ""))
        cells.append(f"{_ms(r.max_baseline)} → {_ms(r.max_candidate)}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for note in c.notes:
        lines.append(f"> {_md(note)}")
    lines.append(_md(_closing(c)))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def junit(c: Comparison) -> str:
    """JUnit XML: one test case per row, failed when the row regressed (slower or more failures), skipped when
    the name is in one run only."""
    cases = []
    for r in c.rows:
        lines = [f"requests {_requests(r)}; failure rate {_rate(r, 'a')} → {_rate(r, 'b')}"]
        for q in r.quantiles:
            lines.append(
                f"{q.label}: {_ms(q.baseline)} → {_ms(q.candidate)} ms, {percent(q.change)}"
                + (f" (interval {_interval(q)})" if q.interval else "")
                + f": {q.verdict}"
                + (f" ({q.why})" if q.why else "")
            )
        lines.append(f"max: {_ms(r.max_baseline)} → {_ms(r.max_candidate)} ms (one sample: not judged)")
        case = junit_xml.Case(r.label, "locust-rs.compare", output="\n".join(lines))
        if r.baseline is None or r.candidate is None:
            case.skipped = r.verdict
        elif r.regression:
            case.failure = (_failure_message(r), r.verdict, "\n".join(_details(r)))
        cases.append(case)
    properties = {
        "baseline": ", ".join(r.prefix for r in c.baseline),
        "candidate": ", ".join(r.prefix for r in c.candidate),
        "confidence": f"{c.options.confidence:g}",
        "noise": f"{c.options.noise:g}",
    }
    name = f"locust-rs compare: {c.candidate[0].label} vs {c.baseline[0].label}"
    return junit_xml.document(name, cases, properties)


def _failure_message(r: Row) -> str:
    parts = [f"{q.label} {percent(q.change)}" for q in r.quantiles if q.verdict == SLOWER]
    if r.failure_verdict:
        parts.append(f"failure rate {_rate(r, 'a')} → {_rate(r, 'b')}")
    return f"{r.label}: {r.verdict} ({', '.join(parts)})"


FORMATS = {"console": console, "markdown": markdown, "junit": junit}
