"""The training output chain (SPEC §7-§8): per-rank timing Parquet, metadata.json, dictionaries."""

from __future__ import annotations

from .dictionaries import state_dictionary, write_dictionaries
from .metadata import write_metadata
from .writer import IterationRecord, RankTimingRecord, TrainingParquetWriter

__all__ = ["IterationRecord", "RankTimingRecord", "TrainingParquetWriter", "state_dictionary", "write_dictionaries", "write_metadata"]
