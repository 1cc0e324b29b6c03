"""Loading a :class:`~cobre_mpi_io.system.System` from a Cobre case directory (SPEC §12).

Two input formats are read, Cobre 0.5.x and Cobre 0.18, told apart by
:func:`~cobre_mpi_io.system.case018.case_format` (what 0.18 adds is read by
:mod:`~cobre_mpi_io.system.case018`); ``config.json``, when the case has
one, is checked in the same pass (:mod:`~cobre_mpi_io.system.case_config`),
so a bad configuration value is refused when the case loads, before
anything is written.

Every problem of the case is collected, then reported at once in one
:class:`~cobre_mpi_io.errors.SchemaError` (one problem alone is raised as
itself), each naming the file (relative to the case directory), the entity
(``hydro 3``, or ``hydros[5]`` by position when the id itself is bad) and the
field as written in the file (``reservoir.max_storage_hm3``):

- the files: a required file missing, not UTF-8 (a UTF-8 byte-order mark is
  accepted), not JSON, or not of the expected shape (a top-level object with
  the entity list, each entry an object);
- the values: a number where a number belongs (a string, a boolean or an
  object is refused, never converted), an integer where an id or stage
  belongs, a string for names and types; NaN and ±Infinity are refused in
  every field (a file says ``null`` for no limit);
- the system: everything :mod:`~cobre_mpi_io.system.checks` checks (bounds,
  ordering, entry/exit stages, duplicate ids, references), on the values
  that did load.

Unknown fields are ignored. An entity whose id is unusable is left out, and
references to its kind are then not checked (the report names the cause,
not its consequences). A file that exists but cannot be read at all
(permissions) is an :class:`~cobre_mpi_io.errors.IoError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

from ..errors import SchemaError
from .case018 import PRODUCTION_FILE, apply_productivity, case_format, check_penalties, read_unit_groups
from .case_config import read_config
from .checks import SystemProblem, problems_error, system_problems
from .entities import Block, Bus, Contract, Hydro, Line, NonControllable, PumpingStation, Stage, Thermal
from .reader import CaseReader, convert, short, type_name

__all__ = ["case_format", "case_problems", "load_case"]

DEFAULT_DEFICIT_COST: Final = 1000.0
"""Deficit cost of a bus whose file and ``penalties.json`` give no deficit segments."""

_AR_FILE: Final = "scenarios/inflow_ar_coefficients.parquet"
_FILE_ORDER: Final = {f: i for i, f in enumerate((
    "config.json", "stages.json", "penalties.json", "system/buses.json", "system/lines.json", _AR_FILE,
    "system/hydros.json", PRODUCTION_FILE, "initial_conditions.json", "system/thermals.json",
    "system/pumping_stations.json", "system/energy_contracts.json", "system/non_controllable_sources.json"))}


def _inf(x: float | None) -> float:
    return math.inf if x is None else x


def _ar_orders(ld: CaseReader) -> dict[int, int]:
    """AR order per hydro id: the largest ``lag`` in the optional AR coefficients file."""
    path = ld.case / _AR_FILE
    if not path.exists():
        return {}
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, columns=["hydro_id", "lag"])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        ld.add(_AR_FILE, None, "hydro_id, lag", f"cannot read AR coefficients: {exc}")
        return {}
    ok = True
    for c in ("hydro_id", "lag"):
        col = t[c]
        if not pa.types.is_integer(col.type):
            ld.add(_AR_FILE, None, c, f"expected an integer column, got {col.type}")
            ok = False
        elif col.null_count:
            ld.add(_AR_FILE, None, c, f"{col.null_count} null value(s)")
            ok = False
    if not ok:
        return {}
    if t.num_rows and pc.min(t["lag"]).as_py() < 1:
        ld.add(_AR_FILE, None, "lag", f"lags must be >= 1, found {pc.min(t['lag']).as_py()}")
        return {}
    g = t.group_by("hydro_id").aggregate([("lag", "max")])
    return {int(h): int(m) for h, m in zip(g["hydro_id"].to_pylist(), g["lag_max"].to_pylist())}


def _deficit_default(ld: CaseReader) -> float:
    """The last deficit segment's cost in ``penalties.json`` (``bus.deficit_segments``), else the default."""
    doc = ld.read_json("penalties.json", required=False)
    if not isinstance(doc, dict) or not isinstance(doc.get("bus"), dict) or "deficit_segments" not in doc["bus"]:
        return DEFAULT_DEFICIT_COST
    cost = _segments_cost(ld, "penalties.json", "bus", doc["bus"])
    return DEFAULT_DEFICIT_COST if cost is None else cost


def _segments_cost(ld: CaseReader, rel: str, label: str, it: dict[str, Any]) -> float | None:
    """The cost of the last of ``it["deficit_segments"]`` (None when absent or bad; bad is a problem)."""
    segs = it.get("deficit_segments")
    if segs is None:
        return None
    if not isinstance(segs, list) or not segs:
        ld.add(rel, label, "deficit_segments", f"expected a non-empty list of segments, got {short(segs)}")
        return None
    last = segs[-1]
    if not isinstance(last, dict):
        ld.add(rel, label, f"deficit_segments[{len(segs) - 1}]", f"expected an object, got {type_name(last)}")
        return None
    field = f"deficit_segments[{len(segs) - 1}].cost"
    if last.get("cost") is None:
        ld.add(rel, label, field, "missing required field")
        return None
    ok, cost = convert(last["cost"], "float")
    if not ok:
        ld.add(rel, label, field, cost)
        return None
    return float(cost)


def case_problems(case: str | Path) -> tuple[dict[str, Any] | None, list[SystemProblem]]:
    """Read a case: the System fields when it has no problem, and every problem found.

    Parameters
    ----------
    case : path-like
        The Cobre case directory.

    Returns
    -------
    (dict or None, list of SystemProblem)
        The keyword arguments of :class:`~cobre_mpi_io.system.System` (None
        when there is a problem) and the problems.

    Raises
    ------
    IoError
        A file exists but cannot be read.
    """
    case = Path(case)
    if not case.is_dir():
        ld = CaseReader(case)
        ld.add(".", None, None, "case directory does not exist")
        return None, ld.problems
    ld = CaseReader(case, *case_format(case))

    if (case / "config.json").exists():
        doc = ld.read_json("config.json", required=False)
        if doc is not None:
            read_config(ld, doc, ld.fmt)

    rel = "stages.json"
    stages = []
    stage_seasons: dict[int, int | None] = {}
    stage_items = ld.items(rel, "stages", "stages")
    if not stage_items:
        ld.incomplete.add("stages")
    for i, st in stage_items:
        sid = ld.entity_id(rel, "stages", i, st)
        if sid is None:
            ld.incomplete.add("stages")
            continue
        if ld.v018 and "num_scenarios" in st:
            ld.removed_in_018(rel, f"stage {sid}", "num_scenarios", "spells it num_openings")
        branching = "num_openings" if ld.v018 else "num_scenarios"
        n_open = ld.get(rel, f"stage {sid}", st, branching, "int", required=False)
        if n_open is not None and n_open < 1:
            ld.add(rel, f"stage {sid}", branching, f"must be an integer >= 1, got {n_open}")
        stage_seasons[sid] = ld.get(rel, f"stage {sid}", st, "season_id", "int", required=False)
        blocks_raw = st.get("blocks")
        if not isinstance(blocks_raw, list) or not blocks_raw:
            ld.add(rel, f"stage {sid}", "blocks",
                   "missing required field" if blocks_raw is None else
                   f"expected a non-empty list of blocks, got {short(blocks_raw)}")
            ld.incomplete.add("stages")
            continue
        blocks = []
        for j, b in enumerate(blocks_raw):
            if not isinstance(b, dict):
                ld.add(rel, f"stage {sid} blocks[{j}]", None, f"expected an object, got {type_name(b)}")
                continue
            bid = ld.get(rel, f"stage {sid} blocks[{j}]", b, "id", "int")
            if bid is None:
                continue
            label = f"stage {sid} block {bid}"
            blocks.append(Block(bid, ld.get(rel, label, b, "name", "str", required=False, default=""),
                                ld.get(rel, label, b, "hours", default=1.0)))
        if len(blocks) != len(blocks_raw):
            ld.incomplete.add("stages")
        stages.append(Stage(sid, tuple(sorted(blocks, key=lambda b: b.id))))
    stages.sort(key=lambda s: s.id)

    check_penalties(ld)
    deficit_default = _deficit_default(ld)
    rel = "system/buses.json"
    buses = []
    for label, it, d in ld.entities(rel, "buses", "bus", "buses", bus=False):
        cost = _segments_cost(ld, rel, label, it)
        buses.append(Bus(**d, deficit_cost=deficit_default if cost is None else cost))

    rel = "system/lines.json"
    lines = []
    for label, it, d in ld.entities(rel, "lines", "line", "lines", bus=False):
        lines.append(Line(**d, source_bus_id=ld.get(rel, label, it, "source_bus_id", "int"),
                          target_bus_id=ld.get(rel, label, it, "target_bus_id", "int"),
                          direct_mw=_inf(ld.get(rel, label, it, "capacity.direct_mw")),
                          reverse_mw=_inf(ld.get(rel, label, it, "capacity.reverse_mw")),
                          losses_percent=ld.get(rel, label, it, "losses_percent", required=False, default=0.0)))

    ar = _ar_orders(ld)
    rel = "system/hydros.json"
    hydros_raw = []
    for label, it, d in ld.entities(rel, "hydros", "hydro", "hydros", bus=not ld.v018):
        extra: dict[str, Any] = {}
        if ld.v018:
            if "bus_id" in it:
                ld.removed_in_018(rel, label, "bus_id", "gives each unit group's bus_id in unit_groups")
            gen = it.get("generation")
            if isinstance(gen, dict) and "productivity_mw_per_m3s" in gen:
                ld.removed_in_018(rel, label, "generation.productivity_mw_per_m3s",
                                  f"gives productivity per (hydro, stage) in {PRODUCTION_FILE}")
            groups = read_unit_groups(ld, rel, label, it)
            if groups is None:
                ld.consequences.add((rel, label, "bus_id"))
            d["bus_id"] = min(groups, key=lambda g: g.id).bus_id if groups else None
            extra["unit_groups"] = groups or ()
        hydros_raw.append(dict(
            **extra,
            **d,
            ar_order=ar.get(d["id"], 0),
            min_storage_hm3=ld.get(rel, label, it, "reservoir.min_storage_hm3", default=0.0),
            max_storage_hm3=_inf(ld.get(rel, label, it, "reservoir.max_storage_hm3")),
            min_outflow_m3s=ld.get(rel, label, it, "outflow.min_outflow_m3s", required=False, default=0.0),
            max_outflow_m3s=_inf(ld.get(rel, label, it, "outflow.max_outflow_m3s", required=False)),
            min_turbined_m3s=ld.get(rel, label, it, "generation.min_turbined_m3s", default=0.0),
            max_turbined_m3s=_inf(ld.get(rel, label, it, "generation.max_turbined_m3s")),
            min_generation_mw=ld.get(rel, label, it, "generation.min_generation_mw", default=0.0),
            max_generation_mw=_inf(ld.get(rel, label, it, "generation.max_generation_mw")),
            productivity_mw_per_m3s=1.0 if ld.v018 else ld.get(
                rel, label, it, "generation.productivity_mw_per_m3s", required=False, default=1.0),
        ))
    hydro_ids = {h["id"] for h in hydros_raw}
    if ld.v018:
        apply_productivity(ld, hydros_raw, stage_seasons, len(stages), hydro_ids)
    if "hydros" not in ld.incomplete:
        unknown = sorted(set(ar) - hydro_ids)
        if unknown:
            ld.add(_AR_FILE, None, "hydro_id", f"AR coefficients reference unknown hydros {unknown}")

    rel = "initial_conditions.json"
    initial: dict[int, float] = {}
    for i, s in ld.items(rel, "storage", rel, required=False, list_required=False):
        hid = ld.get(rel, f"storage[{i}]", s, "hydro_id", "int")
        value = ld.get(rel, f"storage[{i}]", s, "value_hm3")
        if hid is None or value is None:
            continue
        if hid in initial:
            ld.add(rel, f"storage[{i}]", "hydro_id", f"hydro {hid} has a second initial storage")
        elif hid not in hydro_ids and "hydros" not in ld.incomplete:
            ld.add(rel, f"storage[{i}]", "hydro_id", f"references unknown hydro {hid}")
        initial.setdefault(hid, value)
    hydros = [Hydro(**h, initial_storage_hm3=initial.get(h["id"])) for h in hydros_raw]

    rel = "system/thermals.json"
    thermals = []
    for label, it, d in ld.entities(rel, "thermals", "thermal", "thermals"):
        thermals.append(Thermal(**d, min_mw=ld.get(rel, label, it, "generation.min_mw", default=0.0),
                                max_mw=_inf(ld.get(rel, label, it, "generation.max_mw")),
                                cost_per_mwh=ld.get(rel, label, it, "cost_per_mwh", required=False, default=0.0)))

    rel = "system/pumping_stations.json"
    pumping = []
    for label, it, d in ld.entities(rel, "pumping_stations", "pumping station", "pumping_stations",
                                    required=False):
        pumping.append(PumpingStation(
            **d, source_hydro_id=ld.get(rel, label, it, "source_hydro_id", "int"),
            destination_hydro_id=ld.get(rel, label, it, "destination_hydro_id", "int"),
            min_m3s=ld.get(rel, label, it, "flow.min_m3s", required=False, default=0.0),
            max_m3s=_inf(ld.get(rel, label, it, "flow.max_m3s", required=False))))

    rel = "system/energy_contracts.json"
    contracts = []
    for label, it, d in ld.entities(rel, "contracts", "contract", "contracts", required=False):
        contracts.append(Contract(
            **d, type=ld.get(rel, label, it, "type", "str", default="import"),
            price_per_mwh=ld.get(rel, label, it, "price_per_mwh", default=0.0),
            min_mw=ld.get(rel, label, it, "limits.min_mw", required=False, default=0.0),
            max_mw=_inf(ld.get(rel, label, it, "limits.max_mw", required=False))))

    rel = "system/non_controllable_sources.json"
    ncs = []
    for label, it, d in ld.entities(rel, "non_controllable_sources", "non-controllable source", "non_controllables",
                                    required=False):
        ncs.append(NonControllable(**d, max_generation_mw=_inf(ld.get(rel, label, it, "max_generation_mw"))))

    fields: dict[str, Any] = {
        "stages": tuple(stages), "buses": tuple(buses), "hydros": tuple(hydros), "thermals": tuple(thermals),
        "lines": tuple(lines), "pumping_stations": tuple(pumping), "contracts": tuple(contracts),
        "non_controllables": tuple(ncs), "name": case.name, "source": str(case),
    }
    # a field the files already got wrong is not reported again through the value that replaced it
    seen = {(p.file, p.entity, p.field) for p in ld.problems} | ld.consequences
    problems = list(dict.fromkeys(ld.problems + [
        p for p in system_problems(fields, case=True, incomplete=ld.incomplete)
        if (p.file, p.entity, p.field) not in seen]))
    problems.sort(key=lambda p: _FILE_ORDER.get(p.file, len(_FILE_ORDER)))  # stable: by file, as found in it
    return (None if problems else fields), problems


def load_case(case: Path) -> dict[str, Any]:
    """The :class:`~cobre_mpi_io.system.System` fields of ``case`` (see :meth:`System.from_case`).

    Raises
    ------
    SchemaError
        Listing every problem of the case (:func:`case_problems`).
    IoError
        A file exists but cannot be read.
    """
    fields, problems = case_problems(case)
    if fields is None:
        if problems == [SystemProblem(".", None, None, "case directory does not exist")]:
            raise SchemaError(str(case), None, "case directory does not exist")
        raise problems_error(problems, str(case), case=True)
    return fields
