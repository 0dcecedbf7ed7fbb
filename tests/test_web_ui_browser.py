"""Locust's web UI with locust-rs users, driven in headless Chromium as a person drives it: open the page, keep the
form's defaults, START, watch it run, open the tabs, STOP, NEW, START again, and read the numbers on screen.

It uses Debian's ``chromium`` and ``chromium-driver`` through Selenium, pointed at that driver (nothing downloads a
browser of its own). ``.ci/run`` installs both; elsewhere, without them, the test is skipped and says why, except in
CI (``CI`` set), where a missing browser fails it.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import os
import re
import shutil
import time

import pytest
from test_e2e_locust import count, run_locust, write_locustfile
from test_web_ui import WebUI

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - make test-deps installs it
    webdriver = None

MISSING = [
    what
    for what, found in (("selenium", webdriver), ("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
    if not found
]
if MISSING and not os.environ.get("CI"):
    pytestmark = pytest.mark.skip(reason=f"no {', '.join(MISSING)} (apt-get install chromium chromium-driver)")

LOCUSTFILE = """
from locust import constant, task
from locust_rs import HttpUser, constant_arrival_rate


class Closed(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/echo/closed", name="closed")


class Arrivals(HttpUser):
    wait_time = constant_arrival_rate(10)

    @task
    def hit(self):
        self.client.get("/echo/arrival", name="arrival")
"""

WAIT_S = 20.0


@pytest.fixture(scope="module")
def browser():
    assert not MISSING, f"the browser test needs {', '.join(MISSING)} (apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """Locust's React page as a person sees it: visible text, buttons by their label, tables as rows of cells."""

    def __init__(self, driver, ui: WebUI):
        self.driver = driver
        self.ui = ui

    def wait(self, what: str, condition, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = condition()
            except Exception as e:  # the page re-renders between finding an element and reading it
                found, last = None, e
            else:
                last = None
            if found:
                return found
            if time.monotonic() > deadline:
                self.driver.save_screenshot(str(self.ui.locustfile.parent / "screen.png"))
                raise AssertionError(
                    f"{what}: not on screen within {timeout} s ({last!r}); header: {self.header()}\n"
                    f"{self.ui.output()[-3000:]}"
                )
            assert self.ui.proc.poll() is None, f"locust exited:\n{self.ui.output()}"
            time.sleep(0.1)

    def header(self) -> dict[str, str]:
        """The header's figures: Host, Status, Users, RPS, Failures."""
        try:
            lines = self.driver.find_element(By.TAG_NAME, "header").text.split("\n")
        except Exception:
            return {}
        return dict(zip(lines[0::2], lines[1::2], strict=False))

    def wait_stopped(self) -> None:
        """Waits for the stopped run on screen. Locust's page polls /stats/requests only while a run is SPAWNING or
        RUNNING: a poll that lands in the short CLEANUP state stops the polling, and the header says CLEANUP until
        the page is loaded again (Locust's page; docs/compatibility.md). A person reloads it, and so does this."""
        self.ui.wait_for("the run stopped", lambda s: s["state"] == "stopped")
        shown = self.wait(
            "the stopped state",
            lambda: self.header().get("Status") in ("STOPPED", "CLEANUP") and self.header()["Status"],
        )
        if shown == "CLEANUP":
            self.driver.refresh()
        self.wait("STOPPED", lambda: self.header().get("Status") == "STOPPED")

    def button(self, label: str):
        found = [b for b in self.driver.find_elements(By.TAG_NAME, "button") if b.text == label and b.is_enabled()]
        return found[0] if found else None

    def click(self, label: str) -> None:
        self.wait(f"the {label} button", lambda: self.button(label)).click()

    def tab(self, title: str) -> None:
        def find():
            tabs = [t for t in self.driver.find_elements(By.CSS_SELECTOR, "[role=tab]") if t.text == title.upper()]
            return tabs[0] if tabs else None

        self.wait(f"the {title} tab", find).click()

    def table(self) -> list[dict[str, str]]:
        """The visible table's rows, each a dict of column title to cell text."""
        table = self.driver.find_element(By.TAG_NAME, "table")
        titles = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        return [
            dict(zip(titles, (td.text for td in tr.find_elements(By.TAG_NAME, "td")), strict=True))
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]

    def rows_by_name(self, key: tuple[str, ...] = ("Name",)) -> dict[tuple[str, ...], dict[str, str]]:
        return {tuple(r[k] for k in key): r for r in self.table()}


def shown(value) -> str:
    """A number as the page prints it (JavaScript's shortest form: 2.0 is "2")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def statistics_match(page: Page, api: dict) -> bool:
    """The Statistics tab shows /stats/requests: counts and exact percentiles as they are, the median and the
    average rounded to 2 decimals as Locust's page rounds them."""
    rows = page.rows_by_name()
    for s in api["stats"]:
        r = rows.get((s["name"],))
        if r is None:
            return False
        exact = {
            "# Requests": s["num_requests"],
            "# Fails": s["num_failures"],
            "95%ile (ms)": s["response_time_percentile_0.95"],
            "99%ile (ms)": s["response_time_percentile_0.99"],
            "Min (ms)": s["min_response_time"],
            "Max (ms)": s["max_response_time"],
        }
        if any(r[title] != shown(v) for title, v in exact.items()):
            return False
        for title, v in (("Median (ms)", s["median_response_time"]), ("Average (ms)", s["avg_response_time"])):
            if abs(float(r[title]) - v) > 0.005 + 1e-9:
                return False
    return len(rows) == len(api["stats"])


def extended(api: dict, key: str) -> list[dict]:
    return next(e["data"] for e in api["extended_stats"] if e["key"] == key)


def exact_tab_matches(page: Page, api: dict) -> bool:
    """The Exact percentiles tab shows every figure of /stats/requests' HDR rows as it is."""
    rows = page.rows_by_name(("Type", "Name", "Histogram"))
    data = extended(api, "locust-rs-hdr")
    for d in data:
        r = rows.get((d["type"], d["name"], d["histogram"]))
        if r is None:
            return False
        if r["# Requests"] != shown(d["count"]) or r["p99 (ms)"] != shown(d["p99"]) or r["Max (ms)"] != shown(d["max"]):
            return False
        if any(r[f"{q} (ms)"] != shown(d[q.replace(".", "")]) for q in ("p50", "p90", "p95", "p99.9")):
            return False
    return len(rows) == len(data)


def run_once(page: Page) -> dict:
    """START on the form's defaults, watch it run, open the tabs, STOP; the stopped run's /stats/requests."""
    ui = page.ui
    form_users = page.wait("the start form", lambda: page.driver.find_element(By.NAME, "userCount"))
    assert form_users.get_attribute("value") == "2"  # -u 2 on the command line is the form's default
    page.click("START")
    page.wait(
        "RUNNING with 2 users",
        lambda: page.header().get("Status") == "RUNNING" and page.header().get("Users") == "2",
    )
    page.tab("Statistics")

    def both_named_rows_counting():
        rows = page.rows_by_name()
        return all(int(rows.get((n,), {}).get("# Requests", "0") or 0) > 0 for n in ("closed", "arrival"))

    page.wait("requests of both users in the Statistics tab", both_named_rows_counting)

    page.tab("Exact percentiles")
    page.wait(
        "the exact percentiles of both names",
        lambda: {"closed", "arrival"} <= set(n for _, n, _ in page.rows_by_name(("Type", "Name", "Histogram"))),
    )
    page.tab("Arrival rate")
    page.wait(
        "the arrival class's iterations",
        lambda: int(page.rows_by_name(("User class",))[("Arrivals",)]["Iterations"]) > 0,
    )

    page.click("STOP")
    page.wait_stopped()
    api = ui.stats()
    assert api["state"] == "stopped", api
    # the page polls /stats/requests every few seconds: the stopped run's figures arrive and stay
    page.tab("Statistics")
    page.wait("the Statistics tab showing /stats/requests", lambda: statistics_match(page, ui.stats()))
    page.tab("Exact percentiles")
    page.wait("the Exact percentiles tab showing /stats/requests", lambda: exact_tab_matches(page, ui.stats()))
    return api


@pytest.mark.timeout(150)
def test_the_web_ui_in_a_browser(tmp_path, http_server, browser):
    thresholds = ("http_req_duration:p(95)<10s", "arrival:requests>0")
    args = ("-u", "2", "-r", "2", *(a for t in thresholds for a in ("--threshold", t)))
    ui = WebUI(tmp_path, http_server, *args, locustfile=LOCUSTFILE)
    try:
        browser.get(ui.url + "/")
        page = Page(browser, ui)
        first = run_once(page)
        assert first["fail_ratio"] == 0, first
        # the verdict of the stopped run, with the figures every other tab shows
        page.tab("Thresholds")
        aggregated_p95 = first["stats"][-1]["response_time_percentile_0.95"]
        verdict = page.wait("the thresholds' verdict", lambda: page.rows_by_name(("Threshold",)))
        assert verdict[(thresholds[0],)][""] == "✓", verdict
        assert verdict[(thresholds[0],)]["Observed"] == f"{aggregated_p95:.3f} ms", (verdict, first)
        assert verdict[(thresholds[1],)][""] == "✓", verdict

        page.click("NEW")
        second = run_once(page)
        assert second["fail_ratio"] == 0, second
    finally:
        run = ui.quit()
    run.assert_exit(0)
    assert "locust_rs/" not in run.output, run.output
    final = run.stats()
    assert count(final["", "Aggregated"]) >= second["stats"][-1]["num_requests"], run.output


@pytest.mark.timeout(90)
def test_a_threshold_abort_shows_its_reason_in_the_browser(tmp_path, http_server, browser):
    args = ("-u", "1", "--threshold", "max<0.001", "--threshold-abort", "--threshold-abort-interval", "0.5")
    ui = WebUI(tmp_path, http_server, *args, locustfile=LOCUSTFILE)
    try:
        browser.get(ui.url + "/")
        page = Page(browser, ui)
        page.click("START")
        page.wait_stopped()  # by the threshold
        page.tab("Thresholds")
        rows = page.wait(
            "the abort's reason",
            lambda: (r := page.rows_by_name(("Threshold",))).get(("stopped by --threshold-abort",)) and r,
        )
        assert rows[("max<0.001",)][""] == "✗", rows
        assert rows[("stopped by --threshold-abort",)]["Observed"].startswith("max<0.001 (Aggregated: "), rows
    finally:
        run = ui.quit()
    run.assert_exit(99)


@pytest.mark.timeout(90)
def test_locusts_html_report_renders_with_the_hdr_link_and_the_arrival_figures(tmp_path, http_server, browser):
    """locust-rs adds to Locust's HTML report a link to the HDR page and the arrival-rate figures. Put inside the
    report's script bundle (its first ``</body>`` is in a string there), they blanked the report, or never showed."""
    report = tmp_path / "report.html"
    run = run_locust(
        write_locustfile(tmp_path, LOCUSTFILE), http_server, 2, "-u", "2", "-r", "2", "--html", str(report)
    )
    run.assert_exit(0)
    browser.get(report.as_uri())
    deadline = time.monotonic() + WAIT_S
    while "Final ratio" not in (text := browser.find_element(By.TAG_NAME, "body").text):
        assert time.monotonic() < deadline, f"Locust's report did not render in {WAIT_S} s: {text[:500]!r}"
        time.sleep(0.1)
    assert "Arrival rate (open model)" in text and "Arrivals" in text, text[-2000:]
    link = browser.find_element(By.LINK_TEXT, "Exact percentiles (HDR)")
    assert link.is_displayed() and link.get_attribute("href").endswith("report_hdr.html")


@pytest.mark.timeout(150)
def test_a_relative_threshold_is_judged_at_the_end_in_the_browser(tmp_path, http_server, browser):
    """``--baseline`` with ``p(50)<+1000%``: while the test runs, the Thresholds tab shows the run's value, "judged at
    the end" (a 95 % interval looked at every few seconds would be crossed by chance); after the run, the verdict
    has the baseline's value and the change's interval."""
    (tmp_path / "base").mkdir()
    (tmp_path / "ui").mkdir()
    base = run_locust(write_locustfile(tmp_path / "base", LOCUSTFILE), http_server, 3, "-u", "2")
    base.assert_exit(0)
    args = ("-u", "2", "--baseline", str(base.csv_prefix), "--threshold", "p(50)<+1000%")
    ui = WebUI(tmp_path / "ui", http_server, *args, locustfile=LOCUSTFILE)
    try:
        browser.get(ui.url + "/")
        page = Page(browser, ui)
        page.click("START")
        page.wait("RUNNING", lambda: page.header().get("Status") == "RUNNING")
        page.tab("Thresholds")
        row = page.wait(
            "the relative threshold, judged at the end",
            lambda: (
                (r := page.rows_by_name(("Threshold",)).get(("p(50)<+1000%",)))
                and "judged at the end" in r["Observed"]
                and r
            ),
        )
        assert row[""] == "✓" and row["Limit"] == "< baseline +1000 %", row
        page.click("STOP")
        page.wait_stopped()
    finally:
        run = ui.quit()
    run.assert_exit(0)
    verdict = run.output[run.output.index("Thresholds\n") :]
    assert re.search(
        r"^✓\s+p\(50\)<\+1000%\s+Aggregated\s+[\d.]+ ms \(baseline [\d.]+ ms: [-+][\d.]+ %, interval ", verdict, re.M
    ), verdict
