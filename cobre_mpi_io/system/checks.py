"""The consistency checks of a system, each problem naming file, entity and field.

Used by :class:`~cobre_mpi_io.system.System` (built in code, synthetic or
loaded from a case) and by case loading, which adds the problems of the
files themselves (encoding, JSON, types) to the same list: every problem of
a system is reported at once, in one
:class:`~cobre_mpi_io.errors.SchemaError` (:func:`problems_error`).

Values (SPEC §12): every number is finite except a maximum, which may be
``+inf`` (no limit; a case file says ``null``); NaN is never a value.
Minima are ``>= 0`` (a line's ``reverse_mw`` is a capacity, also ``>= 0``)
and never above their maximum; initial storage lies within the storage
bounds; an entity's ``entry_stage_id`` is at most its ``exit_stage_id``,
both existing stages; ids are unique per kind and int32; every reference
(bus, hydro) resolves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..errors import SchemaError
from .entities import ENTITY_KINDS

__all__ = ["CASE_FILES", "MAX_LISTED", "SystemProblem", "problems_error", "system_problems"]

CASE_FILES: Final = {
    "stages": "stages.json", "buses": "system/buses.json", "hydros": "system/hydros.json",
    "thermals": "system/thermals.json", "lines": "system/lines.json",
    "pumping_stations": "system/pumping_stations.json", "contracts": "system/energy_contracts.json",
    "non_controllables": "system/non_controllable_sources.json",
}
"""System attribute -> the case file it is loaded from (SPEC §12)."""

# (System attribute, field) -> (case file, field as dotted in it), where they differ
_CASE_FIELDS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    **{("hydros", f): ("system/hydros.json", f"{group}.{f}") for group, names in (
        ("reservoir", ("min_storage_hm3", "max_storage_hm3")),
        ("outflow", ("min_outflow_m3s", "max_outflow_m3s")),
        ("generation", ("min_turbined_m3s", "max_turbined_m3s", "min_generation_mw", "max_generation_mw",
                        "productivity_mw_per_m3s"))) for f in names},
    ("hydros", "initial_storage_hm3"): ("initial_conditions.json", "storage.value_hm3"),
    ("hydros", "ar_order"): ("scenarios/inflow_ar_coefficients.parquet", "lag"),
    ("thermals", "min_mw"): ("system/thermals.json", "generation.min_mw"),
    ("thermals", "max_mw"): ("system/thermals.json", "generation.max_mw"),
    ("lines", "direct_mw"): ("system/lines.json", "capacity.direct_mw"),
    ("lines", "reverse_mw"): ("system/lines.json", "capacity.reverse_mw"),
    ("pumping_stations", "min_m3s"): ("system/pumping_stations.json", "flow.min_m3s"),
    ("pumping_stations", "max_m3s"): ("system/pumping_stations.json", "flow.max_m3s"),
    ("contracts", "min_mw"): ("system/energy_contracts.json", "limits.min_mw"),
    ("contracts", "max_mw"): ("system/energy_contracts.json", "limits.max_mw"),
    ("buses", "deficit_cost"): ("system/buses.json", "deficit_segments.cost"),
}
_KIND_OF: Final = {attr: kind for kind, (attr, _t, _c) in ENTITY_KINDS.items()}

MAX_LISTED: Final = 50
"""Problems spelled out in one error message (the rest are counted)."""

_INT32_MAX: Final = 2**31 - 1

# kind -> [(min field, max field)] bounds pairs: min finite >= 0, max >= min (may be +inf)
_BOUNDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "hydro": (("min_storage_hm3", "max_storage_hm3"), ("min_outflow_m3s", "max_outflow_m3s"),
              ("min_turbined_m3s", "max_turbined_m3s"), ("min_generation_mw", "max_generation_mw")),
    "thermal": (("min_mw", "max_mw"),),
    "pumping_station": (("min_m3s", "max_m3s"),),
    "contract": (("min_mw", "max_mw"),),
}
# kind -> fields that are limits on their own (>= 0, may be +inf)
_LIMITS: Final[dict[str, tuple[str, ...]]] = {
    "line": ("direct_mw", "reverse_mw"),
    "non_controllable": ("max_generation_mw",),
    "battery": ("capacity_mwh",),
}
# kind -> fields that are finite numbers >= 0
_NON_NEGATIVE: Final[dict[str, tuple[str, ...]]] = {
    "bus": ("deficit_cost",),
    "hydro": ("productivity_mw_per_m3s",),
    "pumping_station": ("power_per_m3s",),
}
# kind -> fields that are finite numbers of any sign (costs, prices)
_FINITE: Final[dict[str, tuple[str, ...]]] = {
    "thermal": ("cost_per_mwh",),
    "contract": ("price_per_mwh",),
}


@dataclass(frozen=True)
class SystemProblem:
    """One problem of a system or case.

    Attributes
    ----------
    file : str
        The case file, relative to the case directory (``system/hydros.json``),
        or the entity list of a system built in code (``hydros``).
    entity : str or None
        ``hydro 3`` (by id), ``hydros[5]`` (by position, when the id itself
        is bad), ``stage 2 block 0``, ...
    field : str or None
        The field, dotted as in the file (``reservoir.max_storage_hm3``).
    message : str
        What is wrong.
    """

    file: str
    entity: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        return (self.file + (f", {self.entity}" if self.entity else "")
                + (f", field {self.field!r}" if self.field else "") + f": {self.message}")


def problems_error(problems: list[SystemProblem], source: str, *, case: bool) -> SchemaError:
    """One :class:`SchemaError` listing every problem.

    Parameters
    ----------
    problems : list of SystemProblem
        At least one.
    source : str
        The case directory, or ``code``/``synthetic:small`` for a system not loaded from a case.
    case : bool
        Whether ``source`` is a case directory (problem files are then paths in it).
    """
    def where(file: str) -> str:
        return f"{source}/{file}" if case else f"{source}: {file}"

    if len(problems) == 1:
        p = problems[0]
        return SchemaError(where(p.file), p.field, (f"{p.entity}: " if p.entity else "") + p.message)
    lines = [f"  - {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  - ... and {len(problems) - MAX_LISTED} more")
    files = sorted({p.file for p in problems})
    file = where(files[0]) if len(files) == 1 else source
    what = "case" if case else "system"
    err = SchemaError(file, None, f"{len(problems)} problems in the {what}:\n" + "\n".join(lines))
    return err


def _num(v: Any) -> float | None:
    """``v`` as a float when it is a real number (not bool), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def system_problems(fields: Mapping[str, Any], *, case: bool,
                    incomplete: Collection[str] = ()) -> list[SystemProblem]:
    """Every consistency problem of a system's fields (see the module documentation).

    Parameters
    ----------
    fields : mapping
        The :class:`System` fields by name (``stages``, ``buses``, ``hydros``, ...).
    case : bool
        Name problems by case file and field as written in it
        (``system/hydros.json``, ``reservoir.max_storage_hm3``) rather than
        by System attribute (``hydros``, ``max_storage_hm3``).
    incomplete : collection of str
        Attributes whose list is known to be incomplete (its file had
        problems): references to them and stage existence are not checked,
        so one bad file does not drown the report in consequences.

    Returns
    -------
    list of SystemProblem
        In file order, then entity order.
    """
    out: list[SystemProblem] = []

    def add(attr: str, entity: str | None, field: str | None, message: str) -> None:
        file = attr
        if case:
            file, field = _CASE_FIELDS.get((attr, field or ""), (CASE_FILES.get(attr, f"{attr}.json"), field))
        out.append(SystemProblem(file, entity, field, message))

    stages = tuple(fields.get("stages", ()))
    check_stages = "stages" not in incomplete  # else ordering problems are consequences of bad entries
    if not stages and check_stages:
        add("stages", None, "stages", "the system has no stages")
    if check_stages:
        _id_sequence_problems([st.id for st in stages], "stage", "id", lambda e, f, m: add("stages", e, f, m))
    for st in stages:
        if not st.blocks and check_stages:
            add("stages", f"stage {st.id}", "blocks", "the stage has no blocks")
        if check_stages:
            _id_sequence_problems([b.id for b in st.blocks], f"stage {st.id} block", "blocks.id",
                                  lambda e, f, m: add("stages", e, f, m))
        total = 0.0
        for b in st.blocks:
            h = _num(b.hours)
            if h is None or not (h > 0 and math.isfinite(h)):
                add("stages", f"stage {st.id} block {b.id}", "blocks.hours",
                    f"hours must be a positive finite number, got {b.hours!r}")
            else:
                total += h
        if not math.isfinite(total):
            add("stages", f"stage {st.id}", "blocks.hours", "the stage's total hours overflow float64")
    n_stages = len(stages)

    ids: dict[str, set[int]] = {}
    for kind, (attr, _table, _code) in ENTITY_KINDS.items():
        seen: set[int] = set()
        reported: set[int] = set()
        for e in fields.get(attr, ()):
            label = f"{kind.replace('_', ' ')} {e.id}"
            if isinstance(e.id, bool) or not isinstance(e.id, int) or not 0 <= e.id <= _INT32_MAX:
                add(attr, label, "id", f"id must be an integer in 0..{_INT32_MAX}")
                continue
            if e.id in seen:
                if e.id not in reported:
                    add(attr, label, "id", f"duplicate {kind.replace('_', ' ')} id {e.id}")
                    reported.add(e.id)
                continue
            seen.add(e.id)
            _entity_problems(kind, attr, label, e, n_stages if check_stages else None, add)
        ids[attr] = seen

    def ref(attr: str, label: str, field: str, target: str, value: Any, noun: str) -> None:
        if target in incomplete:
            return
        if value is None or value not in ids[target]:
            add(attr, label, field, f"references unknown {noun} {value}")

    for attr in ("hydros", "thermals", "pumping_stations", "contracts", "non_controllables", "batteries"):
        kind = _KIND_OF[attr]
        for e in fields.get(attr, ()):
            ref(attr, f"{kind.replace('_', ' ')} {e.id}", "bus_id", "buses", e.bus_id, "bus")
    for h in fields.get("hydros", ()):
        for k, g in enumerate(getattr(h, "unit_groups", ())):
            ref("hydros", f"hydro {h.id}", f"unit_groups[{k}].bus_id", "buses", g.bus_id, "bus")
    for ln in fields.get("lines", ()):
        for a in ("source_bus_id", "target_bus_id"):
            ref("lines", f"line {ln.id}", a, "buses", getattr(ln, a), "bus")
    for ps in fields.get("pumping_stations", ()):
        for a in ("source_hydro_id", "destination_hydro_id"):
            ref("pumping_stations", f"pumping station {ps.id}", a, "hydros", getattr(ps, a), "hydro")
    return out


def _id_sequence_problems(ids: list[Any], what: str, field: str,
                          add: Callable[[str | None, str | None, str], None]) -> None:
    """Problems of ids that must be exactly ``0..n-1`` in order (stages, blocks of a stage)."""
    if ids == list(range(len(ids))):
        return
    counts = Counter(ids)
    bad = [i for i in counts if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    for i in bad:
        add(f"{what} {i}", field, f"{what.split()[-1]} ids must be integers >= 0")
    for i in sorted(i for i, k in counts.items() if k > 1 and i not in bad):
        add(f"{what} {i}", field, f"duplicate {what.split()[-1]} id {i}")
    good = [i for i in counts if i not in bad]
    missing = sorted(set(range(max(good, default=-1) + 1)) - set(good))
    if missing:
        add(None, field, f"{what.split()[-1]} ids must be 0..n-1 with none missing; missing {missing}")
    elif not bad and len(counts) == len(ids):
        add(None, field, f"{what.split()[-1]} ids must be in increasing order, found {ids}")


def _entity_problems(kind: str, attr: str, label: str, e: Any, n_stages: int | None,
                     add: Callable[[str, str | None, str | None, str], None]) -> None:
    """Problems of one entity's own fields (stages, bounds, values)."""
    entry, exit_ = e.entry_stage_id, e.exit_stage_id
    for name, s in (("entry_stage_id", entry), ("exit_stage_id", exit_)):
        if s is not None and (isinstance(s, bool) or not isinstance(s, int)
                              or (n_stages is not None and not 0 <= s < n_stages)):
            add(attr, label, name, f"stage {s} does not exist"
                + (f" (stages 0..{n_stages - 1})" if n_stages else ""))
    if isinstance(entry, int) and isinstance(exit_, int) and entry > exit_:
        add(attr, label, "exit_stage_id", f"exit stage {exit_} is before entry stage {entry}")

    def is_min(name: str) -> float | None:
        v = _num(getattr(e, name))
        if v is None or not math.isfinite(v) or v < 0:
            add(attr, label, name, f"must be a finite number >= 0, got {getattr(e, name)!r}")
            return None
        return v

    def is_limit(name: str) -> float | None:
        v = _num(getattr(e, name))
        if v is None or math.isnan(v) or v < 0:
            add(attr, label, name, f"must be a number >= 0 (or no limit), got {getattr(e, name)!r}")
            return None
        return v

    bounds: dict[str, tuple[float, float]] = {}
    for lo_name, hi_name in _BOUNDS.get(kind, ()):
        lo, hi = is_min(lo_name), is_limit(hi_name)
        if lo is not None and hi is not None:
            if lo > hi:
                add(attr, label, lo_name, f"minimum {lo!r} is above the maximum {hi!r}")
            else:
                bounds[lo_name] = (lo, hi)
    for name in _LIMITS.get(kind, ()):
        is_limit(name)
    for name in _NON_NEGATIVE.get(kind, ()):
        is_min(name)
    for name in _FINITE.get(kind, ()):
        v = _num(getattr(e, name))
        if v is None or not math.isfinite(v):
            add(attr, label, name, f"must be a finite number, got {getattr(e, name)!r}")
    if kind == "line":
        v = _num(e.losses_percent)
        if v is None or not 0 <= v < 100:
            add(attr, label, "losses_percent", f"{e.losses_percent!r} not in [0, 100)")
    elif kind == "contract" and e.type not in ("import", "export"):
        add(attr, label, "type", f"type must be import or export, got {e.type!r}")
    elif kind == "hydro":
        _unit_group_problems(attr, label, e, n_stages, add)
        if isinstance(e.ar_order, bool) or not isinstance(e.ar_order, int) or e.ar_order < 0:
            add(attr, label, "ar_order", f"AR order must be an integer >= 0, got {e.ar_order!r}")
        for name in ("initial_storage_hm3", "mean_inflow_m3s"):
            raw = getattr(e, name)
            if raw is None:
                continue
            v = _num(raw)
            if v is None or not math.isfinite(v) or v < 0:
                add(attr, label, name, f"must be a finite number >= 0, got {raw!r}")
            elif name == "initial_storage_hm3" and "min_storage_hm3" in bounds:
                lo, hi = bounds["min_storage_hm3"]
                if not lo <= v <= hi:
                    add(attr, label, name, f"initial storage {v!r} outside the storage bounds [{lo!r}, {hi!r}]")


def _unit_group_problems(attr: str, label: str, h: Any, n_stages: int | None,
                         add: Callable[[str, str | None, str | None, str], None]) -> None:
    """Problems of a hydro's Cobre 0.18 unit groups and per-stage productivity."""
    groups = getattr(h, "unit_groups", ())
    seen: set[Any] = set()
    totals = {"max_turbined_m3s": 0.0, "max_generation_mw": 0.0}
    for k, g in enumerate(groups):
        where = f"unit_groups[{k}]"
        if isinstance(g.id, bool) or not isinstance(g.id, int) or not 0 <= g.id <= _INT32_MAX:
            add(attr, label, f"{where}.id", f"id must be an integer in 0..{_INT32_MAX}, got {g.id!r}")
        elif g.id in seen:
            add(attr, label, f"{where}.id", f"duplicate unit group id {g.id} in this plant")
        seen.add(g.id)
        for lo_name, hi_name in (("min_generation_mw", "max_generation_mw"), ("min_turbined_m3s", "max_turbined_m3s")):
            lo, hi = _num(getattr(g, lo_name)), _num(getattr(g, hi_name))
            if lo is None or not math.isfinite(lo) or lo < 0:
                add(attr, label, f"{where}.{lo_name}", f"must be a finite number >= 0, got {getattr(g, lo_name)!r}")
            elif hi is None or math.isnan(hi) or hi < 0:
                add(attr, label, f"{where}.{hi_name}", f"must be a number >= 0, got {getattr(g, hi_name)!r}")
            elif lo > hi:
                add(attr, label, f"{where}.{lo_name}", f"minimum {lo!r} is above the maximum {hi!r}")
            if hi_name in totals and hi is not None:
                totals[hi_name] += hi
    for name, total in totals.items():
        plant = _num(getattr(h, name))
        if groups and plant is not None and total > plant * (1 + 1e-9):
            add(attr, label, f"unit_groups.{name}",
                f"the unit groups' {name} sum to {total!r}, above the plant's own {plant!r} (the plant's value is "
                "the envelope the groups share)")
    prod = getattr(h, "stage_productivity", ())
    if prod and n_stages is not None and len(prod) != n_stages:
        add(attr, label, "stage_productivity", f"{len(prod)} values for {n_stages} stages")
    for t, v in enumerate(prod):
        x = _num(v)
        if x is None or not math.isfinite(x) or x < 0:
            add(attr, label, "stage_productivity", f"stage {t}: must be a finite number >= 0, got {v!r}")
            break
