"""Public names of a package imported on first access (PEP 562), for cheap package imports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


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
