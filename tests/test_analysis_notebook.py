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
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "/api/items" in text and "p99_ratio" in text
