"""A live table in Locust's web UI: a tab, its table's columns, and its rows in every ``/stats/requests`` answer,
through the extension points of Locust's React UI (``extended_tabs``, ``extended_tables``, ``extended_stats``)."""

from __future__ import annotations

import json
from collections.abc import Callable


def add_tab(web_ui, key: str, title: str, structure: list[dict], rows: Callable[[], list[dict] | None]) -> None:
    """Adds the tab ``title``; ``rows()`` is called for each ``/stats/requests`` (None: leave the answer as it is)."""
    from flask import request

    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": title, "key": key}]
    args["extended_tables"] = [*args.get("extended_tables", []), {"key": key, "structure": structure}]

    @web_ui.app.after_request
    def _add_rows(response):
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        data = rows()
        body = response.get_json(silent=True)
        if data is None or not isinstance(body, dict):
            return response
        extended = [e for e in body.get("extended_stats", []) if e.get("key") != key]
        body["extended_stats"] = [*extended, {"key": key, "data": data}]
        response.set_data(json.dumps(body))
        return response
