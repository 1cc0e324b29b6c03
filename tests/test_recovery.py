"""Recovery that survives any manifest (issue 8 item 4).

Whatever the previous ``simulation/_manifest.json`` holds (valid JSON with
wrong types, unknown values, garbage), ``--resume`` does not use it: it
adopts exactly the files whose bytes match their record in the run's journal
(issue 14) and completes with the checksum of a clean run.  A file written
by another run is never adopted nor overwritten: the scan refuses naming the
file and both fingerprints.

Serial tests use ``COMM_SELF``; the ``mpi`` test runs under
``mpiexec -n 2`` and ``-n 3`` (``--with-mpi -m mpi``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import json_set, self_comm, write_synthetic_run

from cobre_mpi_io.errors import ManifestError
from cobre_mpi_io.hashing import xxh64_file
from cobre_mpi_io.identity import FOOTER_KEY
from cobre_mpi_io.journal import JournalEntry, read_journal
from cobre_mpi_io.layout import partition_file
from cobre_mpi_io.manifest import read_simulation_manifest
from cobre_mpi_io.simulation.recovery import scan_scenarios
from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.validate import validate_simulation

N = 6
SEED = 3
FP_A = "sha256:" + "a" * 64
FP_B = "sha256:" + "b" * 64


def write_run(out: Path, system: System, comm: Any, n: int = N, **cfg: Any) -> Any:
    return write_synthetic_run(out, system, SimulationConfig(num_scenarios=n, **cfg), comm, SEED)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, small_system: System) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_run(out, small_system, self_comm())
    return out


# (field, value) that made --resume fail with a wrapped TypeError, or that describe nothing usable
BAD_FIELDS = [
    ("failures", 3),
    ("tables", 3),
    ("partitions_written", ["scenario_id=abc/"]),
    ("partitions_written", [7]),
    ("tables", []),
    ("detail", [1]),
    ("status", "resumable"),
    ("scenarios.completed", -4),
    ("scenarios.failed", "0"),
    ("mpi_info.world_size", 0),
    ("files", {"costs/scenario_id=0000/data.parquet": ["rows", "bytes"]}),
    ("files", {"../outside.parquet": {"rows": 1, "bytes": 1, "xxhash64": "0" * 16}}),
    ("files", 3),
    ("checksum", None),
    ("version", 2),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v in BAD_FIELDS])
def test_resume_rebuilds_from_partitions_when_the_manifest_has_wrong_types(
        tmp_path: Path, clean_run: Path, small_system: System, field: str, value: Any) -> None:
    out = tmp_path / "out"
    shutil.copytree(clean_run, out)
    sim = out / "simulation"
    lost = partition_file("hydros", 4)
    (sim / lost).unlink()
    (sim / "_SUCCESS").unlink()
    doc = json.loads((sim / "_manifest.json").read_text())
    (sim / "_manifest.json").write_text(json.dumps(json_set(doc, field, value)))
    # validate: one line naming the manifest
    about = [p for p in validate_simulation(out).problems if p.file == "_manifest.json"]
    assert len(about) == 1 and field.split(".")[0] in about[0].problem and "\n" not in about[0].problem
    kept = sim / partition_file("costs", 1)
    before = kept.stat().st_mtime_ns
    cfg = SimulationConfig(num_scenarios=N, resume=True)
    with SimulationParquetWriter(out, small_system, cfg, self_comm()) as w:
        assert w.pending_scenarios() == [4]
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(small_system, sid, SEED))
    m = w.finalize()
    clean = read_simulation_manifest(clean_run / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean.checksum_value
    assert kept.stat().st_mtime_ns == before  # adopted by its journal record (bytes verified), not rewritten
    assert validate_simulation(out).valid


@pytest.mark.parametrize("text", ['{"version": 1e400}', "NaN", "[" * 50_000, '{"status": "complete"}'])
def test_resume_rebuilds_after_unparseable_or_incomplete_manifests(tmp_path: Path, clean_run: Path,
                                                                  small_system: System, text: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(clean_run, out)
    sim = out / "simulation"
    (sim / "_manifest.json").write_text(text)
    (sim / partition_file("costs", 2)).unlink()
    m = write_run(out, small_system, self_comm(), resume=True)
    assert m.checksum_value == read_simulation_manifest(clean_run / "simulation" / "_manifest.json").checksum_value


# ------------------------------------------------------------------ footers' identity
TABLES = ("costs", "hydros")


def _put(sim: Path, table: str, sid: int, fingerprint: str | None, rows: int = 3) -> Path:
    path = sim / partition_file(table, sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tbl = pa.table({"x": list(range(rows))})
    if fingerprint is not None:
        tbl = tbl.replace_schema_metadata({FOOTER_KEY: fingerprint})
    pq.write_table(tbl, path)
    return path


def _journal_of(out: Path, paths: list[Path], rows: int = 3) -> dict[str, JournalEntry]:
    entries = {}
    for p in paths:
        size, digest = xxh64_file(p)
        rel = p.relative_to(out).as_posix()
        entries[rel] = JournalEntry(rel, size, digest, rows)
    return entries


def test_scan_adopts_only_files_whose_bytes_match_their_journal_record(tmp_path: Path) -> None:
    sim = tmp_path / "simulation"
    written = [_put(sim, t, sid, FP_A) for sid in range(3) for t in TABLES]
    journal = _journal_of(tmp_path, written)
    res = scan_scenarios(sim, range(4), TABLES, journal, {"costs": 3, "hydros": 3}, expected_fingerprint=FP_A)
    assert res.done == {0, 1, 2} and len(res.files) == 6
    assert {r.path for r in res.files} == {partition_file(t, s) for t in TABLES for s in range(3)}
    # never adopted by its footer alone: no record, not complete (the same run's file is rewritten)
    del journal[f"simulation/{partition_file('costs', 2)}"]
    assert scan_scenarios(sim, range(4), TABLES, journal, expected_fingerprint=FP_A).done == {0, 1}
    # a record of another row count: not complete, rewritten
    assert scan_scenarios(sim, [1], TABLES, journal, {"costs": 4}, expected_fingerprint=FP_A).done == frozenset()


def test_scan_refuses_a_file_of_another_run_naming_it_and_both_fingerprints(tmp_path: Path) -> None:
    sim = tmp_path / "simulation"
    for sid in range(3):
        for t in TABLES:
            _put(sim, t, sid, FP_A)
    foreign = _put(sim, "hydros", 1, FP_B)
    with pytest.raises(ManifestError) as info:
        scan_scenarios(sim, range(3), TABLES, {}, expected_fingerprint=FP_A)
    msg = str(info.value)
    assert str(foreign) in msg and FP_A in msg and FP_B in msg and "another run" in msg


def test_scan_refuses_a_file_without_fingerprint(tmp_path: Path) -> None:
    sim = tmp_path / "simulation"
    _put(sim, "costs", 0, FP_A)
    old = _put(sim, "hydros", 0, None)
    with pytest.raises(ManifestError, match="no run fingerprint") as info:
        scan_scenarios(sim, [0], TABLES, {}, expected_fingerprint=FP_A)
    assert str(old) in str(info.value)


def test_scan_refuses_a_foreign_file_of_an_incomplete_scenario(tmp_path: Path) -> None:
    """costs of scenario 0 missing, hydros of scenario 0 from another run: resuming would overwrite it."""
    sim = tmp_path / "simulation"
    foreign = _put(sim, "hydros", 0, FP_B)
    with pytest.raises(ManifestError) as info:
        scan_scenarios(sim, [0], TABLES, {}, expected_fingerprint=FP_A)
    assert str(foreign) in str(info.value) and FP_B in str(info.value)


def test_unreadable_footer_is_not_complete_and_not_refused(tmp_path: Path) -> None:
    sim = tmp_path / "simulation"
    _put(sim, "costs", 0, FP_A)
    bad = _put(sim, "hydros", 0, FP_A)
    bad.write_bytes(bad.read_bytes()[:-12])  # torn footer: not a complete file of anyone
    _put(sim, "costs", 1, FP_A)
    bad2 = sim / partition_file("hydros", 1)
    bad2.parent.mkdir(parents=True)
    bad2.write_bytes(b"PAR1 not parquet")
    res = scan_scenarios(sim, [0, 1], TABLES, _journal_of(tmp_path, [bad, bad2]), expected_fingerprint=FP_A)
    assert res.done == frozenset() and res.files == ()


def test_files_recorded_by_the_journal_are_trusted_by_hash_only(tmp_path: Path, clean_run: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(clean_run, out)
    sim = out / "simulation"
    tables = read_simulation_manifest(sim / "_manifest.json").tables
    journal = read_journal(out)
    # verified records decide: the footers' fingerprint is not consulted for them
    res = scan_scenarios(sim, range(N), tables, journal, expected_fingerprint=FP_B)
    assert res.done == set(range(N))
    # a file whose bytes differ from its record is not complete (and will be rewritten)
    p = sim / partition_file("costs", 5)
    p.write_bytes(p.read_bytes()[:-1] + b"X")
    res = scan_scenarios(sim, range(N), tables, journal)
    assert res.done == set(range(N - 1))


# ------------------------------------------------------------------ under MPI
@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_resume_under_mpi_with_a_wrong_typed_manifest(mpi_tmp_path: Path, small_system: System) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 3 * size + 1
    clean = write_run(mpi_tmp_path / "clean", small_system, comm, n=n)
    out = mpi_tmp_path / "out"
    write_run(out, small_system, comm, n=n)
    sim = out / "simulation"
    lost = {1, n - 1}
    if rank == 0:
        for s in lost:
            (sim / partition_file("thermals", s)).unlink()
        (sim / "_SUCCESS").unlink()
        doc = json.loads((sim / "_manifest.json").read_text())
        doc["tables"] = 3
        doc["failures"] = [{"rank": "zero"}]
        (sim / "_manifest.json").write_text(json.dumps(doc))
    comm.Barrier()
    with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=n, resume=True), comm) as w:
        pending = w.pending_scenarios()
        for sid in pending:
            w.write_scenario(synthetic_result(small_system, sid, SEED))
    m = w.finalize()
    every = comm.allgather((pending, m.status, m.checksum_value))
    assert sorted(s for p, _, _ in every for s in p) == sorted(lost)
    assert all(status == "complete" and value == clean.checksum_value for _, status, value in every)
    problems = comm.allgather([str(p) for p in validate_simulation(out).problems])
    assert problems == [[]] * size
    comm.Barrier()
