"""The training output chain (SPEC §7-§8): per-rank timing Parquet, metadata.json, dictionaries.

Importing the package is cheap: each name is imported on first access
(PEP 562), so ``import cobre_mpi_io.training.metadata`` (what ``validate``
needs) loads neither pyarrow nor NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
