"""The numbers of the report: out-of-core analyses of the simulation results across scenarios, and the
readers of the training history.

The partitions of ``simulation/`` the run's record lists (see
:mod:`cobre_mpi_io.report.run`) are read by duckdb (``read_parquet`` over that
file list, only the columns needed, streamed and in parallel), reduced per
(scenario, stage[, entity]) in one scan per table, and only those small
reductions are summarised: mean and the quantiles :data:`QUANTILES` over
scenarios.  Memory is bounded by scenarios × stages × entities, never by rows.
Why duckdb and not polars or pyarrow.dataset: see the README's report section
(measured by ``scripts/bench_report.sh engines``).

What is computed (each quantity is a per-scenario value, then its
distribution over scenarios):

==========================  ===========  =========================================================
quantity                    unit         per scenario and stage
==========================  ===========  =========================================================
``total_cost``              $            ``costs.total_cost`` of the stage-level row (``block_id`` null)
``immediate_cost``          $            ``costs.immediate_cost`` of the stage-level row
``thermal_generation``      MWh          sum of ``thermals.generation_mwh`` over thermals and blocks
``hydro_generation``        MWh          sum of ``hydros.generation_mwh`` over hydros and blocks
``stored_volume``           hm3          sum over hydros of ``hydros.storage_final_hm3`` at the stage's
                                         last block (end-of-stage storage)
``deficit``                 MWh          sum of ``buses.deficit_mwh`` over buses and blocks, and its
                                         probability: the share of scenarios where it exceeds
                                         :data:`DEFICIT_TOLERANCE_MWH`
``spot_price`` (per bus)    $/MWh        ``buses.spot_price`` averaged over the stage's blocks weighted by
                                         their hours (``load_mwh / load_mw``; plain mean if no load)
``stored_volume`` (per      hm3          end-of-stage ``storage_final_hm3`` of each hydro
hydro)
==========================  ===========  =========================================================

and the distribution over scenarios of the scenario cost (sum over stages of
``immediate_cost × discount_factor``, the writer's scenario total; at detail
``summary``, ``scenario_totals.parquet``) with its 14 components.

The cost components are the ``*_cost`` columns of the costs table other than
``total_cost``, ``immediate_cost`` and ``future_cost``: the 14 of the spec
for this package's runs, whatever the producer wrote on a Cobre tree (0.5.x:
``fpha_turbined_cost``; 0.18: ``turbined_cost``, ``anticipated_thermal_cost``,
...).  On a Cobre tree a quantity whose columns that version does not write
is reported unavailable, naming the column; on this package's runs a missing
column is a :class:`~cobre_mpi_io.errors.SchemaError` naming the file.

At detail ``stage`` only ``costs`` and ``hydros`` exist: thermal generation,
prices and deficit energy are reported unavailable, and the deficit
probability comes from ``costs.deficit_cost > 0``.  At detail ``summary`` only
the cost distribution exists.  On a run that is not complete, every table is
analysed over the partitions present (their counts are reported).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ..atomic import open_regular, read_regular
from ..errors import IoError, OutputError, SchemaError
from ..layout import TRAINING_DIR, simulation_dir
from ..schemas import COST_COMPONENTS, table
from ._deps import load_duckdb
from .run import ANALYSED_TABLES, RunDirectory, as_run

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CONVERGENCE_FILE",
    "CONVERGENCE_REQUIRED",
    "DEFICIT_TOLERANCE_MWH",
    "QUANTILES",
    "RANK_TIMING_DIR",
    "STAT_KEYS",
    "analyse_run",
    "analyse_simulation",
    "cost_components",
    "entity_names",
    "load_duckdb",
    "read_convergence",
    "read_rank_totals",
    "run_results",
    "scenario_cost_table",
]

QUANTILES: Final = (0.05, 0.25, 0.5, 0.75, 0.95)
STAT_KEYS: Final = ("p5", "p25", "p50", "p75", "p95")
"""Keys of :data:`QUANTILES` in the result dictionaries."""
DEFICIT_TOLERANCE_MWH: Final = 1e-3
"""A stage has a deficit when its deficit energy exceeds this (1 kWh: ignores LP round-off)."""
HISTOGRAM_BINS: Final = 40
_TOTALS: Final = ("total_cost", "immediate_cost", "future_cost")
_QLIST: Final = "[" + ", ".join(repr(q) for q in QUANTILES) + "]"
# entities.csv entity_type_code (SPEC §8 codes.json entity_type)
_ENTITY_CODES: Final = {"hydros": 0, "thermals": 1, "buses": 2}
CONVERGENCE_FILE: Final = table("convergence").path
"""``training/convergence.parquet``, relative to the output directory."""
RANK_TIMING_DIR: Final = table("rank_timing").path
"""``training/timing/mpi_ranks.parquet`` (a directory of ``part-rank-NNNN.parquet``), relative."""


def entity_names(output_dir: str | Path) -> dict[str, dict[int, str]]:
    """``{"hydros"|"thermals"|"buses": {id: name}}`` from ``training/dictionaries/entities.csv`` ({} if absent)."""
    path = Path(output_dir) / TRAINING_DIR / "dictionaries" / "entities.csv"
    names: dict[str, dict[int, str]] = {k: {} for k in _ENTITY_CODES}
    by_code = {v: k for k, v in _ENTITY_CODES.items()}
    try:
        with open_regular(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                kind = by_code.get(int(row["entity_type_code"]))
                if kind is not None:
                    names[kind][int(row["entity_id"])] = row["name"]
    except FileNotFoundError:
        pass
    except (OSError, KeyError, ValueError, csv.Error):  # a FIFO there is refused (IoError), never waited on
        return {k: {} for k in _ENTITY_CODES}  # names are cosmetic: fall back to ids
    return names


# ------------------------------------------------------------------ training files
def _read_regular_parquet(path: Path, columns: list[str] | None) -> Any:
    """A small Parquet file read whole through :func:`read_regular` (a FIFO or device: IoError), then decoded.

    Never a Python file handed to pyarrow: pyarrow reads one through its I/O
    thread pool, and a worker may drop the last reference to what it read
    (a Python ``bytes``) after the read returned.  If the interpreter is
    exiting by then (a report that failed on the next file), the worker
    needs the GIL, cannot have it, and the process aborts ("terminate called
    without an active exception", exit 134: 3 of ~180 failing reports here).
    An in-memory ``BufferReader`` reads synchronously, on this thread.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = read_regular(path)
    return pq.ParquetFile(pa.BufferReader(pa.py_buffer(data))).read(columns=columns, use_threads=False)


def _read_parquet(path: Path, rel: str, columns: Sequence[str] | None = None) -> Any:
    """A training Parquet file, opened without blocking (a FIFO or device there is an IoError naming it)."""
    try:
        return _read_regular_parquet(path, list(columns) if columns else None)
    except IoError:
        raise
    except OSError as exc:
        if not path.exists():
            raise IoError.from_os_error(path, exc) from exc
        raise SchemaError(rel, None, f"not readable Parquet: {exc}") from exc
    except Exception as exc:  # any reader failure names the file
        raise SchemaError(rel, None, f"not readable Parquet: {exc}") from exc


CONVERGENCE_REQUIRED: Final = ("iteration", "lower_bound")
"""The convergence columns every producer writes; the others are filled with None when a version lacks them."""


def read_convergence(run: RunDirectory | str | os.PathLike[str]) -> dict[str, list[Any]] | None:
    """``training/convergence.parquet`` as columns, under this package's names (None when absent).

    On this package's runs every column of the schema is required.  On a
    Cobre tree only ``iteration`` and ``lower_bound`` are; Cobre 0.18's
    ``upper_bound`` is returned as ``upper_bound_mean`` (its
    ``upper_bound_kind`` is kept), and a column the version does not write
    is a list of None.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.

    Returns
    -------
    dict or None
        Column name -> one value per iteration.

    Raises
    ------
    SchemaError
        The file is not readable Parquet, or lacks a required column (named).
    """
    r = as_run(run)
    path = r.path / CONVERGENCE_FILE
    if not path.exists():
        return None
    t = _read_parquet(path, CONVERGENCE_FILE)
    names = table("convergence").names
    if r.spec_columns:
        required: Sequence[str] = names
    else:
        required = CONVERGENCE_REQUIRED
        if "upper_bound" in t.column_names and "upper_bound_mean" not in t.column_names:
            t = t.rename_columns(["upper_bound_mean" if c == "upper_bound" else c for c in t.column_names])
    missing = [c for c in required if c not in t.column_names]
    if missing:
        raise SchemaError(CONVERGENCE_FILE, missing[0], f"column {missing[0]!r} missing")
    result: dict[str, list[Any]] = t.to_pydict()
    for c in names:
        result.setdefault(c, [None] * t.num_rows)
    return result


def read_rank_totals(out: RunDirectory | str | os.PathLike[str]) -> dict[str, Any] | None:
    """Per-rank sums over iterations of ``training/timing/mpi_ranks.parquet`` (None when absent).

    Returns ``{"rank": [...], "forward"|"backward"|"communication"|"idle": [seconds per rank],
    "lp_solves": [...], "scenarios_processed": [...], "rows": n}``.
    """
    import numpy as np

    d = (out.path if isinstance(out, RunDirectory) else Path(out)) / RANK_TIMING_DIR
    parts = sorted(d.glob("part-rank-*.parquet")) if d.is_dir() else []
    if not parts:
        return None
    import pyarrow as pa

    t = pa.concat_tables([_read_parquet(p, f"{RANK_TIMING_DIR}/{p.name}") for p in parts])
    rank = t.column("rank").to_numpy()
    ranks = np.unique(rank)
    pos = np.searchsorted(ranks, rank)
    res: dict[str, Any] = {"rank": [int(r) for r in ranks], "rows": t.num_rows}
    for key, col, scale in (("forward", "forward_time_ms", 1e-3), ("backward", "backward_time_ms", 1e-3),
                            ("communication", "communication_time_ms", 1e-3), ("idle", "idle_time_ms", 1e-3),
                            ("lp_solves", "lp_solves", 1), ("scenarios_processed", "scenarios_processed", 1)):
        v = np.bincount(pos, weights=t.column(col).to_numpy().astype(float), minlength=len(ranks)) * scale
        res[key] = [round(float(x), 3) if scale != 1 else int(x) for x in v]
    return res


# ------------------------------------------------------------------ simulation analyses
def _clean(v: Any) -> Any:
    """JSON-safe float (NaN/inf -> None)."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _series(rows: Sequence[tuple[Any, ...]], stages: list[int], label: str, unit: str) -> dict[str, Any]:
    """A per-stage series from rows ``(stage_id, count, mean, [quantiles])`` aligned on ``stages``."""
    by_stage = {int(r[0]): r for r in rows}
    out: dict[str, Any] = {"label": label, "unit": unit, "scenarios": [], "mean": []}
    for k in STAT_KEYS:
        out[k] = []
    for s in stages:
        r = by_stage.get(s)
        out["scenarios"].append(int(r[1]) if r else 0)
        out["mean"].append(_clean(r[2]) if r else None)
        qs = list(r[3]) if r and r[3] is not None else [None] * len(QUANTILES)
        for k, q in zip(STAT_KEYS, qs):
            out[k].append(_clean(q))
    return out


class _Engine:
    """One duckdb connection; every query error becomes an :class:`OutputError` naming the file."""

    def __init__(self, run: RunDirectory) -> None:
        self.duckdb = load_duckdb()
        self.con = self.duckdb.connect()
        self.con.execute("set enable_progress_bar = false")  # stdout is the report's, never duckdb's
        # a temp table filled from thousands of files in insertion order keeps a block per file and
        # column (350 MB for the costs of 2,000 small scenarios); every query here orders explicitly
        self.con.execute("set preserve_insertion_order = false")
        self.run_dir = run
        self.output_dir = run.path
        self.files: dict[str, list[Path]] = run.partitions
        self._schemas: dict[str, list[str]] = {}

    def columns(self, table_name: str) -> list[str]:
        """The column names of ``table_name`` (its first listed file's schema)."""
        if table_name not in self._schemas:
            import pyarrow.parquet as pq

            f = self.files[table_name][0]
            try:
                self._schemas[table_name] = list(pq.read_schema(f).names)
            except Exception as exc:  # any reader failure names the file
                raise SchemaError(f.relative_to(simulation_dir(self.output_dir)).as_posix(), None,
                                  f"not readable Parquet ({type(exc).__name__}: {exc}); "
                                  "run `cobre-mpi-io validate` on the output directory") from exc
        return self._schemas[table_name]

    def missing(self, table_name: str, needed: Sequence[str], res: dict[str, Any], *quantities: str) -> bool:
        """On a tree another producer wrote: mark ``quantities`` unavailable when a column is absent.

        On this package's runs a missing column is an error, raised by the query (:meth:`_explain`).
        """
        if self.run_dir.spec_columns:
            return False
        have = self.columns(table_name)
        absent = [c for c in needed if c not in have]
        for q in quantities if absent else ():
            res["unavailable"][q] = (f"column {absent[0]!r} is not in the {table_name} table "
                                     f"{self.run_dir.producer_label} wrote")
        return bool(absent)

    def source(self, table_name: str) -> str:
        """The ``read_parquet`` of exactly the listed partitions of ``table_name``.

        ``scenario_id`` comes from the Hive path, or from the file when it is a column (Cobre 0.18).
        """
        paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in self.files[table_name])
        if "scenario_id" in self.columns(table_name):
            return f"read_parquet([{paths}], hive_partitioning=false)"
        return f"read_parquet([{paths}], hive_partitioning=true, hive_types={{'scenario_id': INTEGER}})"

    def run(self, table_name: str, sql: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        try:
            rel = self.con.sql(sql)
            return list(rel.fetchall()) if rel is not None else []
        except self.duckdb.Error as exc:
            raise self._explain(table_name, columns, exc) from exc

    def execute(self, table_name: str, sql: str, columns: Sequence[str]) -> None:
        try:
            self.con.execute(sql)
        except self.duckdb.Error as exc:
            raise self._explain(table_name, columns, exc) from exc

    def _explain(self, table_name: str, columns: Sequence[str], exc: Exception) -> OutputError:
        """Find the partition file duckdb choked on (first one pyarrow cannot read the columns of)."""
        import pyarrow.parquet as pq

        sim = simulation_dir(self.output_dir)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for f in self.files.get(table_name, []):
            try:
                with pq.ParquetFile(f) as pf:
                    missing = [c for c in columns if c not in pf.schema_arrow.names]
                    if missing:
                        return SchemaError(f.relative_to(sim).as_posix(), missing[0],
                                           f"column {missing[0]!r} missing (the report needs {', '.join(columns)})")
                    pf.read(columns=list(columns))
            except OutputError:
                raise
            except Exception as cause:  # noqa: BLE001 - any reader failure names this file
                return SchemaError(f.relative_to(sim).as_posix(), None,
                                   f"not readable Parquet ({type(cause).__name__}: {cause}); "
                                   "run `cobre-mpi-io validate` on the output directory")
        return SchemaError(f"simulation/{table(table_name).directory}", None,
                           f"the report's query failed: {msg}")


def cost_components(columns: Sequence[str], producer: str = "cobre_mpi_io") -> tuple[str, ...]:
    """The cost components of a costs table: the spec's 14 on this package's runs, else every ``*_cost``.

    Parameters
    ----------
    columns : sequence of str
        The costs table's column names.
    producer : str
        ``"cobre_mpi_io"``: the spec's :data:`~cobre_mpi_io.schemas.COST_COMPONENTS`; any other:
        the ``*_cost`` columns but ``total_cost``, ``immediate_cost`` and ``future_cost``.

    Returns
    -------
    tuple of str
    """
    if producer == "cobre_mpi_io":
        return tuple(COST_COMPONENTS)
    return tuple(c for c in columns if c.endswith("_cost") and c not in _TOTALS)


def _costs(eng: _Engine, stages_out: list[int], res: dict[str, Any], extra: dict[str, Any]) -> None:
    have = eng.columns("costs")
    components = cost_components(have, "cobre_mpi_io" if eng.run_dir.spec_columns else eng.run_dir.output_format)
    comps = ", ".join(components)
    base = ["stage_id", "block_id", "total_cost", "immediate_cost"]
    if eng.missing("costs", base, res, "total_cost", "immediate_cost", "cost_distribution"):
        return
    discount = "discount_factor" if "discount_factor" in have or eng.run_dir.spec_columns else "1.0"
    cols = [*base, "discount_factor", *components]
    eng.execute("costs", f"""create or replace temp table cs as
        select scenario_id, stage_id, total_cost, immediate_cost, {discount} as discount_factor, {comps}
        from {eng.source('costs')} where block_id is null""", cols)
    stages = [int(r[0]) for r in eng.run("costs", "select distinct stage_id from cs order by 1", cols)]
    stages_out.extend(s for s in stages if s not in stages_out)
    per = res["per_stage"]
    for col, label in (("total_cost", "Total cost (immediate + future)"), ("immediate_cost", "Immediate cost")):
        rows = eng.run("costs", f"""select stage_id, count(*), avg({col}), quantile_cont({col}, {_QLIST})
                        from cs group by 1 order by 1""", cols)
        per[col] = _series(rows, stages, label, "$")
    if not eng.files.get("buses") and "deficit_cost" in components:
        # detail stage: no buses table, the deficit cost says whether there was one
        rows = eng.run("costs", """select stage_id, avg((deficit_cost > 0)::double) from cs group by 1""", cols)
        p = {int(r[0]): _clean(r[1]) for r in rows}
        res["per_stage"]["deficit_probability"] = {
            "label": "Deficit probability (deficit_cost > 0)", "unit": "1",
            "source": "costs.deficit_cost > 0 (no buses table at this detail level)",
            "values": [p.get(s) for s in stages]}
    sums = "".join(f", sum({c} * discount_factor)" for c in components)
    rows = eng.run("costs", f"""select scenario_id, sum(immediate_cost * discount_factor){sums}
                    from cs group by 1 order by 1""", cols)
    tot = np.asarray(rows, dtype=float).reshape(len(rows), 2 + len(components))
    ids = tot[:, 0].astype(np.int64)
    by = {c: tot[:, 2 + i] for i, c in enumerate(components)}
    res["cost_distribution"] = _distribution(
        ids, tot[:, 1], by, "sum over stages of immediate_cost × discount_factor (costs, stage-level rows)")
    extra["scenario_costs"] = _scenario_table(ids, tot[:, 1], by)


def _distribution(scenario_ids: np.ndarray, totals: np.ndarray, components: dict[str, np.ndarray],
                  source: str) -> dict[str, Any]:
    """Statistics, histogram, worst scenarios and component shares of the per-scenario cost."""
    n = int(totals.size)
    if n == 0:
        return {"unit": "$", "scenarios": 0, "source": source}
    qs = np.quantile(totals, QUANTILES)
    order = np.argsort(totals)[::-1]
    tail = order[: max(1, math.ceil(0.05 * n))]
    counts, edges = np.histogram(totals, bins=min(HISTOGRAM_BINS, max(1, n // 5)))
    comp_mean = {c: float(v.mean()) for c, v in components.items()}
    total_mean = float(totals.mean())
    return {
        "unit": "$", "scenarios": n, "source": source,
        "mean": _clean(total_mean), "std": _clean(totals.std(ddof=1)) if n > 1 else None,
        "min": _clean(totals.min()), **{k: _clean(q) for k, q in zip(STAT_KEYS, qs)},
        "max": _clean(totals.max()), "cvar95": _clean(totals[tail].mean()),
        "histogram": {"edges": [_clean(e) for e in edges], "counts": [int(c) for c in counts]},
        "worst_scenarios": [{"scenario_id": int(scenario_ids[i]), "cost": _clean(totals[i])} for i in order[:5]],
        "components": {c: {"mean": _clean(m), "share": _clean(m / total_mean) if total_mean else None}
                       for c, m in sorted(comp_mean.items(), key=lambda kv: -abs(kv[1]))},
    }


def _entity_series(rows: Sequence[tuple[Any, ...]], stages: list[int], names: dict[int, str], label: str,
                   unit: str, entity: str) -> dict[str, Any]:
    """Per-entity per-stage series from rows ``(stage_id, entity_id, count, mean, [quantiles])``."""
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for r in rows:
        grouped.setdefault(int(r[1]), []).append((r[0], r[2], r[3], r[4]))
    return {"label": label, "unit": unit, "entity": entity,
            "entities": {str(e): {"name": names.get(e, f"{entity} {e}"), **_series(g, stages, label, unit)}
                         for e, g in sorted(grouped.items())}}


def _buses(eng: _Engine, stages: list[int], res: dict[str, Any], names: dict[int, str]) -> None:
    cols = ["stage_id", "block_id", "bus_id", "load_mw", "load_mwh", "deficit_mwh", "spot_price"]
    if eng.missing("buses", cols, res, "deficit", "spot_price"):
        return
    eng.execute("buses", f"""create or replace temp table bs as
        select scenario_id, stage_id, bus_id,
               coalesce(sum(spot_price * h) / nullif(sum(h), 0), avg(spot_price)) as price,
               sum(deficit_mwh) as deficit
        from (select scenario_id, stage_id, bus_id, spot_price, deficit_mwh,
                     load_mwh / nullif(load_mw, 0) as h from {eng.source('buses')})
        group by 1, 2, 3""", cols)
    rows = eng.run("buses", f"""select stage_id, bus_id, count(*), avg(price), quantile_cont(price, {_QLIST})
                    from bs group by 1, 2 order by 1, 2""", cols)
    res["per_bus"]["spot_price"] = _entity_series(
        rows, stages, names, "Marginal cost (spot price), hours-weighted over the stage's blocks", "$/MWh", "bus")
    tol = DEFICIT_TOLERANCE_MWH
    rows = eng.run("buses", f"""select stage_id, bus_id, avg((deficit > {tol})::double) from bs
                    group by 1, 2 order by 1, 2""", cols)
    prob: dict[str, list[Any]] = {}
    pos = {s: i for i, s in enumerate(stages)}
    for st, bus, p in rows:
        if int(st) in pos:
            prob.setdefault(str(int(bus)), [None] * len(stages))[pos[int(st)]] = _clean(p)
    res["per_bus"]["deficit_probability"] = {
        "label": "Deficit probability", "unit": "1", "entity": "bus",
        "entities": {b: {"name": names.get(int(b), f"bus {b}"), "values": v} for b, v in prob.items()}}
    rows = eng.run("buses", f"""with s as (select scenario_id, stage_id, sum(deficit) d from bs group by 1, 2)
                    select stage_id, count(*), avg(d), quantile_cont(d, {_QLIST}), avg((d > {tol})::double)
                    from s group by 1 order by 1""", cols)
    per = _series([r[:4] for r in rows], stages, "Deficit (unmet demand), all buses", "MWh")
    p = {int(r[0]): _clean(r[4]) for r in rows}
    per["probability"] = [p.get(s) for s in stages]
    res["per_stage"]["deficit"] = per
    res["per_stage"]["deficit_probability"] = {
        "label": "Deficit probability", "unit": "1",
        "source": f"share of scenarios with deficit > {tol} MWh in the stage", "values": per["probability"]}


def _hydros(eng: _Engine, stages: list[int], res: dict[str, Any], names: dict[int, str]) -> None:
    cols = ["stage_id", "block_id", "hydro_id", "storage_final_hm3", "generation_mwh"]
    if eng.missing("hydros", cols, res, "stored_volume", "hydro_generation"):
        return
    eng.execute("hydros", f"""create or replace temp table hs as
        select scenario_id, stage_id, hydro_id,
               arg_max(storage_final_hm3, coalesce(block_id, 0)) as v, sum(generation_mwh) as g
        from {eng.source('hydros')} group by 1, 2, 3""", cols)
    rows = eng.run("hydros", f"""with s as (select scenario_id, stage_id, sum(v) v, sum(g) g from hs group by 1, 2)
                    select stage_id, count(*), avg(v), quantile_cont(v, {_QLIST}),
                           avg(g), quantile_cont(g, {_QLIST}) from s group by 1 order by 1""", cols)
    res["per_stage"]["stored_volume"] = _series([r[:4] for r in rows], stages,
                                                "Stored volume, all hydros, end of stage", "hm3")
    res["per_stage"]["hydro_generation"] = _series([(r[0], r[1], r[4], r[5]) for r in rows], stages,
                                                   "Hydro generation, all hydros", "MWh")
    rows = eng.run("hydros", f"""select stage_id, hydro_id, count(*), avg(v), quantile_cont(v, {_QLIST})
                    from hs group by 1, 2 order by 1, 2""", cols)
    res["per_hydro"]["stored_volume"] = _entity_series(rows, stages, names, "Stored volume, end of stage", "hm3",
                                                       "hydro")


def _thermals(eng: _Engine, stages: list[int], res: dict[str, Any]) -> None:
    cols = ["stage_id", "generation_mwh"]
    if eng.missing("thermals", cols, res, "thermal_generation"):
        return
    rows = eng.run("thermals", f"""with s as (select scenario_id, stage_id, sum(generation_mwh) g
                                   from {eng.source('thermals')} group by 1, 2)
                    select stage_id, count(*), avg(g), quantile_cont(g, {_QLIST}) from s group by 1 order by 1""",
                   cols)
    res["per_stage"]["thermal_generation"] = _series(rows, stages, "Thermal generation, all thermals", "MWh")


def _scenario_table(ids: np.ndarray, totals: np.ndarray, components: dict[str, np.ndarray]) -> pa.Table:
    """The per-scenario costs as an Arrow table (``scenario_id``, ``total_cost``, one column per component)."""
    import pyarrow as pa

    cols: dict[str, Any] = {"scenario_id": pa.array(ids, pa.int32()), "total_cost": pa.array(totals, pa.float64())}
    cols.update({c: pa.array(v, pa.float64()) for c, v in components.items()})
    return pa.table(cols)


def _summary_totals(output_dir: Path, res: dict[str, Any], extra: dict[str, Any]) -> None:
    """Detail ``summary``: the cost distribution from ``scenario_totals.parquet`` (pyarrow, one small file)."""
    path = output_dir / table("scenario_totals").path
    rel = table("scenario_totals").path
    cols = ["scenario_id", "total_cost", *COST_COMPONENTS]
    try:
        t = _read_regular_parquet(path, cols)  # a FIFO there is refused, never waited on
    except FileNotFoundError:
        return
    except IoError:
        raise
    except Exception as exc:  # any reader failure names the file
        raise SchemaError(rel, None, f"not readable Parquet with the columns {cols}: {exc}") from exc
    res["tables"]["scenario_totals"] = {"files": 1, "scenarios": t.num_rows}
    ids = t.column("scenario_id").to_numpy()
    totals = t.column("total_cost").to_numpy().astype(float)
    by = {c: t.column(c).to_numpy().astype(float) for c in COST_COMPONENTS}
    res["cost_distribution"] = _distribution(ids, totals, by, "scenario_totals.parquet")
    extra["scenario_costs"] = _scenario_table(ids, totals, by)


def analyse_simulation(run: RunDirectory | str | os.PathLike[str], detail: str | None = None) -> dict[str, Any]:
    """Analyse the listed simulation partitions of a run across scenarios (see the module docs).

    Parameters
    ----------
    run : RunDirectory or path-like
        The run (:class:`~cobre_mpi_io.report.run.RunDirectory`) or its output directory.
    detail : str, optional
        The run's detail level, to say why a quantity is unavailable (default: the manifest's).

    Returns
    -------
    dict
        JSON-ready: ``engine``, ``seconds``, ``tables`` (files and scenarios
        per table read), ``scenarios``, ``quantiles``, ``stages``,
        ``per_stage`` (quantity -> series: ``label``, ``unit``, ``scenarios``,
        ``mean``, ``p5`` ... ``p95``, one value per stage), ``per_bus``,
        ``per_hydro`` (quantity -> ``entities`` -> series), ``cost_distribution``,
        ``unavailable`` (quantity -> why), ``producer``, ``listed_by`` and
        ``unlisted`` (files found but not read).

    Raises
    ------
    SchemaError
        A partition that is not readable Parquet or lacks a needed column (named).
    ImportError
        duckdb is not installed (the message says how to install it).
    """
    r = as_run(run)
    if detail is not None and detail != r.detail():
        res, _extra = analyse_run(r, detail)
        return res
    return run_results(r)


def run_results(run: RunDirectory) -> dict[str, Any]:
    """The simulation analyses of ``run`` (:func:`analyse_simulation`), computed once and cached on it.

    Parameters
    ----------
    run : RunDirectory
        The run.

    Returns
    -------
    dict
        See :func:`analyse_simulation`.
    """
    if "results" not in run._cache:
        run._cache["results"], run._cache["scenario_costs"] = analyse_run(run)
    res: dict[str, Any] = run._cache["results"]
    return res


def scenario_cost_table(run: RunDirectory) -> pa.Table | None:
    """The per-scenario costs (``scenario_id``, ``total_cost``, components) of ``run``, or None.

    Parameters
    ----------
    run : RunDirectory
        The run.

    Returns
    -------
    pyarrow.Table or None
        None when the run has no costs partitions and no ``scenario_totals.parquet``.
    """
    run_results(run)
    t: pa.Table | None = run._cache["scenario_costs"]
    return t


def analyse_run(run: RunDirectory, detail: str | None = None) -> tuple[dict[str, Any], pa.Table | None]:
    """:func:`analyse_simulation` and the per-scenario cost table (``None`` without costs).

    Parameters
    ----------
    run : RunDirectory
        The run.
    detail : str, optional
        The detail level (default: the manifest's).

    Returns
    -------
    tuple
        ``(results dict, pyarrow.Table or None)``.
    """
    t0 = time.perf_counter()
    out = run.path
    detail = detail if detail is not None else run.detail()
    files = {name: run.partitions.get(name, []) for name in ANALYSED_TABLES}
    res: dict[str, Any] = {
        "engine": None, "seconds": None, "quantiles": list(QUANTILES), "stages": [],
        "tables": {k: {"files": len(v), "scenarios": len(v)} for k, v in files.items() if v},
        "per_stage": {}, "per_bus": {}, "per_hydro": {}, "cost_distribution": None, "unavailable": {},
        "producer": run.producer_label, "listed_by": run.listed_by, "unlisted": list(run.unlisted),
    }
    extra: dict[str, Any] = {"scenario_costs": None}
    stages: list[int] = res["stages"]
    if any(files.values()):
        eng = _Engine(run)
        res["engine"] = f"duckdb {eng.duckdb.__version__}"
        names = entity_names(out)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("costs", lambda: _costs(eng, stages, res, extra)),
            ("buses", lambda: _buses(eng, stages, res, names["buses"])),
            ("hydros", lambda: _hydros(eng, stages, res, names["hydros"])),
            ("thermals", lambda: _thermals(eng, stages, res)),
        ]
        if not files["costs"]:  # stages from whatever table exists
            for name in ("hydros", "buses", "thermals"):
                if files[name]:
                    rows = eng.run(name, f"select distinct stage_id from {eng.source(name)} order by 1", ["stage_id"])
                    stages.extend(int(r[0]) for r in rows)
                    break
        for name, step in steps:
            if files[name]:
                step()
        eng.con.close()
    else:
        _summary_totals(out, res, extra)
    needs = {"total_cost": "costs", "immediate_cost": "costs", "deficit": "buses", "spot_price": "buses",
             "stored_volume": "hydros", "hydro_generation": "hydros", "thermal_generation": "thermals"}
    written = {"full": ("costs", "buses", "hydros", "thermals"), "stage": ("costs", "hydros"), "summary": ()}
    res["detail"] = detail
    if detail == "summary" and not any(files.values()):
        res["unavailable"]["per_stage"] = "detail 'summary' keeps only the per-scenario totals"
    else:
        for q, t in needs.items():
            if not files[t] and q not in res["unavailable"]:
                res["unavailable"][q] = (f"no {t} table at detail {detail!r}" if t not in written.get(detail or "", (t,))
                                         else f"no {t} partitions")
    if res["cost_distribution"] is None and "cost_distribution" not in res["unavailable"]:
        res["unavailable"]["cost_distribution"] = "no costs partitions and no scenario_totals.parquet"
    res["scenarios"] = max([v["scenarios"] for v in res["tables"].values()], default=0)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res, extra["scenario_costs"]
