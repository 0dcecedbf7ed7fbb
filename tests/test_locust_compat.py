"""The Locust range locust-rs declares: every Locust name it relies on is there, and a Locust outside the range
fails the import with one sentence. ``make test-locust-floor`` runs these on the range's floor too."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from locust_rs import _compat, _locust_version
from test_e2e_locust import run_locust, write_locustfile

ROOT = Path(__file__).resolve().parent.parent


def test_every_locust_name_locust_rs_relies_on_is_there():
    assert _compat.missing_seams() == [], f"Locust {locust.__version__} lacks them"


def test_the_installed_locust_is_in_the_declared_range():
    assert _locust_version.FLOOR <= _locust_version._parse(locust.__version__) < _locust_version.CEILING
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"locust{_locust_version.RANGE}" in declared
    requirements = (ROOT / "locustfiles" / "requirements.txt").read_text().splitlines()
    assert f"locust{_locust_version.RANGE}" in requirements


@pytest.mark.parametrize("found", ["2.40.5", "2.46.6", "3.0.0"])
def test_a_locust_outside_the_range_fails_the_import_with_one_sentence(monkeypatch, found):
    monkeypatch.setattr(_locust_version, "_version", lambda _name: found)
    with pytest.raises(_locust_version.LocustVersionError) as raised:
        _locust_version.check()
    assert str(raised.value) == (
        f"locust-rs needs Locust >=2.46.7,<3, but Locust {found} is installed: pip install 'locust>=2.46.7,<3'"
    )
    assert isinstance(raised.value, ImportError)


def test_importing_locust_rs_under_another_locust_prints_the_sentence_not_a_missing_name(tmp_path):
    # A stand-in distribution "locust 2.40.5" found first on the path: what `pip install locust==2.40.5` leaves.
    dist = tmp_path / "locust-2.40.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: locust\nVersion: 2.40.5\n")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import locust_rs", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"locust_rs\._locust_version\.LocustVersionError: locust-rs needs Locust >=2\.46\.7,<3, but Locust 2\.40\.5 "
        r"is installed: pip install 'locust>=2\.46\.7,<3'",
        last,
    ), proc.stderr
    assert "cannot import name" not in proc.stderr


EVERY_KIND = """
from locust import constant, task
from locust_rs import HttpUser, constant_arrival_rate


class Fast(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/echo/fast", name="fast")


class Requests(HttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/echo/requests", name="requests")


class Arrivals(FastHttpUser):
    wait_time = constant_arrival_rate(10)

    @task
    def hit(self):
        self.client.get("/echo/arrival", name="arrival")
"""


def test_a_locustfile_with_every_kind_of_user_runs_with_csv_and_thresholds(tmp_path, http_server):
    """What a team pinned to this Locust runs first: FastHttpUser, HttpUser and an arrival-rate class, with
    --csv and --threshold; it exits 0 and every name is in the CSV."""
    run = run_locust(
        write_locustfile(tmp_path, EVERY_KIND), http_server, 3, "-u", "3", "-r", "3",
        "--threshold", "http_req_duration:p(95)<5s", "--threshold", "http_req_failed:rate<0.01",
        "--threshold", "dropped_iterations:count<1",
    )  # fmt: skip
    run.assert_exit(0)
    stats = run.stats()
    assert all(int(stats["GET", name]["Request Count"]) > 0 for name in ("fast", "requests", "arrival")), stats
    assert run.output.rstrip().splitlines()[-1] == "Run passed (exit code 0): all 3 thresholds passed", run.output
