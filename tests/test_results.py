"""write_results (SPEC §11) at world size 1: steps, manifests, markers, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash
from mpi4py import MPI

from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import IoError, OutputError
from cobre_mpi_io.manifest import (
    FileEntry,
    SimulationManifest,
    read_simulation_manifest,
    read_training_manifest,
    utc_now,
    write_simulation_manifest,
)
from cobre_mpi_io.results import SimulationOutput, TrainingOutput, write_results
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.training import synthetic_training
from cobre_mpi_io.training.writer import TrainingParquetWriter

CASE = Path(__file__).parent / "data" / "4ree"
SYSTEM = System.synthetic("small")
SELF = MPI.COMM_SELF  # serial tests: world size 1 even under mpiexec
CFG = RunConfig(seed=1, forward_passes=4, upper_bound_evaluation=True, max_iterations=8, num_scenarios=3)


def _sim_manifest(status: str = "complete") -> SimulationManifest:
    m = SimulationManifest(status=status, started_at=utc_now(), scenarios_total=3, completed_at=utc_now(),
                           scenarios_completed=3, partitions_written=("scenario_id=0000/",), world_size=1,
                           ranks_participated=1, tables=("costs", "hydros"),
                           run_fingerprint=CFG.identity(SYSTEM).fingerprint,
                           run_identity=CFG.identity(SYSTEM).to_dict())
    return m.with_files({"costs/scenario_id=0000/data.parquet": FileEntry(10, 100, "0123456789abcdef")})


def _training(**kw: object) -> TrainingOutput:
    st = synthetic_training(SYSTEM, 8, 1, 4, seed=2)
    return st.to_training_output(0, **kw)


def test_training_manifest_has_every_field_and_real_checksums(tmp_path: Path) -> None:
    cuts = tmp_path / "policy" / "cuts"
    cuts.mkdir(parents=True)
    for s in range(3):
        (cuts / f"stage_{s:03d}.bin").write_bytes(bytes([s]) * 50)
    res = write_results(tmp_path, _training(), None, SYSTEM, CFG, comm=SELF)
    doc = json.loads((tmp_path / "training" / "_manifest.json").read_text())
    assert set(doc) == {"$schema", "version", "status", "started_at", "completed_at", "iterations", "convergence",
                        "cuts", "checksum", "mpi_info", "run_fingerprint", "run_identity", "files"}
    assert doc["run_fingerprint"] == CFG.identity(SYSTEM).fingerprint
    # the root of trust: every file of the training run, hashed as the journal recorded it
    listed = set(doc["files"])
    assert {"training/convergence.parquet", "training/timing/iterations.parquet", "training/metadata.json",
            "training/timing/mpi_ranks.parquet/part-rank-0000.parquet", "policy/state_dictionary.json",
            *(f"training/dictionaries/{n}" for n in ("codes.json", "bounds.parquet", "state_dictionary.json",
                                                      "variables.csv", "entities.csv"))} == listed
    for rel, e in doc["files"].items():
        data = (tmp_path / rel).read_bytes()
        assert (e["bytes"], e["xxhash64"]) == (len(data), xxhash.xxh64(data).hexdigest()), rel
    assert set(doc["iterations"]) == {"max_iterations", "completed", "converged_at"}
    assert set(doc["convergence"]) == {"achieved", "final_gap_percent", "termination_reason"}
    assert set(doc["cuts"]) == {"total_generated", "total_active", "peak_active"}
    assert set(doc["checksum"]) == {"algorithm", "policy_value", "convergence_value"}
    assert set(doc["mpi_info"]) == {"world_size", "forward_passes_per_iteration"}
    m = read_training_manifest(tmp_path / "training" / "_manifest.json")
    assert m == res.training_manifest
    assert m.status == "complete" and m.iterations_completed == 8 and m.termination_reason == "iteration_limit"
    assert m.convergence_value == xxhash.xxh64((tmp_path / "training" / "convergence.parquet").read_bytes()).hexdigest()
    assert m.policy_value == xxhash.xxh64(b"".join(bytes([s]) * 50 for s in range(3))).hexdigest()
    assert m.forward_passes_per_iteration == 4 and m.world_size == 1
    assert m.total_generated == sum(r.cuts_added for r in _training().iterations)
    assert (tmp_path / "training" / "_SUCCESS").exists()
    assert not (tmp_path / "simulation").exists()
    for name in ("codes.json", "bounds.parquet", "state_dictionary.json", "variables.csv", "entities.csv"):
        assert (tmp_path / "training" / "dictionaries" / name).exists()
    assert (tmp_path / "policy" / "state_dictionary.json").exists()


@pytest.mark.parametrize("status, success", [("converged", True), ("complete", True), ("interrupted", False),
                                             ("failed", False), ("running", False)])
def test_status_and_success_marker(tmp_path: Path, status: str, success: bool) -> None:
    tr = _training(status=status, converged_at=8 if status == "converged" else None)
    write_results(tmp_path, tr, None, SYSTEM, CFG, comm=SELF)
    m = read_training_manifest(tmp_path / "training" / "_manifest.json")
    assert m.status == status
    assert m.achieved == (status == "converged")
    assert (m.completed_at is None) == (status == "running")
    assert (tmp_path / "training" / "_SUCCESS").exists() == success


def test_simulation_manifest_rewritten_only_when_missing_or_different(tmp_path: Path) -> None:
    sm = _sim_manifest()
    res = write_results(tmp_path, _training(), SimulationOutput(sm), SYSTEM, CFG, comm=SELF)
    assert read_simulation_manifest(tmp_path / "simulation" / "_manifest.json") == sm == res.simulation_manifest
    assert (tmp_path / "simulation" / "_SUCCESS").exists()
    # same manifest on disk: not rewritten
    p = tmp_path / "simulation" / "_manifest.json"
    before = p.stat().st_mtime_ns, p.stat().st_ino
    write_results(tmp_path, _training(), SimulationOutput(sm), SYSTEM, CFG, comm=SELF)
    assert (p.stat().st_mtime_ns, p.stat().st_ino) == before
    # variables.csv follows the simulation tables of the manifest
    files = {line.split(",")[0] for line in (tmp_path / "training" / "dictionaries" / "variables.csv")
             .read_text().splitlines()[1:]}
    assert "simulation/costs/" in files and "simulation/hydros/" in files and "simulation/thermals/" not in files


def test_partial_simulation_gets_no_success_marker(tmp_path: Path) -> None:
    (tmp_path / "simulation").mkdir()
    (tmp_path / "simulation" / "_SUCCESS").write_bytes(b"")
    write_results(tmp_path, _training(), SimulationOutput(_sim_manifest("partial")), SYSTEM, CFG, comm=SELF)
    assert not (tmp_path / "simulation" / "_SUCCESS").exists()
    assert read_simulation_manifest(tmp_path / "simulation" / "_manifest.json").status == "partial"


def test_uses_the_writer_fed_during_training(tmp_path: Path) -> None:
    st = synthetic_training(SYSTEM, 5, 1, 4, seed=2)
    w = TrainingParquetWriter(tmp_path, SELF)
    for r in st.iterations:
        w.write_iteration(r)
        w.checkpoint()
    w.write_rank_timing(st.rank_timing(0))
    tr = TrainingOutput(status="complete", started_at=utc_now(), max_iterations=5, forward_passes=4, writer=w,
                        termination_reason="iteration_limit")
    res = write_results(tmp_path, tr, None, SYSTEM, CFG, comm=SELF)
    assert res.training_manifest.iterations_completed == 5
    assert {f.path for f in res.training_files} == {"training/convergence.parquet", "training/timing/iterations.parquet",
                                                    "training/timing/mpi_ranks.parquet/part-rank-0000.parquet"}


def test_failure_before_the_manifest_leaves_it_running(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "training" / "dictionaries").write_text("a file where a directory should be")
    with pytest.raises(OutputError):
        write_results(tmp_path, _training(), None, SYSTEM, CFG, comm=SELF)
    assert read_training_manifest(tmp_path / "training" / "_manifest.json").status == "running"
    assert not (tmp_path / "training" / "_SUCCESS").exists()


def test_failure_after_the_manifest_marks_everything_not_complete(tmp_path: Path) -> None:
    sm = _sim_manifest()
    write_simulation_manifest(tmp_path / "simulation" / "_manifest.json", sm)
    (tmp_path / "simulation" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "training" / "metadata.json").mkdir(parents=True)  # metadata cannot be written
    with pytest.raises(IoError) as ei:
        write_results(tmp_path, _training(), SimulationOutput(sm), SYSTEM, CFG, comm=SELF)
    assert "metadata.json" in str(ei.value)
    assert read_training_manifest(tmp_path / "training" / "_manifest.json").status == "failed"
    assert not (tmp_path / "training" / "_SUCCESS").exists()
    sim = read_simulation_manifest(tmp_path / "simulation" / "_manifest.json")
    assert sim.status == "failed" and sim.failures and "metadata.json" in sim.failures[-1].message
    assert not (tmp_path / "simulation" / "_SUCCESS").exists()
    # a later successful call restores both
    (tmp_path / "training" / "metadata.json").rmdir()
    write_results(tmp_path, _training(), SimulationOutput(sm), SYSTEM, CFG, comm=SELF)
    assert read_simulation_manifest(tmp_path / "simulation" / "_manifest.json").status == "complete"
    assert (tmp_path / "simulation" / "_SUCCESS").exists() and (tmp_path / "training" / "_SUCCESS").exists()


def test_bad_rank_timing_is_a_schema_error(tmp_path: Path) -> None:
    st = synthetic_training(SYSTEM, 3, 2, 4, seed=2)
    tr = st.to_training_output(1)  # rank 1's rows on rank 0
    with pytest.raises(OutputError) as ei:
        write_results(tmp_path, tr, None, SYSTEM, CFG, comm=SELF)
    assert ei.value.kind == "schema"


def test_run_config_from_the_4ree_config_and_coercion() -> None:
    doc = json.loads((CASE / "config.json").read_text())
    c = RunConfig.from_case_config(doc)
    assert (c.seed, c.forward_passes, c.max_iterations, c.num_scenarios) == (42, 4, 256, 100)
    assert c.stopping_rules == ({"type": "iteration_limit", "limit": 256},)
    assert RunConfig.coerce(doc) == c
    assert RunConfig.coerce({"seed": 3, "other": 1}) == RunConfig(seed=3)

    class Obj:
        seed = 5
        forward_passes = 2
        detail = "stage"

    assert RunConfig.coerce(Obj()) == RunConfig(seed=5, forward_passes=2, detail="stage")
    assert RunConfig.coerce(None) == RunConfig()
    assert RunConfig.from_case_config({"simulation": {"enabled": False, "num_scenarios": 9}}).num_scenarios == 0
    with pytest.raises(OutputError):
        RunConfig(detail="everything")
    with pytest.raises(OutputError):
        TrainingOutput(status="done", started_at="x", max_iterations=1, forward_passes=1)


def test_policy_checkpoint_symlinks_are_followed_and_kept(tmp_path: Path) -> None:
    """policy/{cuts,state_dictionary.json} as symlinks into latest/ (the checkpoint layout)."""
    from cobre_mpi_io.training.dictionaries import state_dictionary

    ck = tmp_path / "policy" / "checkpoints" / "iter_000008"
    (ck / "cuts").mkdir(parents=True)
    for s in range(2):
        (ck / "cuts" / f"stage_{s:03d}.bin").write_bytes(b"x" * (s + 3))
    (ck / "state_dictionary.json").write_text(json.dumps(state_dictionary(SYSTEM)))
    (tmp_path / "policy" / "latest").symlink_to("checkpoints/iter_000008")
    (tmp_path / "policy" / "cuts").symlink_to("latest/cuts")
    (tmp_path / "policy" / "state_dictionary.json").symlink_to("latest/state_dictionary.json")
    res = write_results(tmp_path, _training(), None, SYSTEM, CFG, comm=SELF)
    assert res.training_manifest.policy_value == xxhash.xxh64(b"xxx" + b"xxxx").hexdigest()
    assert (tmp_path / "policy" / "state_dictionary.json").is_symlink()
    assert res.metadata.data_integrity["policy_hash"] is not None
