"""Run identity, the exclusive claim and the start-of-run handshake (serial and through the CLI).

Each reproduction of the integrity issue is a test here: resuming with another seed or case, two writers
on one directory, a stale claim, a singleton launch, a file of another run, statuses after failures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import CASE_4REE, run_cli, self_comm, small_tmpfs

from cobre_mpi_io import mpi
from cobre_mpi_io.claim import acquire_run, boot_id, pid_namespace, read_claim
from cobre_mpi_io.errors import IoError, ManifestError
from cobre_mpi_io.identity import FOOTER_KEY, RunIdentity, check_same_identity, read_file_fingerprint
from cobre_mpi_io.layout import CLAIM_NAME
from cobre_mpi_io.simulation import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result

SMALL = System.synthetic("small")


def _ident(seed: int = 1, n: int = 4) -> RunIdentity:
    return RunIdentity(SMALL.system_hash, f"sha256:{seed:064x}", "full", n, config={"seed": seed})


def _write(out: Path, ident: RunIdentity, n: int = 4, **kw: Any) -> Any:
    cfg = SimulationConfig(num_scenarios=n, identity=ident, **kw)
    with SimulationParquetWriter(out, SMALL, cfg, self_comm()) as w:
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(SMALL, sid, 3))
    return w.manifest


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- identity
def test_identity_is_in_every_footer_and_manifest(tmp_path: Path) -> None:
    ident = _ident()
    m = _write(tmp_path, ident)
    assert m.status == "complete" and m.run_fingerprint == ident.fingerprint
    doc = json.loads((tmp_path / "simulation" / "_manifest.json").read_text())
    assert doc["run_fingerprint"] == ident.fingerprint
    assert RunIdentity.from_dict(doc["run_identity"]) == ident
    files = list((tmp_path / "simulation").rglob("*.parquet"))
    assert files and all(read_file_fingerprint(f) == ident.fingerprint for f in files)
    assert pq.read_metadata(files[0]).metadata[FOOTER_KEY.encode()] == ident.fingerprint.encode()
    assert not (tmp_path / CLAIM_NAME).exists()  # released at commit


def test_identity_fingerprint_ignores_world_size_and_config_detail() -> None:
    a, b = _ident(), RunIdentity(SMALL.system_hash, f"sha256:{1:064x}", "full", 4)
    assert a.fingerprint == b.fingerprint  # the config dict is informational; config_hash covers it
    with pytest.raises(ManifestError, match="seed is 1 there and 2"):
        check_same_identity(_ident(2), _ident(1).to_dict(), "m.json")
    with pytest.raises(ManifestError, match="records no run identity"):
        check_same_identity(a, None, "m.json")
    with pytest.raises(ManifestError, match="written by another run"):
        check_same_identity(a, "sha256:00", "f.parquet")
    with pytest.raises(ManifestError, match="num_scenarios: expected int"):
        RunIdentity.from_dict({**a.to_dict(), "num_scenarios": "4"})


def test_resume_with_another_seed_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    _write(tmp_path, _ident(1), n=4)
    before = _snapshot(tmp_path)
    with pytest.raises(ManifestError, match="seed is 1 there and 2 in this run"):
        _write(tmp_path, _ident(2), n=4, resume=True)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / CLAIM_NAME).exists()


@pytest.mark.slow(24)
def test_cli_resume_with_other_seed_or_case_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "6", "--iterations", "2", "--seed", "5", "-q")
    before = _snapshot(out)
    seed = run_cli("demo", "--output", str(out), "--scenarios", "6", "--iterations", "2", "--seed", "7",
                   "-q", "--resume", check=False)
    assert seed.returncode == 1 and "seed is 5 there and 7" in seed.stderr, seed.stderr
    case = run_cli("demo", "--output", str(out), "--scenarios", "6", "--iterations", "2", "--seed", "5",
                   "-q", "--resume", "--case", str(CASE_4REE), check=False)
    assert case.returncode == 1 and "the system (case) differs" in case.stderr, case.stderr
    assert _snapshot(out) == before  # training, metadata and policy untouched too
    assert "Traceback" not in seed.stderr + case.stderr


def test_resume_without_manifest_checks_file_footers(tmp_path: Path) -> None:
    """With the manifest gone, the files' own footers still identify their run."""
    _write(tmp_path, _ident(1), n=4)
    (tmp_path / "simulation" / "_manifest.json").unlink()
    (tmp_path / "simulation" / "_SUCCESS").unlink()
    with pytest.raises(ManifestError, match="another run"):
        _write(tmp_path, _ident(2), n=4, resume=True)


# ----------------------------------------------------------------------------- the claim
def test_claim_refuses_a_second_writer_and_names_the_holder(tmp_path: Path) -> None:
    ident = _ident()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / CLAIM_NAME).write_text(json.dumps({
            "host": socket.gethostname(), "boot_id": boot_id(), "pid_namespace": pid_namespace(),
            "pid": holder.pid, "pid_start": None, "job_id": "777",
            "started_at": "2026-01-01T00:00:00Z", "token": "x", "world_size": 4, "run_fingerprint": None}))
        with pytest.raises(IoError, match=rf"another run holds .*pid {holder.pid}, job 777"):
            _write(tmp_path, ident)
        assert not (tmp_path / "simulation").exists()  # refused before anything was written
    finally:
        holder.kill()
        holder.wait()
    # its holder is now dead, on this host: the stale claim is broken and the run proceeds
    assert _write(tmp_path, ident).status == "complete"
    assert not (tmp_path / CLAIM_NAME).exists()


def test_claim_of_another_host_needs_break_claim(tmp_path: Path) -> None:
    (tmp_path / CLAIM_NAME).write_text(json.dumps({"host": "node-that-is-not-here", "pid": 1, "token": "x"}))
    with pytest.raises(IoError, match="node-that-is-not-here.*--break-claim"):
        _write(tmp_path, _ident())
    assert _write(tmp_path, _ident(), break_claim=True).status == "complete"


def test_writers_of_one_run_share_the_claim(tmp_path: Path) -> None:
    comm = self_comm()
    a = acquire_run(comm, tmp_path, _ident())
    token = read_claim(tmp_path)["token"]  # type: ignore[index]
    b = acquire_run(comm, tmp_path, _ident())
    assert read_claim(tmp_path)["token"] == token  # type: ignore[index]
    with pytest.raises(ManifestError, match="cannot join"):
        acquire_run(comm, tmp_path, _ident(9))
    a.release()
    assert (tmp_path / CLAIM_NAME).exists()
    b.release()
    assert not (tmp_path / CLAIM_NAME).exists()


def test_two_concurrent_runs_exactly_one_proceeds(tmp_path: Path) -> None:
    """Two demo jobs started at once on one directory: one completes, the other is refused at start."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--scenarios", "8",
           "--iterations", "2", "--slow", "0.3", "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "SLURM_"))}
    procs = [subprocess.Popen(cmd + (["--resume"] if i else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 1], results
    loser = next(err for rc, err in results if rc == 1)
    assert "another run holds this output directory" in loser or "already holds a run" in loser, loser
    m = json.loads((out / "simulation" / "_manifest.json").read_text())
    assert m["status"] == "complete" and m["scenarios"]["completed"] == 8
    assert not (out / CLAIM_NAME).exists()


# ----------------------------------------------------------------------------- launch check
def test_launcher_task_count_reads_every_launcher() -> None:
    assert mpi.launcher_task_count({}) is None
    assert mpi.launcher_task_count({"PMI_SIZE": "1"}) is None
    assert mpi.launcher_task_count({"SLURM_STEP_NUM_TASKS": "6"})[:2] == (6, "SLURM_STEP_NUM_TASKS")  # type: ignore[index]
    assert mpi.launcher_task_count({"OMPI_COMM_WORLD_SIZE": "3"})[0] == 3  # type: ignore[index]
    assert mpi.launcher_task_count({"SLURM_NTASKS": "8"}) is None  # a batch shell, not a step


def test_singleton_launch_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    env["SLURM_STEP_NUM_TASKS"] = "3"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "4", "--iterations", "2", "-q", check=False,
                   env=env)
    assert proc.returncode != 0
    assert "singleton" in proc.stderr and "srun --mpi=pmix" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.rglob("*"))


# ----------------------------------------------------------------------------- statuses
@pytest.mark.slow(25)
def test_failed_simulation_still_leaves_a_training_manifest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "6", "--iterations", "2", "-q",
                   "--fail-rank", "0", "--fail-after", "2", check=False)
    assert proc.returncode == 1 and "injected failure" in proc.stderr
    sim = json.loads((out / "simulation" / "_manifest.json").read_text())
    assert sim["status"] == "failed" and sim["failures"][0]["rank"] == 0
    assert sim["failures"][0].get("host")
    train = json.loads((out / "training" / "_manifest.json").read_text())
    assert train["status"] == "complete" and train["run_fingerprint"] == sim["run_fingerprint"]
    assert not (out / "simulation" / "_SUCCESS").exists() and not (out / CLAIM_NAME).exists()
    run_cli("demo", "--output", str(out), "--scenarios", "6", "--iterations", "2", "-q", "--resume")
    assert json.loads((out / "simulation" / "_manifest.json").read_text())["status"] == "complete"


def test_disk_full_ends_with_a_written_failed_manifest(tmp_path: Path) -> None:
    """A real full filesystem (a small tmpfs): the manifest that says what happened is still written."""
    with small_tmpfs(tmp_path, "1500k") as mnt:
        out = mnt / "run"
        proc = run_cli("demo", "--output", str(out), "--case", str(CASE_4REE), "--scenarios", "200",
                       "--iterations", "2", "-q", check=False, timeout=180)
        assert proc.returncode == 1 and "disk full" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        sim = json.loads((out / "simulation" / "_manifest.json").read_text())
        assert sim["status"] == "failed" and 0 < sim["scenarios"]["completed"] < 200
        assert any("disk full" in f["message"] for f in sim["failures"])
        assert not (out / "simulation" / "_SUCCESS").exists()
        for name in sim["files"]:  # everything listed is whole and readable
            assert pq.read_metadata(out / "simulation" / name).num_rows == sim["files"][name]["rows"]
