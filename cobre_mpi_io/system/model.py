"""The description of the power system that the writers need (SPEC §12).

A :class:`System` holds entity ids, names and buses, the stages with their
blocks and block hours, line losses, hydro AR orders, entity entry/exit
stages and bounds.  It is built in code, loaded from a Cobre case directory
with :meth:`System.from_case`, or taken from the built-in synthetic systems
with :meth:`System.synthetic` (``"small"`` and ``"production"``).

The writers only use the precomputed NumPy lookups (:meth:`hours_matrix`,
:meth:`ids`, :meth:`operative_states`), so deriving columns is columnar.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..errors import SchemaError
from .checks import problems_error, system_problems
from .entities import (
    ENTITY_KINDS,
    OPERATIVE_STATE,
    Battery,
    Bus,
    Contract,
    Entity,
    GenericConstraint,
    Hydro,
    Line,
    NonControllable,
    PumpingStation,
    Stage,
    Thermal,
)

__all__ = ["RowLayout", "System"]

# simulation table -> System attribute holding its entities
_TABLE_ENTITIES: Final = {table: attr for attr, table, _ in ENTITY_KINDS.values() if table}
_TABLE_ENTITIES["inflow_lags"] = "hydros"


@dataclass(frozen=True)
class RowLayout:
    """Key columns of a partition in canonical order, with per-row hours and entity positions."""

    stage_id: np.ndarray
    block_id: np.ndarray | None
    block_null: np.ndarray | None
    entity_index: np.ndarray | None
    entity_id: np.ndarray | None
    lag_index: np.ndarray | None
    hours: np.ndarray

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.stage_id.size)


@dataclass(frozen=True)
class System:
    """What the writers need to know about the system (SPEC §12).

    Build one in code, with :meth:`from_case` or :meth:`synthetic`.
    Construction checks the whole system (:mod:`~cobre_mpi_io.system.checks`:
    ids unique and int32, references resolve, stages and blocks in order,
    bounds ordered, entry before exit, no NaN) and raises one
    :class:`~cobre_mpi_io.errors.SchemaError` listing every problem, each
    naming file (or entity list), entity and field.
    """

    stages: tuple[Stage, ...]
    buses: tuple[Bus, ...]
    hydros: tuple[Hydro, ...] = ()
    thermals: tuple[Thermal, ...] = ()
    lines: tuple[Line, ...] = ()
    pumping_stations: tuple[PumpingStation, ...] = ()
    contracts: tuple[Contract, ...] = ()
    non_controllables: tuple[NonControllable, ...] = ()
    batteries: tuple[Battery, ...] = ()
    generic_constraints: tuple[GenericConstraint, ...] = ()
    name: str = "system"
    source: str = field(default="code", compare=False)

    def __post_init__(self) -> None:
        for attr in ("stages", "buses", "hydros", "thermals", "lines", "pumping_stations", "contracts",
                     "non_controllables", "batteries", "generic_constraints"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        self._check()

    # ------------------------------------------------------------------ checks
    def _check(self) -> None:
        case = not self.source.startswith(("code", "synthetic:"))
        problems = system_problems({f.name: getattr(self, f.name) for f in fields(self)}, case=case)
        if problems:
            raise problems_error(problems, self.source, case=case)

    # ---------------------------------------------------------------- lookups
    @property
    def num_stages(self) -> int:
        """Number of stages T."""
        return len(self.stages)

    @cached_property
    def blocks_per_stage(self) -> np.ndarray:
        """int64 array (T,): number of blocks of each stage."""
        return np.array([len(s.blocks) for s in self.stages], dtype=np.int64)

    @cached_property
    def hours_matrix(self) -> np.ndarray:
        """float64 array (T, max B): block hours, NaN where a block does not exist."""
        m = np.full((self.num_stages, int(self.blocks_per_stage.max())), np.nan)
        for s in self.stages:
            for b in s.blocks:
                m[s.id, b.id] = b.hours
        m.setflags(write=False)
        return m

    @cached_property
    def stage_hours(self) -> np.ndarray:
        """float64 array (T,): total hours of each stage."""
        hours: np.ndarray = np.nansum(self.hours_matrix, axis=1)
        return hours

    def entities(self, table: str) -> tuple[Entity, ...]:
        """Entities behind a simulation table (``()`` for ``costs``)."""
        attr = _TABLE_ENTITIES.get(table)
        return getattr(self, attr) if attr else ()

    def ids(self, table: str) -> np.ndarray:
        """Sorted int32 ids of the entities behind ``table``."""
        return self._ids[table] if table in self._ids else np.empty(0, np.int32)

    @cached_property
    def _ids(self) -> dict[str, np.ndarray]:
        out = {}
        for table in _TABLE_ENTITIES:
            a = np.array(sorted(e.id for e in self.entities(table)), dtype=np.int32)
            a.setflags(write=False)
            out[table] = a
        return out

    def index_of(self, table: str, ids: np.ndarray) -> np.ndarray:
        """Positions of ``ids`` in :meth:`ids` (int64), ``-1`` for an id the system does not have.

        A dense lookup table when ids are compact (the usual case), a binary
        search otherwise.
        """
        known = self.ids(table)
        lut = self._luts.get(table)
        if lut is not None:
            out = np.full(ids.shape, -1, np.int64)
            ok = (ids >= 0) & (ids < lut.size)
            out[ok] = lut[ids[ok]]
            return out
        pos = np.searchsorted(known, ids).astype(np.int64)
        inside = pos < known.size
        hit = np.zeros(ids.shape, bool)
        hit[inside] = known[pos[inside]] == ids[inside]
        return np.where(hit, pos, -1)

    @cached_property
    def _luts(self) -> dict[str, np.ndarray]:
        out = {}
        for table in _TABLE_ENTITIES:
            ids = self.ids(table)
            if ids.size and int(ids.max()) < 4 * ids.size + 1024:
                lut = np.full(int(ids.max()) + 1, -1, np.int64)
                lut[ids] = np.arange(ids.size)
                lut.setflags(write=False)
                out[table] = lut
        return out

    def operative_states(self, table: str) -> np.ndarray:
        """int8 array (T, n_entities) of operative state codes, entities in id order."""
        return self._operative[table]

    @cached_property
    def _operative(self) -> dict[str, np.ndarray]:
        out = {}
        t = np.arange(self.num_stages)[:, None]
        for table in _TABLE_ENTITIES:
            ents = sorted(self.entities(table), key=lambda e: e.id)
            entry = np.array([e.entry_stage_id if e.entry_stage_id is not None else 0 for e in ents], np.int64)
            exit_ = np.array([e.exit_stage_id if e.exit_stage_id is not None else self.num_stages for e in ents],
                             np.int64)
            m = np.full((self.num_stages, len(ents)), OPERATIVE_STATE["operating"], np.int8)
            m[t < entry[None, :]] = OPERATIVE_STATE["non_existing"]
            m[t > exit_[None, :]] = OPERATIVE_STATE["decommissioned"]
            m.setflags(write=False)
            out[table] = m
        return out

    def row_slice(self, table: str, stage_id: int, block_id: int | None = None) -> slice:
        """The rows of (stage, block) in the canonical layout of ``table`` (:meth:`canonical_layout`).

        What :func:`~cobre_mpi_io.simulation.payload.empty_scenario_result`'s
        arrays hold there: one row per entity of the table in id order
        (:meth:`ids`), so a vector of LP values over those entities fills the
        block with ``cols["turbined_m3s"][system.row_slice("hydros", t, b)] = x``.

        Parameters
        ----------
        table : str
            A simulation table with a fixed layout (not ``generic_violations``).
        stage_id : int
            The stage.
        block_id : int or None
            The block; ``None``: for ``costs`` the stage-level row, for
            ``inflow_lags`` (no blocks) the stage's rows (hydro by id, then
            lag 1..AR order).

        Raises
        ------
        SchemaError
            A table without a fixed layout or entities, a stage or block that does not exist.
        """
        where = f"{self.source}: {table}"
        if self.canonical_layout(table) is None:
            raise SchemaError(where, None, "no fixed row layout (variable rows, or no entities in this system)")
        if isinstance(stage_id, bool) or not isinstance(stage_id, (int, np.integer)) \
                or not 0 <= stage_id < self.num_stages:
            raise SchemaError(where, "stage_id", f"stage {stage_id!r} does not exist (stages 0..{self.num_stages - 1})")
        t = int(stage_id)
        if table == "inflow_lags":
            if block_id is not None:
                raise SchemaError(where, "block_id", "inflow_lags has no blocks: give block_id=None")
            k = int(self.ar_orders.sum())
            return slice(t * k, (t + 1) * k)
        nb = int(self.blocks_per_stage[t])
        if block_id is not None and (isinstance(block_id, bool) or not isinstance(block_id, (int, np.integer))
                                     or not 0 <= block_id < nb):
            raise SchemaError(where, "block_id", f"block {block_id!r} does not exist in stage {t} (blocks 0..{nb - 1})")
        first = int(self._block_start[t])  # blocks of the stages before
        if table == "costs":
            row = first + t + (0 if block_id is None else 1 + int(block_id))
            return slice(row, row + 1)
        if block_id is None:
            raise SchemaError(where, "block_id", f"{table} has one row per block: give a block_id")
        n = len(self.entities(table))
        k = first + int(block_id)
        return slice(k * n, (k + 1) * n)

    @cached_property
    def _block_start(self) -> np.ndarray:
        """int64 array (T,): number of blocks in the stages before each stage."""
        out: np.ndarray = np.concatenate([[0], np.cumsum(self.blocks_per_stage)[:-1]]).astype(np.int64)
        return out

    def canonical_layout(self, table: str) -> RowLayout | None:
        """The row layout of a ``full`` partition of ``table`` in canonical order, or None.

        Canonical order: by stage, then block (``costs``: the stage-level row
        first), then entity id (``inflow_lags``: by stage, hydro id, lag).
        A payload in this order is validated by comparing its key columns
        with these arrays, and its derived columns use the precomputed
        per-row hours and entity positions (the fast path); any other order
        is checked and derived row by row (vectorized) instead.
        """
        return self._layouts.get(table)

    @cached_property
    def _layouts(self) -> dict[str, RowLayout]:
        out: dict[str, RowLayout] = {}
        T = self.num_stages
        nb = self.blocks_per_stage
        hm = self.hours_matrix
        # costs: per stage, the stage-level row (block null) then one row per block
        stage = np.repeat(np.arange(T), nb + 1)
        block = np.concatenate([np.arange(-1, int(b)) for b in nb])
        null = block < 0
        hours = np.where(null, self.stage_hours[stage], hm[stage, np.where(null, 0, block)])
        out["costs"] = RowLayout(stage.astype(np.int32), np.where(null, 0, block).astype(np.int32), null,
                                 None, None, None, hours)
        for table in _TABLE_ENTITIES:
            n = len(self.entities(table))
            if not n or table == "generic_violations":
                continue
            if table == "inflow_lags":
                orders = self.ar_orders
                if not orders.sum():
                    continue
                per_stage_ent = np.repeat(np.arange(n), orders)
                per_stage_lag = np.concatenate([np.arange(1, int(o) + 1) for o in orders])
                k = per_stage_ent.size
                stage = np.repeat(np.arange(T), k)
                ent = np.tile(per_stage_ent, T)
                out[table] = RowLayout(stage.astype(np.int32), None, None, ent,
                                       self.ids(table)[ent], np.tile(per_stage_lag, T).astype(np.int32),
                                       self.stage_hours[stage])
                continue
            stage = np.repeat(np.arange(T), nb * n)
            block = np.concatenate([np.repeat(np.arange(int(b)), n) for b in nb])
            ent = np.tile(np.arange(n), int(nb.sum()))
            out[table] = RowLayout(stage.astype(np.int32), block.astype(np.int32), None, ent,
                                   self.ids(table)[ent], None, hm[stage, block])
        for lay in out.values():
            for a in (lay.stage_id, lay.block_id, lay.block_null, lay.entity_index, lay.entity_id, lay.lag_index,
                      lay.hours):
                if a is not None:
                    a.setflags(write=False)
        return out

    @cached_property
    def losses_fraction(self) -> np.ndarray:
        """float64 array (n_lines,): losses_percent/100 of each line, in id order."""
        lines = sorted(self.lines, key=lambda e: e.id)
        return np.array([ln.losses_percent / 100.0 for ln in lines], dtype=np.float64)

    @cached_property
    def ar_orders(self) -> np.ndarray:
        """int64 array (n_hydros,): AR order of each hydro, in id order."""
        return np.array([h.ar_order for h in sorted(self.hydros, key=lambda e: e.id)], dtype=np.int64)

    @property
    def state_dimension(self) -> int:
        """Number of state variables: one storage per hydro plus every inflow lag."""
        return len(self.hydros) + int(self.ar_orders.sum())

    def has_table(self, table: str) -> bool:
        """Whether a simulation table is written for this system (SPEC §2)."""
        if table == "costs":
            return True
        if table == "inflow_lags":
            return bool((self.ar_orders > 0).any())
        return len(self.entities(table)) > 0

    @property
    def simulation_tables(self) -> tuple[str, ...]:
        """Simulation tables this system produces, in spec order."""
        from ..schemas import SIMULATION_TABLES

        return tuple(t for t in SIMULATION_TABLES if self.has_table(t))

    def expected_rows(self, table: str) -> int | None:
        """Rows of one ``full`` scenario partition (SPEC §4); None when variable."""
        nb = int(self.blocks_per_stage.sum())
        if table == "costs":
            return self.num_stages + nb
        if table == "generic_violations":
            return None
        if table == "inflow_lags":
            return self.num_stages * int(self.ar_orders.sum())
        return nb * len(self.entities(table))

    # ----------------------------------------------------------- description
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (used for hashing and by dictionaries)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        d = asdict(self)
        d.pop("source", None)
        for h in d["hydros"]:  # Cobre 0.18 fields, absent from a 0.5.x system: its hash stays as it was
            for k in ("unit_groups", "stage_productivity"):
                if not h[k]:
                    del h[k]
        return clean(d)  # type: ignore[no-any-return]

    @cached_property
    def system_hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON description."""
        from ..hashing import sha256_json

        return sha256_json(self.to_dict())

    # --------------------------------------------------------------- loaders
    @classmethod
    def from_case(cls, path: str | Path) -> System:
        """Load the system of a Cobre case directory (SPEC §12), Cobre 0.5.x or 0.18 input format.

        The format is detected (:func:`~cobre_mpi_io.system.case018.case_format`);
        the case's ``config.json``, when it has one, is checked in the same
        pass (:mod:`~cobre_mpi_io.system.case_config`). Every problem is
        reported at once.

        Raises
        ------
        SchemaError
            Naming the file, entity and field for a missing file or field, a
            bad value (``config.json`` included) or a dangling id.
        IoError
            When a file exists but cannot be read.
        """
        from .case import load_case

        return cls(**load_case(Path(path)))

    @classmethod
    def synthetic(cls, scale: str = "small") -> System:
        """A built-in system with every entity type.

        Parameters
        ----------
        scale : {"small", "production"}
            ``small``: 4 stages (2 blocks), 6 hydros (AR orders 0-3), for tests
            and the default demo. ``production``: 60 stages × 3 blocks, 160
            hydros with AR order 12, 130 thermals, 6 buses, 10 lines, 5
            pumping stations, 5 contracts, 10 non-controllables, 50 generic
            constraints.
        """
        from .synthetic import synthetic_system_fields

        return cls(**synthetic_system_fields(scale))
