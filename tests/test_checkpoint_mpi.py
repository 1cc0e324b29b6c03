"""MPI tests of the policy checkpoint: rank 0 alone writes, every rank agrees.

Run with ``mpiexec -n 3 python -m pytest --with-mpi tests/test_checkpoint_mpi.py``
(also at 2 and 4 ranks).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import gathered, world_comm

from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.policy import checkpoint as ckpt_mod
from cobre_mpi_io.policy import codec as codec_mod
from cobre_mpi_io.policy.checkpoint import (
    PolicyCheckpointer,
    list_checkpoints,
    read_policy_checkpoint,
    write_policy_checkpoint,
)
from cobre_mpi_io.testing.policy import synthetic_policy


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_only_rank_zero_creates_files(mpi_tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comm = world_comm()
    rank = comm.Get_rank()
    created: list[str] = []
    real_atomic, real_symlink, real_ensure = codec_mod.atomic_write, ckpt_mod.os.symlink, ckpt_mod.ensure_dir

    def spy_atomic(path: Any, **kw: Any) -> Any:
        created.append(str(path))
        return real_atomic(path, **kw)

    def spy_symlink(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
        created.append(str(dst))
        real_symlink(src, dst, *a, **kw)

    def spy_ensure(d: Path) -> Path:
        created.append(str(d))
        return real_ensure(d)

    monkeypatch.setattr(codec_mod, "atomic_write", spy_atomic)
    monkeypatch.setattr(ckpt_mod.os, "symlink", spy_symlink)
    monkeypatch.setattr(ckpt_mod, "ensure_dir", spy_ensure)
    policy = mpi_tmp_path / "policy"
    # only rank 0 has the policy; the other ranks pass nothing
    kwargs = synthetic_policy(5, 3, 2, with_vertices=True).write_kwargs() if rank == 0 else {
        "stage_cuts": None, "stage_bases": None, "metadata": None}
    rec = write_policy_checkpoint(policy, **kwargs, comm=comm)
    monkeypatch.undo()
    counts = gathered(comm, len(created))
    assert counts[0] > 0 and all(c == 0 for c in counts[1:]), counts
    records = gathered(comm, rec)
    assert all(r == records[0] for r in records)
    assert rec.iteration == 2 and "cuts/stage_002.bin" in rec.files
    back = read_policy_checkpoint(policy, expected_num_stages=3, expected_state_dimension=5)
    assert gathered(comm, back.metadata.completed_iterations) == [2] * comm.Get_size()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_error_on_root_raised_on_every_rank(mpi_tmp_path: Path) -> None:
    comm = world_comm()
    rank = comm.Get_rank()
    policy = mpi_tmp_path / "policy"
    write_policy_checkpoint(policy, **synthetic_policy(3, 2, 1).write_kwargs(), comm=comm)
    bad = synthetic_policy(3, 2, 2)
    bad.cuts[0].slot_index = np.zeros(bad.cuts[0].n_cuts, dtype=np.uint32)  # duplicate slots
    kwargs = bad.write_kwargs() if rank == 0 else {"stage_cuts": None, "stage_bases": None, "metadata": None}
    try:
        write_policy_checkpoint(policy, **kwargs, comm=comm)
        outcome = None
    except SchemaError as exc:
        outcome = (exc.file, exc.column)
    assert gathered(comm, outcome) == [("cuts/stage_000.bin", "slot_index")] * comm.Get_size()
    assert read_policy_checkpoint(policy).metadata.completed_iterations == 1


class _TrainingWriter:
    def __init__(self) -> None:
        self.calls = 0

    def checkpoint(self) -> None:
        self.calls += 1


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_checkpointer_retention_and_signal_on_one_rank(mpi_tmp_path: Path) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    tw = _TrainingWriter()
    stopped_at = None
    with PolicyCheckpointer(mpi_tmp_path, every=2, keep=3, comm=comm, training_writer=tw) as ck:
        for it in range(1, 50):
            if it == 9 and rank == size - 1:  # only the last rank receives SIGTERM
                signal.raise_signal(signal.SIGTERM)
            ck.after_iteration(it, lambda it=it: synthetic_policy(3, 2, it).write_kwargs() if rank == 0 else {})
            pol = mpi_tmp_path / "policy"
            if it >= 2:  # latest is always a complete checkpoint, as seen from every rank
                expected = it if ck.interrupted else it - it % 2
                assert read_policy_checkpoint(pol).metadata.completed_iterations == expected
            if ck.interrupted:
                stopped_at = it
                break
        ck.final(**(synthetic_policy(3, 2, ck.last_completed_iteration).write_kwargs() if rank == 0 else {}))
    assert gathered(comm, stopped_at) == [9] * size
    assert gathered(comm, tw.calls) == [5] * size  # 2, 4, 6, 8 and the interrupted 9
    names = [p.name for p in list_checkpoints(mpi_tmp_path / "policy")]
    assert names == ["iter_000006", "iter_000008", "iter_000009"]
    assert read_policy_checkpoint(mpi_tmp_path / "policy").metadata.completed_iterations == 9
