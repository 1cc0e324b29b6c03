"""MPI tests of the simulation writer: ownership, the collective commit, failures, resume.

Run with ``mpiexec -n 2 python -m pytest --with-mpi tests/test_simulation_mpi.py``
(also at 3 ranks). Every check is made on values gathered from all ranks,
so every rank reaches the same verdict (and a failure on one rank aborts
the job through the hook in ``conftest.py``, never a hang).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import gathered, self_comm, world_comm, write_synthetic_run

from cobre_mpi_io import mpi as mpi_mod
from cobre_mpi_io.errors import IoError, OutputError, SchemaError
from cobre_mpi_io.layout import parse_partition_file, partition_file
from cobre_mpi_io.manifest import read_simulation_manifest
from cobre_mpi_io.simulation import writer as sim_mod
from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.validate import validate_simulation

SEED = 5


def spy_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every Parquet file this rank's writer creates."""
    created: list[str] = []
    lock = threading.Lock()
    real = sim_mod.write_parquet

    def spy(path: Any, *a: Any, **kw: Any) -> Any:
        with lock:
            created.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(sim_mod, "write_parquet", spy)
    return created


def scenario_of(sim: Path, path: str) -> int:
    parsed = parse_partition_file(Path(path).relative_to(sim).as_posix())
    assert parsed is not None, path
    return parsed[1]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("assignment", ["round-robin", "block"])
def test_each_rank_writes_only_what_it_owns(mpi_tmp_path: Path, small_system: System,
                                            monkeypatch: pytest.MonkeyPatch, assignment: str) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 3 * size + 1  # uneven: not every rank owns the same number
    created = spy_writes(monkeypatch)
    cfg = SimulationConfig(num_scenarios=n, assignment=assignment)
    out = mpi_tmp_path / "out"
    w = SimulationParquetWriter(out, small_system, cfg, comm)
    owned = w.owned_scenarios
    if assignment == "round-robin":
        expected_owned = list(range(rank, n, size))
    else:
        expected_owned = list(range(rank * n // size, (rank + 1) * n // size))
    for sid in w.pending_scenarios():
        w.write_scenario(synthetic_result(small_system, sid, SEED))
    m = w.finalize()
    sim = out / "simulation"
    written = sorted({scenario_of(sim, p) for p in created})
    mine_in_manifest = sorted({scenario_of(sim, str(sim / p)) for p in m.files})
    owners_ok = all(mpi_mod.owner_rank(s, size, assignment, n) == rank for s in written)  # type: ignore[arg-type]
    local = {"owned": owned, "expected": expected_owned, "written": written, "manifest_mine": mine_in_manifest,
             "owners_ok": owners_ok, "n_created": len(created), "status": m.status,
             "checksum": m.checksum_value, "ranks": m.ranks_participated, "world": m.world_size}
    every = gathered(comm, local)
    for r, d in enumerate(every):
        assert d["owned"] == d["expected"] == d["written"], (r, d)
        # finalize returns the full manifest on rank 0 and the rank's own files elsewhere
        assert d["manifest_mine"] == (list(range(n)) if r == 0 else d["written"]), (r, d)
        assert d["owners_ok"], r
        assert d["n_created"] == len(d["owned"]) * len(small_system.simulation_tables), (r, d)
        assert d["status"] == "complete" and d["ranks"] == size and d["world"] == size
    assert len({d["checksum"] for d in every}) == 1
    # the ranks partition the scenarios: disjoint, and together all of them
    all_written = [s for d in every for s in d["written"]]
    assert sorted(all_written) == list(range(n))
    full = read_simulation_manifest(sim / "_manifest.json")
    assert set(full.files) == {partition_file(t, s) for t in small_system.simulation_tables for s in range(n)}
    assert (sim / "_SUCCESS").exists()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_refusing_a_foreign_scenario_does_not_break_the_run(mpi_tmp_path: Path, small_system: System) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 2 * size
    out = mpi_tmp_path / "out"
    with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=n), comm) as w:
        foreign = (rank + 1) % size  # owned by the next rank
        refused = None
        try:
            w.write_scenario(synthetic_result(small_system, foreign, SEED))
        except SchemaError as exc:
            refused = str(exc)
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(small_system, sid, SEED))
    m = w.finalize()
    every = gathered(comm, (refused, m.status, m.scenarios_completed, len(m.failures)))
    for r, (msg, status, completed, failures) in enumerate(every):
        assert msg is not None and f"owned by rank {(r + 1) % size}, refused by rank {r}" in msg, (r, msg)
        assert status == "complete" and completed == n and failures == 0
    sim = out / "simulation"
    assert (sim / "_SUCCESS").exists()
    assert validate_simulation(out).valid


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_checksum_equals_a_serial_run(mpi_tmp_path: Path, small_system: System) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 2 * size + 1
    cfg = SimulationConfig(num_scenarios=n)
    par = write_synthetic_run(mpi_tmp_path / "par", small_system, cfg, comm, SEED)
    serial = None
    if rank == 0:
        serial = write_synthetic_run(mpi_tmp_path / "ser", small_system, cfg, self_comm(), SEED)
        assert serial.world_size == 1 and serial.ranks_participated == 1
    serial_value = comm.bcast(serial.checksum_value if serial is not None else None, root=0)
    every = gathered(comm, (par.checksum_value, par.ranks_participated, par.world_size, par.status))
    for value, ranks, world, status in every:
        assert value == serial_value is not None
        assert ranks == world == size and status == "complete"
    if rank == 0:
        ser_files = read_simulation_manifest(mpi_tmp_path / "ser" / "simulation" / "_manifest.json").files
        assert par.files == ser_files  # same paths, rows, bytes and hashes
    comm.Barrier()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_exception_on_one_rank_fails_every_rank_alike(mpi_tmp_path: Path, small_system: System) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 3 * size
    out = mpi_tmp_path / "out"
    outcome = None
    try:
        with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=n), comm) as w:
            for k, sid in enumerate(w.pending_scenarios()):
                if rank == 1 and k == 1:
                    raise RuntimeError("boom on rank 1")
                w.write_scenario(synthetic_result(small_system, sid, SEED))
    except OutputError as exc:
        outcome = (type(exc).__name__, str(exc), bool(getattr(exc, "agreed", False)))
    except BaseException as exc:  # noqa: BLE001 - must not happen: reported as a failed verdict
        outcome = ("UNEXPECTED " + type(exc).__name__, str(exc), False)
    every = gathered(comm, outcome)
    assert every[0] is not None
    assert all(o == every[0] for o in every), every
    kind, message, agreed = every[0]
    assert kind == "OutputError" and agreed
    assert "simulation failed" in message and "boom on rank 1" in message
    sim = out / "simulation"
    m = read_simulation_manifest(sim / "_manifest.json")
    assert m.status == "failed" and not (sim / "_SUCCESS").exists()
    assert [f.rank for f in m.failures] == [1] and "boom on rank 1" in m.failures[0].message
    # rank 1 wrote its first scenario only; the others stopped early (fail fast) or finished, each after
    # a prefix of its own scenarios, in order
    written = {int(p[12:-1]) for p in m.partitions_written}
    assert {s for s in range(n) if s % size == 1} & written == {1}
    for r in range(size):
        owned = [s for s in range(n) if s % size == r]
        mine = sorted(s for s in written if s % size == r)
        assert mine == owned[:len(mine)], (r, mine)
    assert m.scenarios_completed == len(written) <= n - (n // size - 1)
    comm.Barrier()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_io_thread_failure_on_one_rank_fails_every_rank(mpi_tmp_path: Path, small_system: System) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 3 * size
    out = mpi_tmp_path / "out"
    sim = out / "simulation"
    bad = 1 + size  # rank 1's second scenario
    outcome = None
    seen_in_write: str | None = None
    try:
        with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=n), comm) as w:
            if rank == 1:  # the partition directory of one of its files cannot be created
                blocker = sim / partition_file("hydros", bad)
                blocker.parent.parent.mkdir(parents=True, exist_ok=True)
                blocker.parent.write_bytes(b"not a directory")
            for sid in w.pending_scenarios():
                result = synthetic_result(small_system, sid, SEED)
                try:
                    w.write_scenario(result)
                except IoError as exc:  # an earlier scenario's I/O error surfaces once, before this one is
                    seen_in_write = exc.path  # taken: keep producing, giving this scenario again
                    w.write_scenario(result)
    except OutputError as exc:
        outcome = (type(exc).__name__, str(exc), getattr(exc, "path", None))
    every = gathered(comm, (outcome, seen_in_write))
    first = every[0][0]
    assert first is not None and all(o == first for o, _ in every), every
    kind, message, path = first
    assert kind == "IoError" and "simulation partial" in message
    assert path == str((sim / partition_file("hydros", bad)).parent)  # the directory that cannot be made
    assert all(seen is None or seen == path for _, seen in every)
    m = read_simulation_manifest(sim / "_manifest.json")
    assert m.status == "partial" and not (sim / "_SUCCESS").exists()
    assert m.scenarios_completed == n - 1 and m.scenarios_failed == 1
    assert [(f.rank, f.scenario_id, f.kind) for f in m.failures] == [(1, bad, "io")]
    assert f"scenario_id={bad:04d}/" not in m.partitions_written
    # the costs file of the failed scenario was written before the failure: it is accounted for
    assert partition_file("costs", bad) in m.files
    comm.Barrier()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_resume_under_mpi_same_and_other_world_size(mpi_tmp_path: Path, small_system: System) -> None:
    comm = world_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 4 * size + 1
    tables = small_system.simulation_tables
    cfg = SimulationConfig(num_scenarios=n)
    clean = write_synthetic_run(mpi_tmp_path / "clean", small_system, cfg, comm, SEED)
    out = mpi_tmp_path / "out"
    write_synthetic_run(out, small_system, cfg, comm, SEED)
    sim = out / "simulation"
    lost = {1, 2, n - 1}  # scenarios of several ranks
    if rank == 0:
        for s in lost:
            (sim / partition_file(tables[s % len(tables)], s)).unlink()
        (sim / "_SUCCESS").unlink()
        (sim / "costs" / "scenario_id=0000" / ".data.parquet.dead.tmp").write_bytes(b"partial")
    comm.Barrier()
    # 1) same world size
    cfg = SimulationConfig(num_scenarios=n, resume=True)
    with SimulationParquetWriter(out, small_system, cfg, comm) as w:
        pending = w.pending_scenarios()
        for sid in w.owned_scenarios:
            w.write_scenario(synthetic_result(small_system, sid, SEED))  # done ones are skipped
    m = w.finalize()
    every = gathered(comm, (pending, m.status, m.checksum_value))
    assert sorted(s for p, _, _ in every for s in p) == sorted(lost)
    for r, (p, status, value) in enumerate(every):
        assert set(p) == {s for s in lost if s % size == r}
        assert status == "complete" and value == clean.checksum_value
    assert not (sim / "costs" / "scenario_id=0000" / ".data.parquet.dead.tmp").exists()
    # 2) a different world size: the first size-1 ranks resume, the last one does not take part
    lost2 = {0, n // 2, n - 2}
    if rank == 0:
        for s in lost2:
            (sim / partition_file(tables[(s + 3) % len(tables)], s)).unlink()
        (sim / "_manifest.json").write_text("{ garbage")  # rebuilt from the partition listing
    comm.Barrier()
    sub = comm.Split(0 if rank < size - 1 else 1, rank)
    result = None
    if rank < size - 1:
        with SimulationParquetWriter(out, small_system, cfg, sub) as w:
            pending2 = w.pending_scenarios()
            for sid in pending2:
                w.write_scenario(synthetic_result(small_system, sid, SEED))
        m2 = w.finalize()
        result = (pending2, m2.status, m2.checksum_value, m2.world_size)
    sub.Free()
    every = [r for r in gathered(comm, result) if r is not None]
    assert len(every) == size - 1
    assert sorted(s for p, _, _, _ in every for s in p) == sorted(lost2)
    for p, status, value, world in every:
        assert status == "complete" and value == clean.checksum_value and world == size - 1
    assert validate_simulation(out).valid
    comm.Barrier()
