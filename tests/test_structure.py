"""The package's structure: modules depend in one direction, time has units.

The import graph is read from the source (every ``import`` statement, at module level or inside
a function, since a deferred import is still a dependency; importing ``crmsim.a.b`` also runs
``crmsim.a``'s ``__init__``) and must have no cycle. The package ``crmsim`` itself (its
``__init__``) is the public face: it may import anything, and no module imports it back.
``crmsim.layout`` (the on-disk layout) imports nothing else from crmsim, so everything may use
it. No steps-per-year constant may appear in the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    base = root / Path(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(path: Path, root: Path) -> set[str]:
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "crmsim"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "crmsim":
                continue
            # `from . import x` imports the submodule x when there is one, else a name of the
            # package (its __init__).
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if is_module(sub, root) else target)
    return out


def import_graph(root: Path = ROOT) -> nx.DiGraph:
    graph = nx.DiGraph()
    for path in (root / "crmsim").rglob("*.py"):
        src = module_name(path, root)
        graph.add_node(src)
        for dst in imports_of(path, root):
            parts = dst.split(".")
            # crmsim.a.b runs crmsim.a's __init__ first (the root package excepted: see below).
            for k in range(2, len(parts) + 1):
                target = ".".join(parts[:k])
                if target != src and not src.startswith(target + "."):
                    graph.add_edge(src, target)
            if dst == "crmsim" and src != "crmsim":
                graph.add_edge(src, dst)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    return [c for c in nx.simple_cycles(graph)]


def test_no_import_cycle_inside_crmsim():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in found)


def test_the_cycle_check_can_fail(tmp_path):
    pkg = tmp_path / "crmsim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    assert sorted(map(sorted, cycles(import_graph(tmp_path)))) == [["crmsim.a", "crmsim.b"]]


def test_no_module_imports_the_package_facade():
    graph = import_graph()
    back = sorted(src for src, dst in graph.edges if dst == "crmsim" and src != "crmsim")
    assert not back, f"modules importing crmsim/__init__: {back}"


def test_layout_depends_on_nothing_else_in_crmsim():
    assert set(import_graph().successors("crmsim.layout")) == set()


def test_no_steps_per_year_constant():
    pattern = re.compile(r"(^|[^0-9.])52(\.0*)?([^0-9]|$)")
    hits = []
    for path in [*(ROOT / "crmsim").rglob("*.py"), *(ROOT / "experiments").glob("*.py")]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "steps=52" not in code:
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)
