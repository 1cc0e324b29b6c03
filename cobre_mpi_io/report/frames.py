"""The report's analyses as tables: pandas DataFrames (default) or Arrow tables (``as_arrow=True``).

Every function takes a :class:`~cobre_mpi_io.report.run.RunDirectory` or an
output directory path.  The simulation analyses run once per
``RunDirectory`` (out of core, duckdb) and are cached on it, so::

    run = RunDirectory.open("out")
    stage_percentiles(run, "immediate_cost")   # scans the partitions
    deficit_probability(run)                    # from the cache

Quantities (:data:`STAGE_QUANTITIES`): ``total_cost``, ``immediate_cost`` ($),
``deficit``, ``thermal_generation``, ``hydro_generation`` (MWh),
``stored_volume`` (hm³, end of stage); per entity (:data:`ENTITY_QUANTITIES`):
``spot_price`` per bus ($/MWh), ``stored_volume`` per hydro (hm³).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

from ._deps import load_pandas
from .analysis import STAT_KEYS, read_convergence, run_results, scenario_cost_table
from .run import RunDirectory, as_run

__all__ = [
    "ENTITY_QUANTITIES",
    "STAGE_QUANTITIES",
    "convergence",
    "cost_statistics",
    "deficit_probability",
    "entity_percentiles",
    "fan_chart_data",
    "scenario_costs",
    "stage_percentiles",
]

STAGE_QUANTITIES: Final = ("total_cost", "immediate_cost", "deficit", "stored_volume", "thermal_generation",
                           "hydro_generation")
ENTITY_QUANTITIES: Final = {"spot_price": "per_bus", "stored_volume": "per_hydro"}
_Run = RunDirectory | str | os.PathLike[str]


def _out(columns: dict[str, list[Any]], as_arrow: bool) -> Any:
    import pyarrow as pa

    t = pa.table(columns)
    if as_arrow:
        return t
    load_pandas()
    return t.to_pandas()


def _unavailable(run: RunDirectory, quantity: str) -> Exception:
    from ..errors import OutputError

    why = run_results(run)["unavailable"].get(quantity, "not computed for this run")
    return OutputError(f"{quantity} is not available for {run.path}: {why}")


def _entity_quantity(run: _Run, quantity: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(run results, the per-entity results of quantity)``; ValueError for an unknown quantity,
    OutputError when the run has no data for it."""
    if quantity not in ENTITY_QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(ENTITY_QUANTITIES)}")
    r = as_run(run)
    res = run_results(r)
    q = res[ENTITY_QUANTITIES[quantity]].get(quantity)
    if q is None:
        raise _unavailable(r, quantity)
    return res, q


def convergence(run: _Run, *, as_arrow: bool = False) -> Any:
    """The training history: one row per iteration, under this package's column names.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``iteration``, ``lower_bound``, ``upper_bound_mean``, ``upper_bound_std``,
        ``gap_percent``, cut counts, timings, ... (None where the producer
        does not write a column; Cobre 0.18's ``upper_bound`` is
        ``upper_bound_mean`` and its ``upper_bound_kind`` is kept).

    Raises
    ------
    IoError
        No ``training/convergence.parquet``.
    SchemaError
        It is not readable, or lacks ``iteration`` / ``lower_bound``.
    """
    from ..errors import IoError

    r = as_run(run)
    conv = read_convergence(r)
    if conv is None:
        raise IoError(r.path / "training" / "convergence.parquet", "not found", "no convergence history")
    return _out(conv, as_arrow)


def scenario_costs(run: _Run, *, as_arrow: bool = False) -> Any:
    """One row per scenario: its cost (the sum over stages of ``immediate_cost × discount_factor``) and components.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``scenario_id``, ``total_cost`` and one column per cost component
        (the spec's 14, or what the producer wrote), in scenario order.

    Raises
    ------
    OutputError
        The run has no costs partitions and no ``scenario_totals.parquet``.
    """
    r = as_run(run)
    t = scenario_cost_table(r)
    if t is None:
        raise _unavailable(r, "cost_distribution")
    if as_arrow:
        return t
    load_pandas()
    return t.to_pandas()


def cost_statistics(run: _Run) -> Any:
    """Statistics of the scenario cost: count, mean, std, min, p5 ... p95, max, CVaR 5 %.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.

    Returns
    -------
    pandas.Series
        Indexed by ``scenarios``, ``mean``, ``std``, ``min``, ``p5``, ``p25``,
        ``p50``, ``p75``, ``p95``, ``max``, ``cvar95`` ($); ``cvar95`` is the
        mean of the worst 5 % of scenarios.

    Raises
    ------
    OutputError
        No scenario costs to summarise.
    """
    r = as_run(run)
    dist = run_results(r).get("cost_distribution")
    if not dist or not dist.get("scenarios"):
        raise _unavailable(r, "cost_distribution")
    pd = load_pandas()
    keys = ("scenarios", "mean", "std", "min", *STAT_KEYS, "max", "cvar95")
    return pd.Series({k: dist.get(k) for k in keys}, name="scenario cost ($)")


def stage_percentiles(run: _Run, quantity: str, *, as_arrow: bool = False) -> Any:
    """Per stage, the distribution over scenarios of ``quantity``: count, mean and the quantiles.

    This is the data of a fan chart (:func:`cobre_mpi_io.report.fan_chart`).

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    quantity : str
        One of :data:`STAGE_QUANTITIES`.
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``stage_id``, ``scenarios``, ``mean``, ``p5``, ``p25``, ``p50``,
        ``p75``, ``p95`` (the unit is in ``DataFrame.attrs["unit"]`` and the
        Arrow schema metadata); for ``deficit`` also ``probability``.

    Raises
    ------
    ValueError
        ``quantity`` is not one of :data:`STAGE_QUANTITIES`.
    OutputError
        The run has no data for it (the reason is in the message).
    """
    if quantity not in STAGE_QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(STAGE_QUANTITIES)}")
    r = as_run(run)
    res = run_results(r)
    s = res["per_stage"].get(quantity)
    if s is None:
        raise _unavailable(r, quantity)
    cols: dict[str, Sequence[Any]] = {"stage_id": res["stages"], "scenarios": s["scenarios"], "mean": s["mean"]}
    cols.update({k: s[k] for k in STAT_KEYS})
    if "probability" in s:
        cols["probability"] = s["probability"]
    return _with_unit(cols, s["unit"], s["label"], as_arrow)


def _with_unit(cols: dict[str, Sequence[Any]], unit: str, label: str, as_arrow: bool) -> Any:
    import pyarrow as pa

    t = pa.table({k: pa.array(list(v), type=pa.int32() if k in ("stage_id", "scenarios") else pa.float64())
                  for k, v in cols.items()})
    t = t.replace_schema_metadata({"unit": unit, "label": label})
    if as_arrow:
        return t
    load_pandas()
    df = t.to_pandas()
    df.attrs.update({"unit": unit, "label": label})
    return df


def fan_chart_data(run: _Run, quantity: str, *, as_arrow: bool = False) -> Any:
    """The bands and lines of a fan chart in long form (one row per stage and band), for any plotting library.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    quantity : str
        One of :data:`STAGE_QUANTITIES`.
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``stage_id``, ``band`` (``"5-95"``, ``"25-75"``, ``"median"``, ``"mean"``),
        ``low`` and ``high`` (equal for the two lines).
    """
    t = stage_percentiles(run, quantity, as_arrow=True)
    d = t.to_pydict()
    rows: dict[str, list[Any]] = {"stage_id": [], "band": [], "low": [], "high": []}
    for band, lo, hi in (("5-95", "p5", "p95"), ("25-75", "p25", "p75"), ("median", "p50", "p50"),
                         ("mean", "mean", "mean")):
        rows["stage_id"] += d["stage_id"]
        rows["band"] += [band] * len(d["stage_id"])
        rows["low"] += d[lo]
        rows["high"] += d[hi]
    return _long(rows, t.schema.metadata or {}, as_arrow)


def _long(rows: dict[str, list[Any]], meta: dict[bytes, bytes], as_arrow: bool) -> Any:
    import pyarrow as pa

    t = pa.table({"stage_id": pa.array(rows["stage_id"], pa.int32()), "band": pa.array(rows["band"]),
                   "low": pa.array(rows["low"], pa.float64()), "high": pa.array(rows["high"], pa.float64())})
    t = t.replace_schema_metadata(meta)
    if as_arrow:
        return t
    load_pandas()
    df = t.to_pandas()
    df.attrs.update({k.decode(): v.decode() for k, v in meta.items()})
    return df


def deficit_probability(run: _Run, *, by: str = "stage", as_arrow: bool = False) -> Any:
    """The share of scenarios with a deficit, per stage (any bus) or per bus and stage.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    by : {"stage", "bus"}
        ``"stage"``: a deficit at any bus; ``"bus"``: one row per bus and stage.
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``stage_id`` (and ``bus_id``, ``name``), ``probability`` (0..1).

    Raises
    ------
    ValueError
        ``by`` is neither ``"stage"`` nor ``"bus"``.
    OutputError
        The run has no buses table nor ``deficit_cost`` to tell.
    """
    if by not in ("stage", "bus"):
        raise ValueError(f"by must be 'stage' or 'bus', not {by!r}")
    r = as_run(run)
    res = run_results(r)
    stages = res["stages"]
    if by == "stage":
        p = res["per_stage"].get("deficit_probability")
        if p is None:
            raise _unavailable(r, "deficit")
        return _with_unit({"stage_id": stages, "probability": p["values"]}, "1", p["label"], as_arrow)
    q = res["per_bus"].get("deficit_probability")
    if q is None:
        raise _unavailable(r, "deficit")
    cols: dict[str, list[Any]] = {"entity_id": [], "name": [], "stage_id": [], "probability": []}
    for key, e in q["entities"].items():
        cols["entity_id"] += [int(key)] * len(stages)
        cols["name"] += [e["name"]] * len(stages)
        cols["stage_id"] += list(stages)
        cols["probability"] += e["values"]
    renamed = {("bus_id" if k == "entity_id" else k): v for k, v in cols.items()}
    return _entity_table(renamed, "1", q["label"], as_arrow)


def entity_percentiles(run: _Run, quantity: str, *, as_arrow: bool = False) -> Any:
    """Per entity and stage, the distribution over scenarios: ``spot_price`` per bus or ``stored_volume`` per hydro.

    The data of the per-entity panels (:func:`cobre_mpi_io.report.entity_panels`).

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    quantity : str
        ``"spot_price"`` (per bus, $/MWh, hours-weighted over the stage's
        blocks) or ``"stored_volume"`` (per hydro, hm³, end of stage).
    as_arrow : bool
        Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``bus_id`` or ``hydro_id``, ``name``, ``stage_id``, ``scenarios``,
        ``mean``, ``p5`` ... ``p95``.

    Raises
    ------
    ValueError
        Unknown ``quantity``.
    OutputError
        The run has no data for it.
    """
    res, q = _entity_quantity(run, quantity)
    stages = res["stages"]
    id_col = "bus_id" if quantity == "spot_price" else "hydro_id"
    cols: dict[str, list[Any]] = {id_col: [], "name": [], "stage_id": [], "scenarios": [], "mean": []}
    cols.update({k: [] for k in STAT_KEYS})
    for key, e in q["entities"].items():
        cols[id_col] += [int(key)] * len(stages)
        cols["name"] += [e["name"]] * len(stages)
        cols["stage_id"] += list(stages)
        for k in ("scenarios", "mean", *STAT_KEYS):
            cols[k] += e[k]
    return _entity_table(cols, q["unit"], q["label"], as_arrow)


def _entity_table(cols: dict[str, list[Any]], unit: str, label: str, as_arrow: bool) -> Any:
    import pyarrow as pa

    ints = {"bus_id", "hydro_id", "stage_id", "scenarios"}
    t = pa.table({k: pa.array(v, pa.int32() if k in ints else (pa.string() if k == "name" else pa.float64()))
                  for k, v in cols.items()})
    t = t.replace_schema_metadata({"unit": unit, "label": label})
    if as_arrow:
        return t
    load_pandas()
    df = t.to_pandas()
    df.attrs.update({"unit": unit, "label": label})
    return df
