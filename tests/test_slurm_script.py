"""``scripts/slurm_demo.sbatch`` run as ``sbatch`` would, with a stand-in ``srun``, signalled as Slurm does.

The stand-in (``scripts/slurm/srun``) starts the job step's tasks through the launcher from settings
(``MPIEXEC``/``MPIEXEC_NUMPROC_FLAG``/``MPIEXEC_PREFLAGS``, the same as :func:`conftest.mpiexec_argv`).
The script runs with bash in the submit directory with ``SLURM_*`` set and no ``$SCRATCH`` (under
``set -u``). Slurm's ``--signal=TERM@T`` (no ``B:``) sends SIGTERM to every task of the job step, not to
the batch shell: the test sends it to every rank process. Then the ranks must have checkpointed the last
completed iteration, ``training/_manifest.json`` must say ``interrupted``, and submitting the same script
again must resume (the output directory is stable across submissions) and complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import mpiexec, run_cli

from cobre_mpi_io.testing.processes import parent_pids

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parent.parent
SBATCH = ROOT / "scripts" / "slurm_demo.sbatch"
STANDIN = ROOT / "scripts" / "slurm"
NTASKS = 2
ITERATIONS = 120


def slurm_env(submit_dir: Path, demo_args: str, **extra: str) -> dict[str, str]:
    """The environment of a batch script: the caller's minus Slurm/scratch settings, plus a job's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLURM_") and k not in ("SCRATCH", "OUT", "COBRE_VENV", "COBRE_DEMO_ARGS")}
    env.update({
        "PATH": os.pathsep.join([str(STANDIN), str(Path(sys.executable).parent), env.get("PATH", "")]),
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "cobre-mpi-io", "SLURM_NTASKS": str(NTASKS),
        "SLURM_NNODES": "1", "SLURM_SUBMIT_DIR": str(submit_dir),
        "COBRE_VENV": str(submit_dir / "no-such-venv"),  # cobre-mpi-io comes from PATH (this venv)
        "COBRE_DEMO_ARGS": demo_args, "MPIEXEC": mpiexec(),
    })
    env.update(extra)
    return env


def submit(submit_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", str(SBATCH)], cwd=submit_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def step_tasks(root: int) -> list[int]:
    """The rank processes below ``root``: demo processes that carry an MPI rank in their environment."""
    parents = parent_pids()
    found, stack = [], [root]
    while stack:
        parent = stack.pop()
        for kid in (p for p, pp in parents.items() if pp == parent):
            stack.append(kid)
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{kid}/cmdline").read_bytes()
                env = Path(f"/proc/{kid}/environ").read_bytes().split(b"\0")
                if b"cobre-mpi-io" in cmd and b"demo" in cmd and any(
                        kv.startswith((b"PMI_RANK=", b"OMPI_COMM_WORLD_RANK=")) for kv in env):
                    found.append(kid)
    return found


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return out


@pytest.mark.slow(33)
def test_time_limit_signal_reaches_the_ranks_and_resubmission_resumes(tmp_path: Path) -> None:
    env = slurm_env(tmp_path, f"--scenarios 6 --iterations {ITERATIONS} --iteration-seconds 0.05 "
                              "--checkpoint-every 5")
    out = tmp_path / "cobre-run"  # ${SCRATCH:-$PWD}/cobre-run with no $SCRATCH
    job = submit(tmp_path, env)
    try:
        deadline = time.monotonic() + 90
        ckpts = out / "policy" / "checkpoints"
        while not ckpts.is_dir() or len(list(ckpts.iterdir())) < 2:
            assert job.poll() is None, f"batch script ended early:\n{job.communicate()[0]}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        tasks = step_tasks(job.pid)
        assert len(tasks) == NTASKS, f"tasks of the step: {tasks}"
        for pid in tasks:  # Slurm --signal=TERM@T: every task of the step, not the batch shell
            os.kill(pid, signal.SIGTERM)
        log = finish(job, 90)
    finally:
        finish(job, 1) if job.poll() is None else None
    assert job.returncode != 0, log
    assert "interrupted" in log and "submit this script again" in log, log
    manifest = json.loads((out / "training" / "_manifest.json").read_text())
    assert manifest["status"] == "interrupted", log
    done = manifest["iterations"]["completed"]
    assert 10 <= done < ITERATIONS, manifest
    assert json.loads((out / "policy" / "metadata.json").read_text())["completed_iterations"] == done
    assert pq.read_table(out / "training" / "convergence.parquet").num_rows == done
    assert not (out / "training" / "_SUCCESS").exists()
    deadline = time.monotonic() + 30  # the job is over when its tasks are gone (reaped), as for Slurm
    while any(Path(f"/proc/{pid}").exists() for pid in tasks):
        assert time.monotonic() < deadline, "tasks still there 30 s after the batch script ended"
        time.sleep(0.05)

    again = submit(tmp_path, env)  # the same script, the same environment: resumes the same directory
    log2 = finish(again, 180)
    assert again.returncode == 0, log2
    assert "--resume" in log2, log2
    manifest = json.loads((out / "training" / "_manifest.json").read_text())
    assert manifest["status"] in ("complete", "converged"), manifest
    assert json.loads((out / "simulation" / "_manifest.json").read_text())["status"] == "complete"
    assert (out / "training" / "_SUCCESS").exists() and (out / "simulation" / "_SUCCESS").exists()
    assert run_cli("validate", str(out), check=False).returncode == 0

    third = submit(tmp_path, env)  # a finished run is only validated
    log3 = finish(third, 60)
    assert third.returncode == 0 and "already holds a complete run" in log3, log3


@pytest.mark.mpi_agnostic("where the batch script puts the output; its signal handling under each launcher: the time-limit test")
def test_output_goes_to_scratch_when_set(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = submit(tmp_path, slurm_env(tmp_path, "--scenarios 2 --iterations 1 --quiet", SCRATCH=str(scratch)))
    log = finish(job, 120)
    assert job.returncode == 0, log
    assert (scratch / "cobre-run" / "simulation" / "_SUCCESS").exists(), log
    assert not (tmp_path / "cobre-run").exists()
