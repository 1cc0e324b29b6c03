"""``cobre-mpi-io bench simulation``: the simulation writer against pyarrow baselines.

Modes (``--mode``):

``write`` (default)
    Builds every owned payload in memory first (untimed), then times
    ``write_scenario`` for all owned scenarios plus ``finalize``; in the same
    run, on the same data and file count, times (a) ``pyarrow.parquet.write_table``
    with the same settings, one file per table per scenario; (b) the same
    with pyarrow's default encoding (dictionary on every column); (c)
    ``pyarrow.dataset.write_dataset`` with Hive partitioning and its default
    encoding; and (d) the same writer with its run journal switched off
    (``ours_without_journal``: the journal's own cost, as the ratio
    ``ours_over_ours_without_journal``). Each measurement is repeated ``--repeats`` times, interleaved,
    and the medians are reported. ``seconds`` is the slowest rank's.
``stream``
    Generates each scenario on the fly and writes it: peak RSS per rank as a
    function of the number of scenarios (memory bounded by the queue).
``overlap``
    A producer that spends as long computing each scenario (NumPy work that
    releases the GIL) as the writer spends writing it; reports the total
    against the larger of the two.

Rank 0 prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import mpi
from ..hashing import peak_rss_mb
from ..journal import _without_journal
from ..layout import partition_file, simulation_dir
from ..parquet import ParquetConfig
from ..schemas import table
from ..simulation.payload import SimulationScenarioResult, validate_result
from ..simulation.tables import build_table
from ..simulation.writer import SimulationConfig, SimulationParquetWriter, tables_for_detail
from ..system.model import System
from ..testing.simulation import synthetic_result
from .args import non_negative_int, positive_int

__all__ = ["add_simulation_bench_arguments", "simulation_bench_main"]


def add_simulation_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``cobre-mpi-io bench simulation``."""
    p.add_argument("--scale", choices=("small", "production"), default="production",
                   help="built-in system size (default production: 60 stages x 3 blocks, 160 hydros)")
    p.add_argument("--scenarios", type=positive_int, default=16, metavar="N",
                   help="scenarios written per measurement, >= 1 (default 16)")
    p.add_argument("--output", "-o", type=Path, required=True, help="scratch directory (emptied)")
    p.add_argument("--mode", choices=("write", "stream", "overlap"), default="write",
                   help="write: the writer against pyarrow baselines; stream: peak memory while streaming; "
                        "overlap: producer and I/O thread overlap (default write)")
    p.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                   help="measurements, >= 1 (default 3)")
    p.add_argument("--seed", type=non_negative_int, default=7, metavar="N",
                   help="random seed of the synthetic results, >= 0 (default 7)")
    p.add_argument("--durability", choices=("commit", "file", "none"), default="commit",
                   help="writer durability mode (default commit: one syncfs per rank before the manifest)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def _clean(path: Path) -> None:
    """Remove a scratch tree and flush, so the next timed run does not pay for it."""
    shutil.rmtree(path, ignore_errors=True)
    os.sync()


def _timed_collective(comm: Any, fn: Any) -> float:
    """Max over ranks of the wall time of ``fn`` (barrier before)."""
    mpi.barrier(comm)
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return float(max(mpi.allgather(comm, dt)))


def _ours(out: Path, system: System, payloads: list[SimulationScenarioResult], n: int, comm: Any,
          fsync: str) -> None:
    cfg = SimulationConfig(num_scenarios=n, durability=fsync)
    with SimulationParquetWriter(out, system, cfg, comm) as w:
        for r in payloads:
            w.write_scenario(r)


def _pyarrow_files(out: Path, tables: list[tuple[str, int, pa.Table]], default_encoding: bool,
                   cfg: ParquetConfig) -> None:
    sim = simulation_dir(out)
    made: set[Path] = set()
    for name, sid, tbl in tables:
        path = sim / partition_file(name, sid)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        kw: dict[str, Any] = {"compression": cfg.compression, "compression_level": cfg.compression_level}
        if not default_encoding:
            kw.update(row_group_size=cfg.row_group_size, use_dictionary=table(name).key_columns,
                      dictionary_pagesize_limit=cfg.dictionary_page_limit, write_statistics=True)
        pq.write_table(tbl, path, **kw)


def _write_dataset(out: Path, tables: list[tuple[str, int, pa.Table]], cfg: ParquetConfig) -> None:
    import pyarrow.dataset as pads  # here, not at the top: it imports pandas, 0.4 s of every CLI command's start

    sim = simulation_dir(out)
    fmt = pads.ParquetFileFormat()
    opts = fmt.make_write_options(compression=cfg.compression, compression_level=cfg.compression_level)
    by_table: dict[str, list[pa.Table]] = {}
    for name, sid, tbl in tables:
        by_table.setdefault(name, []).append(
            tbl.append_column("scenario_id", pa.array(np.full(tbl.num_rows, sid, np.int32))))
    part = pads.partitioning(pa.schema([("scenario_id", pa.int32())]), flavor="hive")
    for name, tbls in by_table.items():
        pads.write_dataset(pa.concat_tables(tbls), sim / table(name).directory, format="parquet",
                           partitioning=part, file_options=opts, existing_data_behavior="overwrite_or_ignore",
                           basename_template="data{i}.parquet", max_rows_per_group=cfg.row_group_size)


def _bench_write(args: argparse.Namespace, comm: Any, system: System) -> dict[str, Any]:
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    n = args.scenarios
    owned = mpi.owned_scenarios(n, rank, size)
    payloads = [synthetic_result(system, sid, args.seed) for sid in owned]
    names = tables_for_detail(system, "full")
    arrow_tables = []
    raw = 0
    for r in payloads:
        vr = validate_result(r, system)
        for name in names:
            t = build_table(name, vr.tables[name], system)
            raw += t.nbytes
            arrow_tables.append((name, r.scenario_id, t))
    cfg = ParquetConfig()
    fsync = args.durability
    root = Path(args.output)
    runs: dict[str, list[float]] = {"ours": [], "ours_without_journal": [], "pyarrow_same_settings": [],
                                    "pyarrow_default_encoding": [], "write_dataset": []}
    dirs = {k: root / k for k in runs}
    if rank == 0:
        for d in dirs.values():
            _clean(d)
    mpi.barrier(comm)
    for _ in range(args.repeats):
        runs["ours"].append(_timed_collective(comm, lambda: _ours(dirs["ours"], system, payloads, n, comm, fsync)))
        with _without_journal():  # the same writer recording nothing: the journal's own cost, measured in-run
            runs["ours_without_journal"].append(_timed_collective(
                comm, lambda: _ours(dirs["ours_without_journal"], system, payloads, n, comm, fsync)))
        runs["pyarrow_same_settings"].append(_timed_collective(
            comm, lambda: _pyarrow_files(dirs["pyarrow_same_settings"], arrow_tables, False, cfg)))
        runs["pyarrow_default_encoding"].append(_timed_collective(
            comm, lambda: _pyarrow_files(dirs["pyarrow_default_encoding"], arrow_tables, True, cfg)))
        runs["write_dataset"].append(_timed_collective(
            comm, lambda: _write_dataset(dirs["write_dataset"] / f"r{rank}", arrow_tables, cfg)))
        ours_bytes = _dir_bytes(simulation_dir(dirs["ours"]))
        same_bytes = _dir_bytes(simulation_dir(dirs["pyarrow_same_settings"]))
        default_bytes = _dir_bytes(simulation_dir(dirs["pyarrow_default_encoding"]))
        mpi.barrier(comm)
        if rank == 0:
            for d in dirs.values():
                _clean(d)
        mpi.barrier(comm)
    med = {k: statistics.median(v) for k, v in runs.items()}
    raw_total = sum(mpi.allgather(comm, raw))
    rows_total = sum(mpi.allgather(comm, sum(t.num_rows for _, _, t in arrow_tables)))
    files_total = sum(mpi.allgather(comm, len(arrow_tables)))
    rss = max(mpi.allgather(comm, peak_rss_mb()))
    return {
        "mode": "write", "scale": args.scale, "world_size": size, "scenarios": n, "repeats": args.repeats,
        "durability": fsync, "seconds": med["ours"], "seconds_all": runs["ours"], "files": files_total,
        "rows": rows_total, "bytes": ours_bytes, "raw_bytes": raw_total,
        "raw_mb_per_s": raw_total / 1e6 / med["ours"], "peak_rss_mb": rss,
        "baselines": {k: med[k] for k in ("pyarrow_same_settings", "pyarrow_default_encoding", "write_dataset")},
        "baselines_all": {k: runs[k] for k in ("pyarrow_same_settings", "pyarrow_default_encoding", "write_dataset")},
        "baseline_bytes": {"pyarrow_same_settings": same_bytes, "pyarrow_default_encoding": default_bytes},
        "ratios": {
            "ours_over_pyarrow_same_settings": med["ours"] / med["pyarrow_same_settings"],
            "pyarrow_default_encoding_over_ours": med["pyarrow_default_encoding"] / med["ours"],
            "write_dataset_over_ours": med["write_dataset"] / med["ours"],
            "ours_over_ours_without_journal": med["ours"] / med["ours_without_journal"],
        },
        "without_journal": med["ours_without_journal"], "without_journal_all": runs["ours_without_journal"],
    }


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet")) if path.exists() else 0


def _bench_stream(args: argparse.Namespace, comm: Any, system: System) -> dict[str, Any]:
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    out = Path(args.output) / "stream"
    if rank == 0:
        _clean(out)
    mpi.barrier(comm)
    rss0 = peak_rss_mb()
    cfg = SimulationConfig(num_scenarios=args.scenarios, durability=args.durability)

    def run() -> None:
        with SimulationParquetWriter(out, system, cfg, comm) as w:
            for sid in w.pending_scenarios():
                w.write_scenario(synthetic_result(system, sid, args.seed))

    secs = _timed_collective(comm, run)
    rss = mpi.allgather(comm, peak_rss_mb())
    if rank == 0:
        _clean(out)
    return {"mode": "stream", "scale": args.scale, "world_size": size, "scenarios": args.scenarios,
            "seconds": secs, "peak_rss_mb": max(rss), "peak_rss_mb_per_rank": rss,
            "rss_before_mb": rss0}


def _busy(seconds: float, work: np.ndarray) -> None:
    """NumPy work that releases the GIL, for about ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        np.sort(work)


def _bench_overlap(args: argparse.Namespace, comm: Any, system: System) -> dict[str, Any]:
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    n = args.scenarios
    owned = mpi.owned_scenarios(n, rank, size)
    payloads = [synthetic_result(system, sid, args.seed) for sid in owned]
    root = Path(args.output) / "overlap"
    fsync = args.durability
    if rank == 0:
        _clean(root)
    mpi.barrier(comm)
    write_only = _timed_collective(comm, lambda: _ours(root / "w", system, payloads, n, comm, fsync))
    per = write_only / max(len(owned), 1)
    work = np.random.default_rng(0).random(200_000)

    def produce() -> None:
        for _ in owned:
            _busy(per, work)

    produce_only = _timed_collective(comm, produce)

    def both() -> None:
        cfg = SimulationConfig(num_scenarios=n, durability=fsync)
        with SimulationParquetWriter(root / "b", system, cfg, comm) as w:
            for r in payloads:
                _busy(per, work)
                w.write_scenario(r)

    total = _timed_collective(comm, both)
    if rank == 0:
        _clean(root)
    return {"mode": "overlap", "scale": args.scale, "world_size": size, "scenarios": n,
            "write_only_seconds": write_only, "produce_only_seconds": produce_only, "seconds": total,
            "ratio_to_larger": total / max(write_only, produce_only)}


def simulation_bench_main(args: argparse.Namespace) -> int:
    """Run the benchmark (collective over ``MPI.COMM_WORLD``); rank 0 prints JSON."""
    comm = mpi.resolve_comm(None)
    system = System.synthetic(args.scale)
    fn = {"write": _bench_write, "stream": _bench_stream, "overlap": _bench_overlap}[args.mode]
    result = fn(args, comm, system)
    if mpi.rank_of(comm) == 0:
        print(json.dumps(result, indent=None if args.json else 2))
    return 0
