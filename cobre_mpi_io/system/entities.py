"""The entities of a power system (buses, hydros, thermals, ...) and their kinds (SPEC §12)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ENTITY_KINDS",
    "OPERATIVE_STATE",
    "Battery",
    "Block",
    "Bus",
    "Contract",
    "Entity",
    "GenericConstraint",
    "Hydro",
    "HydroUnitGroup",
    "Line",
    "NonControllable",
    "PumpingStation",
    "Stage",
    "Thermal",
]

OPERATIVE_STATE: Final = {"non_existing": 0, "filling_dead_volume": 1, "operating": 2, "decommissioned": 3}


@dataclass(frozen=True)
class Block:
    """A load block of a stage: id, name and duration in hours."""

    id: int
    name: str
    hours: float


@dataclass(frozen=True)
class Stage:
    """A stage (0-based id) with its blocks."""

    id: int
    blocks: tuple[Block, ...]


@dataclass(frozen=True, kw_only=True)
class Entity:
    """Fields every entity has.

    ``entry_stage_id``/``exit_stage_id`` (inclusive) bound the stages in which
    the entity operates; ``None`` means from the first / until the last stage.
    """

    id: int
    name: str
    bus_id: int | None = None
    entry_stage_id: int | None = None
    exit_stage_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Bus(Entity):
    """An electrical bus (``bus_id`` is unused)."""

    deficit_cost: float = 1000.0


@dataclass(frozen=True, kw_only=True)
class HydroUnitGroup:
    """A turbine group of a hydro plant (Cobre 0.18 ``unit_groups``): the bus it injects into and its bounds.

    ``id`` is unique within its plant only.
    """

    id: int
    name: str
    bus_id: int
    min_generation_mw: float = 0.0
    max_generation_mw: float = math.inf
    min_turbined_m3s: float = 0.0
    max_turbined_m3s: float = math.inf


@dataclass(frozen=True, kw_only=True)
class Hydro(Entity):
    """A hydro plant with its reservoir/outflow/generation bounds and AR order.

    A plant of a Cobre 0.18 case also has its ``unit_groups`` (its
    ``bus_id`` is then the bus of its first group, by id) and, when its
    productivity is not the same in every stage, ``stage_productivity``
    (one value per stage; ``productivity_mw_per_m3s`` is the first stage's).
    Both are empty for a Cobre 0.5.x case and leave the system hash of such
    a case as it was.
    """

    ar_order: int = 0
    min_storage_hm3: float = 0.0
    max_storage_hm3: float = math.inf
    initial_storage_hm3: float | None = None
    min_outflow_m3s: float = 0.0
    max_outflow_m3s: float = math.inf
    min_turbined_m3s: float = 0.0
    max_turbined_m3s: float = math.inf
    min_generation_mw: float = 0.0
    max_generation_mw: float = math.inf
    productivity_mw_per_m3s: float = 1.0
    mean_inflow_m3s: float | None = None
    unit_groups: tuple[HydroUnitGroup, ...] = ()
    stage_productivity: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit_groups", tuple(self.unit_groups))
        object.__setattr__(self, "stage_productivity", tuple(self.stage_productivity))


@dataclass(frozen=True, kw_only=True)
class Thermal(Entity):
    """A thermal unit."""

    min_mw: float = 0.0
    max_mw: float = math.inf
    cost_per_mwh: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Line(Entity):
    """A transmission line between two buses (``bus_id`` is unused)."""

    source_bus_id: int
    target_bus_id: int
    direct_mw: float = math.inf
    reverse_mw: float = math.inf
    losses_percent: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PumpingStation(Entity):
    """A pumping station moving water between two hydros."""

    source_hydro_id: int
    destination_hydro_id: int
    min_m3s: float = 0.0
    max_m3s: float = math.inf
    power_per_m3s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Contract(Entity):
    """An energy import (``type="import"``) or export contract."""

    type: str = "import"
    price_per_mwh: float = 0.0
    min_mw: float = 0.0
    max_mw: float = math.inf


@dataclass(frozen=True, kw_only=True)
class NonControllable(Entity):
    """A non-controllable source (wind, solar, run-of-river)."""

    max_generation_mw: float = math.inf


@dataclass(frozen=True, kw_only=True)
class Battery(Entity):
    """A battery (reserved by the spec)."""

    capacity_mwh: float = 0.0


@dataclass(frozen=True, kw_only=True)
class GenericConstraint(Entity):
    """A user-defined generic constraint (only ids and names matter here)."""


# entity kind -> (System attribute, simulation table, codes.json entity_type code or None)
ENTITY_KINDS: Final[dict[str, tuple[str, str | None, int | None]]] = {
    "hydro": ("hydros", "hydros", 0),
    "thermal": ("thermals", "thermals", 1),
    "bus": ("buses", "buses", 2),
    "line": ("lines", "exchanges", 3),
    "pumping_station": ("pumping_stations", "pumping_stations", 4),
    "contract": ("contracts", "contracts", 5),
    "battery": ("batteries", "batteries", 6),
    "non_controllable": ("non_controllables", "non_controllables", 7),
    "generic_constraint": ("generic_constraints", "generic_violations", None),
}

