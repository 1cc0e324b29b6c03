"""Manifests read through one schema-checked reader: every malformed field is a ManifestError naming the
file and the field path, never a TypeError/OverflowError later (issue 8 item 4); failures name the host
(issue 9 item 5)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import DELETE, JSON_VALUES, json_paths, json_replaced, json_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io import manifest as manifest_mod
from cobre_mpi_io.documents import check_document, parse_json_document, read_json_document
from cobre_mpi_io.errors import ManifestError
from cobre_mpi_io.manifest import (
    Failure,
    FileEntry,
    SimulationManifest,
    TrainingManifest,
    read_simulation_manifest,
    read_training_manifest,
    simulation_manifest_text,
    write_simulation_manifest,
    write_training_manifest,
)
from cobre_mpi_io.policy.records import PolicyMetadata
from cobre_mpi_io.validate import validate_simulation

FP = "sha256:" + "ab" * 32
H1, H2 = "0123456789abcdef", "fedcba9876543210"


def sim_manifest() -> SimulationManifest:
    return SimulationManifest(
        status="partial", started_at="2026-01-01T00:00:00Z", completed_at="2026-01-01T00:01:00Z",
        scenarios_total=3, scenarios_completed=2, scenarios_failed=1,
        partitions_written=("scenario_id=0000/", "scenario_id=0002/"), world_size=2, ranks_participated=2,
        failures=(Failure(0, 1, "io", "disk full", "node-a"), Failure(1, None, "schema", "bad", "node-b"),
                  Failure(-1, None, "manifest", "1 scenario(s) were never written", None)),
        detail="full", tables=("costs", "hydros"),
        run_fingerprint=FP, run_identity={"system_hash": FP, "config_hash": "", "detail": "full",
                                          "num_scenarios": 3, "format_version": "1"},
    ).with_files({
        "costs/scenario_id=0000/data.parquet": FileEntry(10, 100, H1),
        "hydros/scenario_id=0000/data.parquet": FileEntry(20, 200, H2),
        "costs/scenario_id=0002/data.parquet": FileEntry(10, 101, H2),
        "hydros/scenario_id=0002/data.parquet": FileEntry(20, 201, H1),
    })


def training_manifest() -> TrainingManifest:
    return TrainingManifest(
        status="converged", started_at="2026-01-01T00:00:00Z", max_iterations=50, completed_at="x",
        iterations_completed=12, converged_at=12, achieved=True, final_gap_percent=-0.25,
        termination_reason="bound_stalling", total_generated=120, total_active=80, peak_active=90,
        policy_value=H1, convergence_value=H2, world_size=4, forward_passes_per_iteration=8,
        run_fingerprint=FP, run_identity={"detail": "full"})


# ------------------------------------------------------------------ round trips
def test_simulation_roundtrip_through_the_file(tmp_path: Path) -> None:
    m = sim_manifest()
    write_simulation_manifest(tmp_path / "_manifest.json", m)
    back = read_simulation_manifest(tmp_path / "_manifest.json")
    assert back == m
    assert back.failures[0].host == "node-a" and back.failures[2].host is None
    assert back.run_fingerprint == FP and back.run_identity is not None and back.run_identity["num_scenarios"] == 3
    assert SimulationManifest.from_dict(json.loads(simulation_manifest_text(m))) == m


def test_training_roundtrip_through_the_file(tmp_path: Path) -> None:
    m = training_manifest()
    write_training_manifest(tmp_path / "_manifest.json", m)
    assert read_training_manifest(tmp_path / "_manifest.json") == m
    plain = TrainingManifest(status="running", started_at="t", max_iterations=1)
    assert "run_fingerprint" not in plain.to_dict()
    assert TrainingManifest.from_dict(plain.to_dict()) == plain


# ------------------------------------------------------------------ the reproductions of issue 8 item 4
SIM_CASES = [
    # (field to change, new value, expected text of the error)
    ("failures", 3, "failures: expected list, got int"),
    ("tables", 3, "tables: expected list, got int"),
    ("partitions_written", ["scenario_id=abc/"], "partitions_written[0]: expected scenario_id=NNNN/, got 'scen"),
    ("partitions_written", [3], "partitions_written[0]: expected str, got int"),
    ("partitions_written", ["scenario_id=0007/"], "partitions_written[0]: scenario 7 outside 0..2"),
    ("partitions_written", ["scenario_id=0001/", "scenario_id=00001/"],
     "partitions_written[1]: scenario 1 listed twice"),
    ("tables", [], "tables: expected the partitioned tables of detail 'full', got []"),
    ("tables", ["costs", "costs"], "tables[1]: duplicate 'costs'"),
    ("tables", ["costs", "nope"], "tables[1]: expected one of costs, hydros,"),
    ("detail", [1], "detail: expected str, got list"),
    ("detail", "everything", "detail: expected one of full, stage, summary; got 'everything'"),
    ("status", "done", "status: expected one of running, complete, failed, partial; got 'done'"),
    ("status", None, "status: expected str, got null"),
    ("version", "3.0.0", "version: expected a 2.x.y format version, got '3.0.0'"),
    ("scenarios.failed", -1, "scenarios.failed: expected int >= 0, got -1"),
    ("scenarios.completed", 4, "scenarios.completed: 4 exceeds scenarios.total 3"),
    ("scenarios.total", 2**64, "scenarios.total: expected int <= 9223372036854775807"),
    ("scenarios.total", 3.0, "scenarios.total: expected int, got float"),
    ("scenarios.total", True, "scenarios.total: expected int, got bool"),
    ("scenarios", [], "scenarios: expected object, got list"),
    ("scenarios.total", DELETE, "scenarios.total: missing"),
    ("mpi_info.world_size", 0, "mpi_info.world_size: expected int >= 1, got 0"),
    ("mpi_info.ranks_participated", 3, "mpi_info.ranks_participated: 3 exceeds mpi_info.world_size 2"),
    ("checksum.algorithm", "md5", "checksum.algorithm: expected one of xxhash64; got 'md5'"),
    ("checksum.value", "XYZ", "checksum.value: expected 16 lowercase hex digits, got 'XYZ'"),
    ("completed_at", 5, "completed_at: expected str, got int"),
    ("failures.1.rank", "1", "failures[1].rank: expected int, got str"),
    ("failures.0.rank", -2, "failures[0].rank: expected int >= -1, got -2"),
    ("failures.0.scenario_id", "3", "failures[0].scenario_id: expected int, got str"),
    ("failures.0.host", 7, "failures[0].host: expected str, got int"),
    ("failures.0", "boom", "failures[0]: expected object, got str"),
    ("failures.0.message", DELETE, "failures[0].message: missing"),
    ("files", [], "files: expected object, got list"),
    ("files", {"costs/scenario_id=0000/data.parquet": [10, 100, H1]},
     'files["costs/scenario_id=0000/data.parquet"]: expected object, got list'),
    ("files", {"costs/scenario_id=0000/data.parquet": {"rows": 10, "bytes": 100}},
     'files["costs/scenario_id=0000/data.parquet"].xxhash64: missing'),
    ("files", {"costs/scenario_id=0000/data.parquet": {"rows": "10", "bytes": 100, "xxhash64": H1}},
     'files["costs/scenario_id=0000/data.parquet"].rows: expected int, got str'),
    ("files", {"costs/scenario_id=0000/data.parquet": {"rows": 10, "bytes": -100, "xxhash64": H1}},
     'files["costs/scenario_id=0000/data.parquet"].bytes: expected int >= 0, got -100'),
    ("files", {"costs/scenario_id=0000/data.parquet": {"rows": 10, "bytes": 1, "xxhash64": H1.upper()}},
     'files["costs/scenario_id=0000/data.parquet"].xxhash64: expected 16 lowercase hex digits'),
    ("files", {"../../etc/passwd": {"rows": 1, "bytes": 1, "xxhash64": H1}},
     'files["../../etc/passwd"]: expected a relative path below the directory'),
    ("files", {"/abs/data.parquet": {"rows": 1, "bytes": 1, "xxhash64": H1}},
     'files["/abs/data.parquet"]: expected a relative path below the directory'),
    ("run_fingerprint", 12, "run_fingerprint: expected str, got int"),
    ("run_fingerprint", "md5:00", "run_fingerprint: expected sha256:<64 hex digits>, got 'md5:00'"),
    ("run_identity", [1], "run_identity: expected object, got list"),
]


@pytest.mark.parametrize(("path", "value", "expected"), SIM_CASES, ids=[c[0] + "=" + repr(c[1])[:20] for c in SIM_CASES])
def test_simulation_manifest_field_errors_name_file_and_field(tmp_path: Path, path: str, value: Any,
                                                              expected: str) -> None:
    doc = json_set(sim_manifest().to_dict(), path, value)
    f = tmp_path / "simulation" / "_manifest.json"
    f.parent.mkdir()
    f.write_text(json.dumps(doc))
    with pytest.raises(ManifestError) as info:
        read_simulation_manifest(f)
    assert str(info.value).startswith(f"manifest error ({f}): ")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ManifestError, match="^manifest error \\(simulation\\): "):
        SimulationManifest.from_dict(doc)


def test_summary_detail_has_no_tables_nor_partitions() -> None:
    summary = SimulationManifest(status="complete", started_at="t", scenarios_total=2, scenarios_completed=2,
                                 detail="summary", tables=(), world_size=1, ranks_participated=1)
    assert SimulationManifest.from_dict(summary.to_dict()) == summary
    with pytest.raises(ManifestError, match="tables: expected \\[\\] at detail 'summary'"):
        SimulationManifest.from_dict(json_set(summary.to_dict(), "tables", ["costs"]))
    with pytest.raises(ManifestError, match="partitions_written: expected \\[\\] at detail 'summary'"):
        SimulationManifest.from_dict(json_set(summary.to_dict(), "partitions_written", ["scenario_id=0000/"]))


TRAINING_CASES = [
    ("status", "finished", "status: expected one of running, complete, failed, converged, interrupted"),
    ("convergence.termination_reason", "boredom", "convergence.termination_reason: expected one of"),
    ("convergence.final_gap_percent", "0.1", "convergence.final_gap_percent: expected number, got str"),
    ("convergence.achieved", 1, "convergence.achieved: expected bool, got int"),
    ("iterations.converged_at", -1, "iterations.converged_at: expected int >= 0, got -1"),
    ("iterations.completed", None, "iterations.completed: expected int, got null"),
    ("cuts.peak_active", -5, "cuts.peak_active: expected int >= 0, got -5"),
    ("checksum.policy_value", 7, "checksum.policy_value: expected str, got int"),
    ("mpi_info", "4", "mpi_info: expected object, got str"),
    ("mpi_info.forward_passes_per_iteration", DELETE, "mpi_info.forward_passes_per_iteration: missing"),
]


@pytest.mark.parametrize(("path", "value", "expected"), TRAINING_CASES, ids=[c[0] for c in TRAINING_CASES])
def test_training_manifest_field_errors_name_file_and_field(tmp_path: Path, path: str, value: Any,
                                                            expected: str) -> None:
    f = tmp_path / "_manifest.json"
    f.write_text(json.dumps(json_set(training_manifest().to_dict(), path, value)))
    with pytest.raises(ManifestError) as info:
        read_training_manifest(f)
    assert str(info.value).startswith(f"manifest error ({f}): ") and expected in str(info.value)


@pytest.mark.parametrize("text", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_when_parsing(tmp_path: Path, text: str) -> None:
    raw = simulation_manifest_text(sim_manifest()).replace('"world_size": 2', f'"world_size": {text}')
    f = tmp_path / "_manifest.json"
    f.write_text(raw)
    with pytest.raises(ManifestError, match=f"manifest error \\({f}\\): number .* is not a finite double"):
        read_simulation_manifest(f)


def test_huge_integers_and_deep_nesting_are_manifest_errors(tmp_path: Path) -> None:
    f = tmp_path / "_manifest.json"
    f.write_text(simulation_manifest_text(sim_manifest()).replace('"world_size": 2', '"world_size": ' + "9" * 5000))
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_simulation_manifest(f)
    f.write_text(simulation_manifest_text(sim_manifest()).replace('"world_size": 2', '"world_size": ' + "9" * 30))
    with pytest.raises(ManifestError, match="mpi_info.world_size: expected int <= "):
        read_simulation_manifest(f)
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        read_simulation_manifest(f)


def test_lone_surrogates_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "_manifest.json"
    f.write_text(simulation_manifest_text(sim_manifest()).replace('"disk full"', '"disk \\ud800 full"'))
    with pytest.raises(ManifestError, match="failures\\[0\\].message: not valid UTF-8 text"):
        read_simulation_manifest(f)


def test_missing_unreadable_and_non_object_documents(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        read_simulation_manifest(tmp_path / "nope.json")
    (tmp_path / "a.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_simulation_manifest(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(ManifestError, match="expected object, got list"):
        read_training_manifest(tmp_path / "b.json")


def test_policy_metadata_overflow_is_a_manifest_error(tmp_path: Path) -> None:
    """1e400 made ``int(float('inf'))`` raise OverflowError in policy/metadata.json; now the reader refuses it."""
    good = PolicyMetadata(completed_iterations=3, state_dimension=2, num_stages=4).to_dict()
    text = json.dumps(good).replace('"completed_iterations": 3', '"completed_iterations": 1e400')
    p = tmp_path / "metadata.json"
    p.write_text(text)
    with pytest.raises(ManifestError, match="not a finite double"):
        PolicyMetadata.from_dict(read_json_document(p, str(p)), str(p))
    assert parse_json_document(json.dumps(good), "x") == good


# ------------------------------------------------------------------ any value anywhere: ManifestError or accepted
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=JSON_VALUES)
def test_any_value_in_any_field_is_accepted_or_a_manifest_error(data: st.DataObject, value: Any) -> None:
    for cls, doc in ((SimulationManifest, sim_manifest().to_dict()), (TrainingManifest, training_manifest().to_dict())):
        path = data.draw(st.sampled_from(json_paths(doc)))
        bad = json_replaced(doc, path, value)
        try:
            parsed = cls.from_dict(bad)  # type: ignore[attr-defined]
        except ManifestError:
            continue
        # accepted: it must be usable (re-serializable, round trip stable)
        assert cls.from_dict(json.loads(json.dumps(parsed.to_dict()))) == parsed  # type: ignore[attr-defined]


# ------------------------------------------------------------------ validate reports it in one line
def test_validate_reports_a_wrong_typed_manifest_in_one_line(tmp_path: Path) -> None:
    sim = tmp_path / "simulation"
    sim.mkdir()
    doc = json_set(sim_manifest().to_dict(), "failures.2.rank", "x")
    (sim / "_manifest.json").write_text(json.dumps(doc))
    report = validate_simulation(tmp_path)
    assert not report.valid
    about = [p for p in report.problems if p.file == "_manifest.json"]
    assert len(about) == 1, report.problems
    assert "failures[2].rank: expected int, got str" in about[0].problem
    assert all("\n" not in str(p) for p in report.problems)


# ------------------------------------------------------------------ failures name the host
def test_failure_names_the_local_host_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Failure(0, 3, "io", "x").host == socket.gethostname()
    monkeypatch.setattr(socket, "gethostname", lambda: "node-17")
    f = Failure(2, None, "schema", "bad payload")
    assert f.host == "node-17" and f.to_dict()["host"] == "node-17"
    assert Failure.from_dict(f.to_dict()) == f


def test_failure_without_host_reads_from_an_older_manifest() -> None:
    old = sim_manifest().to_dict()
    for f in old["failures"]:
        del f["host"]
    m = SimulationManifest.from_dict(old)
    assert [f.host for f in m.failures] == [None, None, None]
    assert m.failures[0].rank == 0 and m.failures[0].scenario_id == 1


def test_check_document_paths() -> None:
    schema = manifest_mod.Obj({"a": manifest_mod.Seq(manifest_mod.Obj({"b c": manifest_mod.Int()}))})
    with pytest.raises(ManifestError, match=r'^manifest error \(f\): a\[1\]\["b c"\]: expected int, got str$'):
        check_document(schema, {"a": [{"b c": 1}, {"b c": "2"}]}, "f")
    with pytest.raises(ManifestError, match=r"^manifest error \(f\): expected object, got int$"):
        check_document(schema, 3, "f")
    assert check_document(schema, {"a": [], "extra": 1}, "f") == {"a": (), "extra": 1}


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_failures_in_the_manifest_name_the_host_of_their_rank(mpi_tmp_path: Path, small_system: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mpi4py import MPI

    from cobre_mpi_io.errors import OutputError
    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
    from cobre_mpi_io.testing.simulation import synthetic_result

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    monkeypatch.setattr(socket, "gethostname", lambda: f"node-{rank}")
    out = mpi_tmp_path / "hosts"
    cfg = SimulationConfig(num_scenarios=2 * size)
    with pytest.raises(OutputError), SimulationParquetWriter(out, small_system, cfg, comm) as w:
        for sid in w.pending_scenarios():
            if rank > 0 and sid == w.owned_scenarios[0]:
                w.record_failure(sid, RuntimeError(f"solver diverged on rank {rank}"))
                continue
            w.write_scenario(synthetic_result(small_system, sid, 1))
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert m.status == "partial"
    by_rank = {f.rank: f for f in m.failures if f.scenario_id is not None}
    assert sorted(by_rank) == list(range(1, size))
    assert all(f.host == f"node-{r}" for r, f in by_rank.items())
    comm.Barrier()
