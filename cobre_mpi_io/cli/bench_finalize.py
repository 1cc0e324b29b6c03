"""Benchmark of the simulation commit point (``cobre-mpi-io bench finalize``).

Collective over ``MPI.COMM_WORLD``.  Every rank fabricates the
:class:`~cobre_mpi_io.simulation.RankPart` it would hold after writing its
round-robin share of ``--scenarios x --tables`` partitions (real relative
paths from :func:`~cobre_mpi_io.layout.partition_file`, production-scale
row counts, byte sizes, 16-hex-digit xxhash64 values, and the per-scenario
cost totals every rank also gathers), without writing any Parquet file.
Each repeat then times, between barriers, on rank 0:

1. ``gather``: :func:`~cobre_mpi_io.mpi.gather_to_root` of the RankParts
   (mpi4py's pickle + ``MPI_Gatherv`` + unpickle at the root); the pickled
   size of every rank's part is measured (untimed) with mpi4py's pickler;
2. ``assembly``: the pure part of the commit on the gathered parts,
   :func:`~cobre_mpi_io.simulation.commit.merged_files` and
   :func:`~cobre_mpi_io.simulation.commit.assemble_manifest` (completeness of
   every scenario, the manifest with its combined checksum), and ``to_dict``;
3. ``write``: :func:`~cobre_mpi_io.manifest.write_simulation_manifest`
   (``to_dict``, JSON serialization, atomic fsynced write); ``json`` is the
   serialization alone (same ``json.dumps`` settings), for the split;
4. ``total``: the commit path of
   :meth:`~cobre_mpi_io.simulation.SimulationParquetWriter.finalize` through
   the same functions the writer calls: gather, rank 0's
   :func:`~cobre_mpi_io.simulation.commit.commit` (the check that every listed
   file exists with its size, over sparse files of the recorded sizes laid out
   untimed beforehand; the manifest; ``_SUCCESS``) and the broadcast of the
   outcome. ``file_check_seconds`` is that file check alone.  ``bcast`` is
   the broadcast of the full manifest, timed alone;
   ``bcast_nofiles`` the same broadcast with an empty ``files`` mapping.

For the comparison in the report, ``gather_columnar`` times the gather of
the same records as five NumPy columns (table index, scenario id, rows,
bytes, xxhash64 as ``uint64``), the representation proposed to replace
per-record objects; the paths are recomputed from (table, scenario).

Medians over ``--repeats`` are reported with every repeat.  Files go below
``OUTPUT/bench_finalize`` (emptied first); the last repeat's finalized run
is left in ``OUTPUT/bench_finalize/finalize/simulation``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from .. import mpi
from ..atomic import missing_files
from ..identity import RunIdentity
from ..layout import MANIFEST_NAME, partition_file, simulation_dir
from ..manifest import SimulationManifest, utc_now, write_simulation_manifest
from ..parquet import FileRecord, ParquetConfig
from ..schemas import COST_COMPONENTS
from ..simulation.commit import CommitContext, RankPart, assemble_manifest, commit, merged_files
from ..system.model import System
from .args import int_in_range, positive_int

__all__ = ["add_finalize_bench_arguments", "fabricate_rank_part", "finalize_bench_main", "run_finalize_bench"]

BENCH_DIR = "bench_finalize"
_TIMINGS = ("gather_seconds", "assembly_seconds", "write_seconds", "total_seconds")
_EXTRA_TIMINGS = ("files_dict_seconds", "manifest_assembly_seconds", "to_dict_seconds", "file_check_seconds",
                  "json_seconds", "bcast_seconds", "bcast_nofiles_seconds", "gather_columnar_seconds",
                  "pickle_root_part_seconds", "unpickle_all_parts_seconds")


def _tables(n: int) -> tuple[str, ...]:
    names = System.synthetic("small").simulation_tables
    if not 1 <= n <= len(names):
        raise ValueError(f"--tables must be between 1 and {len(names)} (the simulation tables of a system)")
    return names[:n]


def _rows_per_table(tables: tuple[str, ...]) -> dict[str, int | None]:
    prod = System.synthetic("production")
    return {t: prod.expected_rows(t) for t in tables}


def fabricate_rank_part(scenarios: int, tables: tuple[str, ...], rank: int, world_size: int,
                        rows_of: dict[str, int | None] | None = None) -> RankPart:
    """The RankPart rank ``rank`` holds after writing its round-robin share (records only).

    Deterministic and independent of ``world_size`` per file, so the
    combined checksum is the same for every number of ranks.  Nothing is
    written to disk.

    Parameters
    ----------
    scenarios : int
        Total number of scenarios of the run (ids ``0..scenarios-1``).
    tables : tuple of str
        Names of the partitioned simulation tables written per scenario.
    rank : int
        The rank whose share is fabricated.
    world_size : int
        Number of ranks the scenarios are dealt round-robin over.
    rows_of : dict of str to int or None, optional
        Rows per file of each table; ``None`` for a table means a variable
        count (0 to 63 rows, derived from the file's hash).  Default: the
        expected rows of the synthetic ``"production"`` system.

    Returns
    -------
    RankPart
        One :class:`~cobre_mpi_io.parquet.FileRecord` per (owned scenario,
        table) with its relative path, rows, fabricated byte size and
        xxhash64, the owned scenario ids, one cost-totals row per owned
        scenario and the byte and row totals; no failures.
    """
    rows_of = rows_of if rows_of is not None else _rows_per_table(tables)
    owned = mpi.owned_scenarios(scenarios, rank, world_size, "round-robin")
    files: list[FileRecord] = []
    totals: list[tuple[Any, ...]] = []
    total_bytes = total_rows = 0
    for sid in owned:
        for t in tables:
            path = partition_file(t, sid)
            h = xxhash.xxh64_intdigest(path.encode(), seed=0)
            rows = rows_of[t]
            if rows is None:  # generic_violations: variable
                rows = h % 64
            nbytes = 1024 + rows * 22 + (h >> 52)
            files.append(FileRecord(path, rows, nbytes, f"{h:016x}"))
            total_bytes += nbytes
            total_rows += rows
        comps = [float((sid * 31 + i) % 997) * 1.5e3 for i in range(len(COST_COMPONENTS))]
        totals.append((sid, float(sum(comps)), *comps))
    return RankPart(rank, tuple(files), tuple(owned), (), (), (), False, tuple(totals), 0.0, total_bytes,
                    total_rows)


def _columnar(part: RankPart, tables: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The same records as NumPy columns (the proposed gather payload)."""
    n = len(part.files)
    idx = {t: i for i, t in enumerate(tables)}
    per = len(tables)
    return {
        "table": np.fromiter((idx[tables[i % per]] for i in range(n)), dtype=np.uint8, count=n),
        "scenario_id": np.repeat(np.asarray(part.scenarios_written, dtype=np.uint32), per),
        "rows": np.fromiter((r.rows for r in part.files), dtype=np.int64, count=n),
        "bytes": np.fromiter((r.bytes for r in part.files), dtype=np.int64, count=n),
        "xxhash64": np.fromiter((int(r.xxhash64, 16) for r in part.files), dtype=np.uint64, count=n),
    }


def _assemble(parts: list[RankPart], ctx: CommitContext) -> tuple[SimulationManifest, dict[str, Any],
                                                                      dict[str, float]]:
    """The pure assembly of the commit (:func:`~cobre_mpi_io.simulation.commit.assemble_manifest`), timed."""
    t0 = time.perf_counter()
    files = merged_files(parts)
    t1 = time.perf_counter()
    manifest, _err = assemble_manifest(parts, files, ctx)
    t2 = time.perf_counter()
    d = manifest.to_dict()
    t3 = time.perf_counter()
    return manifest, d, {"files_dict_seconds": t1 - t0, "manifest_assembly_seconds": t2 - t1,
                         "to_dict_seconds": t3 - t2, "assembly_seconds": t3 - t0}


def _lay_out_files(sim_dir: Path, part: RankPart) -> None:
    """Sparse files of the recorded sizes, so the commit's file check stats real files (untimed)."""
    for r in part.files:
        path = sim_dir / r.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.truncate(r.bytes)


def _fresh_dir(comm: Any, path: Path) -> None:
    if mpi.rank_of(comm) == 0:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    mpi.barrier(comm)


def run_finalize_bench(scenarios: int, n_tables: int, output: str | os.PathLike[str], repeats: int = 5,
                       comm: Any = None) -> dict[str, Any] | None:
    """Run the benchmark (collective over ``comm``); the result dict on rank 0, None elsewhere.

    Parameters
    ----------
    scenarios : int
        Total scenarios of the fabricated run, >= 1.
    n_tables : int
        Number of partitioned tables per scenario, the first ``n_tables``
        simulation tables of a system (1 to 10).
    output : path-like
        Scratch directory; its ``bench_finalize`` subdirectory is emptied
        first and the last repeat's committed run is left in it.
    repeats : int, default 5
        Number of timed repeats, >= 1; medians are reported.
    comm : MPI communicator, optional
        Default: ``MPI.COMM_WORLD`` (resolved by :func:`~cobre_mpi_io.mpi.resolve_comm`).

    Returns
    -------
    dict or None
        On rank 0: world size, record count, gathered and manifest byte
        sizes, the commit status and checksum, the median of each timing in
        seconds (``*_seconds``) and every repeat's values under
        ``all_repeats``.  ``None`` on the other ranks.

    Raises
    ------
    ValueError
        If ``scenarios`` or ``repeats`` is below 1, or ``n_tables`` is out
        of range.
    """
    comm = mpi.resolve_comm(comm)
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    if scenarios < 1 or repeats < 1:
        raise ValueError("--scenarios and --repeats must be >= 1")
    tables = _tables(n_tables)
    root = Path(output) / BENCH_DIR
    _fresh_dir(comm, root)

    part = fabricate_rank_part(scenarios, tables, rank, size)
    pickled = mpi.pickle_dumps(part)
    sizes = mpi.gather_to_root(comm, len(pickled))
    cols = _columnar(part, tables)
    col_sizes = mpi.gather_to_root(comm, len(mpi.pickle_dumps(cols)))
    records = len(part.files)
    records_all = mpi.gather_to_root(comm, records)
    system = System.synthetic("small")
    ctx = CommitContext(scenarios, "full", tables, utc_now(), size,
                        RunIdentity(system.system_hash, "", "full", scenarios), ParquetConfig())
    commit_root = root / "finalize"
    _fresh_dir(comm, commit_root)
    _lay_out_files(simulation_dir(commit_root), part)  # every rank its own files, as it would have written
    mpi.barrier(comm)

    runs: dict[str, list[float]] = {k: [] for k in _TIMINGS + _EXTRA_TIMINGS}
    manifest_bytes = 0
    checksum = None
    status = None
    pieces_dir = simulation_dir(root / "pieces")
    if rank == 0:
        pieces_dir.mkdir(parents=True)
    for rep in range(repeats):
        # (1) gather of the RankParts (pickle, Gatherv, unpickle)
        mpi.barrier(comm)
        t0 = time.perf_counter()
        parts = mpi.gather_to_root(comm, part)
        t_gather = time.perf_counter() - t0
        # columnar alternative, same transport
        mpi.barrier(comm)
        t0 = time.perf_counter()
        cparts = mpi.gather_to_root(comm, cols)
        t_cgather = time.perf_counter() - t0
        del cparts
        manifest: SimulationManifest | None = None
        if rank == 0:
            assert parts is not None
            runs["gather_seconds"].append(t_gather)
            runs["gather_columnar_seconds"].append(t_cgather)
            t0 = time.perf_counter()
            mpi.pickle_dumps(part)
            runs["pickle_root_part_seconds"].append(time.perf_counter() - t0)
            blobs = [mpi.pickle_dumps(p) for p in parts]
            t0 = time.perf_counter()
            for b in blobs:
                mpi.pickle_loads(b)
            runs["unpickle_all_parts_seconds"].append(time.perf_counter() - t0)
            del blobs
            # (2) assembly
            manifest, d, sub = _assemble(parts, ctx)
            for k, v in sub.items():
                runs[k].append(v)
            # (3) serialization and atomic write
            t0 = time.perf_counter()
            json.dumps(d, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
            runs["json_seconds"].append(time.perf_counter() - t0)
            del d
            mpath = pieces_dir / MANIFEST_NAME
            t0 = time.perf_counter()
            write_simulation_manifest(mpath, manifest)
            runs["write_seconds"].append(time.perf_counter() - t0)
            manifest_bytes = mpath.stat().st_size
        del parts
        # the broadcast of the outcome that finalize performs, alone (full manifest, then without files)
        mpi.barrier(comm)
        t0 = time.perf_counter()
        mpi.bcast_from_root(comm, (manifest, None))
        t_b = time.perf_counter() - t0
        mpi.barrier(comm)
        t0 = time.perf_counter()
        mpi.bcast_from_root(comm, (replace(manifest, files={}) if manifest is not None else None, None))
        t_bn = time.perf_counter() - t0
        del manifest
        if rank == 0:
            runs["bcast_seconds"].append(t_b)
            runs["bcast_nofiles_seconds"].append(t_bn)

        # (4) the commit path of finalize: gather, rank 0's commit (file check, manifest, _SUCCESS), broadcast
        mpi.barrier(comm)
        t0 = time.perf_counter()
        parts = mpi.gather_to_root(comm, part)
        outcome: tuple[SimulationManifest | None, Any] = (None, None)
        if rank == 0:
            assert parts is not None
            sim_dir = simulation_dir(commit_root)
            (sim_dir / "_SUCCESS").unlink(missing_ok=True)
            full, err = commit(sim_dir, parts, ctx)
            outcome = (replace(full, files={}), err)
        final, _ = mpi.bcast_from_root(comm, outcome)
        t_total = time.perf_counter() - t0
        if rank == 0:
            assert final is not None
            runs["total_seconds"].append(t_total)
            checksum, status = full.checksum_value, final.status
            assert parts is not None
            t1 = time.perf_counter()  # the commit's file check alone (one stat per listed file)
            missing_files(simulation_dir(commit_root), {r.path: r.bytes for p in parts for r in p.files})
            runs["file_check_seconds"].append(time.perf_counter() - t1)
        del parts

    if rank != 0:
        return None
    assert sizes is not None and col_sizes is not None and records_all is not None
    n_records = int(sum(records_all))
    result: dict[str, Any] = {
        "benchmark": "finalize",
        "world_size": size,
        "scenarios": scenarios,
        "tables": len(tables),
        "records": n_records,
        "repeats": repeats,
        "status": status,
        "checksum": checksum,
        "gather_bytes_total": int(sum(sizes)),
        "gather_bytes_per_rank_max": int(max(sizes)),
        "gather_bytes_per_record": round(sum(sizes) / n_records, 1) if n_records else None,
        "columnar_gather_bytes_total": int(sum(col_sizes)),
        "manifest_bytes": manifest_bytes,
        "manifest_bytes_per_record": round(manifest_bytes / n_records, 1) if n_records else None,
        "manifest_path": str(simulation_dir(root / "finalize") / MANIFEST_NAME),
    }
    for k in _TIMINGS + _EXTRA_TIMINGS:
        result[k] = statistics.median(runs[k])
    result["all_repeats"] = {k: runs[k] for k in _TIMINGS + _EXTRA_TIMINGS}
    return result


def add_finalize_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``cobre-mpi-io bench finalize``."""
    parser.add_argument("--scenarios", type=positive_int, default=2000, metavar="N",
                        help="total scenarios, >= 1 (default 2000)")
    parser.add_argument("--tables", type=int_in_range(1, 10), default=10, metavar="N",
                        help="partitioned tables per scenario, 1..10 (default 10)")
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="scratch directory (its bench_finalize subdirectory is emptied)")
    parser.add_argument("--repeats", type=positive_int, default=5, metavar="N",
                        help="measurements, >= 1 (default 5)")
    parser.add_argument("--json", action="store_true", help="print compact JSON (default: indented)")
    return parser


def finalize_bench_main(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed ``args``; rank 0 prints one JSON object. Returns the exit code."""
    result = run_finalize_bench(args.scenarios, args.tables, args.output, args.repeats)
    if result is not None:
        sys.stdout.write(json.dumps(result, indent=None if args.json else 2) + "\n")
        sys.stdout.flush()
    return 0
