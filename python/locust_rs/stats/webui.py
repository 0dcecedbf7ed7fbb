"""locust-rs's hooks into Locust's web UI: a live table (a tab, its table's columns, and its rows in every
``/stats/requests`` answer, through the extension points of Locust's React UI: ``extended_tabs``,
``extended_tables``, ``extended_stats``), and the checks of locust-rs's fields in the start form."""

from __future__ import annotations

import json
from collections.abc import Callable


def base_path(web_ui) -> str:
    """The path Locust's routes are under (``--web-base-path``; "" without it): Locust keeps it only in its
    blueprint, so it is read from the run's options, as Locust's ``main`` passed it."""
    options = getattr(web_ui.environment, "parsed_options", None)
    return (getattr(options, "web_base_path", None) or "").rstrip("/")


def add_tab(web_ui, key: str, title: str, structure: list[dict], rows: Callable[[], list[dict] | None]) -> None:
    """Adds the tab ``title``; ``rows()`` is called for each ``/stats/requests`` (None: leave the answer as it is)."""
    from flask import request

    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": title, "key": key}]
    args["extended_tables"] = [*args.get("extended_tables", []), {"key": key, "structure": structure}]

    stats_path = f"{base_path(web_ui)}/stats/requests"

    @web_ui.app.after_request
    def _add_rows(response):
        if request.path != stats_path or response.status_code != 200:
            return response
        data = rows()
        body = response.get_json(silent=True)
        if data is None or not isinstance(body, dict):
            return response
        extended = [e for e in body.get("extended_stats", []) if e.get("key") != key]
        body["extended_stats"] = [*extended, {"key": key, "data": data}]
        response.set_data(json.dumps(body))
        return response


def check_form(web_ui, checks: dict[str, Callable[[str], object]]) -> None:
    """Checks the start form's fields named in ``checks`` before Locust starts a run with them: each check gets a
    field's text when it is not empty (empty means the option's default) and raises ValueError with a message for
    the person at the form. Locust itself only copies the text into ``parsed_options``, so a bad value would
    surface as an exception in every user's ``__init__``, with the run stuck in SPAWNING and nothing on screen."""
    from flask import jsonify, request

    swarm_path = f"{base_path(web_ui)}/swarm"

    @web_ui.app.before_request
    def _check_swarm_form():
        if request.path != swarm_path or request.method != "POST":
            return None
        for field, check in checks.items():
            value = request.form.get(field, "")
            if not value.strip():
                continue
            try:
                check(value)
            except ValueError as e:
                # the answer Locust gives a bad field of its own (an alert under the form)
                return jsonify({"success": False, "message": str(e), "host": web_ui.environment.host})
        return None
