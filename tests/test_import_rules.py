"""The package's import rules, checked on the source (the layout is the documentation of them).

- the kernel (top-level modules but the orchestration tier) imports only the kernel;
- the chains (``simulation``, ``training``, ``policy``) import the kernel and ``system``, never each other;
- ``system`` imports only the kernel;
- the orchestration tier (``config``, ``results``, ``run``, ``validate``, ``report``) may import the chains;
- ``cli`` and ``testing`` may import anything, and nothing outside them imports them;
- only ``mpi.py`` imports mpi4py at run time; there are no import cycles between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cobre_mpi_io"
ORCHESTRATION = {"config", "results", "run", "validate", "report"}
CHAINS = {"simulation", "training", "policy"}
APPS = {"cli", "testing"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _group(module: str) -> str:
    head = module.split(".")[0]
    if head in CHAINS | APPS | {"system", "_generated"}:
        return head
    if head == "__main__":  # the ``python -m cobre_mpi_io`` entry point is part of the command line
        return "cli"
    if head in ORCHESTRATION:
        return "orchestration"
    if head == "__init__":
        return "root"
    return "kernel"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported cobre_mpi_io module, at run time)`` of every import in ``path``."""
    tree = ast.parse(path.read_text())
    mod = _module(path)
    pkg = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".")
    if mod == "__init__":
        pkg = []
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [target] if node.module else [".".join([*base, a.name]) for a in node.names]
                found += [(n or "__init__", id(node) not in type_only) for n in names]
            elif node.module and node.module.startswith("mpi4py"):
                found.append(("mpi4py", id(node) not in type_only))
        elif isinstance(node, ast.Import):
            found += [("mpi4py", id(node) not in type_only) for a in node.names if a.name.startswith("mpi4py")]
    return found


SOURCES = sorted(p for p in PKG.rglob("*.py") if "_generated" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_layout(path: Path) -> None:
    mod, group = _module(path), _group(_module(path))
    for target, runtime in _imports(path):
        if target == "mpi4py":
            assert mod == "mpi" or not runtime, f"{mod} imports mpi4py (only mpi.py may)"
            continue
        tgroup = _group(target)
        if group in APPS or group == "root":
            continue
        assert tgroup not in APPS, f"{mod} imports {target}: nothing in the core imports cli/ or testing/"
        if group == "kernel":
            assert tgroup in ("kernel", "_generated", "root") and target != "__init__", \
                f"kernel module {mod} imports {target}"
        elif group == "system":
            assert tgroup in ("kernel", "system"), f"{mod} imports {target}"
        elif group in CHAINS:
            assert tgroup in ("kernel", "system", group, "_generated"), f"chain module {mod} imports {target}"


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        mod = _module(path)
        graph[mod] = {t for t, runtime in _imports(path) if runtime and t != "mpi4py" and t != mod
                      and not t.startswith("_generated")}
    # a package's __init__ re-exporting its modules is not a cycle; drop edges into __init__ modules
    inits = {_module(p) for p in SOURCES if p.name == "__init__.py"}
    for mod, targets in graph.items():
        graph[mod] = {t for t in targets if t not in inits or t == mod}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*stack[stack.index(nxt):], nxt])}")
            if nxt in graph and state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for mod in sorted(graph):
        if state.get(mod) is None:
            visit(mod, [mod])


def test_modules_stay_small() -> None:
    big = {_module(p): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 700}
    assert not big, f"modules over 700 lines (split them by concept): {big}"
