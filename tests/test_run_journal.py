"""The run journal at work (issue 14, findings 1, 4 and the writer half of 6).

- Resume adopts a partition only when its bytes match its journal record: a
  seeded campaign swaps scenarios' partition directories, copies one
  scenario's file over another's, empties a violations file and zeroes
  64 B - 4 KiB inside data pages (footer intact); every resume rewrites
  exactly the damaged scenarios and ends with the checksum of a clean run.
- A file of another run is still refused, not overwritten.
- ``_SUCCESS`` and a ``complete`` status are withdrawn, durably, before
  anything under them is rewritten (a ``--resume`` of a complete run that
  trains again; a kill during it leaves nothing claiming completion).
- Every file a run writes under ``OUT`` has a journal record matching its
  bytes (the root of trust ``validate`` checks against).
- Both sides of the durability line: after ``kill -9`` a resume adopts what
  the journal recorded and completes with a clean run's checksum; after a
  simulated power loss (unsynced file contents and journal lines lost) the
  resume rewrites what was lost.
- A resume at another world size works on the journal of the first.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import mpiexec_argv, run_cli, self_comm, write_synthetic_run

from cobre_mpi_io import claim
from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import ManifestError
from cobre_mpi_io.identity import FOOTER_KEY
from cobre_mpi_io.journal import JOURNAL_FILES_DIR, journal_files, read_journal, verify_entry
from cobre_mpi_io.layout import partition_dir, partition_file
from cobre_mpi_io.manifest import (
    SimulationManifest,
    read_simulation_manifest,
    read_training_manifest,
    utc_now,
    write_simulation_manifest,
)
from cobre_mpi_io.run import Run
from cobre_mpi_io.simulation.writer import SimulationConfig
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.processes import popen_session, rank_pids
from cobre_mpi_io.testing.training import synthetic_training
from cobre_mpi_io.validate import validate_simulation

N = 6
SEED = 3
TABLES = ("costs", "hydros", "thermals", "generic_violations")


def _write(out: Path, system: System, **cfg: Any) -> SimulationManifest:
    m: SimulationManifest = write_synthetic_run(out, system, SimulationConfig(num_scenarios=N, **cfg),
                                                self_comm(), SEED)
    return m


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, small_system: System) -> Path:
    out = tmp_path_factory.mktemp("clean")
    _write(out, small_system)
    return out


def _crashed_copy(clean: Path, dest: Path) -> Path:
    """What a hard crash of the clean run leaves: its files and journal, a ``running`` manifest, no marker."""
    shutil.copytree(clean, dest)
    sim = dest / "simulation"
    m = read_simulation_manifest(sim / "_manifest.json")
    write_simulation_manifest(sim / "_manifest.json", SimulationManifest(
        status="running", started_at=utc_now(), scenarios_total=N, detail=m.detail, tables=m.tables,
        run_fingerprint=m.run_fingerprint, run_identity=m.run_identity))
    (sim / "_SUCCESS").unlink()
    return dest


def _zero_block(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    end = len(data) - 8 - footer  # data pages: between the magic and the footer
    k = min(rng.randint(64, 4096), end - 4)
    at = rng.randint(4, end - k)
    before = bytes(data[at:at + k])
    data[at:at + k] = bytes(k)
    assert bytes(data[at:at + k]) != before
    path.write_bytes(bytes(data))
    assert pq.read_metadata(path).num_rows > 0  # the footer still reads: only the bytes tell


def _empty_violations(path: Path) -> None:
    """The same schema and run fingerprint, no rows (a variable-row table: no row count to expect)."""
    schema = pq.read_schema(path)
    pq.write_table(pa.Table.from_pylist([], schema=schema), path)
    assert pq.read_metadata(path).metadata[FOOTER_KEY.encode()]


def _mutate(sim: Path, rng: random.Random) -> tuple[str, set[int]]:
    """One attack of the issue on the crashed run; returns its name and the scenarios it damaged."""
    kind = rng.choice(["swap", "copy", "empty", "zero"])
    i, j = rng.sample(range(N), 2)
    if kind == "swap":
        t = rng.choice(TABLES[:3])
        a, b = sim / partition_dir(t, i), sim / partition_dir(t, j)
        tmp = a.with_name("swap.tmp")
        a.rename(tmp)
        b.rename(a)
        tmp.rename(b)
        return f"swap {t} {i}<->{j}", {i, j}
    if kind == "copy":
        shutil.copyfile(sim / partition_file("costs", j), sim / partition_file("costs", i))
        return f"copy costs {j}->{i}", {i}
    if kind == "empty":
        _empty_violations(sim / partition_file("generic_violations", i))
        return f"empty violations {i}", {i}
    t = rng.choice(TABLES[:3])
    _zero_block(sim / partition_file(t, i), rng)
    return f"zero {t} {i}", {i}


@pytest.mark.parametrize("seed", range(12))
def test_resume_adopts_only_bytes_that_match_the_journal(tmp_path: Path, clean_run: Path, small_system: System,
                                                         seed: int) -> None:
    """Finding 1, as a seeded campaign: each attack used to end ``complete`` + ``_SUCCESS`` over wrong data."""
    rng = random.Random(seed)
    out = _crashed_copy(clean_run, tmp_path / "out")
    sim = out / "simulation"
    what, damaged = _mutate(sim, rng)
    untouched = next(s for s in range(N) if s not in damaged)
    kept = sim / partition_file("hydros", untouched)
    mtime = kept.stat().st_mtime_ns
    m = _write(out, small_system, resume=True)
    clean = read_simulation_manifest(clean_run / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean.checksum_value, what
    for t in small_system.simulation_tables:  # every damaged file holds the clean run's bytes again
        for s in damaged:
            rel = partition_file(t, s)
            assert (sim / rel).read_bytes() == (clean_run / "simulation" / rel).read_bytes(), (what, rel)
    assert kept.stat().st_mtime_ns == mtime, what  # verified against its record and adopted, not rewritten
    assert validate_simulation(out).valid, what
    assert (sim / "_SUCCESS").exists()


def test_a_file_of_another_run_is_refused_not_overwritten(tmp_path: Path, clean_run: Path,
                                                         small_system: System) -> None:
    out = _crashed_copy(clean_run, tmp_path / "out")
    target = out / "simulation" / partition_file("costs", 2)
    tbl = pq.read_table(target).replace_schema_metadata({FOOTER_KEY: "sha256:" + "e" * 64})
    pq.write_table(tbl, target)
    before = target.read_bytes()
    with pytest.raises(ManifestError, match="another run") as info:
        _write(out, small_system, resume=True)
    assert str(target) in str(info.value)
    assert target.read_bytes() == before


def test_records_of_another_run_vouch_for_nothing(tmp_path: Path, clean_run: Path) -> None:
    fp = read_simulation_manifest(clean_run / "simulation" / "_manifest.json").run_fingerprint
    assert fp is not None
    assert read_journal(clean_run, fp) == read_journal(clean_run)
    assert read_journal(clean_run, "sha256:" + "0" * 64) == {}


# ------------------------------------------------------------------ markers before rewrites (finding 4)
def test_training_writer_withdraws_the_marker_and_the_complete_status_first(tmp_path: Path,
                                                                        small_system: System) -> None:
    out = tmp_path / "out"
    cfg = RunConfig(seed=1, forward_passes=4, max_iterations=8, num_scenarios=3)
    with Run(out, small_system, cfg, self_comm()) as run:
        run.write_results(synthetic_training(small_system, 8, 1, 4, seed=2).to_training_output(0))
    train = out / "training"
    assert (train / "_SUCCESS").exists()
    assert read_training_manifest(train / "_manifest.json").status in ("complete", "converged")
    with Run(out, small_system, cfg, self_comm(), resume=True) as run:
        w = run.training_writer()
        # constructed, nothing rewritten yet: already nothing claims the training complete, durably
        assert not (train / "_SUCCESS").exists()
        m = read_training_manifest(train / "_manifest.json")
        assert m.status == "running" and m.completed_at is None
        assert "training/_SUCCESS" not in read_journal(out)  # the removal is recorded too
        w.finalize()


def _demo(out: Path, *args: str, n: int = 1) -> list[str]:
    return [*mpiexec_argv(n), sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--quiet",
            *args]


def _wait_for(cond: Any, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"the job exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)


@pytest.mark.timeout(120)
def test_kill9_while_a_complete_run_trains_again_leaves_nothing_claiming_complete(tmp_path: Path) -> None:
    """Finding 4: the SLURM script adds --resume on resubmission; a complete run then trains again."""
    out = tmp_path / "out"
    args = ("--scenarios", "4", "--iterations", "6", "--checkpoint-every", "2")
    run_cli("demo", "--output", str(out), "-q", *args)
    train = out / "training"
    first = read_training_manifest(train / "_manifest.json")
    with popen_session(_demo(out, *args, "--resume", "--iteration-seconds", "0.3"), tmp_path / "stdout",
                       tmp_path / "stderr") as proc:
        _wait_for(lambda: read_training_manifest(train / "_manifest.json").status == "running", proc,
                  "the training manifest said running")
        assert not (train / "_SUCCESS").exists()  # withdrawn before anything was rewritten
        time.sleep(0.5)  # a checkpoint or two into re-training
        rank = rank_pids(proc.pid, 1)[0]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # the rank too is gone (Open MPI's prterun puts it in a process group of its own: it lived on, re-created
    # _SUCCESS 3 s later and kept the claim, until ranks learned to exit when their launcher dies)
    deadline = time.monotonic() + 5
    while claim._process_start(rank) is not None:
        assert time.monotonic() < deadline, f"rank {rank} outlived its killed launcher"
        time.sleep(0.02)
    assert not (train / "_SUCCESS").exists()
    assert read_training_manifest(train / "_manifest.json").status not in ("complete", "converged")
    run_cli("demo", "--output", str(out), "-q", *args, "--resume")
    again = read_training_manifest(train / "_manifest.json")
    assert again.status == first.status and again.convergence_value == first.convergence_value
    assert (train / "_SUCCESS").exists()
    report = run_cli("validate", str(out))
    assert "valid" in report.stdout


# ------------------------------------------------------------------ root of trust (writer side)
def _every_file(out: Path) -> set[str]:
    found = set()
    for d, _dirs, names in os.walk(out):
        for name in names:
            p = Path(d) / name
            rel = p.relative_to(out).as_posix()
            if p.is_symlink() or rel.startswith("_journal/") or rel == "_claim.json" or \
                    (name.startswith(".") and name.endswith(".tmp")):
                continue
            found.add(rel)
    return found


@pytest.mark.timeout(120)
def test_every_file_a_run_writes_is_in_the_journal_with_its_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "5", "--iterations", "3", "--checkpoint-every", "1",
            "-q", n=2)
    journal = read_journal(out)
    files = _every_file(out)
    assert files - set(journal) == set(), "files without a journal record"
    assert set(journal) - files == set(), "records of files that are gone (retention must record removals)"
    bad = [p for p, e in journal.items() if not verify_entry(out, e)]
    assert bad == []
    # both ranks wrote a journal file of the one attempt
    assert [(a, r) for a, r, _p in journal_files(out)] == [(1, 0), (1, 1)]
    # the training manifest is the root of trust of the training run: tables, dictionaries, metadata, policy
    tm = json.loads((out / "training" / "_manifest.json").read_text())
    listed = set(tm["files"])
    assert "training/metadata.json" in listed and "training/dictionaries/codes.json" in listed
    assert any(p.startswith("policy/checkpoints/iter_000003/cuts/") for p in listed)
    assert all(journal[p].xxhash64 == tm["files"][p]["xxhash64"] for p in listed)


# ------------------------------------------------------------------ durability: both sides of the line
def _sim_files(out: Path) -> list[Path]:
    return sorted((out / "simulation").rglob("data.parquet"))


def _killed_midway(tmp_path: Path, durability_args: tuple[str, ...], n: int = 1) -> Path:
    out = tmp_path / "out"
    with popen_session(_demo(out, "--scenarios", "12", "--iterations", "0", "--slow", "0.15", *durability_args, n=n),
                       tmp_path / "stdout", tmp_path / "stderr") as proc:
        # and a journal file of every rank (one append per scenario): a rank that starts late has none yet
        _wait_for(lambda: len(_sim_files(out)) >= 25 and len({r for _a, r, _p in journal_files(out)}) == n, proc,
                  f"25 partitions and {n} journal file(s)")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (out / "simulation" / "_SUCCESS").exists()
    return out


@pytest.fixture(scope="module")
def clean_12(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("clean12") / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "12", "--iterations", "0", "-q")
    value = read_simulation_manifest(out / "simulation" / "_manifest.json").checksum_value
    assert value is not None
    return value


@pytest.mark.timeout(120)
def test_kill9_then_resume_adopts_what_the_journal_recorded(tmp_path: Path, clean_12: str) -> None:
    """kill -9 (the OS survives): every file renamed into place and every journal line written survive."""
    out = _killed_midway(tmp_path, ())
    journal = read_journal(out)
    recorded = {out / p for p in journal if p.endswith("data.parquet")}
    assert recorded and all(verify_entry(out, journal[p]) for p in journal if p.endswith("data.parquet"))
    mtimes = {p: p.stat().st_mtime_ns for p in recorded}
    run_cli("demo", "--output", str(out), "--scenarios", "12", "--iterations", "0", "-q", "--resume")
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean_12
    # the files of every scenario the journal recorded whole were adopted (not rewritten)
    adopted = [p for p in recorded if p.stat().st_mtime_ns == mtimes[p]]
    assert len(adopted) >= len(recorded) - 10  # at most the scenario in flight is rewritten


@pytest.mark.timeout(120)
def test_power_loss_of_unsynced_data_is_rewritten_on_resume(tmp_path: Path, clean_12: str) -> None:
    """Durability "commit": nothing is synced before the commit, so a power cut may lose the tail of the
    journal and the contents of recently renamed files (zeroed or truncated). Simulated here on a killed run:
    the resume adopts only what still matches, rewrites the rest, and ends with a clean run's checksum."""
    out = _killed_midway(tmp_path, ())
    rng = random.Random(7)
    files = sorted(_sim_files(out), key=lambda p: p.stat().st_mtime_ns)
    lost = files[-12:]  # the most recent writes: the ones the kernel had not written back
    for p in lost[:6]:
        p.write_bytes(bytes(p.stat().st_size))  # allocated but never written: zeros
    for p in lost[6:]:
        with open(p, "r+b") as fh:
            fh.truncate(rng.randint(0, p.stat().st_size - 1))
    (jf,) = [p for _a, _r, p in journal_files(out)]
    data = jf.read_bytes()
    jf.write_bytes(data[:rng.randint(len(data) // 2, len(data) - 1)])  # a torn, shorter journal
    survivors = read_journal(out)
    run_cli("demo", "--output", str(out), "--scenarios", "12", "--iterations", "0", "-q", "--resume")
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean_12
    assert all(verify_entry(out, e) for e in read_journal(out).values())
    assert len(survivors) < len(read_journal(out))


# ------------------------------------------------------------------ another world size
@pytest.mark.timeout(180)
def test_resume_at_another_world_size_uses_the_first_journal(tmp_path: Path, clean_12: str) -> None:
    out = _killed_midway(tmp_path, (), n=2)
    before = read_journal(out)
    assert {r for _a, r, _p in journal_files(out)} == {0, 1}
    run_cli("demo", "--output", str(out), "--scenarios", "12", "--iterations", "0", "-q", "--resume", n=3)
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean_12
    assert {(a, r) for a, r, _p in journal_files(out) if a == 2} == {(2, 0), (2, 1), (2, 2)}
    after = read_journal(out)
    kept = [p for p in before if p.endswith("data.parquet") and after[p] == before[p]]
    assert kept  # adopted across the change of world size
    assert (out / JOURNAL_FILES_DIR).is_dir()


@pytest.mark.parametrize(("durability", "per_scenario_sync"), [("file", True), ("commit", False), ("none", False)])
def test_durability_mode_decides_when_the_journal_reaches_the_disk(tmp_path: Path, small_system: System,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   durability: str, per_scenario_sync: bool) -> None:
    """"file": each scenario's records are fsynced right after its (fsynced) files, so a power cut loses at
    most the scenario in flight; "commit"/"none": appended without fsync (the commit's syncfs covers them)."""
    from cobre_mpi_io.journal import RankJournal

    flushes: list[tuple[str, bool]] = []
    real = RankJournal.flush

    def spy(self: RankJournal, *, sync: bool = False) -> None:
        import threading

        flushes.append((threading.current_thread().name, sync))
        real(self, sync=sync)

    monkeypatch.setattr(RankJournal, "flush", spy)
    m = _write(tmp_path / "out", small_system, durability=durability)
    assert m.status == "complete"
    io_thread = [sync for name, sync in flushes if name.startswith("cobre-io-rank")]
    assert len(io_thread) == N and set(io_thread) == {per_scenario_sync}
    j = read_journal(tmp_path / "out")
    assert all(verify_entry(tmp_path / "out", e) for e in j.values())
