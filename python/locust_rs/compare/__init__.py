"""Did this build get slower? Two runs' (or two sets of repeated runs') results compared with statistics.

From the command line (``docs/compare.md``)::

    locust-rs compare results/baseline results/candidate
    locust-rs compare --baseline a b c --candidate d e f --format markdown >> "$GITHUB_STEP_SUMMARY"

From Python::

    from locust_rs.compare import compare, load
    table = compare([load("out/before")], [load("out/after")])
    table.exit_code, [row.verdict for row in table.rows]

``locust_rs.results.compare`` gives the same table as a pandas frame, and plots it. Needs nothing beyond the
standard library and the native module: a CI job can run it without the ``analysis`` extra.
"""

from __future__ import annotations

from locust_rs.compare.runs import RunData, RunNotFound, load
from locust_rs.compare.table import Comparison, Options, Row, compare

__all__ = ["Comparison", "Options", "Row", "RunData", "RunNotFound", "compare", "load"]
