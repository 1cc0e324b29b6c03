"""Arrow schemas of every Parquet table, defined once per output format.

Formats (:data:`FORMATS`): ``"spec"`` (the default) and ``"cobre-0.18"``,
the tables the real Cobre solver 0.18 writes; ``"cobre-0.5"`` (Cobre 0.5.x)
is known for reading only (:data:`READ_FORMATS`).  The spec's column lists
(names, order, Arrow types, nullability, descriptions) are those of
``spec/columns.json``; Cobre's are those of the files Cobre itself wrote
(:mod:`cobre_mpi_io._cobre_schemas`, generated); both are copied here as
data so the package never reads them at run time.  Validation, writing, and
the ``variables.csv`` dictionary all read :func:`table` (:data:`TABLES` is
the spec's).

Each table also says which columns the writer *derives* from the system
(SPEC §4) and which it takes from the payload, and which columns are
id/code columns (dictionary-encoded in Parquet, SPEC §3).

The definitions are plain data: pyarrow is imported on the first use of an
Arrow type or schema (:data:`ARROW_TYPES`, :attr:`TableSchema.arrow_schema`),
so the table names, paths and columns cost nothing to import.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._cobre_schemas import COBRE_TABLES
from .errors import SchemaError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ARROW_TYPES",
    "COST_COMPONENTS",
    "DEFAULT_FORMAT",
    "DETAIL_LEVELS",
    "FORMATS",
    "NUMPY_DTYPES",
    "READ_FORMATS",
    "SIMULATION_TABLES",
    "STAGE_DETAIL_TABLES",
    "SUMMARY_TABLES",
    "TABLES",
    "TRAINING_TABLES",
    "Column",
    "TableSchema",
    "check_format",
    "format_tables",
    "table",
    "tables_for_detail",
]

FORMATS: Final = ("spec", "cobre-0.18")
"""Output formats the writers write: the spec (default) and Cobre 0.18's tables."""
DEFAULT_FORMAT: Final = "spec"
READ_FORMATS: Final = ("spec", "cobre-0.5", "cobre-0.18")
"""Formats whose table schemas are known (``cobre-0.5``: what Cobre 0.5.x writes; read/validate only)."""

_ARROW_TYPE_NAMES: Final = {"i8": "int8", "i32": "int32", "i64": "int64", "f64": "float64", "bool": "bool_",
                             "str": "string", "u32": "uint32", "u64": "uint64", "date32": "date32"}
"""Spec type code -> the ``pyarrow`` factory of its Arrow type (:data:`ARROW_TYPES`)."""
NUMPY_DTYPES: Final = {"i8": "int8", "i32": "int32", "i64": "int64", "f64": "float64", "bool": "bool",
                       "str": "object", "u32": "uint32", "u64": "uint64", "date32": "datetime64[D]"}

if TYPE_CHECKING:
    ARROW_TYPES: dict[str, pa.DataType]
    """Spec type code -> Arrow type (built on first use: importing this module does not import pyarrow)."""


@functools.cache
def _arrow_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {code: getattr(pa, factory)() for code, factory in _ARROW_TYPE_NAMES.items()}


def __getattr__(name: str) -> Any:
    """:data:`ARROW_TYPES`, built on first access (PEP 562), so the names and lists here need no pyarrow."""
    if name == "ARROW_TYPES":
        return _arrow_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# name -> (path in the output tree, [(column, type, nullable, unit, description), ...])
_SPEC: Final[dict[str, tuple[str, list[tuple[str, str, bool, str, str]]]]] = {
    'bounds': ('training/dictionaries/bounds.parquet', [
        ('entity_type_code', 'i8', False, 'code', 'Entity type code (see `codes.json`)'),
        ('entity_id', 'i32', False, 'id', 'Entity identifier'),
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index (null = applies to all blocks)'),
        ('bound_type_code', 'i8', False, 'code', 'Bound type code (see `codes.json`)'),
        ('bound_value', 'f64', False, 'native units', 'Bound value in native units'),
    ]),
    'costs': ('simulation/costs/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index (null for stage-level aggregates)'),
        ('total_cost', 'f64', False, '$', 'Total stage cost (all components)'),
        ('immediate_cost', 'f64', False, '$', 'Stage immediate cost (excluding future cost)'),
        ('future_cost', 'f64', False, '$', 'Future cost function value ($\\theta$)'),
        ('discount_factor', 'f64', False, '1', 'Cumulative discount factor $\\prod_{s=1}^{t-1} d_{s \\to s+1}$ (see Discount Rate §5)'),
        ('thermal_cost', 'f64', False, '$', 'Thermal generation cost'),
        ('contract_cost', 'f64', False, '$', 'Import/export contract cost (net: imports positive, exports negative)'),
        ('deficit_cost', 'f64', False, '$', 'Deficit (unmet demand) penalty — piecewise segments'),
        ('excess_cost', 'f64', False, '$', 'Excess generation penalty'),
        ('storage_violation_cost', 'f64', False, '$', 'Storage below minimum violation cost'),
        ('filling_target_cost', 'f64', False, '$', 'Filling target shortfall cost'),
        ('hydro_violation_cost', 'f64', False, '$', 'Sum of turbined, outflow, generation, evaporation, and withdrawal violation costs'),
        ('inflow_penalty_cost', 'f64', False, '$', 'Inflow non-negativity penalty cost (see Inflow Non-Negativity)'),
        ('generic_violation_cost', 'f64', False, '$', 'Generic constraint violation penalties'),
        ('spillage_cost', 'f64', False, '$', 'Spillage regularization cost (all hydros)'),
        ('fpha_turbined_cost', 'f64', False, '$', 'FPHA turbined flow regularization cost (FPHA hydros only)'),
        ('curtailment_cost', 'f64', False, '$', 'Non-controllable source curtailment cost'),
        ('exchange_cost', 'f64', False, '$', 'Exchange regularization cost (all lines)'),
        ('pumping_cost', 'f64', False, '$', 'Imputed pumping cost (marginal price × energy consumed, not a direct LP cost term — see Penalty System §8)'),
    ]),
    'hydros': ('simulation/hydros/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index (null for stage-level)'),
        ('hydro_id', 'i32', False, 'id', 'Hydro plant identifier'),
        ('turbined_m3s', 'f64', False, 'm3/s', 'Turbined outflow (m³/s)'),
        ('spillage_m3s', 'f64', False, 'm3/s', 'Spillage (m³/s)'),
        ('outflow_m3s', 'f64', False, 'm3/s', 'Total outflow: turbined + spillage (m³/s)'),
        ('evaporation_m3s', 'f64', True, 'm3/s', 'Evaporation loss (m³/s), null if not modeled'),
        ('diverted_inflow_m3s', 'f64', True, 'm3/s', 'Inflow diverted from upstream'),
        ('diverted_outflow_m3s', 'f64', True, 'm3/s', 'Outflow diverted to downstream'),
        ('incremental_inflow_m3s', 'f64', False, 'm3/s', 'Realized incremental inflow (m³/s)'),
        ('inflow_m3s', 'f64', False, 'm3/s', 'Total inflow including upstream'),
        ('storage_initial_hm3', 'f64', False, 'hm3', 'Storage at start (hm³)'),
        ('storage_final_hm3', 'f64', False, 'hm3', 'Storage at end (hm³)'),
        ('generation_mw', 'f64', False, 'MW', 'Power generation (MW)'),
        ('generation_mwh', 'f64', False, 'MWh', 'Energy generation (MWh)'),
        ('productivity_mw_per_m3s', 'f64', True, 'MW/(m3/s)', 'Effective productivity'),
        ('spillage_cost', 'f64', False, '$', 'Spillage regularization cost (this plant)'),
        ('water_value_per_hm3', 'f64', False, '$/hm3', 'Marginal value of stored water (\\$/hm³)'),
        ('storage_binding_code', 'i8', False, 'code', 'Storage bound binding status'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
        ('turbined_slack_m3s', 'f64', False, 'm3/s', 'Min turbined violation (0 if none)'),
        ('outflow_slack_below_m3s', 'f64', False, 'm3/s', 'Min outflow violation (0 if none)'),
        ('outflow_slack_above_m3s', 'f64', False, 'm3/s', 'Max outflow violation (0 if none)'),
        ('generation_slack_mw', 'f64', False, 'MW', 'Min generation violation (0 if none)'),
        ('storage_violation_below_hm3', 'f64', False, 'hm3', 'Storage below minimum violation (0 if none, stage-level only)'),
        ('filling_target_violation_hm3', 'f64', False, 'hm3', 'Filling target shortfall (0 if none, filling hydros at terminal stage)'),
        ('evaporation_violation_m3s', 'f64', False, 'm3/s', 'Evaporation constraint violation — net of bidirectional slacks (0 if none)'),
        ('inflow_nonnegativity_slack_m3s', 'f64', False, 'm3/s', 'Inflow non-negativity slack (0 if none, stage-level)'),
    ]),
    'thermals': ('simulation/thermals/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('thermal_id', 'i32', False, 'id', 'Thermal unit identifier'),
        ('generation_mw', 'f64', False, 'MW', 'Power generation (MW)'),
        ('generation_mwh', 'f64', False, 'MWh', 'Energy generation (MWh)'),
        ('generation_cost', 'f64', False, '$', 'Generation cost'),
        ('is_gnl', 'bool', False, 'bool', 'Whether unit has GNL configuration'),
        ('gnl_committed_mw', 'f64', True, 'MW', 'GNL committed capacity (null if not GNL)'),
        ('gnl_decision_mw', 'f64', True, 'MW', 'GNL decision for future stages (null if not GNL)'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'exchanges': ('simulation/exchanges/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('line_id', 'i32', False, 'id', 'Transmission line identifier'),
        ('direct_flow_mw', 'f64', False, 'MW', 'Direct flow $f^+$ bus_from → bus_to (MW)'),
        ('reverse_flow_mw', 'f64', False, 'MW', 'Reverse flow $f^-$ bus_to → bus_from (MW)'),
        ('net_flow_mw', 'f64', False, 'MW', 'Net flow: $f^+ - f^-$ (MW), derived'),
        ('net_flow_mwh', 'f64', False, 'MWh', 'Net energy flow (MWh)'),
        ('losses_mw', 'f64', False, 'MW', 'Transmission losses: $(1 - \\eta) \\cdot f^+ + (1 - \\eta) \\cdot f^-$ (MW)'),
        ('losses_mwh', 'f64', False, 'MWh', 'Transmission losses energy (MWh)'),
        ('exchange_cost', 'f64', False, '$', 'Exchange regularization cost (this line)'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'buses': ('simulation/buses/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('bus_id', 'i32', False, 'id', 'Bus identifier'),
        ('load_mw', 'f64', False, 'MW', 'Realized load after curtailment (MW)'),
        ('load_mwh', 'f64', False, 'MWh', 'Realized load energy (MWh)'),
        ('deficit_mw', 'f64', False, 'MW', 'Unmet demand (MW)'),
        ('deficit_mwh', 'f64', False, 'MWh', 'Unmet demand energy (MWh)'),
        ('excess_mw', 'f64', False, 'MW', 'Excess generation (MW)'),
        ('excess_mwh', 'f64', False, 'MWh', 'Excess generation energy (MWh)'),
        ('spot_price', 'f64', False, '$/MWh', 'Marginal cost of energy (\\$/MWh)'),
    ]),
    'pumping_stations': ('simulation/pumping_stations/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('pumping_station_id', 'i32', False, 'id', 'Pumping station identifier'),
        ('pumped_flow_m3s', 'f64', False, 'm3/s', 'Pumped water flow (m³/s)'),
        ('pumped_volume_hm3', 'f64', False, 'hm3', 'Pumped volume (hm³)'),
        ('power_consumption_mw', 'f64', False, 'MW', 'Power consumed (MW)'),
        ('energy_consumption_mwh', 'f64', False, 'MWh', 'Energy consumed (MWh)'),
        ('pumping_cost', 'f64', False, '$', 'Imputed pumping cost'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'contracts': ('simulation/contracts/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('contract_id', 'i32', False, 'id', 'Contract identifier'),
        ('power_mw', 'f64', False, 'MW', 'Contracted power (MW)'),
        ('energy_mwh', 'f64', False, 'MWh', 'Contracted energy (MWh)'),
        ('price_per_mwh', 'f64', False, '$/MWh', 'Contract price (\\$/MWh)'),
        ('total_cost', 'f64', False, '$', 'Total contract cost'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'non_controllables': ('simulation/non_controllables/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('non_controllable_id', 'i32', False, 'id', 'Non-controllable source identifier'),
        ('generation_mw', 'f64', False, 'MW', 'Dispatched generation (MW)'),
        ('generation_mwh', 'f64', False, 'MWh', 'Dispatched generation (MWh)'),
        ('available_mw', 'f64', False, 'MW', 'Available generation from scenario (MW)'),
        ('curtailment_mw', 'f64', False, 'MW', 'Curtailed generation (MW)'),
        ('curtailment_mwh', 'f64', False, 'MWh', 'Curtailed generation (MWh)'),
        ('curtailment_cost', 'f64', False, '$', 'Curtailment regularization cost'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'batteries': ('simulation/batteries/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('battery_id', 'i32', False, 'id', 'Battery identifier'),
        ('charge_mw', 'f64', False, 'MW', 'Charging power (MW)'),
        ('discharge_mw', 'f64', False, 'MW', 'Discharging power (MW)'),
        ('soc_initial_mwh', 'f64', False, 'MWh', 'State of charge at start (MWh)'),
        ('soc_final_mwh', 'f64', False, 'MWh', 'State of charge at end (MWh)'),
        ('cycle_cost', 'f64', False, '$', 'Cycling degradation cost'),
        ('operative_state_code', 'i8', False, 'code', 'Operative state'),
    ]),
    'inflow_lags': ('simulation/inflow_lags/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('hydro_id', 'i32', False, 'id', 'Hydro plant identifier'),
        ('lag_index', 'i32', False, 'index', 'Lag index (1 = t−1, 2 = t−2, …)'),
        ('inflow_m3s', 'f64', False, 'm3/s', 'Inflow value for this lag (m³/s)'),
    ]),
    'generic_violations': ('simulation/violations/generic/', [
        ('stage_id', 'i32', False, 'index', 'Stage index (0-based)'),
        ('block_id', 'i32', True, 'index', 'Block index'),
        ('constraint_id', 'i32', False, 'id', 'Generic constraint identifier'),
        ('slack_value', 'f64', False, 'constraint units', 'Violation amount (constraint units)'),
        ('slack_cost', 'f64', False, '$', 'Penalty cost incurred'),
    ]),
    'convergence': ('training/convergence.parquet', [
        ('iteration', 'i32', False, 'index', 'Iteration number (1-based)'),
        ('lower_bound', 'f64', False, '$', 'Lower bound (expected cost-to-go from stage 0)'),
        ('upper_bound_mean', 'f64', True, '$', 'Upper bound mean (null if UB disabled)'),
        ('upper_bound_std', 'f64', True, '$', 'Upper bound standard deviation'),
        ('gap_percent', 'f64', True, '%', 'Optimality gap (null when not computable)'),
        ('cuts_added', 'i32', False, 'count', 'Cuts added this iteration'),
        ('cuts_removed', 'i32', False, 'count', 'Cuts removed by cut selection'),
        ('cuts_active', 'i64', False, 'count', 'Total active cuts across all stages'),
        ('time_forward_ms', 'i64', False, 'ms', 'Forward pass wall time (ms)'),
        ('time_backward_ms', 'i64', False, 'ms', 'Backward pass wall time (ms)'),
        ('time_total_ms', 'i64', False, 'ms', 'Total iteration wall time (ms)'),
        ('memory_peak_mb', 'i64', False, 'MB', 'Peak memory usage (MB)'),
        ('forward_passes', 'i32', False, 'count', 'Forward scenarios this iteration'),
        ('lp_solves', 'i64', False, 'count', 'Total LP solves this iteration'),
    ]),
    'iteration_timing': ('training/timing/iterations.parquet', [
        ('iteration', 'i32', False, 'index', 'Iteration number (1-based)'),
        ('forward_solve_ms', 'i64', False, 'ms', 'LP solve time in forward pass'),
        ('forward_sample_ms', 'i64', False, 'ms', 'Scenario sampling time'),
        ('backward_solve_ms', 'i64', False, 'ms', 'LP solve time in backward pass'),
        ('backward_cut_ms', 'i64', False, 'ms', 'Cut computation and storage time'),
        ('cut_selection_ms', 'i64', False, 'ms', 'Cut selection/pruning time'),
        ('mpi_allreduce_ms', 'i64', False, 'ms', 'MPI AllReduce communication time'),
        ('mpi_broadcast_ms', 'i64', False, 'ms', 'MPI Broadcast communication time'),
        ('io_write_ms', 'i64', False, 'ms', 'Output writing time'),
        ('overhead_ms', 'i64', False, 'ms', 'Unaccounted overhead'),
    ]),
    'rank_timing': ('training/timing/mpi_ranks.parquet', [
        ('iteration', 'i32', False, 'index', 'Iteration number (1-based)'),
        ('rank', 'i32', False, 'index', 'MPI rank (0-based)'),
        ('forward_time_ms', 'i64', False, 'ms', 'Forward pass time on this rank'),
        ('backward_time_ms', 'i64', False, 'ms', 'Backward pass time on this rank'),
        ('communication_time_ms', 'i64', False, 'ms', 'MPI communication time'),
        ('idle_time_ms', 'i64', False, 'ms', 'Time waiting for other ranks'),
        ('lp_solves', 'i64', False, 'count', 'LP solves on this rank'),
        ('scenarios_processed', 'i32', False, 'count', 'Scenarios processed on this rank'),
    ]),    # Not in the spec's column list: the per-scenario totals kept by the
    # ``summary`` detail level (SPEC §4), one row per scenario.
    'scenario_totals': ('simulation/scenario_totals.parquet', [
        ('scenario_id', 'i32', False, 'id', 'Scenario identifier'),
        ('total_cost', 'f64', False, '$', 'Total scenario cost (all stages)'),
    ] + [(f'{c}_cost', 'f64', False, '$', f'Scenario total of {c.replace("_", " ")} cost')
         for c in ('thermal', 'contract', 'deficit', 'excess', 'storage_violation', 'filling_target',
                   'hydro_violation', 'inflow_penalty', 'generic_violation', 'spillage', 'fpha_turbined',
                   'curtailment', 'exchange', 'pumping')]),
}

# Derived columns (SPEC §4): computed by the writer, never in the payload.
# ``operative_state_code`` is derived too: it follows from the entity's
# entry/exit stages in the system description.
_DERIVED: Final[dict[str, tuple[str, ...]]] = {
    "hydros": ("outflow_m3s", "generation_mwh", "operative_state_code"),
    "thermals": ("generation_mwh", "operative_state_code"),
    "non_controllables": ("generation_mwh", "curtailment_mwh", "operative_state_code"),
    "exchanges": ("net_flow_mw", "net_flow_mwh", "losses_mw", "losses_mwh", "operative_state_code"),
    "buses": ("load_mwh", "deficit_mwh", "excess_mwh"),
    "pumping_stations": ("pumped_volume_hm3", "energy_consumption_mwh", "operative_state_code"),
    "contracts": ("energy_mwh", "operative_state_code"),
    "batteries": ("operative_state_code",),
}

# The column naming the entity of each per-entity simulation table.
_ENTITY_COLUMN: Final[dict[str, str]] = {
    "hydros": "hydro_id",
    "thermals": "thermal_id",
    "exchanges": "line_id",
    "buses": "bus_id",
    "pumping_stations": "pumping_station_id",
    "contracts": "contract_id",
    "non_controllables": "non_controllable_id",
    "batteries": "battery_id",
    "inflow_lags": "hydro_id",
    "generic_violations": "constraint_id",
}


@dataclass(frozen=True)
class Column:
    """One column of a table: name, spec type code, nullability, unit, description."""

    name: str
    type_code: str
    nullable: bool
    unit: str
    description: str
    derived: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        """Arrow type of the column."""
        return _arrow_types()[self.type_code]

    @property
    def numpy_dtype(self) -> str:
        """NumPy dtype name of the column."""
        return NUMPY_DTYPES[self.type_code]

    @property
    def is_key(self) -> bool:
        """Id, index or code column (dictionary-encoded in Parquet)."""
        return self.type_code in ("i8", "i32") and (
            self.name.endswith(("_id", "_code")) or self.name in ("lag_index", "iteration", "rank")
        )

    def field(self) -> pa.Field:
        """Arrow field (name, type, nullability)."""
        import pyarrow as pa

        return pa.field(self.name, self.arrow_type, nullable=self.nullable)


@dataclass(frozen=True)
class TableSchema:
    """A table: name, output path, ordered columns, entity column."""

    name: str
    path: str
    columns: tuple[Column, ...]
    entity_column: str | None = None
    format: str = DEFAULT_FORMAT
    by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def arrow_schema(self) -> pa.Schema:
        """Arrow schema with exact names, order, types and nullability."""
        return _arrow_schema(self)

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    @property
    def payload_columns(self) -> tuple[Column, ...]:
        """Columns the result payload carries (all but the derived ones)."""
        return tuple(c for c in self.columns if not c.derived)

    @property
    def derived_columns(self) -> tuple[Column, ...]:
        """Columns the writer computes from the system."""
        return tuple(c for c in self.columns if c.derived)

    @property
    def key_columns(self) -> list[str]:
        """Columns dictionary-encoded in Parquet (ids, indices, codes)."""
        return [c.name for c in self.columns if c.is_key]

    @property
    def directory(self) -> str:
        """Directory relative to ``simulation/`` for simulation tables."""
        return self.path.removeprefix("simulation/").rstrip("/")


_SCHEMA_CACHE: dict[tuple[str, str], pa.Schema] = {}


def _arrow_schema(t: TableSchema) -> pa.Schema:
    s = _SCHEMA_CACHE.get((t.format, t.name))
    if s is None:
        import pyarrow as pa

        s = pa.schema([c.field() for c in t.columns])
        _SCHEMA_CACHE[(t.format, t.name)] = s
    return s


# Cobre's ``bounds.parquet`` is not in its ``variables.csv``: units and descriptions from the spec's.
_COBRE_BOUNDS_TEXT: Final = {c[0]: c[3:] for c in _SPEC["bounds"][1]} | {
    "hydro_id": ("id", "Hydro plant of a hydro unit group row (null for other entities)")}


def _build(fmt: str, spec: dict[str, tuple[str, list[tuple[str, str, bool, str, str]]]]) -> dict[str, TableSchema]:
    tables: dict[str, TableSchema] = {}
    for name, (path, cols) in spec.items():
        if fmt == DEFAULT_FORMAT:
            derived = set(_DERIVED.get(name, ()))
        else:  # every Cobre column the spec payload does not carry under its own name is the writer's
            derived = {c[0] for c in cols} - {c.name for c in _SPEC_PAYLOAD.get(name, ())}
        if name == "bounds" and fmt != DEFAULT_FORMAT:
            cols = [(n, t, nl, *_COBRE_BOUNDS_TEXT.get(n, (u, d))) for (n, t, nl, u, d) in cols]
        tables[name] = TableSchema(
            name=name,
            path=path,
            columns=tuple(Column(n, t, nl, u, d, n in derived) for (n, t, nl, u, d) in cols),
            entity_column=_ENTITY_COLUMN.get(name),
            format=fmt,
        )
    return tables


_SPEC_PAYLOAD: dict[str, tuple[Column, ...]] = {}
TABLES: Final[dict[str, TableSchema]] = _build(DEFAULT_FORMAT, _SPEC)
"""Every table of the spec by name (simulation, training, ``bounds``)."""
_SPEC_PAYLOAD.update({k: v.payload_columns for k, v in TABLES.items()})
_BY_FORMAT: Final[dict[str, dict[str, TableSchema]]] = {DEFAULT_FORMAT: TABLES} | {
    fmt: _build(fmt, spec) for fmt, spec in COBRE_TABLES.items()}


def check_format(fmt: object, *, read: bool = False) -> str:
    """``fmt`` when it is an output format (``read``: a known format), else :class:`SchemaError`."""
    known = READ_FORMATS if read else FORMATS
    if not isinstance(fmt, str) or fmt not in known:
        raise SchemaError("format", None, f"unknown format {fmt!r} (choose one of {', '.join(known)})")
    return fmt


def format_tables(fmt: str = DEFAULT_FORMAT) -> dict[str, TableSchema]:
    """Every table of format ``fmt`` by name (:data:`READ_FORMATS`)."""
    return _BY_FORMAT[check_format(fmt, read=True)]

SIMULATION_TABLES: Final = (
    "costs", "hydros", "thermals", "exchanges", "buses", "pumping_stations",
    "contracts", "non_controllables", "batteries", "inflow_lags", "generic_violations",
)
TRAINING_TABLES: Final = ("convergence", "iteration_timing", "rank_timing")
COST_COMPONENTS: Final = tuple(c.name for c in TABLES["scenario_totals"].columns[2:])
"""The 14 cost components whose sum is ``immediate_cost`` (SPEC §4)."""


def table(name: str, fmt: str = DEFAULT_FORMAT) -> TableSchema:
    """The :class:`TableSchema` called ``name`` in format ``fmt``; :class:`KeyError` if unknown.

    Parameters
    ----------
    name : str
        Table name (``"hydros"``, ``"convergence"``, ``"bounds"``, ...).
    fmt : str
        One of :data:`READ_FORMATS`; the spec by default.

    Raises
    ------
    KeyError
        The format has no table ``name`` (Cobre has no ``batteries``, the
        spec no ``hydro_bus_generation``).
    SchemaError
        An unknown format.
    """
    return format_tables(fmt)[name]


DETAIL_LEVELS: Final = ("full", "stage", "summary")
"""Simulation detail levels (SPEC §4); what each writes: :func:`tables_for_detail`."""
STAGE_DETAIL_TABLES: Final = ("costs", "hydros")
"""Tables written at detail ``stage``: ``costs`` (stage-level rows only), ``hydros`` (per stage)."""
SUMMARY_TABLES: Final = ("scenario_totals",)
"""Tables written at detail ``summary``: one ``scenario_totals.parquet`` (rank 0), no partitions."""


def tables_for_detail(detail: str, system_tables: Iterable[str], *,
                      partitioned: bool = False) -> tuple[str, ...]:
    """The simulation tables a run writes at ``detail``, in spec order (the one definition).

    Used by payload validation, the simulation writer, ``variables.csv`` and
    :func:`~cobre_mpi_io.results.write_results`.

    Parameters
    ----------
    detail : {"full", "stage", "summary"}
        ``full``: every table of ``system_tables``; ``stage``: ``costs`` and
        ``hydros`` (those in ``system_tables``); ``summary``:
        ``scenario_totals`` only.
    system_tables : iterable of str
        The partitioned tables the system has entities for
        (:attr:`System.simulation_tables <cobre_mpi_io.system.System.simulation_tables>`).
    partitioned : bool
        Only the per-scenario partitioned tables: what a scenario's payload
        holds and the writer writes per scenario (``()`` at ``summary``).

    Raises
    ------
    SchemaError
        An unknown detail level or simulation table.
    """
    have = set(system_tables)
    unknown = sorted(have - set(SIMULATION_TABLES))
    if unknown:
        raise SchemaError("simulation tables", None, f"unknown simulation tables {unknown}")
    if detail == "full":
        chosen: tuple[str, ...] = tuple(t for t in SIMULATION_TABLES if t in have)
    elif detail == "stage":
        chosen = tuple(t for t in STAGE_DETAIL_TABLES if t in have)
    elif detail == "summary":
        chosen = SUMMARY_TABLES
    else:
        raise SchemaError("simulation config", "detail",
                          f"unknown detail level {detail!r} (choose one of {', '.join(DETAIL_LEVELS)})")
    return tuple(t for t in chosen if t not in SUMMARY_TABLES) if partitioned else chosen
