"""The report's optional dependencies (the ``report`` extra), imported on first use.

Each loader raises an :class:`ImportError` naming the extra to install, so
``import cobre_mpi_io.report`` itself needs only the core dependencies.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["EXTRA_HINT", "load_duckdb", "load_matplotlib", "load_pandas"]

EXTRA_HINT: Final = "pip install 'cobre_mpi_io[report]'"


def _missing(what: str, package: str, exc: ImportError) -> ImportError:
    err = ImportError(f"{what} need{'s' if not what.endswith('s') else ''} {package}: {EXTRA_HINT} "
                      f"(the report extra: duckdb, matplotlib, pandas), or pip install {package}")
    err.__cause__ = exc
    return err


def load_duckdb() -> Any:
    """Import duckdb, or raise an :class:`ImportError` that says how to install it."""
    try:
        import duckdb
    except ImportError as exc:
        raise _missing("the simulation analyses of the report", "duckdb", exc) from exc
    return duckdb


def load_pandas() -> Any:
    """Import pandas, or raise an :class:`ImportError` that says how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise _missing("the report's DataFrames", "pandas", exc) from exc
    return pandas


def load_matplotlib() -> Any:
    """Import matplotlib (no pyplot, no backend switch, no rcParams change), or raise a clear ImportError.

    The report builds its figures as :class:`matplotlib.figure.Figure`
    objects and applies its style inside ``matplotlib.rc_context`` only
    (:mod:`cobre_mpi_io.report.plots`), so a notebook's own settings stay as
    they are.

    Returns
    -------
    module
        ``matplotlib``.
    """
    try:
        import matplotlib
        import matplotlib.figure  # the Figure class the plots build on
    except ImportError as exc:
        raise _missing("the report's plots (--html, --plot, the figure functions)", "matplotlib", exc) from exc
    return matplotlib
