"""The HDR companion page of Locust's HTML report: an exact-percentiles table (raw and corrected) and a
percentile-distribution chart on log scales, as one self-contained HTML file (inline SVG, no scripts).

With ``--html report.html`` the run also writes ``report_hdr.html``; the web UI serves the same page live at
``/locust-rs/hdr.html``.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence

# x: "nines" (1 / (1 - q)) from 0 % to 99.999 %; y: ms on a log scale, as HdrHistogram's own plots. The legend
# has a column of its own right of the plot, so it never covers a curve.
_W, _H, _PAD = 900, 420, 60
_LEGEND_W = 320
# The chart shows the endpoints with the most requests (the table has all of them).
TOP_ENDPOINTS = 6
_MAX_NINES = 5
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _x(q: float) -> float:
    nines = min(_MAX_NINES, -math.log10(max(1e-12, 1.0 - q)))
    return _PAD + (_W - 2 * _PAD) * nines / _MAX_NINES


def _chart(series: list[tuple[str, list[tuple[float, float]]]]) -> str:
    values = [v for _, pts in series for _, v in pts if v > 0]
    if not values:
        return "<p>No requests recorded.</p>"
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    if hi == lo:
        hi += 1

    def y(v: float) -> float:
        lv = math.log10(max(v, 10.0**lo))
        return _H - _PAD - (_H - 2 * _PAD) * (lv - lo) / (hi - lo)

    width = _W + _LEGEND_W
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_H}" font-family="sans-serif" '
        'font-size="11">'
    ]
    for n in range(_MAX_NINES + 1):
        x = _x(1 - 10.0**-n)
        label = f"{100 * (1 - 10.0**-n):.{max(0, n - 2)}f}%"
        out.append(f'<line x1="{x:.1f}" y1="{_PAD}" x2="{x:.1f}" y2="{_H - _PAD}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{_H - _PAD + 15}" text-anchor="middle">{label}</text>')
    for e in range(lo, hi + 1):
        yy = y(10.0**e)
        out.append(f'<line x1="{_PAD}" y1="{yy:.1f}" x2="{_W - _PAD}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{_PAD - 5}" y="{yy + 4:.1f}" text-anchor="end">{10.0**e:g} ms</text>')
    for i, (label, pts) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        dash = ' stroke-dasharray="5,3"' if label.endswith("(corrected)") else ""
        path = " ".join(f"{_x(q):.1f},{y(v):.1f}" for q, v in pts if q < 1 - 10.0**-_MAX_NINES or q == pts[-1][0])
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{path}"/>')
        ly = _PAD + 16 * i
        out.append(
            f'<line x1="{_W - _PAD + 20}" y1="{ly - 4}" x2="{_W - _PAD + 44}" y2="{ly - 4}" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
        )
        short = label if len(label) <= 44 else label[:41] + "..."
        out.append(f'<text x="{_W - _PAD + 50}" y="{ly}">{html.escape(short)}</text>')
    out.append(f'<text x="{_W / 2}" y="{_H - 15}" text-anchor="middle">percentile</text>')
    out.append("</svg>")
    return "\n".join(out)


def _context(run) -> str:
    """Host, start, duration and users of the run, and the way to Locust's own report."""
    ctx = run.context()
    parts = [f"<b>Host</b> {html.escape(str(ctx['host'] or '(per user class)'))}"]
    if ctx["start"]:
        parts.append(f"<b>Start</b> {html.escape(ctx['start'])}")
    if ctx["duration"] is not None:
        parts.append(f"<b>Duration</b> {ctx['duration']:.1f} s")
    parts.append(f"<b>Users</b> {ctx['users']}")
    if ctx["locust_report"]:
        href = html.escape(ctx["locust_report"], quote=True)
        parts.append(f'<a href="{href}">Locust\'s report</a>')
    return '<p class="context">' + " &middot; ".join(parts) + "</p>"


def render(
    run,
    labels: tuple[str, ...],
    title: str = "locust-rs: exact percentiles (HDR)",
    sections: Sequence[str] = (),
) -> str:
    """The page for an :py:class:`locust_rs.stats.hdr_outputs.HdrRun` (its cumulative histograms); ``labels`` name the
    percentile columns of its rows; ``sections`` (HTML) are what the run's other reports add, such as the arrival
    rates (:py:func:`locust_rs.arrival.report.html_section`)."""
    cols = ("Count", "Failures", "Min", "Mean", "StdDev", *labels, "Max")
    rows = []
    all_rows = run.rows()
    for row in all_rows:
        for side, label in ((row["raw"], "raw"), (row["corrected"], "corrected")):
            if side is None:
                continue
            pct = [v for _, v in side["percentiles"]]
            fails = row["failures"] if label == "raw" else ""
            cells = [side["count"], fails, side["min"], side["mean"], side["stdev"], *pct, side["max"]]
            rows.append(
                "<tr>"
                + f"<td>{html.escape(row['type'])}</td><td>{html.escape(row['name'])}</td><td>{label}</td>"
                + "".join(f"<td>{c if isinstance(c, int | str) else f'{c:.3f}'}</td>" for c in cells)
                + "</tr>"
            )
    core = run.stats.core
    keyed = all_rows[:-1]  # the aggregate is last
    series = [("Aggregated", core.distribution())]
    if all_rows and all_rows[-1]["corrected"] is not None:
        series.append(("Aggregated (corrected)", core.distribution(corrected=True)))
    busiest = sorted(keyed, key=lambda r: (-r["raw"]["count"], r["type"], r["name"]))[:TOP_ENDPOINTS]
    for r in busiest:
        t, n = r["type"], r["name"]
        series.append((f"{t} {n}", core.distribution(t, n)))
        if r["corrected"] is not None:
            series.append((f"{t} {n} (corrected)", core.distribution(t, n, True)))
    more = len(keyed) - len(busiest)
    note = f"<p>The {len(busiest)} endpoints with the most requests; {more} more are in the table.</p>" if more else ""
    head = "".join(f"<th>{c}</th>" for c in ("Type", "Name", "Histogram", *cols))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:nth-child(-n+3), td:nth-child(-n+3) {{ text-align: left; }}
.context {{ font-size: 14px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{_context(run)}
<p>Response times in ms from HDR histograms (3 significant digits, exact to 0.1 %): the same figures as Locust's
own tables and report. <em>corrected</em> rows add the requests a paced user (constant_pacing /
constant_throughput / expected_interval) could not send while it waited: coordinated-omission correction.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
{"".join(sections)}
<h2>Percentile distribution</h2>
{note}
{_chart(series)}
</body></html>
"""


_LINK_MARK = "<!-- locust-rs: link to the HDR page -->"


def link_back(report_path: str, page_name: str, section: str = "") -> None:
    """Adds a link to the HDR page to Locust's HTML report (a fixed corner link: its template has no extension
    point), and ``section`` (HTML: what the run's other reports add) below the report's own content. Locust writes
    its report before ``quitting``, when this runs; a missing report is left alone. Only the report's tail is read and
    rewritten: with many request names the report is tens of MB."""
    try:
        f = open(report_path, "r+b")  # noqa: SIM115 - closed below
    except OSError:
        return
    with f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL)
        f.seek(start)
        tail = f.read()
        # The document's own </body> is the last one: Locust's script bundle holds the tag in a string before it, and
        # anything put there broke the bundle (a blank report) or never showed.
        end = tail.rfind(b"</body>")
        if end < 0 or _LINK_MARK.encode() in tail:
            return
        href = html.escape(page_name, quote=True)
        link = (
            f'{_LINK_MARK}<a href="{href}" style="position:fixed;right:12px;bottom:12px;z-index:9999;padding:6px 10px;'
            'background:#1f77b4;color:#fff;border-radius:4px;font:13px sans-serif;text-decoration:none">'
            "Exact percentiles (HDR)</a>"
        )
        if section:
            link += f'<div style="font:13px sans-serif;margin:2em">{section}</div>'
        f.seek(start + end)
        f.write(link.encode() + tail[end:])


#: How much of the report's end is read to find its last </body>: Locust's template ends with a short script after it.
_TAIL = 256 * 1024
