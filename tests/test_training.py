"""Training Parquet tables (serial, world size 1) and the synthetic training history."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from mpi4py import MPI

from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.schemas import table
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.training import synthetic_training
from cobre_mpi_io.training.writer import (
    CONVERGENCE_PATH,
    ITERATION_TIMING_PATH,
    RANK_TIMING_DIR,
    IterationRecord,
    RankTimingRecord,
    TrainingParquetWriter,
    rank_timing_path,
)

SYSTEM = System.synthetic("small")


def _feed(out: Path, iterations: int = 6, ub: bool = True, fp: int = 5) -> TrainingParquetWriter:
    st = synthetic_training(SYSTEM, iterations, 1, fp, seed=3, upper_bound_evaluation=ub)
    w = TrainingParquetWriter(out, MPI.COMM_SELF)
    for r in st.iterations:
        w.write_iteration(r)
    w.write_rank_timing(st.rank_timing(0))
    return w


def test_schemas_of_every_training_file_match_the_spec(tmp_path: Path) -> None:
    w = _feed(tmp_path)
    records = w.finalize()
    assert sorted(r.path for r in records) == sorted([CONVERGENCE_PATH, ITERATION_TIMING_PATH, rank_timing_path(0)])
    for rel, name in ((CONVERGENCE_PATH, "convergence"), (ITERATION_TIMING_PATH, "iteration_timing"),
                      (rank_timing_path(0), "rank_timing")):
        schema = pq.read_schema(tmp_path / rel)
        expected = table(name).arrow_schema
        assert schema.names == expected.names
        for f, e in zip(schema, expected):
            assert (f.name, f.type, f.nullable) == (e.name, e.type, e.nullable), rel
        assert pq.read_metadata(tmp_path / rel).num_rows == 6
    conv = pq.read_table(tmp_path / CONVERGENCE_PATH).to_pydict()
    assert conv["iteration"] == [1, 2, 3, 4, 5, 6]
    assert all(np.diff(conv["lower_bound"]) > 0)


def test_upper_bound_columns_are_null_when_evaluation_is_off(tmp_path: Path) -> None:
    _feed(tmp_path, ub=False).finalize()
    t = pq.read_table(tmp_path / CONVERGENCE_PATH)
    for c in ("upper_bound_mean", "upper_bound_std", "gap_percent"):
        assert t.column(c).null_count == t.num_rows == 6
    assert t.column("lower_bound").null_count == 0


def test_nan_is_null_in_nullable_columns_and_rejected_elsewhere(tmp_path: Path) -> None:
    w = TrainingParquetWriter(tmp_path, MPI.COMM_SELF)
    w.write_iteration(IterationRecord(iteration=1, lower_bound=1.0, upper_bound_mean=math.nan, gap_percent=None))
    with pytest.raises(SchemaError) as ei:
        w.write_iteration(IterationRecord(iteration=2, lower_bound=math.nan))
    assert ei.value.column == "lower_bound"
    with pytest.raises(SchemaError):
        w.write_iteration(IterationRecord(iteration=1, lower_bound=2.0))  # not increasing
    with pytest.raises(SchemaError):
        w.write_iteration(IterationRecord(iteration=2, lower_bound=2.0, cuts_added=1.5))  # type: ignore[arg-type]
    assert w.iterations == 1  # failed records leave nothing behind
    with pytest.raises(SchemaError) as ei:
        w.write_rank_timing(RankTimingRecord(iteration=1, rank=3))
    assert ei.value.column == "rank"
    w.finalize()
    t = pq.read_table(tmp_path / CONVERGENCE_PATH)
    assert t.column("upper_bound_mean").null_count == 1
    with pytest.raises(SchemaError):
        w.write_iteration(IterationRecord(iteration=2, lower_bound=2.0))  # finalized


def test_checkpoint_keeps_history_up_to_the_last_checkpoint(tmp_path: Path) -> None:
    st = synthetic_training(SYSTEM, 5, 1, 4, seed=1)
    w = TrainingParquetWriter(tmp_path, MPI.COMM_SELF)
    for r in st.iterations[:3]:
        w.write_iteration(r)
    w.write_rank_timing(st.rank_timing(0)[:3])
    w.checkpoint()
    for r in st.iterations[3:]:
        w.write_iteration(r)
    w.write_rank_timing(st.rank_timing(0)[3:])
    # "crash" here: the files hold the three checkpointed iterations, readable
    assert pq.read_table(tmp_path / CONVERGENCE_PATH).column("iteration").to_pylist() == [1, 2, 3]
    assert pq.read_table(tmp_path / RANK_TIMING_DIR).num_rows == 3
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    w.finalize()
    assert pq.read_table(tmp_path / CONVERGENCE_PATH).column("iteration").to_pylist() == [1, 2, 3, 4, 5]
    assert w.iteration_records == st.iterations
    assert w.rank_timing_records == st.rank_timing(0)


def test_rank_timing_directory_reads_as_one_table(tmp_path: Path) -> None:
    _feed(tmp_path).finalize()
    d = tmp_path / RANK_TIMING_DIR
    a = pq.read_table(d)
    p = pl.read_parquet(str(d / "*.parquet"))
    q = duckdb.sql(f"select count(*), sum(scenarios_processed) from read_parquet('{d}/*.parquet')").fetchall()[0]
    assert a.num_rows == p.height == q[0] == 6
    assert q[1] == 6 * 5
    assert a.schema.names == table("rank_timing").names


def test_stale_part_files_of_larger_runs_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / rank_timing_path(5)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    _feed(tmp_path).finalize()
    assert not stale.exists()


def test_synthetic_training_is_deterministic_and_consistent() -> None:
    a = synthetic_training(SYSTEM, 20, 3, 7, seed=11)
    b = synthetic_training(SYSTEM, 20, 3, 7, seed=11)
    assert a == b
    assert a != synthetic_training(SYSTEM, 20, 3, 7, seed=12)
    lb = [r.lower_bound for r in a.iterations]
    assert all(y > x for x, y in itertools.pairwise(lb))
    std = [r.upper_bound_std for r in a.iterations]
    assert std[-1] < std[0]
    for r in a.iterations:
        assert r.upper_bound_mean >= r.lower_bound  # type: ignore[operator]
        assert r.gap_percent == pytest.approx((r.upper_bound_mean - r.lower_bound) / r.upper_bound_mean * 100)
    for k in range(20):
        rows = [a.rank_timing(rank)[k] for rank in range(3)]
        assert sum(x.scenarios_processed for x in rows) == 7
        assert [x.scenarios_processed for x in rows] == [3, 2, 2]  # round-robin
        assert sum(x.lp_solves for x in rows) == a.iterations[k].lp_solves
        assert min(x.idle_time_ms for x in rows) == 0
    busy = [sum(x.forward_time_ms + x.backward_time_ms for x in a.rank_timing(r)) for r in range(3)]
    assert max(busy) > 1.05 * min(busy)  # some imbalance
    cuts = a.iterations
    assert cuts[-1].cuts_active == sum(r.cuts_added - r.cuts_removed for r in cuts)
    no_ub = synthetic_training(SYSTEM, 3, 1, 2, seed=1, upper_bound_evaluation=False)
    assert all(r.upper_bound_mean is None and r.gap_percent is None for r in no_ub.iterations)
    assert replace(no_ub.iterations[0]) == no_ub.iterations[0]
