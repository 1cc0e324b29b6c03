"""The power system the writers need (SPEC §12): entities, the :class:`System` model and case loading.

- :mod:`.entities`: the entity types and kinds;
- :mod:`.model`: :class:`System` (lookups, row layouts of each simulation table);
- :mod:`.checks`: the consistency checks of a system (every problem at once, naming file, entity, field);
- :mod:`.case`: loading a Cobre case directory (:func:`~.case.case_problems` lists what is wrong with one),
  Cobre 0.5.x or 0.18 (:mod:`.case018`: :func:`~.case018.case_format` tells them apart);
- :mod:`.case_config`: the case's ``config.json``, checked (:func:`~.case_config.load_case_config`);
- :mod:`.reader`: the JSON reader that collects every problem;
- :mod:`.synthetic`: the built-in synthetic systems.
"""

from __future__ import annotations

from .case018 import case_format
from .case_config import CaseConfig, load_case_config
from .entities import (
    ENTITY_KINDS,
    OPERATIVE_STATE,
    Battery,
    Block,
    Bus,
    Contract,
    Entity,
    GenericConstraint,
    Hydro,
    HydroUnitGroup,
    Line,
    NonControllable,
    PumpingStation,
    Stage,
    Thermal,
)
from .model import RowLayout, System

__all__ = [
    "ENTITY_KINDS",
    "OPERATIVE_STATE",
    "Battery",
    "Block",
    "Bus",
    "CaseConfig",
    "Contract",
    "Entity",
    "GenericConstraint",
    "Hydro",
    "HydroUnitGroup",
    "Line",
    "NonControllable",
    "PumpingStation",
    "RowLayout",
    "Stage",
    "System",
    "Thermal",
    "case_format",
    "load_case_config",
]
