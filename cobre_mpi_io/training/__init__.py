"""The training output chain (SPEC §7-§8): per-rank timing Parquet, metadata.json, dictionaries.

Importing the package is cheap: each name is imported on first access
(PEP 562), so ``import cobre_mpi_io.training.metadata`` (what ``validate``
needs) loads neither pyarrow nor NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .dictionaries import state_dictionary, write_dictionaries
    from .metadata import write_metadata
    from .writer import IterationRecord, RankTimingRecord, TrainingParquetWriter

_LAZY: Final[dict[str, str]] = {
    "IterationRecord": ".writer",
    "RankTimingRecord": ".writer",
    "TrainingParquetWriter": ".writer",
    "state_dictionary": ".dictionaries",
    "write_dictionaries": ".dictionaries",
    "write_metadata": ".metadata",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = ["IterationRecord", "RankTimingRecord", "TrainingParquetWriter", "state_dictionary", "write_dictionaries",
           "write_metadata"]


def __getattr__(name: str) -> Any:
    """Import a public name on first access (PEP 562) and keep it in the package namespace."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, including the public names not imported yet."""
    return sorted(set(globals()) | set(__all__))
