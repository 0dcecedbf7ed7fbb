"""What a ``--otel`` run exported, from the JSONL file of ``tests/otlp_receiver.py``: client spans per name and status,
and the percentiles a backend reads from ``locust.client.duration.exponential``.

    python tests/otlp_receiver.py /tmp/otel.jsonl &      # prints {"port": P}
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:P OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \\
        locust-rs -f locustfiles/locustfile.py --otel --headless -u 20 -r 5 -t 30s --csv /tmp/run
    python examples/otel_summary.py /tmp/otel.jsonl

The percentiles use each bucket's upper bound and the rank rule of the HDR outputs (the smallest value with at least
p % of the count at or below it), so they compare with ``/tmp/run_hdr.csv`` directly.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter, defaultdict


def attributes(items: list[dict]) -> dict:
    return {a["key"]: next(iter(a["value"].values()), None) for a in items or []}


def spans(records: list[dict]) -> Counter:
    counts: Counter = Counter()
    for r in records:
        if r["signal"] != "traces":
            continue
        for rs in r["request"].get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    status = attributes(s.get("attributes")).get("http.status_code") or attributes(
                        s.get("attributes")
                    ).get("http.response.status_code")
                    counts[s["name"], ss["scope"]["name"], status] += 1
    return counts


def exponential(records: list[dict], metric: str = "locust.client.duration.exponential") -> dict[tuple, dict]:
    """Per statistics line (request type, name), the last (cumulative) exponential histogram, its series (one per
    error.type) merged."""
    last: dict[tuple, dict] = {}
    for r in records:
        if r["signal"] != "metrics":
            continue
        for rm in r["request"].get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m["name"] != metric:
                        continue
                    for p in m["exponentialHistogram"]["dataPoints"]:
                        attrs = attributes(p.get("attributes"))
                        last[attrs.get("request_type"), attrs.get("name"), attrs.get("error.type")] = p
    merged: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "buckets": Counter(), "scale": None})
    for (request_type, name, _), p in last.items():
        entry = merged[request_type, name]
        # Series of one run share the scale only by chance: bring every bucket to the smallest scale seen.
        scale = int(p.get("scale", 0))
        entry["scale"] = scale if entry["scale"] is None else min(entry["scale"], scale)
        entry["count"] += int(p.get("count", 0))
        entry.setdefault("points", []).append(p)
    for entry in merged.values():
        for p in entry.pop("points"):
            shift = int(p.get("scale", 0)) - entry["scale"]
            positive = p.get("positive", {})
            offset = int(positive.get("offset", 0))
            for i, n in enumerate(positive.get("bucketCounts", [])):
                entry["buckets"][(offset + i) >> shift] += int(n)
    return dict(merged)


def percentile(entry: dict, q: float) -> float:
    """The upper bound (in ms) of the bucket holding the value at rank ceil(q * count)."""
    rank = max(1, math.ceil(q * entry["count"]))
    base = 2.0 ** (2.0 ** -entry["scale"])
    seen = 0
    for index in sorted(entry["buckets"]):
        seen += entry["buckets"][index]
        if seen >= rank:
            return base ** (index + 1) * 1000
    return math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", help="the receiver's output file")
    args = parser.parse_args()
    with open(args.jsonl) as f:
        records = [json.loads(line) for line in f if line.strip()]
    print(f"{'spans':>7}  {'scope':<38} {'status':>6}  name")
    for (name, scope, status), n in sorted(spans(records).items(), key=lambda kv: -kv[1]):
        print(f"{n:>7}  {scope:<38} {status or '-':>6}  {name}")
    print("\nlocust.client.duration.exponential")
    print(f"{'count':>7}  {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9}  scale  name")
    for (request_type, name), entry in sorted(exponential(records).items(), key=lambda kv: -kv[1]["count"]):
        p50, p90, p99 = (percentile(entry, q) for q in (0.5, 0.9, 0.99))
        print(f"{entry['count']:>7}  {p50:>9.3f} {p90:>9.3f} {p99:>9.3f}  {entry['scale']:>5}  {request_type} {name}")


if __name__ == "__main__":
    main()
