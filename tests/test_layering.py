"""The import graph is a tree from app.py down: rules ← models ← batch ← actions ← views ← app.

Every import counts, also one inside a function (a lazy import still ties two modules together).
`python tests/test_layering.py` prints the graph, a module a line with what it imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"rules": 0, "models": 1, "batch": 2, "actions": 3, "views": 4, "app": 5, "config": 5}
PACKAGES = ("rules", "models", "batch", "actions", "views")


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: this reads source files only."""
    yield


def modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py", "config": ROOT / "config.py"}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _targets(name: str, path: Path, node, known) -> set[str]:
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        if node.level:
            parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            prefix = ".".join(parts + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from pkg import sub` depends on the submodule; `from pkg import name` on the package
        wanted = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in known]
        if len(wanted) < len(node.names):
            wanted.append(prefix)
    out = set()
    for target in wanted:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _targets(name, path, node, known)
        graph[name] = deps
    return graph


def layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_higher_layer():
    graph = import_graph()
    upward = sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert upward == [], "rules ← models ← batch ← actions ← views ← app; upward: " + "; ".join(upward)


def test_no_two_modules_import_each_other_even_lazily():
    found = cycles(import_graph())
    assert found == [], "import circles (move what both need into a module below them): " + " | ".join(
        " ↔ ".join(group) for group in found
    )


def test_the_checker_sees_a_circle_made_by_an_import_inside_a_function():
    graph = {"views.base": {"views.bulk"}, "views.bulk": {"views.base"}, "views.access": set()}
    assert cycles(graph) == [["views.base", "views.bulk"]]
    node = ast.parse("def f():\n    from .base import current_user\n").body[0].body[0]
    known = {"views.base": Path("views/base.py"), "views.bulk": Path("views/bulk.py")}
    assert _targets("views.bulk", Path("views/bulk.py"), node, known) == {"views.base"}


if __name__ == "__main__":  # pragma: no cover - a reading aid
    g = import_graph()
    for name in sorted(g, key=lambda m: (layer(m), m)):
        print(f"{name:32} → {', '.join(sorted(g[name])) or '—'}", file=sys.stdout)
