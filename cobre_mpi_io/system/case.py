"""Loading a :class:`~cobre_mpi_io.system.System` from a Cobre case directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import IoError, SchemaError
from .entities import Block, Bus, Contract, Hydro, Line, NonControllable, PumpingStation, Stage, Thermal

__all__ = ["load_case"]


def _read_json(path: Path, required: bool = True) -> Any:
    if not path.exists():
        if required:
            raise SchemaError(str(path), None, "required case file is missing")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(str(path), None, f"not valid JSON: {exc}") from exc


class _Reader:
    """Field access that names file, entity and field on a missing/bad value."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what

    def items(self, doc: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise SchemaError(str(self.path), key, f"expected a top-level list {key!r}")
        for i, item in enumerate(doc[key]):
            if not isinstance(item, dict):
                raise SchemaError(str(self.path), key, f"entry {i} is not an object")
        return doc[key]  # type: ignore[no-any-return]

    def get(self, item: dict[str, Any], dotted: str, *, required: bool = True, default: Any = None,
            kind: type = float) -> Any:
        cur: Any = item
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur or cur[part] is None:
                if required:
                    ident = item.get("id", "?")
                    raise SchemaError(str(self.path), dotted, f"{self.what} {ident}: missing required field")
                return default
            cur = cur[part]
        try:
            if kind is int:
                if isinstance(cur, bool) or not float(cur).is_integer():
                    raise ValueError(cur)
                return int(cur)
            if kind is float:
                if isinstance(cur, bool):
                    raise ValueError(cur)
                return float(cur)
            if kind is str:
                return str(cur)
        except (TypeError, ValueError) as exc:
            ident = item.get("id", "?")
            raise SchemaError(str(self.path), dotted,
                              f"{self.what} {ident}: expected {kind.__name__}, got {cur!r}") from exc
        return cur


def _common(r: _Reader, it: dict[str, Any], bus: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": r.get(it, "id", kind=int),
        "name": r.get(it, "name", kind=str, required=False, default=None),
        "entry_stage_id": r.get(it, "entry_stage_id", kind=int, required=False),
        "exit_stage_id": r.get(it, "exit_stage_id", kind=int, required=False),
    }
    if d["name"] is None:
        d["name"] = f"{r.what}_{d['id']}"
    if bus:
        d["bus_id"] = r.get(it, "bus_id", kind=int)
    return d


def _ar_orders(case: Path) -> dict[int, int]:
    path = case / "scenarios" / "inflow_ar_coefficients.parquet"
    if not path.exists():
        return {}
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, columns=["hydro_id", "lag"])
    except (OSError, KeyError, ValueError) as exc:
        raise SchemaError(str(path), "hydro_id, lag", f"cannot read AR coefficients: {exc}") from exc
    g = t.group_by("hydro_id").aggregate([("lag", "max")])
    return {int(h): int(m) for h, m in zip(g["hydro_id"].to_pylist(), g["lag_max"].to_pylist())
            if m is not None}


def _inf(x: float | None) -> float:
    return math.inf if x is None else x


def load_case(case: Path) -> dict[str, Any]:
    """Build a System from ``case`` (see :meth:`System.from_case`)."""
    if not case.is_dir():
        raise SchemaError(str(case), None, "case directory does not exist")
    sysdir = case / "system"

    p = case / "stages.json"
    r = _Reader(p, "stage")
    stages = []
    for st in r.items(_read_json(p), "stages"):
        sid = r.get(st, "id", kind=int)
        blocks_raw = st.get("blocks")
        if not isinstance(blocks_raw, list) or not blocks_raw:
            raise SchemaError(str(p), "blocks", f"stage {sid}: missing required field")
        br = _Reader(p, f"stage {sid} block")
        blocks = tuple(Block(br.get(b, "id", kind=int), br.get(b, "name", kind=str, required=False, default=""),
                             br.get(b, "hours")) for b in blocks_raw)
        stages.append(Stage(sid, blocks))
    stages.sort(key=lambda s: s.id)

    p = sysdir / "buses.json"
    r = _Reader(p, "bus")
    buses = []
    for it in r.items(_read_json(p), "buses"):
        segs = it.get("deficit_segments") or [{}]
        cost = segs[-1].get("cost", 1000.0) if isinstance(segs[-1], dict) else 1000.0
        buses.append(Bus(**_common(r, it, bus=False), deficit_cost=float(cost or 1000.0)))

    p = sysdir / "lines.json"
    r = _Reader(p, "line")
    lines = [Line(**_common(r, it, bus=False),
                  source_bus_id=r.get(it, "source_bus_id", kind=int),
                  target_bus_id=r.get(it, "target_bus_id", kind=int),
                  direct_mw=_inf(r.get(it, "capacity.direct_mw")),
                  reverse_mw=_inf(r.get(it, "capacity.reverse_mw")),
                  losses_percent=r.get(it, "losses_percent", required=False, default=0.0))
             for it in r.items(_read_json(p), "lines")]

    ar = _ar_orders(case)
    ic = _read_json(case / "initial_conditions.json", required=False) or {}
    initial = {int(s["hydro_id"]): float(s["value_hm3"]) for s in ic.get("storage", [])
               if isinstance(s, dict) and "hydro_id" in s and "value_hm3" in s}
    p = sysdir / "hydros.json"
    r = _Reader(p, "hydro")
    hydros = []
    for it in r.items(_read_json(p), "hydros"):
        c = _common(r, it)
        hydros.append(Hydro(
            **c,
            ar_order=ar.get(c["id"], 0),
            min_storage_hm3=r.get(it, "reservoir.min_storage_hm3"),
            max_storage_hm3=r.get(it, "reservoir.max_storage_hm3"),
            initial_storage_hm3=initial.get(c["id"]),
            min_outflow_m3s=r.get(it, "outflow.min_outflow_m3s", required=False, default=0.0),
            max_outflow_m3s=_inf(r.get(it, "outflow.max_outflow_m3s", required=False)),
            min_turbined_m3s=r.get(it, "generation.min_turbined_m3s"),
            max_turbined_m3s=r.get(it, "generation.max_turbined_m3s"),
            min_generation_mw=r.get(it, "generation.min_generation_mw"),
            max_generation_mw=r.get(it, "generation.max_generation_mw"),
            productivity_mw_per_m3s=r.get(it, "generation.productivity_mw_per_m3s", required=False, default=1.0),
        ))
    unknown = set(ar) - {h.id for h in hydros}
    if unknown:
        raise SchemaError(str(case / "scenarios" / "inflow_ar_coefficients.parquet"), "hydro_id",
                          f"AR coefficients reference unknown hydros {sorted(unknown)}")
    unknown = set(initial) - {h.id for h in hydros}
    if unknown:
        raise SchemaError(str(case / "initial_conditions.json"), "hydro_id",
                          f"initial storage references unknown hydros {sorted(unknown)}")

    p = sysdir / "thermals.json"
    r = _Reader(p, "thermal")
    thermals = [Thermal(**_common(r, it), min_mw=r.get(it, "generation.min_mw"),
                        max_mw=_inf(r.get(it, "generation.max_mw")),
                        cost_per_mwh=r.get(it, "cost_per_mwh", required=False, default=0.0))
                for it in r.items(_read_json(p), "thermals")]

    pumping: list[PumpingStation] = []
    p = sysdir / "pumping_stations.json"
    doc = _read_json(p, required=False)
    if doc is not None:
        r = _Reader(p, "pumping station")
        pumping = [PumpingStation(**_common(r, it),
                                  source_hydro_id=r.get(it, "source_hydro_id", kind=int),
                                  destination_hydro_id=r.get(it, "destination_hydro_id", kind=int),
                                  min_m3s=r.get(it, "flow.min_m3s", required=False, default=0.0),
                                  max_m3s=_inf(r.get(it, "flow.max_m3s", required=False)))
                   for it in r.items(doc, "pumping_stations")]

    contracts: list[Contract] = []
    p = sysdir / "energy_contracts.json"
    doc = _read_json(p, required=False)
    if doc is not None:
        r = _Reader(p, "contract")
        for it in r.items(doc, "contracts"):
            ctype = r.get(it, "type", kind=str)
            if ctype not in ("import", "export"):
                raise SchemaError(str(p), "type", f"contract {it.get('id')}: type must be import or export")
            contracts.append(Contract(**_common(r, it), type=ctype,
                                      price_per_mwh=r.get(it, "price_per_mwh"),
                                      min_mw=r.get(it, "limits.min_mw", required=False, default=0.0),
                                      max_mw=_inf(r.get(it, "limits.max_mw", required=False))))

    ncs: list[NonControllable] = []
    p = sysdir / "non_controllable_sources.json"
    doc = _read_json(p, required=False)
    if doc is not None:
        r = _Reader(p, "non-controllable source")
        ncs = [NonControllable(**_common(r, it), max_generation_mw=_inf(r.get(it, "max_generation_mw")))
               for it in r.items(doc, "non_controllable_sources")]

    return {
        "stages": tuple(stages), "buses": tuple(buses), "hydros": tuple(hydros), "thermals": tuple(thermals),
        "lines": tuple(lines), "pumping_stations": tuple(pumping), "contracts": tuple(contracts),
        "non_controllables": tuple(ncs), "name": case.name, "source": str(case),
    }
