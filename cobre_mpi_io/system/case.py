"""Loading a :class:`~cobre_mpi_io.system.System` from a Cobre case directory (SPEC §12).

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

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import IoError, SchemaError
from .checks import SystemProblem, problems_error, system_problems
from .entities import Block, Bus, Contract, Hydro, Line, NonControllable, PumpingStation, Stage, Thermal

__all__ = ["case_problems", "load_case"]

DEFAULT_DEFICIT_COST: Final = 1000.0
"""Deficit cost of a bus whose file and ``penalties.json`` give no deficit segments."""

_AR_FILE: Final = "scenarios/inflow_ar_coefficients.parquet"
_INT32_MAX: Final = 2**31 - 1
_FILE_ORDER: Final = {f: i for i, f in enumerate((
    "stages.json", "penalties.json", "system/buses.json", "system/lines.json", _AR_FILE, "system/hydros.json",
    "initial_conditions.json", "system/thermals.json", "system/pumping_stations.json",
    "system/energy_contracts.json", "system/non_controllable_sources.json"))}


def _type_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), "null" if v is None else "a number" if isinstance(v, (int, float)) else type(v).__name__)


class _Loader:
    """Reads a case, collecting every problem instead of stopping at the first."""

    def __init__(self, case: Path) -> None:
        self.case = case
        self.problems: list[SystemProblem] = []
        self.incomplete: set[str] = set()
        self.seen: dict[str, set[int]] = {}

    def add(self, file: str, entity: str | None, field: str | None, message: str) -> None:
        self.problems.append(SystemProblem(file, entity, field, message))

    # ----------------------------------------------------------------- files
    def read_json(self, rel: str, *, required: bool) -> Any:
        """The parsed document, or None (missing optional file, or a problem recorded)."""
        path = self.case / rel
        if not path.exists():
            if required:
                self.add(rel, None, None, "required case file is missing")
            return None
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            self.add(rel, None, None, "is a directory, not a JSON file")
            return None
        except OSError as exc:
            raise IoError.from_os_error(path, exc) from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.add(rel, None, None, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}")
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.add(rel, None, None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits, nesting too deep
            self.add(rel, None, None, f"not valid JSON: {type(exc).__name__}: {str(exc)[:200]}")
        return None

    def items(self, rel: str, key: str, attr: str, *, required: bool = True,
              list_required: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """The entries of the top-level list ``key`` of file ``rel`` that are objects, with their positions.

        ``attr`` (the System attribute, or the file) is marked incomplete on any problem.
        """
        before = len(self.problems)
        doc = self.read_json(rel, required=required)
        out = []
        if doc is None:
            pass
        elif not isinstance(doc, dict):
            self.add(rel, None, None, f"expected a top-level object with a list {key!r}, got {_type_name(doc)}")
        elif doc.get(key) is None and not list_required:
            pass
        elif not isinstance(doc.get(key), list):
            self.add(rel, None, key, f"expected a list, got {_type_name(doc[key])}" if key in doc
                     else "missing required top-level list")
        else:
            for i, it in enumerate(doc[key]):
                if isinstance(it, dict):
                    out.append((i, it))
                else:
                    self.add(rel, f"{key}[{i}]", None, f"expected an object, got {_type_name(it)}")
        if len(self.problems) > before:
            self.incomplete.add(attr)
        return out

    # ---------------------------------------------------------------- values
    def get(self, rel: str, entity: str, item: dict[str, Any], dotted: str, kind: str = "float", *,
            required: bool = True, default: Any = None) -> Any:
        """The value at ``dotted`` converted to ``kind`` (``float``, ``int``, ``str``), or ``default``.

        A missing or null optional field is ``default``; anything else wrong
        is a problem (recorded) and ``default``.
        """
        cur: Any = item
        parts = dotted.split(".")
        for k, part in enumerate(parts):
            if not isinstance(cur, dict):
                self.add(rel, entity, ".".join(parts[:k]), f"expected an object, got {_type_name(cur)}")
                return default
            if cur.get(part) is None:
                if required:
                    self.add(rel, entity, dotted, "missing required field")
                return default
            cur = cur[part]
        ok, value = _convert(cur, kind)
        if not ok:
            self.add(rel, entity, dotted, value)
            return default
        return value

    def entity_id(self, rel: str, key: str, i: int, item: dict[str, Any]) -> int | None:
        """The id of entry ``i`` of the list ``key``, or None (problem recorded)."""
        ident: int | None = self.get(rel, f"{key}[{i}]", item, "id", "int")
        if ident is not None and not 0 <= ident <= _INT32_MAX:
            self.add(rel, f"{key}[{i}]", "id", f"id {_short(ident)} outside 0..{_INT32_MAX}")
            return None
        return ident

    def common(self, rel: str, key: str, what: str, i: int, it: dict[str, Any], attr: str,
               bus: bool = True) -> tuple[str, dict[str, Any]] | None:
        """Label and the fields every entity has; None when its id is unusable (entity left out)."""
        ident = self.entity_id(rel, key, i, it)
        if ident is None:
            self.incomplete.add(attr)
            return None
        seen = self.seen.setdefault(attr, set())
        if ident in seen:  # reported by the system checks; what refers to this kind is then not checked
            self.incomplete.add(attr)
        seen.add(ident)
        label = f"{what} {ident}"
        d: dict[str, Any] = {
            "id": ident,
            "name": self.get(rel, label, it, "name", "str", required=False, default=f"{what}_{ident}"),
            "entry_stage_id": self.get(rel, label, it, "entry_stage_id", "int", required=False),
            "exit_stage_id": self.get(rel, label, it, "exit_stage_id", "int", required=False),
        }
        if bus:
            d["bus_id"] = self.get(rel, label, it, "bus_id", "int")
        return label, d

    def entities(self, rel: str, key: str, what: str, attr: str, *, required: bool = True,
                 bus: bool = True) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(label, entry, common fields)`` of each usable entry of the list ``key`` of ``rel``.

        :meth:`items` then :meth:`common` on each entry; entries whose id is
        unusable are left out (the problem is recorded).
        """
        for i, it in self.items(rel, key, attr, required=required):
            c = self.common(rel, key, what, i, it, attr, bus=bus)
            if c is not None:
                yield c[0], it, c[1]


def _convert(v: Any, kind: str) -> tuple[bool, Any]:
    """(True, converted) or (False, why not)."""
    if kind == "str":
        return (True, v) if isinstance(v, str) else (False, f"expected a string, got {_type_name(v)} {v!r}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        noun = "an integer" if kind == "int" else "a number"
        return False, f"expected {noun}, got {_type_name(v)} {_short(v)}"
    if isinstance(v, float) and not math.isfinite(v):
        return False, f"{v} is not allowed: numbers must be finite (null means no limit where one is optional)"
    if kind == "int":
        if isinstance(v, float) and not v.is_integer():
            return False, f"expected an integer, got {v!r}"
        return True, int(v)
    try:
        return True, float(v)
    except OverflowError:
        return False, f"number too large for float64: {_short(v)}"


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _inf(x: float | None) -> float:
    return math.inf if x is None else x


def _ar_orders(ld: _Loader) -> dict[int, int]:
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


def _deficit_default(ld: _Loader) -> float:
    """The last deficit segment's cost in ``penalties.json`` (``bus.deficit_segments``), else the default."""
    doc = ld.read_json("penalties.json", required=False)
    if not isinstance(doc, dict) or not isinstance(doc.get("bus"), dict) or "deficit_segments" not in doc["bus"]:
        return DEFAULT_DEFICIT_COST
    cost = _segments_cost(ld, "penalties.json", "bus", doc["bus"])
    return DEFAULT_DEFICIT_COST if cost is None else cost


def _segments_cost(ld: _Loader, rel: str, label: str, it: dict[str, Any]) -> float | None:
    """The cost of the last of ``it["deficit_segments"]`` (None when absent or bad; bad is a problem)."""
    segs = it.get("deficit_segments")
    if segs is None:
        return None
    if not isinstance(segs, list) or not segs:
        ld.add(rel, label, "deficit_segments", f"expected a non-empty list of segments, got {_short(segs)}")
        return None
    last = segs[-1]
    if not isinstance(last, dict):
        ld.add(rel, label, f"deficit_segments[{len(segs) - 1}]", f"expected an object, got {_type_name(last)}")
        return None
    field = f"deficit_segments[{len(segs) - 1}].cost"
    if last.get("cost") is None:
        ld.add(rel, label, field, "missing required field")
        return None
    ok, cost = _convert(last["cost"], "float")
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
    ld = _Loader(case)
    if not case.is_dir():
        ld.add(".", None, None, "case directory does not exist")
        return None, ld.problems

    rel = "stages.json"
    stages = []
    stage_items = ld.items(rel, "stages", "stages")
    if not stage_items:
        ld.incomplete.add("stages")
    for i, st in stage_items:
        sid = ld.entity_id(rel, "stages", i, st)
        if sid is None:
            ld.incomplete.add("stages")
            continue
        blocks_raw = st.get("blocks")
        if not isinstance(blocks_raw, list) or not blocks_raw:
            ld.add(rel, f"stage {sid}", "blocks",
                   "missing required field" if blocks_raw is None else
                   f"expected a non-empty list of blocks, got {_short(blocks_raw)}")
            ld.incomplete.add("stages")
            continue
        blocks = []
        for j, b in enumerate(blocks_raw):
            if not isinstance(b, dict):
                ld.add(rel, f"stage {sid} blocks[{j}]", None, f"expected an object, got {_type_name(b)}")
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
    for label, it, d in ld.entities(rel, "hydros", "hydro", "hydros"):
        hydros_raw.append(dict(
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
            productivity_mw_per_m3s=ld.get(rel, label, it, "generation.productivity_mw_per_m3s", required=False,
                                           default=1.0),
        ))
    hydro_ids = {h["id"] for h in hydros_raw}
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
    seen = {(p.file, p.entity, p.field) for p in ld.problems}
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
