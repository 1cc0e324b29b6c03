"""The columnar result of one simulated scenario, its validation, and an empty one to fill.

A :class:`SimulationScenarioResult` carries, per simulation table, one NumPy
array per column the LP produces (never the derived columns of SPEC §4,
never ``operative_state_code``: the writer computes those from the system).
Nullable columns may be omitted (all null), given as a
:class:`numpy.ma.MaskedArray`, or, for float columns, hold NaN for null.

:func:`empty_scenario_result` returns the payload of a system and scenario
with every table, every payload column and the key columns filled in the
system's canonical row order: an integrator only fills the values.

Values (the rule for non-finite floats, per column):

- every float value must be finite: ``±inf`` is refused in every column
  (no LP primal or dual value is infinite, and one ``inf`` would poison the
  derived ``*_mwh`` columns and every statistic over the table);
- NaN means null: allowed only in nullable columns (``evaporation_m3s``,
  ``gnl_committed_mw``, ...), refused in the others;
- ``total_cost`` and the 14 ``category_costs`` must be finite numbers.

:func:`validate_result` checks a result against the schemas and the system
and returns normalized arrays; :func:`payload_problems` lists every problem
of a payload (each naming scenario, table and column) and
:func:`validate_result` raises them all in one
:class:`~cobre_mpi_io.errors.SchemaError`.  It is all vectorized: no Python
loop per row.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ..errors import SchemaError
from ..schemas import COST_COMPONENTS, DETAIL_LEVELS, Column, TableSchema, table, tables_for_detail
from ..system.model import RowLayout, System

__all__ = [
    "DETAIL_LEVELS",
    "NormalizedColumn",
    "PayloadProblem",
    "SimulationScenarioResult",
    "ValidatedResult",
    "empty_scenario_result",
    "payload_problems",
    "validate_result",
]

ArrayLike = Any

MAX_LISTED: Final = 50
"""Problems spelled out in one error message (the rest are counted)."""


@dataclass
class SimulationScenarioResult:
    """What the simulation produces for one scenario.

    Start from :func:`empty_scenario_result` (every table and column of
    the system, keys filled) and fill the values.

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
        tables = self.tables if isinstance(self.tables, Mapping) else {}
        return sum(int(getattr(a, "nbytes", 0)) for cols in tables.values() if isinstance(cols, Mapping)
                   for a in cols.values())


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


@dataclass(frozen=True)
class PayloadProblem:
    """One problem of a payload: where (``scenario 3 hydros``), the column (or None) and what is wrong."""

    where: str
    column: str | None
    message: str

    def __str__(self) -> str:
        return self.where + (f", column {self.column!r}" if self.column else "") + f": {self.message}"


class _Problems:
    """Collects the problems of one payload."""

    def __init__(self) -> None:
        self.items: list[PayloadProblem] = []

    def add(self, where: str, column: str | None, message: str) -> None:
        self.items.append(PayloadProblem(where, column, message))

    def __len__(self) -> int:
        return len(self.items)


def problems_error(problems: list[PayloadProblem], scenario: str) -> SchemaError:
    """One :class:`SchemaError` for every problem: the problem itself when alone, else a list."""
    if len(problems) == 1:
        p = problems[0]
        return SchemaError(p.where, p.column, p.message)
    lines = [f"  - {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  - ... and {len(problems) - MAX_LISTED} more")
    return SchemaError(scenario, None, f"{len(problems)} problems in the payload:\n" + "\n".join(lines))


def _rows(idx: np.ndarray) -> str:
    """``row 4`` or ``row 4 (and 11 more rows)`` for the positions ``idx`` (non-empty)."""
    more = int(idx.size) - 1
    return f"row {int(idx[0])}" + (f" (and {more} more row{'s' if more > 1 else ''})" if more else "")


def _normalize(p: _Problems, where: str, col: Column, raw: ArrayLike, n: int) -> NormalizedColumn | None:
    """The column as spec dtype + mask, or None (after recording why) when it cannot be used."""
    if isinstance(raw, np.ma.MaskedArray):
        mask: np.ndarray | None = np.ma.getmaskarray(raw)
        arr = np.asarray(raw.data)
    elif isinstance(raw, np.ndarray):
        mask = None
        arr = raw
    else:
        p.add(where, col.name, f"expected a 1-D NumPy array, got {type(raw).__name__}")
        return None
    if arr.ndim != 1:
        p.add(where, col.name, f"expected a 1-D array, got shape {arr.shape}")
        return None
    if arr.shape[0] != n:
        p.add(where, col.name, f"length {arr.shape[0]} differs from the table's other columns ({n})")
        return None
    kind = arr.dtype.kind
    tc = col.type_code
    if tc == "f64":
        if kind != "f":
            p.add(where, col.name, f"dtype {arr.dtype} where float64 is required")
            return None
        with np.errstate(all="ignore"):  # float128 beyond float64 becomes inf, refused below
            values = arr.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        if not finite.all():
            nan = np.isnan(values)
            inf = ~(finite | nan)
            if mask is not None:
                inf &= ~mask
            if inf.any():
                i = np.flatnonzero(inf)
                p.add(where, col.name, f"{float(values[i[0]])} at {_rows(i)}: values must be finite")
                return None
            if nan.any():
                if not col.nullable:
                    bad = nan if mask is None else nan & ~mask
                    if bad.any():
                        p.add(where, col.name, f"NaN at {_rows(np.flatnonzero(bad))} in a non-nullable column")
                        return None
                mask = nan if mask is None else (mask | nan)
    elif tc in ("i8", "i32", "i64"):
        if kind not in "iu":
            p.add(where, col.name, f"dtype {arr.dtype} where {col.numpy_dtype} is required")
            return None
        target = np.dtype(col.numpy_dtype)
        if arr.dtype != target and arr.size:
            info = np.iinfo(target)
            check = arr if mask is None else arr[~mask]
            if check.size and (int(check.min()) < info.min or int(check.max()) > info.max):
                p.add(where, col.name, f"values outside the {target} range")
                return None
        values = arr.astype(target, copy=False)
    elif tc == "bool":
        if kind != "b":
            p.add(where, col.name, f"dtype {arr.dtype} where bool is required")
            return None
        values = arr
    else:  # pragma: no cover - schemas only use the codes above
        p.add(where, col.name, f"unsupported type code {tc}")
        return None
    if mask is not None:
        if not mask.any():
            mask = None
        elif not col.nullable:
            p.add(where, col.name, f"null at {_rows(np.flatnonzero(mask))} in a non-nullable column")
            return None
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


def _check_keys(p: _Problems, where: str, t: TableSchema, cols: dict[str, NormalizedColumn], system: System,
                n: int) -> bool:
    """Check keys, entity ids and row count; True when the rows are in canonical layout."""
    if _is_canonical(t, cols, system.canonical_layout(t.name), n):
        return True
    before = len(p)
    T = system.num_stages
    stage = cols["stage_id"].values.astype(np.int64)
    stage_ok = (stage >= 0) & (stage < T)
    if not stage_ok.all():
        i = np.flatnonzero(~stage_ok)
        p.add(where, "stage_id", f"stage {int(stage[i[0]])} does not exist (stages 0..{T - 1}), at {_rows(i)}")
    nblocks = system.blocks_per_stage
    block_part: np.ndarray | None = None
    if "block_id" in t.by_name:
        bc = cols["block_id"]
        block = bc.values.astype(np.int64)
        null = bc.mask if bc.mask is not None else np.zeros(n, bool)
        valid = null | ~stage_ok | ((block >= 0) & (block < nblocks[np.where(stage_ok, stage, 0)]))
        if not valid.all():
            i = np.flatnonzero(~valid)
            p.add(where, "block_id", f"block {int(block[i[0]])} does not exist in stage "
                                     f"{int(stage[i[0]])}, at {_rows(i)}")
        if t.name == "costs":
            want = T + int(nblocks.sum())
            if n != want:
                p.add(where, None, f"{n} rows where the system needs {want} "
                                   "(one stage-level row plus one per block, per stage)")
        elif null.any():
            p.add(where, "block_id", f"null at {_rows(np.flatnonzero(null))}: only costs has stage-level rows")
        block_part = np.where(null, 0, block + 1)
    ent_idx: np.ndarray | None = None
    if t.entity_column is not None:
        ent = cols[t.entity_column].values
        ent_idx = system.index_of(t.name, ent)
        unknown = ent_idx < 0
        if unknown.any():
            i = np.flatnonzero(unknown)
            p.add(where, t.entity_column, f"unknown entity id {int(ent[i[0]])}, at {_rows(i)}")
    lag: np.ndarray | None = None
    if t.name == "inflow_lags" and ent_idx is not None:
        lag = cols["lag_index"].values.astype(np.int64)
        order = system.ar_orders[np.where(ent_idx < 0, 0, ent_idx)] if system.ar_orders.size else \
            np.zeros(n, np.int64)
        ok = (ent_idx < 0) | ((lag >= 1) & (lag <= order))
        if not ok.all():
            i = np.flatnonzero(~ok)
            p.add(where, "lag_index", f"lag {int(lag[i[0]])} outside 1..AR order {int(order[i[0]])} of hydro "
                                      f"{int(cols['hydro_id'].values[i[0]])}, at {_rows(i)}")
    expected = system.expected_rows(t.name)
    if expected is not None and t.name != "costs" and n != expected:
        p.add(where, None, f"{n} rows where the system needs {expected} (SPEC §4 row count)")
    if len(p) > before or not n:
        return False
    # one row per key: the composite key (bounded, so a bitmap is enough) must be unique
    key = stage.copy()
    space = T
    if block_part is not None:
        key = key * (int(nblocks.max()) + 1) + block_part
        space *= int(nblocks.max()) + 1
    if ent_idx is not None:
        n_ent = max(len(system.ids(t.name)), 1)
        key = key * n_ent + ent_idx
        space *= n_ent
    if lag is not None:
        key = key * (int(system.ar_orders.max()) + 1) + lag
        space *= int(system.ar_orders.max()) + 1
    seen = np.zeros(space, np.bool_)
    seen[key] = True
    if int(np.count_nonzero(seen)) != n:
        p.add(where, None, "duplicate rows for the same key (stage, block, entity)")
    return False


def _as_float(v: Any) -> float | None:
    """``float(v)``, or None when ``v`` is not a number (whatever its conversion raises)."""
    if isinstance(v, (bool, str, bytes)):
        return None
    try:
        return float(v)
    except Exception:  # noqa: BLE001 - a caller's object: any failure means "not a number"
        return None


def _show(v: Any) -> str:
    """A short ``repr`` for a message (never raises)."""
    try:
        r = repr(v)
    except Exception:  # noqa: BLE001 - a caller's object whose repr fails
        r = f"<{type(v).__name__}>"
    return r if len(r) <= 60 else r[:57] + "..."


def _check(result: Any, system: System, detail: str) -> tuple[_Problems, ValidatedResult | None]:
    """Every problem of ``result``, and the validated result when there is none."""
    p = _Problems()
    if not isinstance(result, SimulationScenarioResult):
        p.add("payload", None, f"expected a SimulationScenarioResult, got {type(result).__name__}")
        return p, None
    sid_raw = result.scenario_id
    sid_ok = (not isinstance(sid_raw, bool) and isinstance(sid_raw, (int, np.integer))
              and 0 <= int(sid_raw) <= 2**31 - 1)
    scen = f"scenario {int(sid_raw)}" if sid_ok else f"scenario {_show(sid_raw)}"
    if not sid_ok:
        p.add(scen, "scenario_id", "scenario id must be a non-negative int32")
    total = _as_float(result.total_cost)
    if total is None:
        p.add(scen, "total_cost", f"not a number: {_show(result.total_cost)}")
        total = math.nan
    elif not math.isfinite(total):
        p.add(scen, "total_cost", f"must be finite, got {total}")
    cats: dict[str, float] = {}
    if not isinstance(result.category_costs, Mapping):
        p.add(scen, "category_costs", "must be a mapping of cost component to value, got "
                                      f"{type(result.category_costs).__name__}")
    else:
        missing = [c for c in COST_COMPONENTS if c not in result.category_costs]
        extra = [str(c) for c in result.category_costs if c not in COST_COMPONENTS]
        if missing or extra:
            p.add(scen, "category_costs", f"missing {missing}, unknown {extra}")
        for c in COST_COMPONENTS:
            if c not in result.category_costs:
                continue
            v = _as_float(result.category_costs[c])
            if v is None:
                p.add(scen, c, f"category cost is not a number: {_show(result.category_costs[c])}")
                continue
            if not math.isfinite(v):
                p.add(scen, c, f"category cost must be finite, got {v}")
            cats[c] = v
    if detail not in DETAIL_LEVELS:
        p.add(scen, None, f"unknown detail level {detail!r}")
        return p, None
    needed = tables_for_detail(detail, system.simulation_tables, partitioned=True)
    if not isinstance(result.tables, Mapping):
        p.add(scen, None, f"tables must be a mapping of table name to columns, got {type(result.tables).__name__}")
        return p, None
    for name in result.tables:
        if name not in system.simulation_tables:
            p.add(f"{scen} {name}", None, "unknown table, or a table this system has no entities for "
                                          f"(this system's: {', '.join(system.simulation_tables)})")
    out: dict[str, dict[str, NormalizedColumn]] = {}
    rows: dict[str, int] = {}
    canonical: set[str] = set()
    for name in needed:
        where = f"{scen} {name}"
        if name not in result.tables:
            p.add(where, None, "table missing from the payload")
            continue
        t = table(name)
        given = result.tables[name]
        if not isinstance(given, Mapping):
            p.add(where, None, f"columns must be a mapping of column name to array, got {type(given).__name__}")
            continue
        before = len(p)
        for cname in given:
            col = t.by_name.get(cname)
            if col is None:
                p.add(where, str(cname), "unknown column")
            elif col.derived:
                p.add(where, cname, "derived column: the writer computes it from the system, leave it out")
        # the table's length: the most common one (a tie goes to stage_id's), so the odd column is named
        lengths = Counter(a.shape[0] for a in given.values() if isinstance(a, np.ndarray) and a.ndim == 1)
        sa = given.get("stage_id")
        top = max(lengths.values(), default=0)
        tied = [k for k, v in lengths.items() if v == top]
        n = (sa.shape[0] if isinstance(sa, np.ndarray) and sa.ndim == 1 and sa.shape[0] in tied
             else tied[0] if tied else 0)
        cols: dict[str, NormalizedColumn] = {}
        for col in t.payload_columns:
            if col.name in given:
                nc = _normalize(p, where, col, given[col.name], n)
                if nc is not None:
                    cols[col.name] = nc
            elif not col.nullable:
                p.add(where, col.name, "required column missing from the payload")
            else:  # omitted nullable column: all null
                cols[col.name] = NormalizedColumn(np.zeros(n, col.numpy_dtype), np.ones(n, bool))
        if len(p) > before:
            continue
        if _check_keys(p, where, t, cols, system, n):
            canonical.add(name)
        out[name] = cols
        rows[name] = n
    if p.items:
        return p, None
    return p, ValidatedResult(int(sid_raw), total, cats, out, rows, frozenset(canonical))


def payload_problems(result: Any, system: System, detail: str = "full") -> list[PayloadProblem]:
    """Every problem of a payload (empty when it is valid); see :func:`validate_result`.

    Parameters
    ----------
    result : SimulationScenarioResult
        The payload (anything else is one problem).
    system : System
        Entities, stages and blocks the payload must match.
    detail : {"full", "stage", "summary"}
        The run's detail level.

    Returns
    -------
    list of PayloadProblem
        Each naming scenario, table and column.
    """
    return list(_check(result, system, detail)[0].items)


def validate_result(result: SimulationScenarioResult, system: System, detail: str = "full") -> ValidatedResult:
    """Check a result against the schemas and the system; return normalized columns.

    Parameters
    ----------
    result : SimulationScenarioResult
        The payload.
    system : System
        Entities, stages and blocks the payload must match.
    detail : {"full", "stage", "summary"}
        The tables needed are :func:`~cobre_mpi_io.schemas.tables_for_detail`'s
        partitioned ones: ``summary`` only checks the totals; ``stage`` needs
        ``costs`` and ``hydros`` (block rows: the writer aggregates them);
        ``full`` needs every table of the system.

    Returns
    -------
    ValidatedResult

    Raises
    ------
    SchemaError
        Listing every problem of the payload, each naming scenario, table
        and column: not a :class:`SimulationScenarioResult`, a wrong shape
        or dtype, a non-finite value, a null/NaN where not allowed, an
        unknown table, column or entity id, a stage, block or lag that does
        not exist, duplicate keys, a row count that does not match the
        system, a derived column in the payload. One problem alone is
        raised as itself.
    """
    problems, validated = _check(result, system, detail)
    if validated is None:
        sid = getattr(result, "scenario_id", None)
        raise problems_error(problems.items, f"scenario {_show(sid)}" if not isinstance(sid, int) else f"scenario {sid}")
    return validated


def empty_scenario_result(system: System, scenario_id: int, detail: str = "full", *,
                          fill: float = math.nan) -> SimulationScenarioResult:
    """The payload of one scenario with every table and column, keys filled: fill in the values.

    Every table the run writes at ``detail`` is there, with every payload
    column (the LP's: derived columns and ``operative_state_code`` are the
    writer's) as a writable NumPy array of the spec dtype, in the system's
    canonical row order (by stage, block, entity id; ``costs``: the
    stage-level row, ``block_id`` masked, before each stage's block rows;
    ``inflow_lags``: by stage, hydro id, lag). Entity positions follow
    :meth:`System.ids <cobre_mpi_io.system.System.ids>`, so a vector of
    LP values indexed by entity (in id order) fills a block with
    ``col.reshape(T, B, n)[t, b] = x`` on a system with B blocks in every
    stage, or row-wise with the key columns.

    Parameters
    ----------
    system : System
        The system the payload describes.
    scenario_id : int
        The scenario.
    detail : {"full", "stage", "summary"}
        The run's detail level: ``summary`` has no tables (totals only).
    fill : float
        Initial value of the non-nullable float columns, ``total_cost`` and
        the 14 ``category_costs``. The default NaN makes validation refuse
        any value left unfilled; ``0.0`` gives a valid all-zero payload.
        Nullable float columns start null (NaN), integer code columns 0,
        boolean columns False.

    Returns
    -------
    SimulationScenarioResult
        ``generic_violations`` has no rows: give one row per (stage, block,
        constraint) with a violation (see the example in ``examples/``).

    Raises
    ------
    SchemaError
        An unknown detail level.
    """
    tables: dict[str, dict[str, Any]] = {}
    for name in tables_for_detail(detail, system.simulation_tables, partitioned=True):
        t = table(name)
        layout = system.canonical_layout(name)
        n = layout.rows if layout is not None else 0
        cols: dict[str, Any] = {}
        for col in t.payload_columns:
            if layout is not None and col.name == "stage_id":
                cols[col.name] = layout.stage_id.copy()
            elif layout is not None and col.name == "block_id" and layout.block_id is not None:
                if layout.block_null is not None:
                    cols[col.name] = np.ma.MaskedArray(layout.block_id.copy(), mask=layout.block_null.copy())
                else:
                    cols[col.name] = layout.block_id.copy()
            elif layout is not None and col.name == t.entity_column and layout.entity_id is not None:
                cols[col.name] = layout.entity_id.copy()
            elif layout is not None and col.name == "lag_index" and layout.lag_index is not None:
                cols[col.name] = layout.lag_index.copy()
            elif col.type_code == "f64":
                cols[col.name] = np.full(n, math.nan if col.nullable else fill)
            else:
                cols[col.name] = np.zeros(n, col.numpy_dtype)
        tables[name] = cols
    return SimulationScenarioResult(scenario_id, fill, dict.fromkeys(COST_COMPONENTS, fill), tables)
