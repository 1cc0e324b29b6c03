"""MPI tests of the agreement toolkit, the start-of-run handshake and fail-fast (run at 1, 2 and 3 ranks).

Every assertion is on values gathered from every rank, so every rank reaches the same verdict.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import gathered, world_comm

from cobre_mpi_io import mpi
from cobre_mpi_io.claim import acquire_run
from cobre_mpi_io.errors import IoError, OutputError, SchemaError
from cobre_mpi_io.layout import CLAIM_NAME
from cobre_mpi_io.manifest import read_simulation_manifest
from cobre_mpi_io.simulation import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result

SMALL = System.synthetic("small")


@pytest.fixture
def shared_dir(mpi_tmp_path: Path) -> Path:
    return mpi_tmp_path


@pytest.mark.mpi(min_size=1)
def test_run_agreed_raises_the_lowest_failing_ranks_error_everywhere() -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    assert mpi.run_agreed(comm, lambda: rank * 2, "x") == rank * 2

    def fail_on_last() -> None:
        if rank == size - 1:
            raise ValueError(f"bad on {rank}")
    with pytest.raises(OutputError) as info:
        mpi.run_agreed(comm, fail_on_last, "thing")
    msgs = gathered(comm, str(info.value))
    assert len(set(msgs)) == 1 and f"bad on {size - 1}" in msgs[0] and getattr(info.value, "agreed", False)


@pytest.mark.mpi(min_size=1)
def test_run_on_root_broadcasts_result_or_error() -> None:
    comm = world_comm()
    assert gathered(comm, mpi.run_on_root(comm, lambda: {"v": 42}, "x")) == [{"v": 42}] * comm.Get_size()

    def boom() -> None:
        raise SchemaError("f.json", "col", "broken on root")
    with pytest.raises(SchemaError, match="broken on root") as info:
        mpi.run_on_root(comm, boom, "x")
    assert getattr(info.value, "agreed", False)


@pytest.mark.mpi(min_size=2)
def test_ranks_that_do_not_see_the_output_directory_are_named(shared_dir: Path) -> None:
    """Rank 1 looks at another directory (like a node-local /tmp): every rank raises, naming rank 1."""
    comm = world_comm()
    rank = comm.Get_rank()
    out = shared_dir / ("run" if rank != 1 else "elsewhere")
    with pytest.raises(IoError) as info:
        acquire_run(comm, out)
    msgs = gathered(comm, str(info.value).split(": ", 1)[1])  # the path differs here only because of the test
    assert len(set(msgs)) == 1, msgs
    assert "not the same on every rank" in msgs[0] and "rank(s) 1" in msgs[0] and mpi.hostname() in msgs[0]
    assert not (shared_dir / "run" / CLAIM_NAME).exists()  # rank 0 took its claim back
    comm.Barrier()


@pytest.mark.mpi(min_size=2)
def test_writers_refuse_a_directory_not_shared_before_writing(shared_dir: Path) -> None:
    comm = world_comm()
    rank = comm.Get_rank()
    out = shared_dir / ("run" if rank != 1 else "private")
    with pytest.raises(IoError, match="not the same on every rank"):
        SimulationParquetWriter(out, SMALL, SimulationConfig(num_scenarios=4), comm)
    comm.Barrier()
    listing = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert gathered(comm, listing) == [[]] * comm.Get_size()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_one_failing_rank_stops_the_others_within_a_few_scenarios(shared_dir: Path) -> None:
    """Rank 1 raises after 2 scenarios; the others (0.1 s per scenario, 200 each) stop within seconds."""
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 200 * size
    out = shared_dir / "run"
    written = 0
    outcome = None
    t_raise = None
    try:
        with SimulationParquetWriter(out, SMALL, SimulationConfig(num_scenarios=n), comm) as w:
            for k, sid in enumerate(w.pending_scenarios()):
                if rank == 1 and k == 2:
                    t_raise = time.time()
                    raise RuntimeError("injected on rank 1")
                w.write_scenario(synthetic_result(SMALL, sid, 1))
                written += 1
                time.sleep(0.1)
    except OutputError as exc:
        outcome = str(exc)
    ends = gathered(comm, (written, outcome, time.time()))
    t_raise = gathered(comm, t_raise)[1]
    assert all(o is not None and "injected on rank 1" in o for _, o, _ in ends), ends
    # fail-fast: nobody got anywhere near its 200 scenarios (detection is per scenario, 0.1 s apart)
    assert all(w <= 60 for w, _, _ in ends), [w for w, _, _ in ends]
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert m.status == "failed" and m.failures[0].rank == 1 and "injected on rank 1" in m.failures[0].message
    assert not (out / "simulation" / "_SUCCESS").exists() and not (out / CLAIM_NAME).exists()
    if comm.Get_rank() == 0:
        print(f"fail-fast: job ended {max(t for _, _, t in ends) - t_raise:.2f} s after the raise")


@pytest.mark.mpi(min_size=2)
def test_progress_counts_reach_rank_0_without_collectives(shared_dir: Path) -> None:
    comm = world_comm()
    mon = mpi.job_monitor(comm)
    mon.new_epoch()
    rank, size = comm.Get_rank(), comm.Get_size()
    mon.report_progress("phase", 10 + rank, force=True)
    comm.Barrier()
    time.sleep(0.2)
    total = mon.progress_total("phase") if rank == 0 else None
    assert gathered(comm, total)[0] == sum(10 + r for r in range(size))
    mon.new_epoch()
    comm.Barrier()
