"""Self-describing dictionaries of a run (SPEC §8), in ``training/dictionaries/``.

- ``codes.json``: every integer code used in the tables;
- ``bounds.parquet``: the finite, non-default bounds of the system;
- ``state_dictionary.json``: the ordered state variables (also copied to
  ``policy/state_dictionary.json``);
- ``variables.csv``: one row per column of every table the run writes,
  generated from :mod:`cobre_mpi_io.schemas`;
- ``entities.csv``: one row per entity of the system.

Format ``"cobre-0.18"`` (``fmt=``) writes what Cobre 0.18 writes instead:
``codes.json`` with Cobre's codes and meanings (:data:`~cobre_mpi_io.formats.CODE_MEANINGS`),
``variables.csv`` with Cobre's tables and type codes, ``bounds.parquet`` with
its ``hydro_id`` column, and no ``state_dictionary.json`` (Cobre 0.18 has none,
and refuses one in its policy directory).  The spec's ``codes.json`` says
that its meanings are the spec's, not the Cobre solver's.

Bounds rows (``bounds.parquet``), by entity kind::

    hydro            storage_min/max, turbined_min/max, outflow_min/max, generation_min/max
    thermal          generation_min/max
    line             flow_max = direct capacity, flow_min = -reverse capacity
    pumping_station  flow_min/max (m3/s)
    contract         generation_min/max (contracted MW limits)
    non_controllable generation_max

A bound is written when it is finite and differs from its default (0 for
minima, +inf for maxima, -inf for ``flow_min`` of a line), once per stage in
which the entity exists (operative state not ``non_existing`` nor
``decommissioned``), with ``block_id`` null (all blocks).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from ..atomic import ensure_dir
from ..errors import SchemaError
from ..formats import CODE_MEANINGS, to_format
from ..hashing import sha256_json
from ..identity import RunIdentity
from ..journal import record_write, write_bytes_recorded, write_json_recorded
from ..layout import DICTIONARY_FILES, dictionary_files
from ..manifest import MANIFEST_VERSION, utc_now
from ..parquet import FileRecord, ParquetConfig, write_parquet
from ..schemas import (
    DEFAULT_FORMAT,
    NUMPY_DTYPES,
    SIMULATION_TABLES,
    SUMMARY_TABLES,
    TRAINING_TABLES,
    check_format,
    format_tables,
    table,
    tables_for_detail,
)
from ..system.entities import ENTITY_KINDS, OPERATIVE_STATE
from ..system.model import System

__all__ = [
    "BOUND_TYPE",
    "CODES",
    "DICTIONARY_FILES",
    "DICTIONARY_VERSION",
    "bounds_table",
    "codes_document",
    "dictionary_files",
    "entities_rows",
    "state_dictionary",
    "variables_rows",
    "write_dictionaries",
    "written_tables",
]

DICTIONARY_VERSION: Final = MANIFEST_VERSION

BOUND_TYPE: Final = {
    "storage_min": 0, "storage_max": 1, "turbined_min": 2, "turbined_max": 3, "outflow_min": 4,
    "outflow_max": 5, "generation_min": 6, "generation_max": 7, "flow_min": 8, "flow_max": 9,
}

_STORAGE_BINDING: Final = {"none": 0, "min": 1, "max": 2, "target": 3}
_CONTRACT_TYPE: Final = {"import": 0, "export": 1}
_ENTITY_TYPE: Final = {kind: code for kind, (_a, _t, code) in ENTITY_KINDS.items() if code is not None}

CODES: Final[dict[str, dict[str, str]]] = {
    name: {str(code): label for label, code in sorted(m.items(), key=lambda kv: kv[1])}
    for name, m in (("operative_state", OPERATIVE_STATE), ("storage_binding", _STORAGE_BINDING),
                    ("contract_type", _CONTRACT_TYPE), ("entity_type", _ENTITY_TYPE),
                    ("bound_type", BOUND_TYPE))
}
"""The code maps of ``codes.json`` (keys are strings of the integers)."""

# kind -> [(attribute, bound type, default, sign)]
_BOUND_FIELDS: Final[dict[str, list[tuple[str, str, float, float]]]] = {
    "hydro": [
        ("min_storage_hm3", "storage_min", 0.0, 1.0), ("max_storage_hm3", "storage_max", math.inf, 1.0),
        ("min_turbined_m3s", "turbined_min", 0.0, 1.0), ("max_turbined_m3s", "turbined_max", math.inf, 1.0),
        ("min_outflow_m3s", "outflow_min", 0.0, 1.0), ("max_outflow_m3s", "outflow_max", math.inf, 1.0),
        ("min_generation_mw", "generation_min", 0.0, 1.0),
        ("max_generation_mw", "generation_max", math.inf, 1.0),
    ],
    "thermal": [("min_mw", "generation_min", 0.0, 1.0), ("max_mw", "generation_max", math.inf, 1.0)],
    "line": [("reverse_mw", "flow_min", -math.inf, -1.0), ("direct_mw", "flow_max", math.inf, 1.0)],
    "pumping_station": [("min_m3s", "flow_min", 0.0, 1.0), ("max_m3s", "flow_max", math.inf, 1.0)],
    "contract": [("min_mw", "generation_min", 0.0, 1.0), ("max_mw", "generation_max", math.inf, 1.0)],
    "non_controllable": [("max_generation_mw", "generation_max", math.inf, 1.0)],
}


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    if config is None:
        return default
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


SPEC_CODES_NOTE: Final = ("These are the cobre_mpi_io spec's codes (SPEC §8), not the Cobre solver's: Cobre's "
                           "operative_state and storage_binding give the same integers other meanings "
                           "(write format cobre-0.18 for Cobre's codes).")


def codes_document(generated_at: str | None = None, fmt: str = DEFAULT_FORMAT) -> dict[str, Any]:
    """The ``codes.json`` document of format ``fmt``.

    Parameters
    ----------
    generated_at : str, optional
        Timestamp (default now).
    fmt : {"spec", "cobre-0.18"}
        ``spec``: ``version``, ``generated_at``, ``format``, ``note`` (these
        are not Cobre's meanings) and the five spec maps. ``cobre-0.18``:
        exactly the keys Cobre 0.18 writes, Cobre's codes and meanings,
        ``version`` ``"1.0"``.

    Returns
    -------
    dict
    """
    check_format(fmt)
    maps = {name: {str(code): label for label, code in sorted(m.items(), key=lambda kv: kv[1])}
            for name, m in CODE_MEANINGS[fmt].items()}
    if fmt != DEFAULT_FORMAT:
        return dict(sorted({"version": "1.0", "generated_at": generated_at or utc_now(), **maps}.items()))
    doc: dict[str, Any] = {"version": DICTIONARY_VERSION, "generated_at": generated_at or utc_now(),
                           "format": fmt, "note": SPEC_CODES_NOTE}
    doc.update(maps)
    return doc


def state_dictionary(system: System) -> dict[str, Any]:
    """The state dictionary of ``system`` (SPEC §8).

    Order: the storage of every hydro by id, then inflow lag 1 of every hydro
    with AR order >= 1 (by id), then lag 2, and so on.

    Returns
    -------
    dict
        ``version``, ``state_dimension``, ``state_variables`` (list of
        ``{index, type, entity_type, entity_id, name}``) and ``checksum``:
        ``"sha256:<hex>"`` of the canonical JSON (sorted keys, no spaces) of
        the ``state_variables`` list. The policy checkpoint embeds the same dict.
    """
    hydros = sorted(system.hydros, key=lambda h: h.id)
    variables: list[dict[str, Any]] = []

    def add(kind: str, h: Any) -> None:
        variables.append({"index": len(variables), "type": kind, "entity_type": "hydro",
                          "entity_id": h.id, "name": f"{h.name}.{kind}"})

    for h in hydros:
        add("storage", h)
    max_order = max((h.ar_order for h in hydros), default=0)
    for lag in range(1, max_order + 1):
        for h in hydros:
            if h.ar_order >= lag:
                add(f"inflow_lag_{lag}", h)
    assert len(variables) == system.state_dimension
    return {"version": DICTIONARY_VERSION, "state_dimension": len(variables), "state_variables": variables,
            "checksum": sha256_json(variables)}


def bounds_table(system: System, fmt: str = DEFAULT_FORMAT) -> pa.Table:
    """``bounds.parquet`` rows: the finite, non-default bounds (see module docs), sorted.

    In format ``cobre-0.18`` the table has Cobre's columns (``hydro_id``, null).

    Returns
    -------
    pyarrow.Table
        In the ``bounds`` schema, sorted by entity type, entity, stage, bound type.
    """
    schema = table("bounds")
    parts: dict[str, list[np.ndarray]] = {c: [] for c in schema.names}
    for kind, specs in _BOUND_FIELDS.items():
        attr, sim_table, code = ENTITY_KINDS[kind]
        ents = sorted(getattr(system, attr), key=lambda e: e.id)
        if not ents or code is None or sim_table is None:
            continue
        ids = np.array([e.id for e in ents], dtype=np.int32)
        states = system.operative_states(sim_table)  # (T, n) in id order
        exists = (states != OPERATIVE_STATE["non_existing"]) & (states != OPERATIVE_STATE["decommissioned"])
        for field_name, btype, default, sign in specs:
            vals = sign * np.array([float(getattr(e, field_name)) for e in ents], dtype=np.float64)
            keep = np.isfinite(vals) & (vals != default)
            mask = exists & keep[None, :]  # (T, n)
            st, ent = np.nonzero(mask)
            if st.size == 0:
                continue
            parts["entity_type_code"].append(np.full(st.size, code, np.int8))
            parts["entity_id"].append(ids[ent])
            parts["stage_id"].append(st.astype(np.int32))
            parts["bound_type_code"].append(np.full(st.size, BOUND_TYPE[btype], np.int8))
            parts["bound_value"].append(vals[ent])
    arrays = []
    n = sum(a.size for a in parts["entity_id"])
    cols: dict[str, np.ndarray] = {}
    for c in schema.columns:
        if c.name == "block_id":
            continue
        cols[c.name] = (np.concatenate(parts[c.name]) if parts[c.name]
                        else np.empty(0, dtype=c.numpy_dtype)).astype(c.numpy_dtype, copy=False)
    order = np.lexsort((cols["bound_type_code"], cols["stage_id"], cols["entity_id"], cols["entity_type_code"]))
    for c in schema.columns:
        if c.name == "block_id":
            arrays.append(pa.nulls(n, type=c.arrow_type))
        else:
            arrays.append(pa.array(cols[c.name][order], type=c.arrow_type))
    return to_format(pa.Table.from_arrays(arrays, schema=schema.arrow_schema), "bounds", fmt)


def written_tables(system: System, config: Any = None, *,
                   simulation_tables: Sequence[str] | None = None) -> tuple[str, ...]:
    """Names of the tables a run writes: training tables, ``bounds``, simulation tables.

    Parameters
    ----------
    system : System
    config : RunConfig, mapping or object, optional
        ``num_scenarios`` (0 = no simulation) and ``detail`` are read when
        ``simulation_tables`` is not given.
    simulation_tables : sequence of str, optional
        The simulation tables actually written (e.g. ``SimulationManifest.tables``).
        Default: from ``config``: none without simulation;
        ``scenario_totals`` at detail ``summary``; ``costs`` and ``hydros``
        at detail ``stage``; every table of the system at ``full``.
    """
    if simulation_tables is None:
        num = int(_cfg(config, "num_scenarios", 0) or 0)
        detail = str(_cfg(config, "detail", "full") or "full")
        simulation_tables = tables_for_detail(detail, system.simulation_tables) if num > 0 else ()
    known = (*SIMULATION_TABLES, *SUMMARY_TABLES)
    unknown = [t for t in simulation_tables if t not in known]
    if unknown:
        raise SchemaError("variables.csv", None, f"unknown simulation tables {unknown}")
    sim = tuple(t for t in known if t in set(simulation_tables))
    return TRAINING_TABLES + ("bounds",) + sim


_COBRE_TYPE_NAMES: Final = {"str": "string"}


def variables_rows(tables: Iterable[str], fmt: str = DEFAULT_FORMAT) -> list[dict[str, str]]:
    """``variables.csv`` rows for ``tables``, generated from the schema definitions of format ``fmt``.

    In format ``cobre-0.18`` the rows are Cobre's: ``file`` is the table
    name, ``type`` Cobre's type code (``i32``, ``f64``, ...), and tables
    Cobre does not write (``rank_timing``, ``bounds``) are left out.

    Returns
    -------
    list of dict
        Keys ``file, column, type, unit, description, nullable``; ``file`` is
        the table's path in the output tree, ``type`` the spec type name (``int8``, ``int32``, ``int64``, ``float64``, ``bool``),
        ``nullable`` ``"true"``/``"false"``.
    """
    rows: list[dict[str, str]] = []
    if fmt != DEFAULT_FORMAT:
        have = format_tables(fmt)
        for name in tables:
            if name == "bounds" or name not in have:
                continue
            rows.extend({"file": name, "column": c.name, "type": _COBRE_TYPE_NAMES.get(c.type_code, c.type_code),
                         "unit": c.unit, "description": c.description, "nullable": "true" if c.nullable else "false"}
                        for c in have[name].columns)
        return rows
    for name in tables:
        t = table(name)
        for c in t.columns:
            rows.append({"file": t.path, "column": c.name, "type": NUMPY_DTYPES[c.type_code], "unit": c.unit,
                         "description": c.description, "nullable": "true" if c.nullable else "false"})
    return rows


def entities_rows(system: System) -> list[dict[str, Any]]:
    """``entities.csv`` rows: one per entity with an ``entity_type`` code, by code then id.

    ``bus_id`` is the entity's bus (empty for buses and lines); ``system_id``
    is the bus/region the entity belongs to (its own id for a bus, its bus
    for plants, contracts and sources, the source bus for a line). Generic
    constraints have no entity type code and are not listed.
    """
    rows: list[dict[str, Any]] = []
    for kind, (attr, _t, code) in sorted(ENTITY_KINDS.items(), key=lambda kv: (kv[1][2] is None, kv[1][2])):
        if code is None:
            continue
        for e in sorted(getattr(system, attr), key=lambda x: x.id):
            if kind == "bus":
                bus, region = None, e.id
            elif kind == "line":
                bus, region = None, e.source_bus_id
            else:
                bus, region = e.bus_id, e.bus_id
            rows.append({"entity_type_code": code, "entity_id": e.id, "name": e.name,
                         "bus_id": "" if bus is None else bus, "system_id": "" if region is None else region})
    return rows


def _csv_bytes(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_dictionaries(path: str | os.PathLike[str], system: System, config: Any = None, *,
                       simulation_tables: Sequence[str] | None = None,
                       policy_dir: str | os.PathLike[str] | None | bool = True,
                       parquet_config: ParquetConfig | None = None,
                       generated_at: str | None = None,
                       identity: RunIdentity | None = None,
                       fmt: str = DEFAULT_FORMAT) -> dict[str, FileRecord | None]:
    """Write the five dictionary files of SPEC §8 into ``path``.

    Not collective: the caller runs it on one rank (rank 0 in
    :func:`~cobre_mpi_io.results.write_results`).

    Parameters
    ----------
    path : path-like
        The dictionaries directory (``OUT/training/dictionaries``), created if missing.
    system : System
    config : RunConfig, mapping or object, optional
        Read for ``num_scenarios`` and ``detail`` (see :func:`written_tables`).
    simulation_tables : sequence of str, optional
        Simulation tables actually written; overrides ``config``.
    policy_dir : path-like, True or None
        Where to copy ``state_dictionary.json``. ``True`` (default): ``OUT/policy``
        when ``path`` is ``OUT/training/dictionaries``, otherwise no copy;
        ``None``/``False``: no copy. When ``policy/state_dictionary.json`` is
        a symlink, it belongs to the policy checkpoint (which embeds the same
        :func:`state_dictionary`) and is left alone.
    parquet_config : ParquetConfig, optional
    generated_at : str, optional
        ``codes.json`` timestamp (default now).
    identity : RunIdentity, optional
        The run's identity, recorded in ``bounds.parquet``'s footer like every Parquet file of a run.
    fmt : {"spec", "cobre-0.18"}
        Output format (see the module documentation): ``cobre-0.18`` writes
        no ``state_dictionary.json`` (neither here nor in ``policy_dir``).

    Returns
    -------
    dict
        File name -> :class:`FileRecord` for ``bounds.parquet``, ``None`` for the JSON/CSV files.

    Raises
    ------
    SchemaError, SerializationError, IoError
    """
    check_format(fmt)
    d = ensure_dir(Path(path))
    out: dict[str, FileRecord | None] = {}
    write_json_recorded(d / "codes.json", codes_document(generated_at, fmt), entity="codes.json")
    out["codes.json"] = None
    out["bounds.parquet"] = bounds = write_parquet(d / "bounds.parquet", bounds_table(system, fmt), table("bounds", fmt),
                                          parquet_config or ParquetConfig(), root=d,
                                          metadata=identity.footer_metadata() if identity is not None else None)
    record_write(d / "bounds.parquet", bounds.bytes, bounds.xxhash64, bounds.rows)
    sd = state_dictionary(system)
    if fmt != DEFAULT_FORMAT:
        policy_dir = None
    else:
        write_json_recorded(d / "state_dictionary.json", sd, entity="state_dictionary.json")
        out["state_dictionary.json"] = None
    if policy_dir is True:
        policy_dir = d.parent.parent / "policy" if (d.name == "dictionaries" and d.parent.name == "training") \
            else None
    if policy_dir:
        target = Path(policy_dir) / "state_dictionary.json"
        # A symlink there is the policy checkpoint's (``policy/state_dictionary.json -> latest/...``,
        # holding this same dict): replacing it would break the checkpoint's fixed links.
        if not target.is_symlink():
            write_json_recorded(target, sd, entity="policy/state_dictionary.json")
    tables = written_tables(system, config, simulation_tables=simulation_tables)
    write_bytes_recorded(d / "variables.csv", _csv_bytes(
        ("file", "column", "type", "unit", "description", "nullable"), variables_rows(tables, fmt)))
    out["variables.csv"] = None
    write_bytes_recorded(d / "entities.csv", _csv_bytes(
        ("entity_type_code", "entity_id", "name", "bus_id", "system_id"), entities_rows(system)))
    out["entities.csv"] = None
    return out
