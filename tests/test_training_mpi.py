"""Training output under MPI (run with ``mpiexec -n 2`` and ``-n 3``, ``--with-mpi``).

Every assertion that depends on files is checked on rank 0 and the verdict
is broadcast, so every rank passes or fails together.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from mpi4py import MPI

from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import OutputError
from cobre_mpi_io.hashing import sha256_file
from cobre_mpi_io.manifest import read_training_manifest
from cobre_mpi_io.results import write_results
from cobre_mpi_io.schemas import table
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.training import synthetic_training
from cobre_mpi_io.training.writer import RANK_TIMING_DIR, RankTimingRecord, TrainingParquetWriter

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]

COMM = MPI.COMM_WORLD
SYSTEM = System.synthetic("small")
ITERS, FP = 7, 5


def _verdict(check) -> None:  # type: ignore[no-untyped-def]
    """Run ``check`` on rank 0; every rank fails with its message if it failed."""
    msg = None
    if COMM.rank == 0:
        try:
            check()
        except AssertionError as exc:
            msg = f"rank 0: {exc}"
    msg = COMM.bcast(msg, root=0)
    assert msg is None, msg


def test_write_results_collective(mpi_tmp_path: Path) -> None:
    out = mpi_tmp_path / "run"
    size = COMM.size
    st = synthetic_training(SYSTEM, ITERS, size, FP, seed=4)
    res = write_results(out, st.to_training_output(COMM.rank), None, SYSTEM,
                        RunConfig(forward_passes=FP, upper_bound_evaluation=True), comm=COMM)
    # the same result on every rank
    all_res = COMM.allgather((res.training_manifest, res.metadata.to_dict(), res.training_files))
    assert all(r == all_res[0] for r in all_res)
    assert res.metadata.environment["num_ranks"] == size

    def check() -> None:
        d = out / RANK_TIMING_DIR
        parts = sorted(p.name for p in d.iterdir())
        assert parts == [f"part-rank-{r:04d}.parquet" for r in range(size)], parts
        t = pq.read_table(d)
        assert t.schema.names == table("rank_timing").names
        assert t.num_rows == ITERS * size
        assert sorted(set(t.column("rank").to_pylist())) == list(range(size))
        for p in d.iterdir():
            s = pq.read_schema(p)
            assert [(f.name, f.type, f.nullable) for f in s] == \
                [(f.name, f.type, f.nullable) for f in table("rank_timing").arrow_schema]
        per_it = duckdb.sql(f"select iteration, sum(scenarios_processed)::int, count(distinct rank)::int "
                            f"from read_parquet('{d}/*.parquet') group by iteration order by iteration").fetchall()
        assert per_it == [(k, FP, size) for k in range(1, ITERS + 1)]
        assert pl.read_parquet(str(d / "*.parquet")).height == ITERS * size
        conv = pq.read_table(out / "training" / "convergence.parquet")
        assert conv.num_rows == ITERS and conv.column("forward_passes").to_pylist() == [FP] * ITERS
        assert pq.read_table(out / "training" / "timing" / "iterations.parquet").num_rows == ITERS
        m = read_training_manifest(out / "training" / "_manifest.json")
        assert m.status == "complete" and m.world_size == size and m.iterations_completed == ITERS
        md = json.loads((out / "training" / "metadata.json").read_text())
        assert md["data_integrity"]["convergence_hash"] == sha256_file(out / "training" / "convergence.parquet")
        assert md["environment"]["num_ranks"] == size
        assert (out / "training" / "_SUCCESS").exists()
        assert not [p for p in out.rglob("*.tmp")]

    _verdict(check)


def test_checkpoint_is_collective_free_and_finalize_agrees(mpi_tmp_path: Path) -> None:
    out = mpi_tmp_path / "ckpt"
    st = synthetic_training(SYSTEM, 4, COMM.size, FP, seed=1)
    w = TrainingParquetWriter(out, COMM)
    for r in st.iterations[:2]:
        w.write_iteration(r)
    w.write_rank_timing(st.rank_timing(COMM.rank)[:2])
    if COMM.rank == COMM.size - 1:
        w.checkpoint()  # only one rank checkpoints: must not block
    COMM.Barrier()

    def check() -> None:
        d = out / RANK_TIMING_DIR
        assert [p.name for p in d.iterdir()] == [f"part-rank-{COMM.size - 1:04d}.parquet"]
        assert not (out / "training" / "convergence.parquet").exists()

    _verdict(check)
    for r in st.iterations[2:]:
        w.write_iteration(r)
    w.write_rank_timing(st.rank_timing(COMM.rank)[2:])
    files = w.finalize()
    assert len(files) == COMM.size + 2

    def check2() -> None:
        assert pq.read_table(out / RANK_TIMING_DIR).num_rows == 4 * COMM.size

    _verdict(check2)


def test_a_failure_on_one_rank_raises_the_same_error_everywhere(mpi_tmp_path: Path) -> None:
    out = mpi_tmp_path / "fail"
    st = synthetic_training(SYSTEM, 3, COMM.size, FP, seed=2)
    tr = st.to_training_output(COMM.rank)
    bad = COMM.size - 1
    if COMM.rank == bad:  # this rank brings a row of another rank
        tr = st.to_training_output(COMM.rank, rank_timings=(RankTimingRecord(iteration=1, rank=0),))
    err: OutputError | None = None
    try:
        write_results(out, tr, None, SYSTEM, RunConfig(forward_passes=FP), comm=COMM)
    except OutputError as exc:
        err = exc
    got = COMM.allgather(None if err is None else (type(err).__name__, str(err)))
    assert all(g is not None for g in got), got
    assert len(set(got)) == 1, got
    assert got[0][0] == "SchemaError" and f"rank {bad}" in got[0][1]

    def check() -> None:
        m = read_training_manifest(out / "training" / "_manifest.json")
        assert m.status != "complete"
        assert not (out / "training" / "_SUCCESS").exists()

    _verdict(check)


def test_stale_parts_of_a_larger_run_disappear(mpi_tmp_path: Path) -> None:
    out = mpi_tmp_path / "stale"
    if COMM.rank == 0:
        d = out / RANK_TIMING_DIR
        d.mkdir(parents=True)
        (d / "part-rank-0042.parquet").write_bytes(b"stale")
    COMM.Barrier()
    st = synthetic_training(SYSTEM, 2, COMM.size, FP, seed=3)
    write_results(out, st.to_training_output(COMM.rank), None, SYSTEM, RunConfig(forward_passes=FP), comm=COMM)

    def check() -> None:
        assert pq.read_table(out / RANK_TIMING_DIR).num_rows == 2 * COMM.size

    _verdict(check)
