"""From validated payload columns to Arrow tables in the spec schema.

Derived columns (SPEC §4) and ``operative_state_code`` are computed here from
the system, columnar; the ``stage`` detail level aggregates hydros per stage.
No Python loop per row.  A derived value that is not finite (finite payload
values whose product with the block hours overflows float64) is a
:class:`~cobre_mpi_io.errors.SchemaError` naming scenario, table and
column, never a NumPy warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from ..errors import SchemaError
from ..formats import to_format
from ..schemas import DEFAULT_FORMAT, STAGE_DETAIL_TABLES, TableSchema, table
from ..system.model import System
from .payload import NormalizedColumn

__all__ = ["STAGE_DETAIL_TABLES", "build_table"]



@dataclass(frozen=True)
class _Ctx:
    hours: np.ndarray      # hours of each row's block (stage hours for stage-level rows)
    stage: np.ndarray      # int64 stage of each row
    entity: np.ndarray     # int64 index of each row's entity in system.ids(table)
    system: System
    table: str


Cols = dict[str, np.ndarray]
_Formula = Callable[[Cols, _Ctx], np.ndarray]


def _times_hours(src: str) -> _Formula:
    return lambda c, x: c[src] * x.hours


def _losses(c: Cols, x: _Ctx) -> np.ndarray:
    losses: np.ndarray = x.system.losses_fraction[x.entity] * (c["direct_flow_mw"] + c["reverse_flow_mw"])
    return losses


# (table, column) -> formula over the payload columns; evaluated in schema order,
# so a derived column may use one derived before it.
_FORMULAS: Final[dict[tuple[str, str], _Formula]] = {
    ("hydros", "outflow_m3s"): lambda c, x: c["turbined_m3s"] + c["spillage_m3s"],
    ("hydros", "generation_mwh"): _times_hours("generation_mw"),
    ("thermals", "generation_mwh"): _times_hours("generation_mw"),
    ("non_controllables", "generation_mwh"): _times_hours("generation_mw"),
    ("non_controllables", "curtailment_mwh"): _times_hours("curtailment_mw"),
    ("exchanges", "net_flow_mw"): lambda c, x: c["direct_flow_mw"] - c["reverse_flow_mw"],
    ("exchanges", "net_flow_mwh"): _times_hours("net_flow_mw"),
    ("exchanges", "losses_mw"): _losses,
    ("exchanges", "losses_mwh"): _times_hours("losses_mw"),
    ("buses", "load_mwh"): _times_hours("load_mw"),
    ("buses", "deficit_mwh"): _times_hours("deficit_mw"),
    ("buses", "excess_mwh"): _times_hours("excess_mw"),
    ("pumping_stations", "pumped_volume_hm3"): lambda c, x: c["pumped_flow_m3s"] * x.hours * (3600.0 / 1e6),
    ("pumping_stations", "energy_consumption_mwh"): _times_hours("power_consumption_mw"),
    ("contracts", "energy_mwh"): _times_hours("power_mw"),
}


def _operative(c: Cols, x: _Ctx) -> np.ndarray:
    codes: np.ndarray = x.system.operative_states(x.table)[x.stage, x.entity]
    return codes


_FORMULA_TEXT: Final = {
    "outflow_m3s": "turbined_m3s + spillage_m3s", "net_flow_mw": "direct_flow_mw - reverse_flow_mw",
    "losses_mw": "losses_percent/100 × (direct_flow_mw + reverse_flow_mw)",
    "pumped_volume_hm3": "pumped_flow_m3s × hours × 3600 / 1e6", "energy_mwh": "power_mw × hours",
    "energy_consumption_mwh": "power_consumption_mw × hours",
}


def _overflow(where: str, column: str, values: np.ndarray | None = None) -> SchemaError:
    """The error of a derived or aggregated value that is not finite."""
    formula = _FORMULA_TEXT.get(column, f"{column[:-1]} × hours" if column.endswith("_mwh") else "per-stage aggregate")
    rows = ""
    if values is not None:
        with np.errstate(all="ignore"):
            bad = np.flatnonzero(~np.isfinite(values))
        rows = f" at row {int(bad[0])}" if bad.size else ""
    return SchemaError(where, column, f"derived value ({formula}) overflows float64{rows}: the payload values "
                                      "it is computed from are too large")


def _aggregate_per_stage(t: TableSchema, cols: dict[str, NormalizedColumn], system: System,
                         stage: np.ndarray, entity: np.ndarray, block: np.ndarray,
                         where: str) -> dict[str, NormalizedColumn]:
    """Hydros per (stage, hydro): hours-weighted means of rates, sums of energies and
    costs, first block's initial storage, last block's final storage, water value and codes."""
    order = np.lexsort((block, entity, stage))
    s_stage, s_ent = stage[order], entity[order]
    n = order.size
    if n == 0:
        return {k: NormalizedColumn(v.values[:0], None) for k, v in cols.items()}
    change = np.empty(n, bool)
    change[0] = True
    change[1:] = (s_stage[1:] != s_stage[:-1]) | (s_ent[1:] != s_ent[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n) - 1
    w = system.hours_matrix[s_stage, block[order]]
    out: dict[str, NormalizedColumn] = {}
    for col in t.payload_columns:
        nc = cols[col.name]
        v = nc.values[order]
        m = nc.mask[order] if nc.mask is not None else None
        if col.name == "block_id":
            out[col.name] = NormalizedColumn(np.zeros(starts.size, np.int32), np.ones(starts.size, bool))
            continue
        if col.name in ("stage_id", t.entity_column) or col.name in ("storage_initial_hm3",):
            idx = starts
        elif col.name in ("storage_final_hm3",) or col.unit in ("code", "$/hm3"):
            idx = ends
        else:
            idx = None
        if idx is not None:
            out[col.name] = NormalizedColumn(v[idx], m[idx] if m is not None else None)
            continue
        try:
            with np.errstate(over="raise", invalid="raise"):
                if col.unit in ("m3/s", "MW", "MW/(m3/s)"):
                    ww = w if m is None else np.where(m, 0.0, w)
                    vv = v if m is None else np.where(m, 0.0, v)
                    num = np.add.reduceat(vv * ww, starts)
                    den = np.add.reduceat(ww, starts)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        res = num / den
                    mask = (den == 0) if m is not None else None
                    out[col.name] = NormalizedColumn(np.where(den == 0, 0.0, res),
                                                     mask if mask is not None and mask.any() else None)
                else:  # energies, costs, volumes: sums
                    vv = v if m is None else np.where(m, 0, v)
                    out[col.name] = NormalizedColumn(np.add.reduceat(vv, starts).astype(v.dtype, copy=False), None)
        except FloatingPointError as exc:
            raise _overflow(where, col.name) from exc
    return out


def build_table(name: str, cols: dict[str, NormalizedColumn], system: System, detail: str = "full",
                canonical: bool = False, *, scenario_id: int | None = None,
                fmt: str = DEFAULT_FORMAT) -> pa.Table:
    """Arrow table of ``name`` in the exact schema of format ``fmt``, derived columns filled.

    Parameters
    ----------
    name : str
        Simulation table.
    cols : dict
        Validated payload columns (:func:`~cobre_mpi_io.payload.validate_result`).
    system : System
        Block hours, line losses, entity entry/exit stages.
    detail : {"full", "stage"}
        ``stage``: costs keeps its stage-level rows only; hydros is
        aggregated per (stage, hydro) with ``block_id`` null.
    canonical : bool
        The rows are in :meth:`System.canonical_layout` order (validation
        says so): per-row hours and entity positions come precomputed.
    scenario_id : int, optional
        Named in errors; the ``scenario_id`` column of format ``cobre-0.18``.
    fmt : str
        Output format (:data:`~cobre_mpi_io.schemas.FORMATS`): the spec
        table is built, then :func:`~cobre_mpi_io.formats.to_format` turns
        it into Cobre 0.18's (``costs``: stage rows only).

    Raises
    ------
    SchemaError
        A derived (or ``stage``-aggregated) value is not finite: finite
        payload values too large for float64 once multiplied by the hours.
    """
    t = table(name)
    where = f"scenario {scenario_id} {name}" if scenario_id is not None else name
    n = cols["stage_id"].values.shape[0]
    layout = system.canonical_layout(name) if canonical and detail == "full" else None
    if layout is not None:
        values_: Cols = {k: v.values for k, v in cols.items()}
        ent = layout.entity_index if layout.entity_index is not None else np.zeros(n, np.int64)
        return _to_format(_assemble(t, cols, values_, _Ctx(layout.hours, layout.stage_id, ent, system, name), where),
                          name, fmt, system, scenario_id)
    stage = cols["stage_id"].values.astype(np.int64, copy=False)
    entity = (system.index_of(name, cols[t.entity_column].values)
              if t.entity_column is not None else np.zeros(n, np.int64))
    bcol = cols.get("block_id")
    if detail == "stage" and name == "costs":
        keep = bcol.mask if bcol is not None and bcol.mask is not None else np.zeros(n, bool)
        cols = {k: NormalizedColumn(v.values[keep], v.mask[keep] if v.mask is not None else None)
                for k, v in cols.items()}
        stage, entity = stage[keep], entity[keep]
        bcol = cols.get("block_id")
    elif detail == "stage" and name == "hydros":
        assert bcol is not None
        cols = _aggregate_per_stage(t, cols, system, stage, entity, bcol.values.astype(np.int64), where)
        stage = cols["stage_id"].values.astype(np.int64, copy=False)
        entity = system.index_of(name, cols["hydro_id"].values)
        bcol = cols["block_id"]
    if bcol is not None:
        block = bcol.values.astype(np.int64, copy=False)
        if bcol.mask is not None:
            hours = np.where(bcol.mask, system.stage_hours[stage], system.hours_matrix[stage, np.where(bcol.mask, 0, block)])
        else:
            hours = system.hours_matrix[stage, block]
    else:
        hours = system.stage_hours[stage]
    ctx = _Ctx(hours, stage, entity, system, name)
    return _to_format(_assemble(t, cols, {k: v.values for k, v in cols.items()}, ctx, where), name, fmt,
                      system, scenario_id)


def _to_format(tbl: pa.Table, name: str, fmt: str, system: System, scenario_id: int | None) -> pa.Table:
    """The spec table ``tbl`` in format ``fmt`` (:func:`~cobre_mpi_io.formats.to_format`), with the
    per-row system values a ``hydros`` conversion needs."""
    if fmt == DEFAULT_FORMAT:
        return tbl
    productivity = hours = None
    if name == "hydros":
        prod = np.array([h.productivity_mw_per_m3s for h in sorted(system.hydros, key=lambda h: h.id)], np.float64)
        idx = system.index_of("hydros", tbl.column("hydro_id").to_numpy(zero_copy_only=False))
        productivity = prod[idx] if prod.size else np.zeros(tbl.num_rows)
        hours = system.stage_hours[tbl.column("stage_id").to_numpy(zero_copy_only=False).astype(np.int64)]
    return to_format(tbl, name, fmt, scenario_id=scenario_id, productivity=productivity, stage_hours=hours)


def _assemble(t: TableSchema, cols: dict[str, NormalizedColumn], values: Cols, ctx: _Ctx, where: str) -> pa.Table:
    """Arrow arrays in schema order: payload columns as given, derived ones computed.

    Formulas run with NumPy's overflow/invalid flags raising (checked once per
    operation, no extra pass), so a non-finite derived value is an error naming
    its column instead of a warning and an ``inf`` in the file.
    """
    name = t.name
    arrays: list[pa.Array] = []
    for col in t.columns:
        if col.derived:
            fn = _operative if col.name == "operative_state_code" else _FORMULAS[(name, col.name)]
            try:
                with np.errstate(over="raise", invalid="raise"):
                    v = np.ascontiguousarray(fn(values, ctx), dtype=col.numpy_dtype)
            except FloatingPointError as exc:
                with np.errstate(all="ignore"):  # again, quietly, to name the first row
                    raise _overflow(where, col.name, np.asarray(fn(values, ctx), np.float64)) from exc
            values[col.name] = v
            arrays.append(pa.array(v, type=col.arrow_type))
        else:
            nc = cols[col.name]
            arrays.append(pa.array(nc.values, type=col.arrow_type, mask=nc.mask))
    return pa.Table.from_arrays(arrays, schema=t.arrow_schema)
