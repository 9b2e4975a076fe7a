"""The package's layers, read from its imports: every arrow points down and no two modules import each other.

Imports inside functions and under `TYPE_CHECKING` count too: a lazy import is still a
dependency, and a cycle hidden in a function is the first thing to break when someone
moves the import to the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reqon"

# A module's layer is the first prefix that matches; each layer may import only the
# layers listed for it (and itself). `reqon` is the package's own `__init__`.
LAYERS: dict[str, set[str]] = {
    "bottom": set(),                                   # values, errors, the built-in function library, gc policy
    "front": {"bottom", "stores", "openapi"},           # text -> AST -> checked AST; the checker reads store kinds
    "stores": {"bottom"},                              #   and the operations of local OpenAPI documents
    "http": {"bottom"},
    "openapi": {"bottom"},                             # documents, validation, mock server
    "engine": {"bottom", "front", "stores", "http", "openapi"},
    "faces": {"bottom", "front", "stores", "http", "openapi", "engine", "faces"},
}
BOTTOM = {"reqon.values", "reqon.errors", "reqon.builtins", "reqon.heap"}
FACES = ("reqon.cli", "reqon.repl", "reqon.demo", "reqon.daemon", "reqon.__main__")


def layer(module: str) -> str:
    if module in BOTTOM:
        return "bottom"
    for prefix in ("stores", "http", "openapi", "engine"):
        if module == f"reqon.{prefix}" or module.startswith(f"reqon.{prefix}."):
            return prefix
    if module.startswith(FACES):
        return "faces"
    return "front"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The reqon modules that `path` imports, resolved to modules (not names inside them)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("reqon"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reqon") and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return {m for m in found if m in known}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: imports_of(path, known) - {name} for name, path in paths.items()}


def test_every_import_points_down_the_layers(graph: dict[str, set[str]]) -> None:
    wrong = sorted(f"{a} ({layer(a)}) imports {b} ({layer(b)})"
                   for a, targets in graph.items() for b in targets
                   if layer(b) != layer(a) and layer(b) not in LAYERS[layer(a)] and b != "reqon")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_one_that_imports_it_back(graph: dict[str, set[str]]) -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start)
    # The package `__init__` re-exports lazily; importing it from below is not a cycle of code.
    real = [c for c in cycles if "reqon" not in c]
    assert not real, "\n".join(" -> ".join(c) for c in real)


def test_the_layer_rules_see_the_layers_that_exist(graph: dict[str, set[str]]) -> None:
    """Guards the test itself: a rename that made every module 'front' would pass vacuously."""
    seen = {layer(m) for m in graph}
    assert seen == set(LAYERS), seen
