"""The columnar result of one simulated scenario, and its validation.

A :class:`SimulationScenarioResult` carries, per simulation table, one NumPy
array per column the LP produces (never the derived columns of SPEC §4,
never ``operative_state_code``: the writer computes those from the system).
Nullable columns may be omitted (all null), given as a
:class:`numpy.ma.MaskedArray`, or, for float columns, hold NaN for null.

:func:`validate_result` checks a result against the schemas and the system
and returns normalized arrays; every problem is a
:class:`~cobre_mpi_io.errors.SchemaError` naming the scenario, table and
column.  It is all vectorized: no Python loop per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SchemaError
from ..schemas import COST_COMPONENTS, Column, TableSchema, table
from ..system.model import RowLayout, System

__all__ = ["DETAIL_LEVELS", "NormalizedColumn", "SimulationScenarioResult", "ValidatedResult", "validate_result"]

DETAIL_LEVELS = ("full", "stage", "summary")
ArrayLike = Any


@dataclass
class SimulationScenarioResult:
    """What the simulation produces for one scenario.

    Parameters
    ----------
    scenario_id : int
        Scenario id, ``0 <= scenario_id < num_scenarios``.
    total_cost : float
        Total (discounted) cost of the scenario.
    category_costs : mapping of str to float
        Scenario totals of the 14 cost components (keys of
        :data:`~cobre_mpi_io.schemas.COST_COMPONENTS`).
    tables : mapping of str to mapping of str to numpy.ndarray
        Per simulation table (``"hydros"``, ``"costs"``, ...), per payload
        column, a 1-D array. Key columns (``stage_id``, ``block_id``,
        entity id, ``lag_index``) are included.
    """

    scenario_id: int
    total_cost: float
    category_costs: Mapping[str, float]
    tables: Mapping[str, Mapping[str, ArrayLike]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (for memory accounting)."""
        return sum(getattr(a, "nbytes", 0) for cols in self.tables.values() for a in cols.values())


@dataclass(frozen=True)
class NormalizedColumn:
    """A validated column: values of the spec dtype and a null mask (None = no nulls)."""

    values: np.ndarray
    mask: np.ndarray | None


@dataclass(frozen=True)
class ValidatedResult:
    """A result that passed validation, with normalized columns per table."""

    scenario_id: int
    total_cost: float
    category_costs: dict[str, float]
    tables: dict[str, dict[str, NormalizedColumn]]
    rows: dict[str, int]
    canonical: frozenset[str] = frozenset()
    """Tables whose rows are in the system's canonical layout (fast path when writing)."""


def _where(sid: int, tname: str) -> str:
    return f"scenario {sid} {tname}"


def _normalize(sid: int, t: TableSchema, col: Column, raw: ArrayLike, n: int | None) -> NormalizedColumn:
    where = _where(sid, t.name)
    if isinstance(raw, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(raw)
        arr = np.asarray(raw.data)
    elif isinstance(raw, np.ndarray):
        mask = None
        arr = raw
    else:
        raise SchemaError(where, col.name, f"expected a 1-D NumPy array, got {type(raw).__name__}")
    if arr.ndim != 1:
        raise SchemaError(where, col.name, f"expected a 1-D array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise SchemaError(where, col.name, f"length {arr.shape[0]} differs from the table's other columns ({n})")
    kind = arr.dtype.kind
    tc = col.type_code
    if tc == "f64":
        if kind != "f":
            raise SchemaError(where, col.name, f"dtype {arr.dtype} where float64 is required")
        values = arr.astype(np.float64, copy=False)
        nan = np.isnan(values)
        if nan.any():
            if not col.nullable:
                i = int(np.flatnonzero(nan)[0])
                raise SchemaError(where, col.name, f"NaN at row {i} in a non-nullable column")
            mask = nan if mask is None else (mask | nan)
    elif tc in ("i8", "i32", "i64"):
        if kind not in "iu":
            raise SchemaError(where, col.name, f"dtype {arr.dtype} where {col.numpy_dtype} is required")
        target = np.dtype(col.numpy_dtype)
        if arr.dtype != target and arr.size:
            info = np.iinfo(target)
            check = arr if mask is None else arr[~mask]
            if check.size and (int(check.min()) < info.min or int(check.max()) > info.max):
                raise SchemaError(where, col.name, f"values outside the {target} range")
        values = arr.astype(target, copy=False)
    elif tc == "bool":
        if kind != "b":
            raise SchemaError(where, col.name, f"dtype {arr.dtype} where bool is required")
        values = arr
    else:  # pragma: no cover - schemas only use the codes above
        raise SchemaError(where, col.name, f"unsupported type code {tc}")
    if mask is not None:
        if not mask.any():
            mask = None
        elif not col.nullable:
            i = int(np.flatnonzero(mask)[0])
            raise SchemaError(where, col.name, f"null at row {i} in a non-nullable column")
    return NormalizedColumn(values, mask)


def _is_canonical(t: TableSchema, cols: dict[str, NormalizedColumn], layout: RowLayout | None, n: int) -> bool:
    """Whether the key columns are exactly the system's canonical layout (a few array compares)."""
    if layout is None or layout.rows != n:
        return False
    if not np.array_equal(cols["stage_id"].values, layout.stage_id):
        return False
    if layout.block_id is not None:
        bc = cols.get("block_id")
        if bc is None:
            return False
        if layout.block_null is None:
            if bc.mask is not None or not np.array_equal(bc.values, layout.block_id):
                return False
        else:
            if bc.mask is None or not np.array_equal(bc.mask, layout.block_null):
                return False
            keep = ~layout.block_null
            if not np.array_equal(bc.values[keep], layout.block_id[keep]):
                return False
    if t.entity_column is not None and (layout.entity_id is None or
                                        not np.array_equal(cols[t.entity_column].values, layout.entity_id)):
        return False
    return layout.lag_index is None or np.array_equal(cols["lag_index"].values, layout.lag_index)


def _check_keys(sid: int, t: TableSchema, cols: dict[str, NormalizedColumn], system: System, n: int) -> bool:
    """Check keys, entity ids and row count; True when the rows are in canonical layout."""
    if _is_canonical(t, cols, system.canonical_layout(t.name), n):
        return True
    where = _where(sid, t.name)
    T = system.num_stages
    stage = cols["stage_id"].values
    if n and (int(stage.min()) < 0 or int(stage.max()) >= T):
        bad = int(stage[(stage < 0) | (stage >= T)][0])
        raise SchemaError(where, "stage_id", f"stage {bad} does not exist (stages 0..{T - 1})")
    nblocks = system.blocks_per_stage
    block_part: np.ndarray | None = None
    if "block_id" in t.by_name:
        bc = cols.get("block_id")
        if bc is None:
            raise SchemaError(where, "block_id", "missing key column")
        block = bc.values.astype(np.int64)
        null = bc.mask if bc.mask is not None else np.zeros(n, bool)
        valid = null | ((block >= 0) & (block < nblocks[stage]))
        if not valid.all():
            i = int(np.flatnonzero(~valid)[0])
            raise SchemaError(where, "block_id", f"block {int(block[i])} does not exist in stage {int(stage[i])}")
        if t.name == "costs":
            want = T + int(nblocks.sum())
            if n != want:
                raise SchemaError(where, None, f"{n} rows where the system needs {want} "
                                  "(one stage-level row plus one per block, per stage)")
        elif null.any():
            i = int(np.flatnonzero(null)[0])
            raise SchemaError(where, "block_id", f"null at row {i}: only costs has stage-level rows")
        block_part = np.where(null, 0, block + 1)
    ent_idx: np.ndarray | None = None
    if t.entity_column is not None:
        ent = cols[t.entity_column].values
        ent_idx = system.index_of(t.name, ent)
        unknown = ent_idx < 0
        if unknown.any():
            bad = int(ent[unknown][0])
            raise SchemaError(where, t.entity_column, f"unknown entity id {bad}")
    # one row per key: the composite key (bounded, so a bitmap is enough) must be unique
    key = stage.astype(np.int64)
    space = T
    if block_part is not None:
        key = key * (int(nblocks.max()) + 1) + block_part
        space *= int(nblocks.max()) + 1
    if ent_idx is not None:
        n_ent = max(len(system.ids(t.name)), 1)
        key = key * n_ent + ent_idx
        space *= n_ent
    if t.name == "inflow_lags":
        lag = cols["lag_index"].values.astype(np.int64)
        order = system.ar_orders[ent_idx] if ent_idx is not None else np.zeros(n, np.int64)
        ok = (lag >= 1) & (lag <= order)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise SchemaError(where, "lag_index", f"lag {int(lag[i])} outside 1..AR order "
                              f"{int(order[i])} of hydro {int(cols['hydro_id'].values[i])}")
        key = key * (int(system.ar_orders.max()) + 1) + lag
        space *= int(system.ar_orders.max()) + 1
    if n:
        seen = np.zeros(space, np.bool_)
        seen[key] = True
        if int(np.count_nonzero(seen)) != n:
            raise SchemaError(where, None, "duplicate rows for the same key (stage, block, entity)")
    expected = system.expected_rows(t.name)
    if expected is not None and t.name != "costs" and n != expected:
        raise SchemaError(where, None, f"{n} rows where the system needs {expected} (SPEC §4 row count)")
    return False


def validate_result(result: SimulationScenarioResult, system: System, detail: str = "full") -> ValidatedResult:
    """Check a result against the schemas and the system; return normalized columns.

    Parameters
    ----------
    result : SimulationScenarioResult
        The payload.
    system : System
        Entities, stages and blocks the payload must match.
    detail : {"full", "stage", "summary"}
        ``summary`` only checks the totals; ``stage`` needs ``costs`` and
        ``hydros``; ``full`` needs every table of the system.

    Returns
    -------
    ValidatedResult

    Raises
    ------
    SchemaError
        Naming scenario, table and column: a wrong shape or dtype, a
        null/NaN where not allowed, an unknown table, column or entity id, a
        row count that does not match the system, a derived column in the
        payload.
    """
    sid = result.scenario_id
    if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)) or sid < 0 or sid > 2**31 - 1:
        raise SchemaError(f"scenario {sid!r}", "scenario_id", "scenario id must be a non-negative int32")
    sid = int(sid)
    try:
        total = float(result.total_cost)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"scenario {sid}", "total_cost", f"not a number: {result.total_cost!r}") from exc
    if not math.isfinite(total):
        raise SchemaError(f"scenario {sid}", "total_cost", f"must be finite, got {total}")
    if not isinstance(result.category_costs, Mapping):
        raise SchemaError(f"scenario {sid}", "category_costs", "must be a mapping of cost component to value")
    missing = [c for c in COST_COMPONENTS if c not in result.category_costs]
    extra = [c for c in result.category_costs if c not in COST_COMPONENTS]
    if missing or extra:
        raise SchemaError(f"scenario {sid}", "category_costs", f"missing {missing}, unknown {extra}")
    cats: dict[str, float] = {}
    for c in COST_COMPONENTS:
        try:
            v = float(result.category_costs[c])
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"scenario {sid}", c, "category cost is not a number") from exc
        if not math.isfinite(v):
            raise SchemaError(f"scenario {sid}", c, f"category cost must be finite, got {v}")
        cats[c] = v
    if not isinstance(result.tables, Mapping):
        raise SchemaError(f"scenario {sid}", None, "tables must be a mapping of table name to columns")
    needed = {"full": set(system.simulation_tables), "stage": {"costs", "hydros"}, "summary": set()}.get(detail)
    if needed is None:
        raise SchemaError(f"scenario {sid}", None, f"unknown detail level {detail!r}")
    for name in result.tables:
        if name not in system.simulation_tables:
            raise SchemaError(_where(sid, str(name)), None,
                              "unknown table, or a table this system has no entities for")
    for name in needed:
        if name not in result.tables:
            raise SchemaError(_where(sid, name), None, "table missing from the payload")
    out: dict[str, dict[str, NormalizedColumn]] = {}
    rows: dict[str, int] = {}
    canonical: set[str] = set()
    for name in sorted(needed):
        t = table(name)
        given = result.tables[name]
        if not isinstance(given, Mapping):
            raise SchemaError(_where(sid, name), None, "columns must be a mapping of column name to array")
        for cname in given:
            col = t.by_name.get(cname)
            if col is None:
                raise SchemaError(_where(sid, name), str(cname), "unknown column")
            if col.derived:
                raise SchemaError(_where(sid, name), cname,
                                  "derived column: the writer computes it from the system, leave it out")
        cols: dict[str, NormalizedColumn] = {}
        n: int | None = None
        for col in t.payload_columns:
            if col.name in given:
                nc = _normalize(sid, t, col, given[col.name], n)
                n = nc.values.shape[0]
                cols[col.name] = nc
            elif not col.nullable:
                raise SchemaError(_where(sid, name), col.name, "required column missing from the payload")
        n = n or 0
        for col in t.payload_columns:
            if col.name not in cols:  # omitted nullable column: all null
                cols[col.name] = NormalizedColumn(np.zeros(n, col.numpy_dtype), np.ones(n, bool))
        if _check_keys(sid, t, cols, system, n):
            canonical.add(name)
        out[name] = cols
        rows[name] = n
    return ValidatedResult(sid, total, cats, out, rows, frozenset(canonical))
