"""Fail on an import cycle between the modules of the Python package or of a Rust crate.

    python scripts/check_imports.py          # prints each cycle; exit 1 if there is one

Python: every ``import locust_rs.x`` / ``from locust_rs[.x] import y`` in ``python/locust_rs/``, at any depth (a
lazy import inside a function still ties the two modules). Rust: every ``crate::``, ``super::`` and ``self::`` path
in ``crates/*/src``, resolved to the file of the module it names; ``mod x;`` declarations are not edges.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "locust_rs"


def python_graph() -> dict[str, set[str]]:
    def name(path: Path) -> str:
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    # the package's own __init__ re-exports everything: importing a submodule runs it anyway, so it is no edge
    files = {name(p): p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}
    graph: dict[str, set[str]] = {m: set() for m in files}

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in files:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for m, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "locust_rs":
                base = node.module.partition(".")[2]
                targets.extend(f"{base}.{a.name}" if base else a.name for a in node.names)
            elif isinstance(node, ast.Import):
                targets.extend(a.name.partition(".")[2] for a in node.names if a.name.startswith("locust_rs."))
            for t in targets:
                found = resolve(t)
                if found is not None and found != m:
                    graph[m].add(found)
    return graph


_PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)(?:::\{([^}]*)\})?")


def _module_file(src: Path, parts: list[str]) -> Path | None:
    """The file of module ``parts`` (relative to ``src``), or None if it is not a module."""
    base = src.joinpath(*parts)
    for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
        if candidate.is_file():
            return candidate
    return src / "lib.rs" if not parts else None


def _module_of(src: Path, file: Path) -> list[str]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def _deepest(src: Path, parts: list[str]) -> Path | None:
    """The deepest module file along ``parts`` (the rest are items inside it)."""
    for n in range(len(parts), -1, -1):
        found = _module_file(src, parts[:n])
        if found is not None:
            return found
    return None


def rust_graph(src: Path) -> dict[str, set[str]]:
    files = sorted(p for p in src.rglob("*.rs"))
    graph: dict[str, set[str]] = {str(f.relative_to(ROOT)): set() for f in files}
    for f in files:
        here = _module_of(src, f)
        text = re.sub(r"//[^\n]*", "", f.read_text())
        text = text.split("#[cfg(test)]", 1)[0]  # unit tests may use whatever they test
        for root, path, group in _PATH.findall(text):
            parts = path.strip(":").split("::")
            if root == "crate":
                base: list[str] = []
            elif root == "super":
                base = here[:-1]
                while parts and parts[0] == "super":
                    base, parts = base[:-1], parts[1:]
            else:
                base = here
            names = [n.strip().split(" ")[0] for n in group.split(",")] if group else [""]
            for name in names:
                full = base + parts + ([name] if name and name != "self" else [])
                target = _deepest(src, full)
                if target is not None and target != f:
                    graph[str(f.relative_to(ROOT))].add(str(target.relative_to(ROOT)))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    graphs = {"python/locust_rs": python_graph()}
    for src in sorted(ROOT.glob("crates/*/src")):
        graphs[str(src.relative_to(ROOT))] = rust_graph(src)
    bad = 0
    for where, graph in graphs.items():
        edges = sum(len(v) for v in graph.values())
        found = cycles(graph)
        print(f"{where}: {len(graph)} modules, {edges} import edges, {len(found)} cycles")
        for c in found:
            bad += 1
            print("  cycle: " + " <-> ".join(c))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
