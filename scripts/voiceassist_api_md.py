"""Render the demo server's OpenAPI document as docs/voiceassist-api.md.

    python scripts/voiceassist_api_md.py > docs/voiceassist-api.md     # regenerate
    python scripts/voiceassist_api_md.py --check                         # exit 1 if the doc is stale

The OpenAPI document comes from the code (utoipa, ``crates/voiceassist-demo/src/openapi.rs``) through
``DemoServer.openapi_json()``, the same text the server serves at ``/openapi.json``; no server is started.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "voiceassist-api.md"
METHODS = ("get", "post", "put", "patch", "delete")


def load_spec() -> dict[str, Any]:
    from locust_rs.demo import DemoServer

    return json.loads(DemoServer.openapi_json())


def type_of(schema: dict[str, Any] | None) -> str:
    """A short human-readable type: `string`, `integer (min 1)`, `[Citation]`, `Document | null`."""
    if not schema:
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " \\| ".join(type_of(s) for s in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if isinstance(kind, list):
        inner = {**schema, "type": next((k for k in kind if k != "null"), "")}
        return type_of(inner) + (" \\| null" if "null" in kind else "")
    if kind == "array":
        return f"array of {type_of(schema.get('items'))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of string to {type_of(schema['additionalProperties'])}"
    out = kind
    if schema.get("format") and schema["format"] not in ("int64", "int32", "double", "float"):
        out += f" ({schema['format']})"
    limits = []
    for key, label in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
    ):
        if key in schema:
            limits.append(f"{label} {schema[key]}")
    if limits:
        out += " (" + ", ".join(limits) + ")"
    return out


def cell(text: str | None) -> str:
    return (text or "").replace("\n", " ").replace("|", "\\|").strip()


def render(spec: dict[str, Any]) -> str:
    info = spec["info"]
    lines = [
        f"# {info['title']} {info.get('version', '')}".rstrip(),
        "",
        "<!-- Generated from the server's OpenAPI document by scripts/voiceassist_api_md.py; do not edit by hand. -->",
        "",
        info.get("description", ""),
        "",
        f"The server publishes this document at `GET /openapi.json` (OpenAPI {spec['openapi']}). "
        "Start the server with `python -m locust_rs.demo`; options and behaviour are in "
        "[demo-server.md](demo-server.md).",
        "",
        "**Authentication.** Routes marked *bearer* need `Authorization: Bearer <access token>`, the "
        "`access_token` of `POST /api/auth/login`. A missing, bad, expired or revoked token is a `401` "
        "with `WWW-Authenticate: Bearer`; an admin route called by a non-admin is a `403`.",
        "",
    ]
    tags = [t["name"] for t in spec.get("tags", [])]
    tag_text = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    ops: dict[str, list[tuple[str, str, dict[str, Any]]]] = {t: [] for t in tags}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                ops.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    lines += ["## Routes", "", "| method | path | auth | success |", "| --- | --- | --- | --- |"]
    for tag in ops:
        for method, path, op in ops[tag]:
            ok = [c for c in op["responses"] if c.startswith("2")]
            lines.append(f"| {method.upper()} | [`{path}`](#{method}-{anchor(path)}) | {auth(op)} | {', '.join(ok)} |")
    lines.append("")
    for tag in ops:
        lines += [f"## {tag} routes", "", tag_text.get(tag, ""), ""]
        for method, path, op in ops[tag]:
            lines += operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [cell(schema["description"]), ""]
        props = schema.get("properties")
        if props:
            required = set(schema.get("required", []))
            lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
            for field, sub in props.items():
                lines.append(
                    f"| `{field}` | {type_of(sub)} | {'yes' if field in required else 'no'} | "
                    f"{cell(sub.get('description'))} |"
                )
        else:
            lines.append(f"Type: {type_of(schema)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def anchor(path: str) -> str:
    return "".join(c for c in path.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def auth(op: dict[str, Any]) -> str:
    return "bearer" if op.get("security") else ""


def operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = [f"### {method.upper()} {path}", ""]
    for key in ("summary", "description"):
        if op.get(key):
            out += [op[key], ""]
    if auth(op):
        out += ["Auth: bearer token.", ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        for p in params:
            out.append(
                f"| `{p['name']}` | {p['in']} | {type_of(p.get('schema'))} | "
                f"{'yes' if p.get('required') else 'no'} | {cell(p.get('description'))} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        for ctype, media in body.get("content", {}).items():
            need = "required" if body.get("required") else "optional"
            out += [f"Request body ({ctype}, {need}): {type_of(media.get('schema'))}", ""]
    out += ["| status | meaning | body |", "| --- | --- | --- |"]
    for code, resp in op["responses"].items():
        schema = next(iter(resp.get("content", {}).values()), {}).get("schema")
        out.append(f"| {code} | {cell(resp.get('description'))} | {type_of(schema)} |")
    out.append("")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help=f"compare with {DOC.name} instead of printing")
    args = ap.parse_args()
    text = render(load_spec())
    if args.check:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is stale: run python scripts/voiceassist_api_md.py > docs/voiceassist-api.md")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
