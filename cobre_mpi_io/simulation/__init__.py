"""The simulation output chain (SPEC §3-§6): payload, tables, the streaming writer, commit, recovery."""

from __future__ import annotations

from .payload import SimulationScenarioResult
from .writer import SimulationConfig, SimulationParquetWriter

__all__ = ["SimulationConfig", "SimulationParquetWriter", "SimulationScenarioResult"]
