"""The run handle (cobre_mpi_io.run): one claim for the whole run, a used directory refused before any write.

Findings 10 and 11 of issue 14: the example run twice into one directory is refused and the first run
stays valid (under mpiexec -n 2); the standalone training and policy writers refuse a finished run; an
exception inside the run releases the claim; a non-empty directory that holds no run is refused, naming it
and a few of its entries, by the run handle and by ``demo``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import mpiexec_argv, run_cli, self_comm

from cobre_mpi_io import (
    IoError,
    ManifestError,
    PolicyCheckpointer,
    PolicyMetadata,
    Run,
    RunConfig,
    StageCuts,
    System,
    TrainingParquetWriter,
    open_run,
    validate_output,
    write_policy_checkpoint,
)
from cobre_mpi_io.claim import read_claim
from cobre_mpi_io.identity import read_recorded_identity
from cobre_mpi_io.layout import CLAIM_NAME
from cobre_mpi_io.run import check_output_directory

pytestmark = pytest.mark.timeout(300)

SMALL = System.synthetic("small")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "solver_integration.py"


def _snapshot(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "2", "-q")
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(src, out, symlinks=True)
    return out


def _cuts(system: System) -> list[StageCuts]:
    d = system.state_dimension
    return [StageCuts(stage_id=t, state_dimension=d, capacity=1, warm_start_count=0,
                      cut_ids=np.zeros(1, np.uint64), slot_index=np.zeros(1, np.uint32),
                      iteration=np.ones(1, np.uint32), forward_pass_idx=np.zeros(1, np.uint32),
                      scenario_idx=np.zeros(1, np.uint32), intercepts=np.ones(1), coefficients=np.zeros((1, d)))
            for t in range(system.num_stages)]


def _meta(system: System) -> PolicyMetadata:
    return PolicyMetadata(completed_iterations=1, state_dimension=system.state_dimension,
                          num_stages=system.num_stages, final_lower_bound=1.0, max_iterations=1, forward_passes=1,
                          rng_seed=0, config_hash="", system_hash=system.system_hash)


# ----------------------------------------------------------------------------- the handle
def test_run_holds_one_claim_and_records_identity_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = RunConfig(seed=3, num_scenarios=2)
    with open_run(out, SMALL, cfg, comm=self_comm()) as run:
        token = read_claim(out)["token"]  # type: ignore[index]
        rec = read_recorded_identity(out)
        assert rec is not None and rec.fingerprint == run.identity.fingerprint == cfg.identity(SMALL).fingerprint
        assert sorted(p.name for p in out.iterdir()) == [CLAIM_NAME, "_journal"]  # nothing else yet
        ck = run.checkpointer(install_signal_handlers=False)
        assert read_claim(out)["token"] == token  # type: ignore[index]  # shared, not taken again
        ck.close()
        assert (out / CLAIM_NAME).exists()  # the run still holds it
    assert not (out / CLAIM_NAME).exists()  # every share given back


def test_an_exception_inside_the_run_releases_the_claim(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="solver blew up"), open_run(out, SMALL, RunConfig(num_scenarios=2),
                                                                       comm=self_comm()) as run:
        run.training_writer()  # a writer that is never finalized still holds a share
        run.simulation_writer()
        raise RuntimeError("solver blew up")
    assert not (out / CLAIM_NAME).exists()
    # the run can be resumed with the same identity, and is refused with another
    with open_run(out, SMALL, RunConfig(num_scenarios=2), comm=self_comm(), resume=True):
        pass
    with pytest.raises(ManifestError, match="seed is 0 there and 9"):
        open_run(out, SMALL, RunConfig(seed=9, num_scenarios=2), comm=self_comm(), resume=True)
    assert not (out / CLAIM_NAME).exists()


def test_a_finished_run_is_refused_before_anything_is_written(finished_run: Path, tmp_path: Path) -> None:
    out = _copy(finished_run, tmp_path)
    before = _snapshot(out)
    cfg = RunConfig.coerce(read_recorded_identity(out).identity.config)  # type: ignore[union-attr]
    with pytest.raises(IoError, match=r"holds a finished run \(simulation/_SUCCESS") as err:
        Run(out, SMALL, cfg, self_comm())
    assert err.value.cause == "finished run"
    with pytest.raises(IoError, match="finished run"):
        TrainingParquetWriter(out, self_comm())
    with pytest.raises(IoError, match="finished run"):
        PolicyCheckpointer(out, comm=self_comm(), install_signal_handlers=False)
    with pytest.raises(IoError, match="finished run"):
        write_policy_checkpoint(out / "policy", _cuts(SMALL), [], _meta(SMALL), comm=self_comm())
    assert _snapshot(out) == before
    with Run(out, SMALL, cfg, self_comm(), resume=True) as run:  # resuming it is allowed
        assert run.resume


def test_a_directory_that_holds_no_run_is_refused_naming_entries(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    for i in range(7):
        (out / f"notes-{i}.txt").write_text("mine")
    (out / "data").mkdir()
    before = _snapshot(out)
    for resume in (False, True):
        with pytest.raises(IoError, match=r"holds no run \(data, notes-0.txt, notes-1.txt, notes-2.txt, "
                                          r"notes-3.txt, \.\.\. \(8 entries\)\)") as err:
            open_run(out, SMALL, RunConfig(num_scenarios=2), comm=self_comm(), resume=resume)
        assert str(out) in str(err.value)
    assert _snapshot(out) == before and not (out / CLAIM_NAME).exists() and not (out / "_journal").exists()
    check_output_directory(tmp_path / "new", resume=False)  # a new directory is fine
    proc = run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "1", "-q", check=False)
    assert proc.returncode == 1 and "holds no run (data, notes-0.txt" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and _snapshot(out) == before


def test_demo_refuses_an_unfinished_run_without_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "training").mkdir(parents=True)
    (out / "training" / "convergence.parquet").write_bytes(b"x")
    proc = run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "1", "-q", check=False)
    assert proc.returncode == 1 and "already holds a run (training/)" in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------- the example, twice
@pytest.mark.mpi_agnostic("the claim refuses a finished run; exit code and message of a refused run under each launcher: test_non_empty_output_is_refused_and_untouched")
def test_example_twice_into_one_directory_is_refused_and_the_first_stays_valid(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [*mpiexec_argv(2), sys.executable, str(EXAMPLE), str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    before = _snapshot(out)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 1, (second.stdout, second.stderr)
    assert "holds a finished run" in second.stderr and "Traceback" not in second.stderr, second.stderr
    assert _snapshot(out) == before  # no second checkpoint, no claim left behind
    assert not (out / CLAIM_NAME).exists()
    report = validate_output(out)
    assert report.valid, [str(p) for p in report.problems]
