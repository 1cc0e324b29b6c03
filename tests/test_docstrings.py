"""Every public function of three or more parameters has a numpydoc ``Parameters`` section.

The package's rule (numpydoc docstrings; a ``Parameters`` section on every
public function of 3+ parameters) checked statically: the source of
``cobre_mpi_io`` is parsed with :mod:`ast` (nothing is imported), the
generated FlatBuffers code (``_generated``) is skipped, and a function or
method is public when its name, and the name of every class it is in, does
not start with ``_``.  ``self`` and ``cls`` do not count as parameters;
positional-only, ordinary and keyword-only ones do (``*args``/``**kw`` not).
"""

from __future__ import annotations

import ast
from pathlib import Path

import cobre_mpi_io

PACKAGE = Path(cobre_mpi_io.__file__).resolve().parent

# "path/relative/to/package.py:qualified.name" entries exempt from the rule; keep it empty.
SKIP: frozenset[str] = frozenset()


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]


def _undocumented(source: str, rel: str) -> list[str]:
    """``rel:line qualname(params)`` of each public 3+-parameter function of ``source`` lacking the section."""
    found: list[str] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                params = _params(node)
                name = f"{prefix}{node.name}"
                if len(params) >= 3 and "Parameters\n" not in (ast.get_docstring(node) or "") \
                        and f"{rel}:{name}" not in SKIP:
                    found.append(f"{rel}:{node.lineno} {name}({', '.join(params)})")

    visit(ast.parse(source).body, "")
    return found


def test_checker_sees_a_missing_section() -> None:
    src = '''
def documented(a, b, c):
    """Doc.

    Parameters
    ----------
    a, b, c : int
    """

def two(a, b):
    """No section needed."""

def _private(a, b, c):
    """Private."""

def missing(a, *, b, c=1):
    """No section."""

class Thing:
    def method(self, a, b, c):
        """No section."""

    def short(self, a, b):
        """Two parameters besides self."""

class _Hidden:
    def method(self, a, b, c):
        """Private class."""
'''
    assert _undocumented(src, "m.py") == ["m.py:16 missing(a, b, c)", "m.py:20 Thing.method(a, b, c)"]


def test_every_public_function_of_three_or_more_parameters_has_a_parameters_section() -> None:
    missing: list[str] = []
    files = sorted(p for p in PACKAGE.rglob("*.py") if "_generated" not in p.relative_to(PACKAGE).parts)
    assert len(files) > 20  # the walk really found the package
    for path in files:
        rel = path.relative_to(PACKAGE).as_posix()
        missing += _undocumented(path.read_text(encoding="utf-8"), rel)
    assert missing == [], "public functions of 3+ parameters without a numpydoc Parameters section:\n" + \
        "\n".join(missing)
