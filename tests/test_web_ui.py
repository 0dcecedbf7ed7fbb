"""Locust's web UI with locust-rs users, driven through the start form as a person's browser posts it: no
``--autostart``, which skips the form.

The form is Locust's React page: it shows every option a locustfile or plugin adds (``extra_options`` in the page's
``window.templateArgs``), and posts each field as text: a box as ``true``/``false``, a field left empty as ``""``.
``tests/test_web_ui_browser.py`` drives the same page in Chromium; these tests post the form's fields directly, so
that every locust-rs option is tried empty, as its default and typed, in a few seconds each.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import json
import re
import signal
import time
from pathlib import Path

import pytest
import requests
from test_e2e_locust import RUN_GRACE_S, count, finish_locust, free_port, start_locust, write_locustfile

LOCUSTFILE = """
from locust import constant, task
from locust_rs import HttpUser


class Fast(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/echo/fast", name="fast")


class Requests(HttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/bytes/2048", name="bytes")
"""

UI_WAIT_S = 20.0


class WebUI:
    """A ``locust`` process with its web UI up, and the calls the React page makes."""

    def __init__(self, tmp_path: Path, host: str, *args: str, locustfile: str = LOCUSTFILE, base_path: str = ""):
        self.locustfile = write_locustfile(tmp_path, locustfile)
        self.csv_prefix = tmp_path / "run"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}{base_path}"
        self.proc = start_locust(
            self.locustfile,
            "--host", host, "--web-host", "127.0.0.1", "--web-port", str(port), "--csv", str(self.csv_prefix),
            *args,
        )  # fmt: skip
        self.template_args = self._wait_for_page()

    def output(self) -> str:
        return (self.locustfile.parent / "locust.log").read_text(errors="replace")

    def _wait_for_page(self) -> dict:
        deadline = time.monotonic() + UI_WAIT_S
        while True:
            assert self.proc.poll() is None, f"locust exited:\n{self.output()}"
            try:
                page = requests.get(self.url + "/", timeout=2)
                if page.status_code == 200:
                    found = re.search(r"window\.templateArgs = (\{.*?\});?\s*$", page.text, re.MULTILINE)
                    assert found, page.text[:500]
                    return json.loads(found.group(1))
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the web UI did not answer in {UI_WAIT_S} s:\n{self.output()}"
            time.sleep(0.1)

    def form_defaults(self) -> dict[str, str]:
        """The fields the start form posts when START is pressed on its defaults, as the page fills them in."""
        args = self.template_args
        form = {
            "user_count": str(args.get("num_users") or args.get("user_count") or 1),
            "spawn_rate": str(args.get("spawn_rate") or 1),
            "host": args.get("host") or "",
        }
        for name, option in args["extra_options"].items():
            default = option["default_value"]
            if isinstance(default, bool):  # a box, posted as its checked state
                form[name] = "true" if default else "false"
            elif default is None:
                form[name] = ""
            elif isinstance(default, list):
                form[name] = ",".join(map(str, default))
            else:
                form[name] = str(default)
        return form

    def start(self, form: dict[str, str]) -> dict:
        answer = requests.post(self.url + "/swarm", data=form, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stats(self) -> dict:
        return requests.get(self.url + "/stats/requests", timeout=5).json()

    def wait_for(self, what: str, predicate, timeout: float = UI_WAIT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            assert self.proc.poll() is None, f"locust exited:\n{self.output()}"
            assert time.monotonic() < deadline, (
                f"{what}: not within {timeout} s; last /stats/requests: {stats}\n" + (self.output()[-3000:])
            )
            time.sleep(0.1)

    def stop(self) -> None:
        """The STOP button's call: a POST from Locust 2.47 on, a GET before (the other method answers 405)."""
        answer = requests.post(self.url + "/stop", timeout=10)
        if answer.status_code == 405:
            answer = requests.get(self.url + "/stop", timeout=10)
        assert answer.status_code == 200, answer.text
        self.wait_for("the run stopped", lambda s: s["state"] == "stopped")

    def quit(self):
        """SIGTERM, as a CI job or a container ends a web UI run: Locust writes its outputs and exits (Locust 2.46.7,
        the range's floor, did not end a web UI run on SIGINT here)."""
        self.proc.send_signal(signal.SIGTERM)
        return finish_locust(self.proc, RUN_GRACE_S, self.csv_prefix)


def row(stats: dict, name: str) -> dict | None:
    return next((s for s in stats["stats"] if s["name"] == name), None)


def running_with_requests(*names: str):
    def check(stats: dict) -> bool:
        return (
            stats["state"] == "running"
            and stats["user_count"] > 0
            and all((r := row(stats, name)) is not None and r["num_requests"] > 0 for name in names)
        )

    return check


@pytest.mark.timeout(90)
def test_start_on_the_forms_defaults_runs_the_users(tmp_path, http_server):
    ui = WebUI(tmp_path, http_server)
    try:
        form = ui.form_defaults()
        answer = ui.start(form)
        assert answer["success"], answer
        # the form's one user is of the first class
        stats = ui.wait_for("running with users and requests", running_with_requests("fast"))
        assert stats["fail_ratio"] == 0, (stats, ui.output()[-3000:])
        ui.stop()
    finally:
        run = ui.quit()
    run.assert_exit(0)
    # (a signal can interrupt gevent's web server mid-answer, with a traceback of its own: only locust-rs's count)
    assert "locust_rs/" not in run.output, run.output
    assert count(run.stats()["GET", "fast"]) > 0, run.output
    # every option locust-rs puts in the form is one a run can change (the statistics are chosen at start-up)
    assert "max_body_size" in form and "locust_stats" not in form, form


@pytest.mark.timeout(90)
def test_a_typed_body_limit_applies_to_that_run_and_a_bad_one_is_refused(tmp_path, http_server):
    ui = WebUI(tmp_path, http_server)
    try:
        form = ui.form_defaults()
        refused = ui.start({**form, "max_body_size": "lots"})
        assert not refused["success"] and "max_body_size: 'lots' is not a size" in refused["message"], refused
        assert ui.stats()["state"] == "ready"

        # 1k: the 2 KiB bodies fail the requests, with the limit in the message; the other user's pass
        assert ui.start({**form, "max_body_size": "1k", "user_count": "2", "spawn_rate": "2"})["success"]
        stats = ui.wait_for("requests of both users", running_with_requests("fast", "bytes"))
        failures = requests.get(ui.url + "/stats/requests", timeout=5).json()["errors"]
        assert {f["name"] for f in failures} == {"bytes"}, failures
        assert row(stats, "fast")["num_failures"] == 0, stats
        assert all("1024" in f["error"] or "max_body_size" in f["error"] for f in failures), failures
    finally:
        run = ui.quit()
    run.assert_exit(1)  # the failed requests, as Locust's --exit-code-on-error says


@pytest.mark.timeout(90)
def test_under_a_web_base_path_the_tabs_fill_the_downloads_answer_and_the_form_is_checked(tmp_path, http_server):
    """Issue 32, defect 9: with --web-base-path, locust-rs's two tabs stayed empty and both HDR downloads answered
    404 (their routes and the rows' hook listened at the root), and the form's body-limit check never ran."""
    ui = WebUI(tmp_path, http_server, "--web-base-path", "/locust", base_path="/locust")
    try:
        form = ui.form_defaults()
        refused = ui.start({**form, "max_body_size": "lots"})
        assert not refused["success"] and "max_body_size: 'lots' is not a size" in refused["message"], refused
        assert ui.start({**form, "user_count": "2", "spawn_rate": "2"})["success"]
        stats = ui.wait_for("requests of both users", running_with_requests("fast", "bytes"))
        tab = next((e["data"] for e in stats.get("extended_stats", []) if e["key"] == "locust-rs-hdr"), None)
        assert tab and {r["name"] for r in tab} >= {"fast", "bytes"}, stats.get("extended_stats")
        for download in ("hdr.csv", "hdr.html"):
            answer = requests.get(f"{ui.url}/locust-rs/{download}", timeout=5)
            assert answer.status_code == 200 and "fast" in answer.text, (download, answer.status_code)
    finally:
        ui.quit()
