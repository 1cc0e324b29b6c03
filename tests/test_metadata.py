"""training/metadata.json (SPEC §7): sections, real hashes, detected environment."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import DELETE, JSON_VALUES, json_paths, json_replaced, json_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI

from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import ManifestError, SerializationError
from cobre_mpi_io.hashing import sha256_json
from cobre_mpi_io.layout import policy_cut_files
from cobre_mpi_io.results import write_results
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.training import synthetic_training
from cobre_mpi_io.training import metadata as metadata_mod
from cobre_mpi_io.training.metadata import (
    METADATA_SECTIONS,
    PER_RANK_KEYS,
    RunMetadata,
    detect_environment,
    hash_case_files,
    input_hash,
    read_metadata,
    write_metadata,
)

CASE = Path(__file__).parent / "data" / "4ree"

SPEC_FIELDS = {
    "run_info": {"run_id", "started_at", "completed_at", "duration_seconds", "cobre_version", "solver",
                 "solver_version", "hostname", "user"},
    "configuration_snapshot": {"seed", "forward_passes", "stopping_rules", "stopping_mode", "cut_selection",
                               "upper_bound_evaluation", "policy_mode"},
    "problem_dimensions": {"num_stages", "num_blocks_per_stage", "num_hydros", "num_thermals", "num_buses",
                           "num_lines", "num_pumping_stations", "num_contracts", "num_generic_constraints",
                           "state_dimension", "lp_dimensions"},
    "performance_summary": {"total_lp_solves", "avg_lp_time_us", "median_lp_time_us", "p99_lp_time_us",
                            "peak_memory_mb", "total_communication_time_seconds", "io_write_time_seconds"},
    "data_integrity": {"input_hash", "config_hash", "policy_hash", "convergence_hash"},
    "environment": {"mpi_implementation", "mpi_version", "num_ranks", "cpus_per_rank", "memory_per_rank_gb",
                    "numa_binding", "omp_num_threads"},
}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _fake_policy(out: Path, stages: int) -> list[Path]:
    cuts = out / "policy" / "cuts"
    cuts.mkdir(parents=True)
    files = []
    for s in (10, 2, 0, 1)[:stages] if stages <= 4 else range(stages):
        p = cuts / f"stage_{s:03d}.bin"
        p.write_bytes(f"cuts of stage {s}".encode() * (s + 1))
        files.append(p)
    (cuts / "README.txt").write_text("not a cut file")
    return sorted(files, key=lambda p: int(p.stem.split("_")[1]))


def _run(out: Path, system: System, config: RunConfig, **kw: object) -> None:
    st = synthetic_training(system, 6, 1, config.forward_passes, seed=5,
                            upper_bound_evaluation=config.upper_bound_evaluation)
    write_results(out, st.to_training_output(0, **kw), None, system, config, comm=MPI.COMM_SELF)


@pytest.mark.parametrize("source", ["4ree", "synthetic"])
def test_every_hash_recomputes_from_the_files(tmp_path: Path, source: str) -> None:
    system = System.from_case(CASE) if source == "4ree" else System.synthetic("small")
    cfg = RunConfig.from_case_config(json.loads((CASE / "config.json").read_text()))
    cut_files = _fake_policy(tmp_path, 4)
    _run(tmp_path, system, cfg)
    md = json.loads((tmp_path / "training" / "metadata.json").read_text())
    di = md["data_integrity"]
    assert di["convergence_hash"] == _sha((tmp_path / "training" / "convergence.parquet").read_bytes())
    assert di["policy_hash"] == _sha(b"".join(p.read_bytes() for p in cut_files))
    assert [p.name for p in cut_files] == ["stage_000.bin", "stage_001.bin", "stage_002.bin", "stage_010.bin"]
    assert di["config_hash"] == _sha(json.dumps(md["configuration_snapshot"], sort_keys=True,
                                                separators=(",", ":")).encode())
    assert di["config_hash"] == cfg.config_hash
    assert di["system_hash"] == system.system_hash
    if source == "4ree":
        assert di["input_hash_source"] == "case_files"
        h = hashlib.sha256()
        for p in sorted((p for p in CASE.rglob("*.json")), key=lambda p: p.relative_to(CASE).as_posix()):
            h.update(p.relative_to(CASE).as_posix().encode() + b"\0" + str(p.stat().st_size).encode() + b"\0")
            h.update(p.read_bytes())
        assert di["input_hash"] == "sha256:" + h.hexdigest() == hash_case_files(CASE)
    else:
        assert di["input_hash_source"] == "system_description"
        assert di["input_hash"] == system.system_hash
    for k in ("input_hash", "config_hash", "policy_hash", "convergence_hash"):
        assert di[k].startswith("sha256:") and len(di[k]) == 7 + 64


def test_policy_hash_is_null_without_cut_files(tmp_path: Path) -> None:
    _run(tmp_path, System.synthetic("small"), RunConfig(forward_passes=2))
    md = read_metadata(tmp_path / "training" / "metadata.json")
    assert md.data_integrity["policy_hash"] is None
    assert policy_cut_files(tmp_path / "policy") == []
    assert policy_cut_files(None) == []


def test_every_section_and_field_of_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    cfg = RunConfig(seed=9, forward_passes=3, stopping_rules=({"type": "iteration_limit", "limit": 6},),
                    upper_bound_evaluation=True, cut_selection={"method": "level1", "threshold": 0})
    _run(tmp_path, System.synthetic("small"), cfg, started_at="2026-01-01T00:00:00Z",
         completed_at="2026-01-01T00:01:30Z", run_id="1234")
    md = json.loads((tmp_path / "training" / "metadata.json").read_text())
    assert list(md)[1:] == list(METADATA_SECTIONS)
    for section, keys in SPEC_FIELDS.items():
        assert keys <= set(md[section]), (section, keys - set(md[section]))
    ri = md["run_info"]
    assert ri["duration_seconds"] == 90.0 and ri["run_id"] == "1234"
    cs = md["configuration_snapshot"]
    assert cs["stopping_rules"] == [{"type": "iteration_limit", "limit": 6}]
    assert cs["cut_selection"] == {"method": "level1", "threshold": 0} and cs["seed"] == 9
    pd = md["problem_dimensions"]
    assert pd["num_blocks_per_stage"] == [2, 2, 2, 2] and pd["state_dimension"] == 13
    ps = md["performance_summary"]
    assert ps["total_lp_solves"] > 0 and ps["avg_lp_time_us"] > 0 and ps["p99_lp_time_us"] >= ps["median_lp_time_us"]
    env = md["environment"]
    vendor, version = MPI.get_vendor()
    assert env["mpi_implementation"] == vendor
    assert env["mpi_version"] == ".".join(map(str, version))
    assert env["num_ranks"] == 1  # COMM_SELF
    assert env["omp_num_threads"] == 3
    assert env["cpus_per_rank"] > 0 and env["memory_per_rank_gb"] > 0
    assert env["numa_binding"] in ("bound", "none")


def test_environment_without_omp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = detect_environment(MPI.COMM_SELF)
    assert env["omp_num_threads"] is None and env["num_ranks"] == 1


def test_metadata_roundtrip_and_errors(tmp_path: Path) -> None:
    md = RunMetadata({"run_id": "x"}, {}, {}, {}, {"input_hash": None}, {})
    write_metadata(tmp_path / "m.json", md)
    assert read_metadata(tmp_path / "m.json") == md
    with pytest.raises(SerializationError):
        write_metadata(tmp_path / "bad.json", RunMetadata({"x": float("nan")}, {}, {}, {}, {}, {}))
    assert not (tmp_path / "bad.json").exists()
    (tmp_path / "c.json").write_text("{")
    with pytest.raises(ManifestError):
        read_metadata(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(ManifestError):
        read_metadata(tmp_path / "d.json")
    assert sha256_json({"b": 1, "a": [1]}) == _sha(b'{"a":[1],"b":1}')
    assert input_hash(System.synthetic("small"))[1] == "system_description"


# ------------------------------------------------------------------ one schema-checked reader (issue 8 item 4)
def _metadata_doc() -> dict[str, Any]:
    env = detect_environment(MPI.COMM_SELF)
    return RunMetadata(
        run_info={"run_id": "r", "started_at": "2026-01-01T00:00:00Z", "completed_at": None,
                  "duration_seconds": None, "hostname": "h", "user": None},
        configuration_snapshot=RunConfig(seed=3).to_dict(),
        problem_dimensions={"num_stages": 4, "num_blocks_per_stage": [2, 2, 2, 2], "lp_dimensions": None},
        performance_summary={"total_lp_solves": 10, "avg_lp_time_us": 1.5, "peak_memory_mb": 12,
                             "total_communication_time_seconds": 0.0, "io_write_time_seconds": 0.1},
        data_integrity={"input_hash": "sha256:" + "1" * 64, "input_hash_source": "case_files",
                        "config_hash": RunConfig(seed=3).config_hash, "policy_hash": None, "convergence_hash": None,
                        "run_fingerprint": "sha256:" + "f" * 64, "run_identity": {"detail": "full"}},
        environment=env,
    ).to_dict()


METADATA_CASES = [
    ("run_info", 3, "run_info: expected object, got int"),
    ("environment", DELETE, "environment: missing"),
    ("run_info.run_id", 5, "run_info.run_id: expected str, got int"),
    ("configuration_snapshot.upper_bound_evaluation", "yes",
     "configuration_snapshot.upper_bound_evaluation: expected bool, got str"),
    ("configuration_snapshot.stopping_rules", {"type": "x"},
     "configuration_snapshot.stopping_rules: expected list, got object"),
    ("problem_dimensions.num_blocks_per_stage", [2, "2"], "problem_dimensions.num_blocks_per_stage[1]: expected int"),
    ("problem_dimensions.num_hydros", -1, "problem_dimensions.num_hydros: expected int >= 0, got -1"),
    ("performance_summary.peak_memory_mb", -3, "performance_summary.peak_memory_mb: expected number >= 0"),
    ("performance_summary.avg_lp_time_us", "fast", "performance_summary.avg_lp_time_us: expected number, got str"),
    ("data_integrity.policy_hash", "md5:00", "data_integrity.policy_hash: expected sha256:<64 hex digits>"),
    ("data_integrity.input_hash_source", "guess", "data_integrity.input_hash_source: expected one of"),
    ("environment.num_ranks", "1", "environment.num_ranks: expected int, got str"),
    ("environment.numa_binding", "maybe", "environment.numa_binding: expected one of bound, none"),
    ("environment.hosts", {"a": [0, 0]}, 'environment.hosts["a"][1]: duplicate 0'),
    ("environment.hosts", {"a": [1]}, "environment.hosts: ranks [1] are not each of 0..0 once"),
    ("environment.num_hosts", 2, "environment.num_hosts: 2 but hosts names 1"),
    ("environment.differs_across_ranks", [], "environment.differs_across_ranks: expected object, got list"),
    ("version", "1", "version: expected a 2.x.y format version"),
    ("data_integrity.run_fingerprint", 3, "data_integrity.run_fingerprint: expected str, got int"),
    ("data_integrity.run_identity", "full", "data_integrity.run_identity: expected object, got str"),
]


@pytest.mark.parametrize(("path", "value", "expected"), METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_metadata_field_errors_name_file_and_field(tmp_path: Path, path: str, value: Any, expected: str) -> None:
    f = tmp_path / "metadata.json"
    f.write_text(json.dumps(json_set(_metadata_doc(), path, value)))
    with pytest.raises(ManifestError) as info:
        read_metadata(f)
    assert str(info.value).startswith(f"manifest error ({f}): ") and expected in str(info.value)


def test_metadata_overflowing_number_is_a_manifest_error(tmp_path: Path) -> None:
    f = tmp_path / "metadata.json"
    f.write_text(json.dumps(_metadata_doc()).replace('"total_lp_solves": 10', '"total_lp_solves": 1e400'))
    with pytest.raises(ManifestError, match="not a finite double"):
        read_metadata(f)


def test_metadata_identity_roundtrip(tmp_path: Path) -> None:
    doc = _metadata_doc()
    write_metadata(tmp_path / "m.json", RunMetadata.from_dict(doc))
    md = read_metadata(tmp_path / "m.json")
    assert md.run_fingerprint == "sha256:" + "f" * 64 and md.run_identity == {"detail": "full"}
    assert md.to_dict() == doc
    plain = RunMetadata({}, {}, {}, {}, {}, {}, extra={"note": "kept"})
    assert list(plain.to_dict()) == ["version", *METADATA_SECTIONS, "note"]
    assert RunMetadata.from_dict(plain.to_dict()) == plain
    assert plain.run_fingerprint is None and plain.run_identity is None


# ------------------------------------------------------------------ where it ran (issue 9 item 5)
def test_mpi_library_string_has_no_nul(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open MPI's MPI_Get_library_version ends in a NUL byte; metadata.json must not carry it."""
    lib = "Open MPI v5.0.11, package: Open MPI user@localhost Distribution, ident: 5.0.11, repo rev: v5.0.11\x00"
    monkeypatch.setattr(metadata_mod.mpi, "mpi_library_info", lambda: {
        "mpi_implementation": "Open MPI\x00", "mpi_version": "5.0.11", "mpi_standard": "3.1",
        "library_version": lib})
    env = detect_environment(MPI.COMM_SELF)
    assert env["mpi_library"] == lib[:-1] and env["mpi_implementation"] == "Open MPI"
    assert "\x00" not in json.dumps(env)


def test_real_mpi_library_string_has_no_nul() -> None:
    env = detect_environment(MPI.COMM_SELF)
    assert env["mpi_library"] and "\x00" not in env["mpi_library"] and env["mpi_library"] == env["mpi_library"].strip()


def test_serial_environment_names_the_host_and_nothing_differs() -> None:
    env = detect_environment(MPI.COMM_SELF)
    assert env["hosts"] == {socket.gethostname(): [0]} and env["num_hosts"] == 1
    assert env["differs_across_ranks"] == {}
    RunMetadata.from_dict(json_set(_metadata_doc(), "environment", env))  # passes the schema


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(60)
def test_environment_records_every_host_and_what_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    # uniform job: one host, every rank, nothing differs
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    env = detect_environment(comm)
    assert env["hosts"] == {socket.gethostname(): list(range(size))} and env["num_hosts"] == 1
    assert env["differs_across_ranks"] == {} and env["omp_num_threads"] == 2 and env["num_ranks"] == size
    # two "hosts" (even and odd ranks) and OMP_NUM_THREADS set differently on the last rank
    monkeypatch.setattr(socket, "gethostname", lambda: f"node-{'ab'[rank % 2]}")
    monkeypatch.setenv("OMP_NUM_THREADS", "4" if rank == size - 1 else "2")
    env = detect_environment(comm)
    every = comm.allgather(env)
    assert all(e == every[0] for e in every)  # the same dict on every rank
    assert env["hosts"] == {"node-a": list(range(0, size, 2)), "node-b": list(range(1, size, 2))}
    assert env["num_hosts"] == 2 and env["num_ranks"] == size
    assert env["differs_across_ranks"]["omp_num_threads"] == [2] * (size - 1) + [4]
    assert env["differs_across_ranks"]["omp_num_threads_raw"] == ["2"] * (size - 1) + ["4"]
    assert set(env["differs_across_ranks"]) <= set(PER_RANK_KEYS)
    assert env["omp_num_threads"] is None  # not one value: see differs_across_ranks
    md = RunMetadata.from_dict(json_set(_metadata_doc(), "environment", env))
    assert md.environment["hosts"] == env["hosts"]
    assert os.environ["OMP_NUM_THREADS"] == ("4" if rank == size - 1 else "2")


_BASE = _metadata_doc()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=JSON_VALUES)
def test_any_value_in_any_metadata_field_is_accepted_or_a_manifest_error(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(json_paths(_BASE)))
    bad = json_replaced(_BASE, path, value)
    try:
        md = RunMetadata.from_dict(bad)
    except ManifestError:
        return
    assert RunMetadata.from_dict(json.loads(json.dumps(md.to_dict()))) == md  # accepted: usable as is
