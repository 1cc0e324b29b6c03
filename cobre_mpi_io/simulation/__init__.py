"""The simulation output chain (SPEC §3-§6): payload, tables, the streaming writer, commit, recovery."""

from __future__ import annotations

from .payload import SimulationScenarioResult, empty_scenario_result
from .writer import SimulationConfig, SimulationParquetWriter

__all__ = ["SimulationConfig", "SimulationParquetWriter", "SimulationScenarioResult", "empty_scenario_result"]
