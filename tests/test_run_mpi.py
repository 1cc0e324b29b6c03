"""The run handle under MPI (``mpiexec -n 2`` / ``-n 3``, ``--with-mpi``): one claim, agreed refusals.

Every verdict is gathered, so every rank passes or fails together.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import gathered, world_comm

from cobre_mpi_io import OutputError, RunConfig, System, open_run
from cobre_mpi_io.claim import read_claim
from cobre_mpi_io.identity import read_recorded_identity
from cobre_mpi_io.layout import CLAIM_NAME
from cobre_mpi_io.testing.simulation import synthetic_result

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]

SMALL = System.synthetic("small")


def test_run_handle_shares_one_claim_and_refuses_together(mpi_tmp_path: Path) -> None:
    comm = world_comm()
    out = mpi_tmp_path / "run"
    cfg = RunConfig(seed=5, num_scenarios=5)
    with open_run(out, SMALL, cfg, comm=comm) as run:
        token = read_claim(out)["token"]  # type: ignore[index]
        assert len(set(gathered(comm, token))) == 1  # one claim, seen by every rank
        with run.simulation_writer() as sw:
            for sid in sw.pending_scenarios():
                sw.write_scenario(synthetic_result(SMALL, sid, 5))
        manifest = sw.finalize()
        assert manifest.status == "complete"
    comm.Barrier()
    assert gathered(comm, (out / CLAIM_NAME).exists()) == [False] * comm.size
    rec = read_recorded_identity(out)
    assert rec is not None and rec.fingerprint == cfg.identity(SMALL).fingerprint

    # a fresh run on the finished directory: the same refusal on every rank, nothing written
    try:
        open_run(out, SMALL, cfg, comm=comm)
        seen = "opened"
    except OutputError as exc:
        seen = str(exc)
    views = gathered(comm, seen)
    assert len(set(views)) == 1 and "holds a finished run" in views[0], views
    # another seed on resume: refused on every rank, naming it
    try:
        open_run(out, SMALL, RunConfig(seed=6, num_scenarios=5), comm=comm, resume=True)
        seen = "opened"
    except OutputError as exc:
        seen = str(exc)
    views = gathered(comm, seen)
    assert len(set(views)) == 1 and "seed is 5 there and 6" in views[0], views
    assert gathered(comm, (out / CLAIM_NAME).exists()) == [False] * comm.size


def test_an_exception_on_every_rank_releases_the_claim(mpi_tmp_path: Path) -> None:
    comm = world_comm()
    out = mpi_tmp_path / "boom"
    with pytest.raises(RuntimeError, match="solver"), open_run(out, SMALL, RunConfig(num_scenarios=3),
                                                               comm=comm) as run:
        run.training_writer()
        raise RuntimeError("solver failed on every rank")
    comm.Barrier()
    assert gathered(comm, (out / CLAIM_NAME).exists()) == [False] * comm.size
