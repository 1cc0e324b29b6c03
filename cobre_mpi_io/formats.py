"""Output formats: the spec's tables and Cobre 0.18's, and the codes each one means.

The writers always build a table in the spec schema first (payload columns
validated, derived columns computed: :mod:`cobre_mpi_io.simulation.tables`,
:mod:`cobre_mpi_io.training.writer`); in format ``"cobre-0.18"``
:func:`to_format` then turns it into Cobre 0.18's table, columnar, with the
columns, order, types and nullability Cobre 0.18 writes
(:func:`cobre_mpi_io.schemas.table` with ``fmt="cobre-0.18"``).  Every
column Cobre has and the spec payload does not carry is computed by a rule
listed in :data:`COBRE_RULES` (also the text of ``docs/formats.md``).

Codes (``codes.json``) carry different meanings per format
(:data:`CODE_MEANINGS`): the spec's ``operative_state`` is
``{0 non_existing, 1 filling_dead_volume, 2 operating, 3 decommissioned}``,
Cobre's (0.5.x and 0.18, as its own ``codes.json`` says)
``{0 deactivated, 1 maintenance, 2 operating, 3 saturated}``; the spec's
``storage_binding`` ``{0 none, 1 min, 2 max, 3 target}``, Cobre's
``{0 none, 1 below_minimum, 2 above_maximum, 3 both}``.  In format
``cobre-0.18`` the code columns are translated (:data:`COBRE_CODE_FROM_SPEC`).

NumPy and pyarrow are imported by the conversion (:func:`to_format`), not with
the module: the code meanings and :func:`recorded_format` need neither.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .errors import SchemaError
from .schemas import DEFAULT_FORMAT, FORMATS, TableSchema, check_format, format_tables, table

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "COBRE_CODE_FROM_SPEC",
    "COBRE_RULES",
    "COBRE_SOFTWARE_VERSION",
    "CODE_MEANINGS",
    "format_tables_for",
    "recorded_format",
    "to_format",
]

COBRE_SOFTWARE_VERSION: Final = "0.18.0"
"""The Cobre release whose tables format ``cobre-0.18`` reproduces."""

_SPEC_ENTITY_TYPE: Final = {"hydro": 0, "thermal": 1, "bus": 2, "line": 3, "pumping_station": 4, "contract": 5,
                            "battery": 6, "non_controllable": 7}
_BOUND_TYPE: Final = {"storage_min": 0, "storage_max": 1, "turbined_min": 2, "turbined_max": 3, "outflow_min": 4,
                      "outflow_max": 5, "generation_min": 6, "generation_max": 7, "flow_min": 8, "flow_max": 9}

CODE_MEANINGS: Final[dict[str, dict[str, dict[str, int]]]] = {
    "spec": {
        "operative_state": {"non_existing": 0, "filling_dead_volume": 1, "operating": 2, "decommissioned": 3},
        "storage_binding": {"none": 0, "min": 1, "max": 2, "target": 3},
        "contract_type": {"import": 0, "export": 1},
        "entity_type": _SPEC_ENTITY_TYPE,
        "bound_type": _BOUND_TYPE,
    },
    "cobre-0.18": {  # what Cobre 0.18.0's own codes.json says (0.5.1's is the same without hydro_unit_group)
        "operative_state": {"deactivated": 0, "maintenance": 1, "operating": 2, "saturated": 3},
        "storage_binding": {"none": 0, "below_minimum": 1, "above_maximum": 2, "both": 3},
        "contract_type": {"import": 0, "export": 1},
        "entity_type": {"hydro": 0, "thermal": 1, "bus": 2, "line": 3, "pumping_station": 4, "contract": 5,
                        "non_controllable": 7, "hydro_unit_group": 8},
        "bound_type": _BOUND_TYPE,
    },
}
"""Per format, per code family: label -> integer (the content of ``codes.json``)."""

COBRE_CODE_FROM_SPEC: Final[dict[str, dict[str, str]]] = {
    "operative_state": {"non_existing": "deactivated", "filling_dead_volume": "deactivated",
                        "operating": "operating", "decommissioned": "deactivated"},
    "storage_binding": {"none": "none", "min": "below_minimum", "max": "above_maximum", "target": "none"},
}
"""How a spec code becomes Cobre's in format ``cobre-0.18`` (spec label -> Cobre label).

A hydro filling its dead volume cannot generate and has no Cobre state of its
own: ``deactivated``.  A binding filling target is not a storage bound in
Cobre: ``none``.
"""


def _lookup(family: str) -> np.ndarray:
    import numpy as np

    spec, cobre = CODE_MEANINGS["spec"][family], CODE_MEANINGS["cobre-0.18"][family]
    lut = np.zeros(max(spec.values()) + 1, np.int8)
    for label, code in spec.items():
        lut[code] = cobre[COBRE_CODE_FROM_SPEC[family][label]]
    return lut


@functools.cache
def _luts() -> dict[str, np.ndarray]:
    """Code column -> the spec-to-Cobre code lookup table (built on first use)."""
    return {"operative_state_code": _lookup("operative_state"), "storage_binding_code": _lookup("storage_binding")}


_ZERO: Final = "0 (the spec payload has no such value)"
COBRE_RULES: Final[dict[str, dict[str, str]]] = {
    "*": {
        "scenario_id": "the scenario (also the Hive directory)",
        "node_id": "stage_id (a linear policy graph: one node per stage)",
        "operative_state_code": "the spec code translated to Cobre's (COBRE_CODE_FROM_SPEC)",
    },
    "costs": {
        "(rows)": "stage-level rows only (block_id null), as Cobre 0.18 writes",
        "turbined_cost": "fpha_turbined_cost",
        "anticipated_thermal_cost": "0 (thermal_cost carries all thermal cost)",
        **dict.fromkeys(("outflow_violation_below_cost", "outflow_violation_above_cost", "turbined_violation_cost",
                         "generation_violation_cost", "evaporation_violation_cost", "withdrawal_violation_cost"),
                        "0 (the spec payload carries only their sum, hydro_violation_cost)"),
    },
    "hydros": {
        "inflow_m3s": "incremental_inflow_m3s (Cobre 0.18: 'the same value as incremental_inflow_m3s')",
        "equivalent_productivity_mw_per_m3s": "productivity_mw_per_m3s; the system's productivity where null",
        "accumulated_productivity_mw_per_m3s": "equivalent_productivity_mw_per_m3s (the system has no cascade)",
        "integrated_equivalent_productivity_mw_per_m3s": "equivalent_productivity_mw_per_m3s (constant productivity)",
        "integrated_accumulated_productivity_mw_per_m3s": "accumulated_productivity_mw_per_m3s",
        "incremental_inflow_energy_mw": "accumulated_productivity_mw_per_m3s × incremental_inflow_m3s",
        "stored_energy_initial_mwh": "storage_initial_hm3 × 1e6 / 3600 × accumulated_productivity_mw_per_m3s",
        "stored_energy_final_mwh": "storage_final_hm3 × 1e6 / 3600 × accumulated_productivity_mw_per_m3s",
        "stored_energy_initial_mw": "stored_energy_initial_mwh / stage hours",
        "stored_energy_final_mw": "stored_energy_final_mwh / stage hours",
        "evaporation_violation_pos_m3s": "max(evaporation_violation_m3s, 0)",
        "evaporation_violation_neg_m3s": "max(-evaporation_violation_m3s, 0)",
        "water_withdrawal_violation_pos_m3s": _ZERO,
        "water_withdrawal_violation_neg_m3s": _ZERO,
        "storage_binding_code": "the spec code translated to Cobre's (COBRE_CODE_FROM_SPEC)",
    },
    "thermals": {
        "is_anticipated": "is_gnl",
        "anticipated_committed_mw": "gnl_committed_mw",
        "anticipated_decision_mw": "gnl_decision_mw",
    },
    "inflow_lags": {"lag_index": "spec lag_index - 1 (Cobre counts lags from 0)"},
    "convergence": {
        "upper_bound": "upper_bound_mean (NaN when the upper bound was not evaluated)",
        "upper_bound_kind": "'statistical' (a sampled forward pass)",
        "mean_rows_in_lp": "0 (no lazy cut selection)",
    },
    "iteration_timing": {
        "(rows)": "one row per iteration: rank 0, worker_id null (rank-aggregated)",
        "rank": "0",
        "worker_id": "null",
        "forward_wall_ms": "forward_solve_ms + forward_sample_ms",
        "backward_wall_ms": "backward_solve_ms + backward_cut_ms",
        "state_exchange_ms": "mpi_broadcast_ms",
        "overhead_ms": "overhead_ms + io_write_ms",
        **dict.fromkeys(("cut_sync_ms", "lower_bound_ms", "cut_batch_build_ms", "bwd_setup_ms",
                         "bwd_load_imbalance_ms", "bwd_scheduling_overhead_ms", "fwd_setup_ms",
                         "fwd_load_imbalance_ms", "fwd_scheduling_overhead_ms", "lazy_scoring_ms"),
                        "0 (not measured separately)"),
    },
    "bounds": {"hydro_id": "null (no hydro unit group rows)"},
}
"""Per Cobre 0.18 table, how each column the spec table lacks (or means otherwise) is written."""

_RENAMES: Final = {("costs", "turbined_cost"): "fpha_turbined_cost", ("hydros", "inflow_m3s"): "incremental_inflow_m3s",
                   ("thermals", "is_anticipated"): "is_gnl",
                   ("thermals", "anticipated_committed_mw"): "gnl_committed_mw",
                   ("thermals", "anticipated_decision_mw"): "gnl_decision_mw",
                   ("convergence", "upper_bound"): "upper_bound_mean",
                   ("iteration_timing", "state_exchange_ms"): "mpi_broadcast_ms"}


def format_tables_for(fmt: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` (spec tables) that exist in format ``fmt``; :class:`SchemaError` for one that does not."""
    check_format(fmt)
    if fmt == DEFAULT_FORMAT:
        return names
    have = format_tables(fmt)
    missing = [n for n in names if n not in have]
    if missing:
        raise SchemaError(f"format {fmt}", None, f"Cobre 0.18 has no table {', '.join(missing)}: a system with "
                                                 "these entities cannot be written in this format")
    return names


def recorded_format(run_identity: Any) -> str:
    """The output format a recorded run identity names (``run_identity.config.format``), ``"spec"`` when absent.

    Parameters
    ----------
    run_identity : mapping or None
        The ``run_identity`` object of a manifest or ``metadata.json``.

    Returns
    -------
    str
        One of :data:`~cobre_mpi_io.schemas.FORMATS` (an unknown or malformed value reads as the spec).
    """
    config = run_identity.get("config") if isinstance(run_identity, Mapping) else None
    fmt = config.get("format") if isinstance(config, Mapping) else None
    return fmt if isinstance(fmt, str) and fmt in FORMATS else DEFAULT_FORMAT


def _np(tbl: pa.Table, name: str) -> np.ndarray:
    arr: np.ndarray = tbl.column(name).to_numpy(zero_copy_only=False)
    return arr


def _hydro_values(tbl: pa.Table, productivity: np.ndarray, hours: np.ndarray) -> dict[str, pa.Array | np.ndarray]:
    import numpy as np
    import pyarrow.compute as pc

    out: dict[str, pa.Array | np.ndarray] = {}
    given = tbl.column("productivity_mw_per_m3s")
    prod = np.where(pc.is_null(given).to_numpy(zero_copy_only=False), productivity,
                    pc.fill_null(given, 0.0).to_numpy(zero_copy_only=False))
    to_mwh = prod * (1e6 / 3600.0)
    evap = _np(tbl, "evaporation_violation_m3s")
    zero = np.zeros(tbl.num_rows)
    e0 = _np(tbl, "storage_initial_hm3") * to_mwh
    e1 = _np(tbl, "storage_final_hm3") * to_mwh
    out.update({
        "equivalent_productivity_mw_per_m3s": prod, "accumulated_productivity_mw_per_m3s": prod,
        "integrated_equivalent_productivity_mw_per_m3s": prod, "integrated_accumulated_productivity_mw_per_m3s": prod,
        "incremental_inflow_energy_mw": prod * _np(tbl, "incremental_inflow_m3s"),
        "stored_energy_initial_mwh": e0, "stored_energy_final_mwh": e1,
        "stored_energy_initial_mw": e0 / hours, "stored_energy_final_mw": e1 / hours,
        "evaporation_violation_pos_m3s": np.maximum(evap, 0.0), "evaporation_violation_neg_m3s": np.maximum(-evap, 0.0),
        "water_withdrawal_violation_pos_m3s": zero, "water_withdrawal_violation_neg_m3s": zero,
    })
    return out


def _timing_values(tbl: pa.Table) -> dict[str, pa.Array | np.ndarray]:
    import numpy as np
    import pyarrow as pa

    n = tbl.num_rows
    return {
        "rank": np.zeros(n, np.int32), "worker_id": pa.nulls(n, pa.int32()),
        "forward_wall_ms": _np(tbl, "forward_solve_ms") + _np(tbl, "forward_sample_ms"),
        "backward_wall_ms": _np(tbl, "backward_solve_ms") + _np(tbl, "backward_cut_ms"),
        "overhead_ms": _np(tbl, "overhead_ms") + _np(tbl, "io_write_ms"),
    }


def to_format(tbl: pa.Table, name: str, fmt: str, *, scenario_id: int | None = None,
              productivity: np.ndarray | None = None, stage_hours: np.ndarray | None = None) -> pa.Table:
    """The spec-schema table ``tbl`` of ``name`` as format ``fmt`` writes it (columnar).

    Parameters
    ----------
    tbl : pyarrow.Table
        Rows in the spec schema of ``name`` (derived columns filled).
    name : str
        Table name.
    fmt : str
        Output format (:data:`~cobre_mpi_io.schemas.FORMATS`); ``"spec"`` returns ``tbl``.
    scenario_id : int, optional
        The scenario of a simulation partition (its ``scenario_id`` column).
    productivity, stage_hours : numpy.ndarray, optional
        ``hydros`` only, one value per row: the hydro's productivity in the
        system (used where the payload's is null) and the hours of the row's
        stage.

    Returns
    -------
    pyarrow.Table
        In :func:`~cobre_mpi_io.schemas.table` ``(name, fmt)``'s exact schema.

    Raises
    ------
    SchemaError
        ``name`` has no table in ``fmt``, or a simulation table without
        its scenario id (``hydros``: productivity and stage hours).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    check_format(fmt)
    if fmt == DEFAULT_FORMAT:
        return tbl
    try:
        target: TableSchema = table(name, fmt)
    except KeyError:
        raise SchemaError(name, None, f"format {fmt} has no table {name!r}") from None
    if name == "costs":
        tbl = tbl.filter(pc.is_null(tbl.column("block_id")))
    n = tbl.num_rows
    computed: Mapping[str, pa.Array | np.ndarray] = {}
    if name == "hydros":
        if productivity is None or stage_hours is None:
            raise SchemaError(name, None, "converting hydros needs the productivity and stage hours of each row")
        computed = _hydro_values(tbl, productivity, stage_hours)
    elif name == "iteration_timing":
        computed = _timing_values(tbl)
    arrays: list[pa.Array] = []
    for col in target.columns:
        src = _RENAMES.get((name, col.name), col.name)
        if col.name in computed:
            v = computed[col.name]
        elif col.name == "scenario_id" and "scenario_id" not in tbl.column_names:
            if scenario_id is None:
                raise SchemaError(name, "scenario_id", "converting a simulation table needs its scenario id")
            v = np.full(n, scenario_id, np.int32)
        elif col.name == "node_id":
            v = tbl.column("stage_id")
        elif col.name in _luts() and col.name in tbl.column_names:
            codes, lut = _np(tbl, col.name).astype(np.int64), _luts()[col.name]
            bad = (codes < 0) | (codes >= lut.size)
            if bad.any():
                where = f"scenario {scenario_id} {name}" if scenario_id is not None else name
                raise SchemaError(where, col.name, f"code {int(codes[bad][0])} has no meaning in the spec "
                                                   f"(0..{lut.size - 1}), so none in Cobre's codes either")
            v = lut[codes]
        elif name == "inflow_lags" and col.name == "lag_index":
            v = _np(tbl, "lag_index") - 1
        elif col.name == "upper_bound_kind":
            v = pa.array(["statistical"] * n, pa.string())
        elif name == "convergence" and col.name == "upper_bound":
            v = pc.fill_null(tbl.column(src), float("nan"))
        elif src in tbl.column_names:
            v = tbl.column(src)
        elif col.nullable:
            v = pa.nulls(n, col.arrow_type)
        elif col.type_code in ("f64", "i32", "i64", "i8"):
            v = np.zeros(n, col.numpy_dtype)
        else:  # pragma: no cover - guarded by tests/test_formats.py (every column has a rule)
            raise SchemaError(name, col.name, f"no rule for {fmt} column")
        if isinstance(v, pa.ChunkedArray):
            v = v.combine_chunks()
        arr = v if isinstance(v, pa.Array) else pa.array(np.ascontiguousarray(v, dtype=col.numpy_dtype))
        if arr.type != col.arrow_type:
            arr = arr.cast(col.arrow_type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=target.arrow_schema)
