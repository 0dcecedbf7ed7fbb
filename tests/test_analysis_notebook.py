"""docs/analysis.ipynb runs top to bottom on a real short run (two 4 s locust runs against the example target).

The notebook runs in a fresh interpreter: this test process is gevent-patched (conftest imports locust), which the
Jupyter client's asyncio machinery does not survive.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat

DOCS = Path(__file__).resolve().parent.parent / "docs"

RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def test_analysis_notebook_executes(tmp_path):
    executed = tmp_path / "executed.ipynb"
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(DOCS / "analysis.ipynb"), str(DOCS), str(executed)],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # nothing stray: no printed output or warnings, only results and the figure
    assert not [o for o in outputs if o.get("output_type") == "stream"], [o for o in outputs if "text" in o]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plots cell displays no figure"
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "/api/items" in text and "p99_ratio" in text


def test_the_committed_notebook_shows_its_figures_and_nothing_stray():
    nb = nbformat.read(DOCS / "analysis.ipynb", as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o.get("output_type") in ("error", "stream")]


def test_run_repr_is_short_and_names_take_their_type(tmp_path):
    from locust_rs import _native, results

    prefix = tmp_path / "run"
    (tmp_path / "run_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count\nPOST,/api/chat/query,3,1\n,Aggregated,3,1\n"
    )
    core = _native.StatsCore()
    for v in (1.0, 2.0, 3.0):
        core.log_request("POST", "/api/chat/query", v, 0)
    run = results.load(prefix)
    run.histograms.merge(core.histograms())
    assert repr(run) == "Run('run': 3 requests, 1 failures, 1 names)"
    assert run.percentile("POST /api/chat/query", 1.0) == run.percentile("/api/chat/query", 1.0)
    assert abs(run.percentile("POST /api/chat/query", 1.0) - 3.0) <= 3.0 * 1e-3
