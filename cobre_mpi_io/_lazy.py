"""Public names of a package imported on first access (PEP 562), for cheap package imports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["arrow_without_pandas", "lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, str],
                 public: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import each public name when it is first used.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    modules : Mapping[str, str]
        Public name -> the module that defines it (relative to ``package`` when it starts with a dot).
    public : iterable of str
        The package's ``__all__`` (listed by ``__dir__`` before they are imported).

    Returns
    -------
    tuple of callables
        ``(__getattr__, __dir__)``, to assign at the package's top level. A name, once imported, is kept
        in the package's namespace, so ``__getattr__`` runs once per name.
    """
    names = frozenset(public)

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | names)

    return __getattr__, __dir__


class _NoPandas:
    """A finder that refuses pandas, in place only while :func:`arrow_without_pandas` latches pyarrow."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas: not needed by this command")


def arrow_without_pandas() -> None:
    """Keep pyarrow from importing pandas on this process's first ``pyarrow.array()``.

    pyarrow imports pandas the first time ``pyarrow.array()`` runs, only to
    ask whether its input is a pandas object; the command line's writers and
    checkers give it NumPy arrays and lists.  A demo rank then spent 0.6 s
    of its 2.1 s of CPU and 31 MB of its 144 MB on pandas (1.4 s and 113 MB
    without).  This lets that first check find no pandas, which pyarrow
    remembers for the process; an explicit ``Table.to_pandas()`` or
    ``import pandas`` still works (pyarrow retries when pandas is asked for).
    Nothing is done when pandas is already imported.  For the command line
    only: a library user's ``pyarrow.array(series)`` must keep pandas'
    semantics.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(_NoPandas)
