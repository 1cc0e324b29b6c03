"""The Cobre 0.18 case input format: its detection and what only it has.

:func:`case_format` is the detection rule. The rest reads what 0.18 adds
to a case: hydro ``unit_groups``, productivity per (hydro, stage) from
``system/hydro_production_models.json``, and ``penalties.json``'s
``hydro.turbined_cost`` (``operational_start_date`` is checked by
:meth:`~cobre_mpi_io.system.reader.CaseReader.start_date`, the 0.18
``config.json`` by :mod:`~cobre_mpi_io.system.case_config`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .entities import HydroUnitGroup
from .reader import DATED_FILES, CaseReader, short, type_name

__all__ = ["PRODUCTION_FILE", "apply_productivity", "case_format", "check_penalties", "config_018_marker",
           "read_unit_groups"]

PRODUCTION_FILE: Final = "system/hydro_production_models.json"
"""Cobre 0.18's productivity per (hydro, stage range) file."""
_PROD_FILE: Final = PRODUCTION_FILE
_PROD_PARQUET: Final = "system/hydro_energy_productivity.parquet"
_PRODUCTION_MODELS: Final = ("constant_productivity", "linearized_head", "fpha")
_CONFIG_018_MARKERS: Final = (("training", "selection"), ("training", "tree_seed"), ("simulation", "selection"))


def config_018_marker(doc: Any) -> str | None:
    """The first field of ``doc`` that only Cobre 0.18's ``config.json`` has, dotted; None when there is none.

    The 0.18 fields: ``training.selection``, ``training.tree_seed``, ``simulation.selection``.
    """
    if isinstance(doc, Mapping):
        for section, key in _CONFIG_018_MARKERS:
            sec = doc.get(section)
            if isinstance(sec, Mapping) and key in sec:
                return f"{section}.{key}"
    return None


def _peek(case: Path, rel: str) -> Any:
    """The parsed JSON of ``case/rel``, or None when it cannot be read (the loader reports why)."""
    try:
        return json.loads((case / rel).read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return None


def _entries(doc: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    items = doc.get(key) if isinstance(doc, dict) else None
    return [(i, it) for i, it in enumerate(items) if isinstance(it, dict)] if isinstance(items, list) else []


def case_format(case: str | Path) -> tuple[str, str | None]:
    """The input format of a case directory, and why: ``("cobre-0.18", reason)`` or ``("cobre-0.5", None)``.

    The detection rule: a case is in the Cobre 0.18 format when anything
    in it exists only in that format, checked in this order:
    ``system/hydro_production_models.json`` exists; an entry of
    ``system/{buses,thermals,lines,hydros}.json`` has
    ``operational_start_date`` or ``unit_groups``; ``config.json`` has
    ``training.selection``, ``training.tree_seed`` or
    ``simulation.selection``; a stage of ``stages.json`` has
    ``num_openings``; ``penalties.json`` has ``hydro.turbined_cost``.
    Otherwise it is a Cobre 0.5.x case. The reason names the first such
    file and field. A 0.18 case is then read strictly as 0.18: a 0.5.x
    field 0.18 removed is a problem naming this reason.

    Parameters
    ----------
    case : path-like
        The case directory (files that cannot be read are skipped here; loading reports them).
    """
    case = Path(case)
    if (case / _PROD_FILE).exists():
        return "cobre-0.18", f"{_PROD_FILE} exists"
    for rel in DATED_FILES:
        key = rel.split("/")[1][:-5]
        for i, it in _entries(_peek(case, rel), key):
            for f in ("operational_start_date", "unit_groups"):
                if f in it:
                    return "cobre-0.18", f"{rel}, {key}[{i}] has {f!r}"
    marker = config_018_marker(_peek(case, "config.json"))
    if marker is not None:
        return "cobre-0.18", f"config.json has {marker!r}"
    for i, st in _entries(_peek(case, "stages.json"), "stages"):
        if "num_openings" in st:
            return "cobre-0.18", f"stages.json, stages[{i}] has 'num_openings'"
    pen = _peek(case, "penalties.json")
    if isinstance(pen, dict) and isinstance(pen.get("hydro"), dict) and "turbined_cost" in pen["hydro"]:
        return "cobre-0.18", "penalties.json has 'hydro.turbined_cost'"
    return "cobre-0.5", None


def read_unit_groups(ld: CaseReader, rel: str, label: str, it: dict[str, Any]) -> tuple[HydroUnitGroup, ...] | None:
    """A Cobre 0.18 hydro's ``unit_groups``; None when they cannot be read (problem recorded).

    Parameters
    ----------
    ld : CaseReader
        Records the problems.
    rel, label : str
        The file and the hydro (``hydro 3``).
    it : dict
        The hydro's entry.
    """
    raw = it.get("unit_groups")
    if not isinstance(raw, list) or not raw:
        ld.add(rel, label, "unit_groups", ("missing required field" if raw is None else
                                           f"expected a non-empty list, got {short(raw)}")
               + " (Cobre 0.18: every hydro declares at least one unit group with id, name, bus_id, "
                 "min/max_generation_mw and min/max_turbined_m3s)")
        return None
    groups = []
    ok = True
    for k, g in enumerate(raw):
        pre = f"unit_groups[{k}]."
        if not isinstance(g, dict):
            ld.add(rel, label, f"unit_groups[{k}]", f"expected an object, got {type_name(g)}")
            ok = False
            continue
        before = len(ld.problems)
        gid = ld.get(rel, label, g, "id", "int", prefix=pre)
        bus = ld.get(rel, label, g, "bus_id", "int", prefix=pre)
        name = ld.get(rel, label, g, "name", "str", prefix=pre, default="")
        vals = {f: ld.get(rel, label, g, f, prefix=pre, default=0.0)
                for f in ("min_generation_mw", "max_generation_mw", "min_turbined_m3s", "max_turbined_m3s")}
        if len(ld.problems) > before:
            ok = False
            continue
        groups.append(HydroUnitGroup(id=gid, name=name, bus_id=bus, **vals))
    return tuple(groups) if ok else None


def _productivity(ld: CaseReader, stage_seasons: dict[int, int | None], n_stages: int,
                  hydro_ids: set[int]) -> dict[int, list[float | None]]:
    """Per hydro id, the productivity of each stage given by ``system/hydro_production_models.json``.

    A stage the file gives no number for is None (NaN for an FPHA model, which needs none).
    """
    rel = _PROD_FILE
    out: dict[int, list[float | None]] = {}
    for i, pm in ld.items(rel, "production_models", rel, required=False):
        hid = ld.get(rel, f"production_models[{i}]", pm, "hydro_id", "int")
        if hid is None:
            continue
        label = f"hydro {hid}"
        if hid in out:
            ld.add(rel, f"production_models[{i}]", "hydro_id", f"hydro {hid} has a second production model")
            continue
        if hid not in hydro_ids and "hydros" not in ld.incomplete:
            ld.add(rel, f"production_models[{i}]", "hydro_id", f"references unknown hydro {hid}")
        values: list[float | None] = [None] * n_stages
        out[hid] = values
        mode = pm.get("selection_mode")
        if mode == "stage_ranges":
            ranges = pm.get("stage_ranges")
            if not isinstance(ranges, list):
                ld.add(rel, label, "stage_ranges", "missing required field" if ranges is None
                       else f"expected a list, got {type_name(ranges)}")
                continue
            for j, r in enumerate(ranges):
                pre = f"stage_ranges[{j}]."
                if not isinstance(r, dict):
                    ld.add(rel, label, f"stage_ranges[{j}]", f"expected an object, got {type_name(r)}")
                    continue
                start = ld.get(rel, label, r, "start_stage_id", "int", prefix=pre)
                end = ld.get(rel, label, r, "end_stage_id", "int", prefix=pre, required=False)
                prod = _model_productivity(ld, label, r, pre)
                if start is None:
                    continue
                if start < 0 or (end is not None and end < start):
                    ld.add(rel, label, pre + "start_stage_id", f"stage range {start}..{end} is empty or negative")
                    continue
                for t in range(start, min(n_stages - 1, end if end is not None else n_stages - 1) + 1):
                    values[t] = prod
        elif mode == "seasonal":
            default = pm.get("default_model")
            if default not in _PRODUCTION_MODELS:
                ld.add(rel, label, "default_model", f"must be one of {', '.join(_PRODUCTION_MODELS)}, got "
                       f"{short(default)}")
            seasons = pm.get("seasons")
            by_season: dict[int, float | None] = {}
            if not isinstance(seasons, list):
                ld.add(rel, label, "seasons", "missing required field" if seasons is None
                       else f"expected a list, got {type_name(seasons)}")
                continue
            for j, se in enumerate(seasons):
                pre = f"seasons[{j}]."
                if not isinstance(se, dict):
                    ld.add(rel, label, f"seasons[{j}]", f"expected an object, got {type_name(se)}")
                    continue
                sid = ld.get(rel, label, se, "season_id", "int", prefix=pre)
                prod = _model_productivity(ld, label, se, pre)
                if sid is not None:
                    by_season[sid] = prod
            for t, season in stage_seasons.items():
                if 0 <= t < n_stages and season is not None:
                    values[t] = by_season.get(season)
        else:
            ld.add(rel, label, "selection_mode", "missing required field ('stage_ranges' or 'seasonal')"
                   if mode is None else f"must be 'stage_ranges' or 'seasonal', got {short(mode)}")
    return out


def _model_productivity(ld: CaseReader, label: str, r: dict[str, Any], pre: str) -> float | None:
    """The ``productivity_mw_per_m3s`` of a stage range or season entry; checks ``model``.

    None when none is given, NaN for an FPHA model (which needs none).
    """
    model = r.get("model")
    if model not in _PRODUCTION_MODELS:
        ld.add(_PROD_FILE, label, pre + "model", "missing required field" if model is None else
               f"must be one of {', '.join(_PRODUCTION_MODELS)}, got {short(model)}")
    prod = ld.get(_PROD_FILE, label, r, "productivity_mw_per_m3s", prefix=pre, required=False)
    if prod is not None and not prod > 0:
        ld.add(_PROD_FILE, label, pre + "productivity_mw_per_m3s", f"must be > 0, got {prod!r}")
        return None
    if prod is None and model == "fpha":
        return math.nan  # FPHA derives productivity from its tables: none is needed
    return prod if isinstance(prod, float) else None


def apply_productivity(ld: CaseReader, hydros_raw: list[dict[str, Any]], stage_seasons: dict[int, int | None],
                        n_stages: int, hydro_ids: set[int]) -> None:
    """Set each 0.18 hydro's productivity from ``system/hydro_production_models.json``.

    A stage without a number (FPHA, or a value left to
    ``system/hydro_energy_productivity.parquet``, which is not read) counts
    as 1.0 MW/(m3/s), as a 0.5.x hydro without productivity does; without
    that Parquet file, a hydro that has no number for a stage is a problem,
    as in Cobre 0.18 (an FPHA stage needs none).

    Parameters
    ----------
    ld : CaseReader
        Records the problems.
    hydros_raw : list of dict
        The hydros' fields, updated in place (``productivity_mw_per_m3s``, ``stage_productivity``).
    stage_seasons : dict
        Stage id -> its ``season_id`` (None when it has none).
    n_stages : int
        Number of stages.
    hydro_ids : set of int
        The hydros of the case (a production model of another id is a problem).
    """
    per_hydro = _productivity(ld, stage_seasons, n_stages, hydro_ids)
    parquet = (ld.case / _PROD_PARQUET).exists()
    for h in hydros_raw:
        values = per_hydro.get(h["id"], [None] * n_stages)
        missing = [t for t, v in enumerate(values) if v is None]
        if missing and not parquet and "stages" not in ld.incomplete:
            ld.add(_PROD_FILE, f"hydro {h['id']}", "productivity_mw_per_m3s",
                   f"no productivity for stage(s) {missing[:10]}{' ...' if len(missing) > 10 else ''}: "
                   f"Cobre 0.18 needs one per (hydro, stage), here or in {_PROD_PARQUET}")
        filled = [1.0 if v is None or math.isnan(v) else v for v in values]
        if filled:
            h["productivity_mw_per_m3s"] = filled[0]
            if len(set(filled)) > 1:
                h["stage_productivity"] = tuple(filled)


def check_penalties(ld: CaseReader) -> None:
    """Check the turbined cost of ``penalties.json`` (0.18 ``turbined_cost``, 0.5.x ``fpha_turbined_cost``)."""
    doc = _peek(ld.case, "penalties.json")
    hydro = doc.get("hydro") if isinstance(doc, dict) else None
    if not isinstance(hydro, dict):
        return
    if ld.v018 and "fpha_turbined_cost" in hydro:
        ld.removed_in_018("penalties.json", None, "hydro.fpha_turbined_cost", "spells it hydro.turbined_cost")
    key = "turbined_cost" if ld.v018 else "fpha_turbined_cost"
    v = ld.get("penalties.json", None, doc, f"hydro.{key}", required=False)
    if v is not None and v < 0:
        ld.add("penalties.json", None, f"hydro.{key}", f"must be a finite number >= 0, got {v!r}")
