"""Reliability of the simulation output under ``mpiexec``: crashes, failures, disk full, corruption.

Serial pytest; every MPI job is a subprocess (``mpiexec -n N python -m
cobre_mpi_io demo ...``) with a timeout, and every test has a
``pytest.mark.timeout``, so nothing can hang.

Covered (SPEC §4 atomic files, §6 manifests/markers/recovery, §10 errors):

- ``kill -9`` of one rank at several points → no partial ``data.parquet``,
  no ``_SUCCESS``, manifest not complete; ``--resume`` (another world size)
  completes with the checksum of a clean run at yet another world size;
- one rank raising → bounded exit, error printed once, manifest ``failed``
  with the failing rank; resume completes;
- disk full (``RLIMIT_FSIZE``) in a child process → ``IoError`` naming the
  path, cause ``disk full``; earlier files intact, no partial/temp file;
- a flipped byte is reported by ``validate``; a garbage manifest is rebuilt;
- a non-empty output directory is refused without ``--resume``, untouched;
- byte-identical files at 1, 2 and 3 ranks (round-robin and block);
- the 4ree case at 4 ranks, read back with pyarrow.dataset, polars, duckdb;
- (hypothesis, in-process) any mix of lost/truncated/corrupt files and
  stray temps is repaired by a resume to the clean checksum.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import xxhash
from conftest import CASE_4REE, mpiexec_argv, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io.layout import parse_partition_file, partition_file
from cobre_mpi_io.schemas import TABLES
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.processes import popen_session, rank_pids

PY = sys.executable
SEED = "42"  # the demo's default seed, spelled out
KILL_SCENARIOS = 48
FAIL_SCENARIOS = 40
MPI_TIMEOUT = 90  # seconds any single mpiexec job may take (2 shared cores, up to 4 ranks)

_DIR_TO_TABLE = {TABLES[t].directory: t for t in TABLES}


# --------------------------------------------------------------------------- helpers
def sim(out: Path) -> Path:
    return out / "simulation"


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The simulation manifest as JSON, None when absent or unreadable."""
    try:
        return json.loads((sim(out) / "_manifest.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def data_files(out: Path) -> list[Path]:
    return sorted(sim(out).rglob("data.parquet"))


def xxh(path: Path) -> str:
    return xxhash.xxh64(path.read_bytes(), seed=0).hexdigest()


def assert_no_partial_file(out: Path, system: System) -> int:
    """Every visible ``data.parquet`` reads in full with the expected rows; anything else is a known name.

    Returns the number of data files checked.
    """
    for p in data_files(out):
        rel = p.relative_to(sim(out)).as_posix()
        tbl = pq.read_table(p)  # raises on a truncated or partial file
        parsed = parse_partition_file(rel)
        assert parsed is not None, rel
        name = _DIR_TO_TABLE[parsed[0]]
        assert tbl.schema.equals(TABLES[name].arrow_schema), rel
        want = system.expected_rows(name)
        if want is not None:
            assert tbl.num_rows == want, rel
    for p in sim(out).rglob("*"):
        if p.is_file():
            assert p.name in ("data.parquet", "_manifest.json", "_SUCCESS") or p.name.startswith("."), p
    return len(data_files(out))


def demo_cmd(out: Path, *extra: str, n: int) -> list[str]:
    return [*mpiexec_argv(n), PY, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--quiet", *extra]


def validate(out: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("validate", str(out), "--json", check=False, timeout=60)


def assert_valid(out: Path) -> None:
    proc = validate(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Relative path → (mtime_ns, size, xxh64) of every file below ``root``."""
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st_ = p.stat()
            snap[p.relative_to(root).as_posix()] = (st_.st_mtime_ns, st_.st_size, xxh(p))
        elif p.is_symlink():
            snap[p.relative_to(root).as_posix()] = (0, 0, "->" + os.readlink(p))
    return snap


class CleanRuns:
    """Clean reference runs, one per argument set, shared by the module."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.runs: dict[tuple[Any, ...], Path] = {}

    def get(self, *args: str, n: int) -> Path:
        key = (n, *args)
        if key not in self.runs:
            out = self.base / f"clean{len(self.runs)}"
            run_cli("demo", "--output", str(out), "--quiet", *args, n=n, timeout=MPI_TIMEOUT)
            m = read_manifest(out)
            assert m is not None and m["status"] == "complete"
            assert (sim(out) / "_SUCCESS").exists()
            self.runs[key] = out
        return self.runs[key]

    def checksum(self, *args: str, n: int) -> str:
        m = read_manifest(self.get(*args, n=n))
        assert m is not None
        return m["checksum"]["value"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> CleanRuns:
    return CleanRuns(tmp_path_factory.mktemp("clean"))


# --------------------------------------------------------------------------- kill -9
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("kill_after", "victim"), [
    pytest.param(3, 1, id="after3-rank1",
                 marks=pytest.mark.mpi_agnostic("a rank other than 0 killed: after12-rank2 under each launcher")),
    pytest.param(12, 2, id="after12-rank2"),
    pytest.param(25, 0, id="after25-rank0")])
@pytest.mark.slow(27)
def test_kill9_one_rank_then_resume(tmp_path: Path, clean: CleanRuns, small_system: System,
                                    kill_after: int, victim: int) -> None:
    out = tmp_path / "out"
    args = ("--scenarios", str(KILL_SCENARIOS), "--seed", SEED)
    hydros = sim(out) / "hydros"
    with popen_session(demo_cmd(out, *args, "--slow", "0.05", n=3), tmp_path / "stdout", tmp_path / "stderr") as proc:
        deadline = time.monotonic() + 60
        while len(list(hydros.glob("scenario_id=*/data.parquet"))) < kill_after:
            assert proc.poll() is None, f"demo exited ({proc.returncode}) before {kill_after} partitions existed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.005)
        pids = rank_pids(proc.pid, 3)
        os.kill(pids[victim], signal.SIGKILL)
        t0 = time.monotonic()
        rc = proc.wait(timeout=30)  # the whole job goes down, within a bounded time
        assert time.monotonic() - t0 < 30
    assert rc != 0
    # nothing partial is visible, the run is not marked complete
    checked = assert_no_partial_file(out, small_system)
    assert checked < KILL_SCENARIOS * len(small_system.simulation_tables)
    assert not (sim(out) / "_SUCCESS").exists()
    m = read_manifest(out)
    assert m is None or m["status"] != "complete"
    # resume (no --slow) completes; same bytes as a clean run at a different world size
    run_cli("demo", "--output", str(out), "--quiet", *args, "--resume", n=3, timeout=MPI_TIMEOUT)
    assert_valid(out)
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete" and (sim(out) / "_SUCCESS").exists()
    assert m["scenarios"] == {"total": KILL_SCENARIOS, "completed": KILL_SCENARIOS, "failed": 0}
    assert m["checksum"]["value"] == clean.checksum(*args, n=2)


# --------------------------------------------------------------------------- one rank raises
@pytest.mark.timeout(180)
@pytest.mark.slow(23)
def test_one_rank_raises_fails_fast_then_resume(tmp_path: Path, clean: CleanRuns) -> None:
    out = tmp_path / "out"
    args = ("--scenarios", str(FAIL_SCENARIOS), "--seed", SEED)
    t0 = time.monotonic()
    proc = subprocess.run(demo_cmd(out, *args, "--fail-rank", "2", "--fail-after", "3", n=4),
                          capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - t0 < 60
    assert proc.returncode != 0
    # agreed error: printed once (by rank 0), no MPI abort
    assert proc.stderr.count("(--fail-rank 2)") == 1, proc.stderr
    assert proc.stderr.count("cobre-mpi-io: error:") == 1, proc.stderr
    m = read_manifest(out)
    assert m is not None and m["status"] in ("failed", "partial")
    assert m["status"] == "failed"  # an exception left the writer's block: the run is failed
    assert m["mpi_info"]["world_size"] == 4
    mine = [f for f in m["failures"] if f["rank"] == 2]
    assert mine and any("(--fail-rank 2)" in f["message"] for f in mine)
    assert not any(f["rank"] in (0, 1, 3) for f in m["failures"])
    assert m["scenarios"]["completed"] < FAIL_SCENARIOS
    assert not (sim(out) / "_SUCCESS").exists()
    # rank 2 wrote exactly its first 3 scenarios (2, 6, 10); the others stopped early too (fail fast),
    # each after a prefix of its own scenarios, in order
    written = {int(p.removeprefix("scenario_id=").rstrip("/")) for p in m["partitions_written"]}
    assert {s for s in written if s % 4 == 2} == {2, 6, 10}
    for r in (0, 1, 3):
        owned = list(range(r, FAIL_SCENARIOS, 4))
        mine_written = sorted(s for s in written if s % 4 == r)
        assert mine_written == owned[:len(mine_written)], (r, mine_written)
    run_cli("demo", "--output", str(out), "--quiet", *args, "--resume", n=4, timeout=MPI_TIMEOUT)
    assert_valid(out)
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete" and m["failures"] == []
    assert m["checksum"]["value"] == clean.checksum(*args, n=2)


# --------------------------------------------------------------------------- disk full
_DISK_FULL_CHILD = r"""
import json, resource, signal, sys, time
from pathlib import Path
from mpi4py import MPI
from cobre_mpi_io.errors import IoError, OutputError
from cobre_mpi_io.simulation import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.system import System

out, case, seed, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
system = System.from_case(case)
# the identity the demo's --resume below computes for these arguments (a resume must be the same run)
from cobre_mpi_io.cli.main import build_parser
from cobre_mpi_io.cli.demo import run_config
args = build_parser().parse_args(["demo", "--output", str(out), "--case", str(case), "--scenarios", str(n),
                                  "--seed", str(seed)])
identity = run_config(args).identity(system)
w = SimulationParquetWriter(out, system, SimulationConfig(num_scenarios=n, identity=identity), MPI.COMM_SELF)
# the disk has room for the first scenarios ...
for sid in range(3):
    w.write_scenario(synthetic_result(system, sid, seed))
deadline = time.monotonic() + 60
while len(w.rank_part.scenarios_written) < 3:
    assert time.monotonic() < deadline
    time.sleep(0.01)
before = {r.path: (r.rows, r.bytes, r.xxhash64) for r in w.rank_part.files}
# ... then it fills up: room for a file of the small tables, not for one of the largest table (the table
# whose smallest file is larger than every file of the others)
tables = {p.split("/")[0] for p in before}
big_table = max(tables, key=lambda t: min(b for p, (_, b, _) in before.items() if p.startswith(t + "/")))
small = max(b for p, (_, b, _) in before.items() if not p.startswith(big_table + "/"))
big = min(b for p, (_, b, _) in before.items() if p.startswith(big_table + "/"))
assert small < big, (small, big, big_table)
limit = (small + big) // 2
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
raised = []

def describe(e):
    return {"type": type(e).__name__, "kind": getattr(e, "kind", None), "path": getattr(e, "path", None),
            "cause": getattr(e, "cause", None), "message": str(e)}

try:
    for sid in range(3, n):
        w.write_scenario(synthetic_result(system, sid, seed))
except OutputError as e:
    raised.append({"where": "write_scenario", **describe(e)})
try:
    w.finalize()
except OutputError as e:
    raised.append({"where": "finalize", **describe(e)})
files = {r.path: (r.rows, r.bytes, r.xxhash64) for r in w.rank_part.files}
print(json.dumps({"limit": limit, "big_table": big_table, "before": before, "files": files, "raised": raised}))
"""


@pytest.mark.mpi_agnostic("a singleton process fills the disk; the resume at 2 ranks checks bytes, not the launcher")
@pytest.mark.timeout(120)
@pytest.mark.slow(35)
def test_disk_full_raises_io_error_and_keeps_data_intact(tmp_path: Path, system_4ree: System) -> None:
    out = tmp_path / "out"
    n = 6
    # a plain (singleton MPI) process: drop the launcher variables of an enclosing MPI job, if any
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "MPI_LOCAL", "OMPI_"))}
    proc = subprocess.run([PY, "-c", _DISK_FULL_CHILD, str(out), str(CASE_4REE), SEED, str(n)],
                          capture_output=True, text=True, timeout=90, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    # the first scenarios are complete; the disk filled at the first file of the largest table after them
    assert {p for p in res["before"]} == {partition_file(t, s) for t in system_4ree.simulation_tables
                                          for s in range(3)}
    first = res["raised"][0]
    assert first["type"] == "IoError" and first["kind"] == "io" and first["cause"] == "disk full"
    big_table = res["big_table"]
    failing = str(sim(out) / partition_file(big_table, 3))
    assert first["path"] == failing and failing in first["message"]
    final = res["raised"][-1]
    assert final["where"] == "finalize" and final["type"] == "IoError" and final["cause"] == "disk full"
    assert "simulation partial" in final["message"]
    # what was written before (and the small files of later scenarios) is intact
    files = res["files"]
    assert set(res["before"]) <= set(files)
    for rel, (rows, size, digest) in files.items():
        p = sim(out) / rel
        assert p.stat().st_size == size and xxh(p) == digest, rel
        assert pq.read_table(p).num_rows == rows
    # no file of the largest table past the limit, nothing partial, no temp file left behind
    for s in range(3, n):
        assert not (sim(out) / partition_file(big_table, s)).exists()
    assert_no_partial_file(out, system_4ree)
    assert {p.relative_to(sim(out)).as_posix() for p in data_files(out)} == set(files)
    assert [p for p in sim(out).rglob(".*")] == []
    m = read_manifest(out)
    assert m is not None and m["status"] == "partial" and m["scenarios"]["completed"] == 3
    assert m["partitions_written"] == [f"scenario_id={s:04d}/" for s in range(3)]
    # scenario 3 failed in the I/O thread; the producer learns it at a later write_scenario and stops
    failed = {f["scenario_id"] for f in m["failures"] if f["scenario_id"] is not None}
    assert 3 in failed and failed <= set(range(3, n)) and m["scenarios"]["failed"] == len(failed)
    assert all("disk full" in f["message"] for f in m["failures"] if f["scenario_id"] is not None)
    assert {k: (v["rows"], v["bytes"], v["xxhash64"]) for k, v in m["files"].items()} == \
        {k: tuple(v) for k, v in files.items()}
    assert not (sim(out) / "_SUCCESS").exists()
    rep = json.loads(validate(out).stdout)
    assert not rep["valid"] and {p["file"] for p in rep["problems"]} == {"_manifest.json"}  # only: not complete
    # with room again, a resume finishes the run: same bytes as a clean run
    run_cli("demo", "--output", str(out), "--case", str(CASE_4REE), "--scenarios", str(n), "--seed", SEED,
            "--quiet", "--resume", n=2, timeout=MPI_TIMEOUT)
    assert_valid(out)
    clean = tmp_path / "clean"
    run_cli("demo", "--output", str(clean), "--case", str(CASE_4REE), "--scenarios", str(n), "--seed", SEED,
            "--quiet", n=1, timeout=MPI_TIMEOUT)
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete"
    assert m["checksum"]["value"] == read_manifest(clean)["checksum"]["value"]  # type: ignore[index]


# --------------------------------------------------------------------------- corruption
@pytest.mark.mpi_agnostic("validate and resume repair the bytes; the launcher only starts the resume")
@pytest.mark.timeout(180)
@pytest.mark.slow(25)
def test_flipped_byte_is_reported_and_resume_repairs_it(tmp_path: Path, clean: CleanRuns) -> None:
    args = ("--scenarios", str(KILL_SCENARIOS), "--seed", SEED)
    out = tmp_path / "out"
    shutil.copytree(clean.get(*args, n=2), out, symlinks=True)
    rel = partition_file("thermals", 7)
    p = sim(out) / rel
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    proc = run_cli("validate", str(out), check=False, timeout=60)
    assert proc.returncode != 0
    assert rel in proc.stdout and "xxhash64" in proc.stdout
    rep = json.loads(validate(out).stdout)
    assert not rep["valid"] and rel in {q["file"] for q in rep["problems"]}
    assert all("scenario_id=0007/" in q["file"] for q in rep["problems"]), rep["problems"]  # nothing else
    run_cli("demo", "--output", str(out), "--quiet", *args, "--resume", n=3, timeout=MPI_TIMEOUT)
    assert_valid(out)
    assert read_manifest(out)["checksum"]["value"] == clean.checksum(*args, n=2)  # type: ignore[index]


@pytest.mark.mpi_agnostic("resume rebuilds the manifest from the listing; the launcher only starts it")
@pytest.mark.timeout(180)
def test_garbage_manifest_is_rebuilt_by_resume(tmp_path: Path, clean: CleanRuns) -> None:
    args = ("--scenarios", str(KILL_SCENARIOS), "--seed", SEED)
    out = tmp_path / "out"
    shutil.copytree(clean.get(*args, n=2), out, symlinks=True)
    (sim(out) / "_manifest.json").write_bytes(b"\x00{ not json at all \xff")
    proc = run_cli("validate", str(out), check=False, timeout=60)
    assert proc.returncode != 0 and "_manifest.json" in proc.stdout
    before = {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in data_files(out)}
    run_cli("demo", "--output", str(out), "--quiet", *args, "--resume", n=3, timeout=MPI_TIMEOUT)
    assert_valid(out)
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete" and m["mpi_info"]["world_size"] == 3
    assert m["checksum"]["value"] == clean.checksum(*args, n=2)
    # rebuilt from the partition listing: no data file was rewritten
    assert {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in data_files(out)} == before


# --------------------------------------------------------------------------- overwrite protection
@pytest.mark.timeout(180)
@pytest.mark.parametrize("phases", [("--iterations", "0"), ()], ids=["simulation-only", "whole-demo"])
def test_non_empty_output_is_refused_and_untouched(tmp_path: Path, clean: CleanRuns,
                                                   phases: tuple[str, ...]) -> None:
    args = ("--scenarios", str(KILL_SCENARIOS), "--seed", SEED)
    out = tmp_path / "out"
    shutil.copytree(clean.get(*args, n=2), out, symlinks=True)
    before = snapshot(out)
    time.sleep(0.02)  # a rewrite would show in the mtimes
    proc = run_cli("demo", "--output", str(out), *args, *phases, n=2, check=False, timeout=MPI_TIMEOUT)
    assert proc.returncode != 0
    assert "--resume" in proc.stderr
    after = snapshot(out)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"a refused run changed {len(changed)} file(s): {changed[:8]}"


# --------------------------------------------------------------------------- determinism
@pytest.mark.mpi_agnostic("the bytes at 1, 2 and 3 ranks; the MPI tests cover the collectives under both MPIs")
@pytest.mark.timeout(240)
@pytest.mark.slow(40)
def test_same_seed_same_bytes_at_any_world_size(tmp_path: Path) -> None:
    args = ("--scenarios", "11", "--seed", "7")
    runs = {}
    for n, assignment in [(1, "round-robin"), (2, "round-robin"), (3, "round-robin"), (2, "block"), (3, "block")]:
        out = tmp_path / f"n{n}-{assignment}"
        run_cli("demo", "--output", str(out), "--quiet", *args, "--assignment", assignment, n=n,
                timeout=MPI_TIMEOUT)
        runs[(n, assignment)] = out
    ref_out = runs[(1, "round-robin")]
    ref = {p.relative_to(ref_out).as_posix(): p.read_bytes() for p in data_files(ref_out)}
    ref_m = read_manifest(ref_out)
    assert ref_m is not None and len(ref) == len(ref_m["files"]) > 0
    for (n, assignment), out in runs.items():
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in data_files(out)}
        assert got.keys() == ref.keys(), (n, assignment)
        for rel, content in ref.items():
            assert got[rel] == content, (n, assignment, rel)
        m = read_manifest(out)
        assert m is not None and m["status"] == "complete" and m["mpi_info"]["world_size"] == n
        assert m["mpi_info"]["ranks_participated"] == n
        assert m["checksum"]["value"] == ref_m["checksum"]["value"]
        assert m["files"] == ref_m["files"]
    # a different seed gives different bytes (the comparison above is not vacuous)
    other = tmp_path / "seed8"
    run_cli("demo", "--output", str(other), "--quiet", "--scenarios", "11", "--seed", "8", n=1, timeout=MPI_TIMEOUT)
    assert read_manifest(other)["checksum"]["value"] != ref_m["checksum"]["value"]  # type: ignore[index]


# --------------------------------------------------------------------------- 4ree case
@pytest.mark.mpi_agnostic("reads back a 4-rank run; 4 ranks under each MPI: test_one_rank_raises_fails_fast_then_resume")
@pytest.mark.timeout(240)
@pytest.mark.slow(28)
def test_4ree_case_at_four_ranks_reads_back_everywhere(tmp_path: Path, system_4ree: System) -> None:
    out = tmp_path / "out"
    run_cli("demo", "--case", str(CASE_4REE), "--output", str(out), n=4, timeout=150)
    s = sim(out)
    assert sorted(p.name for p in s.iterdir() if p.is_dir()) == ["buses", "costs", "exchanges", "hydros", "thermals"]
    rows = {"costs": 24, "hydros": 48, "thermals": 1512, "exchanges": 60, "buses": 60}  # 12 stages × 1 block
    for name, want in rows.items():
        assert system_4ree.expected_rows(name) == want
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete" and (s / "_SUCCESS").exists()
    assert m["scenarios"] == {"total": 100, "completed": 100, "failed": 0}  # from the case's config.json
    assert m["mpi_info"] == {"world_size": 4, "ranks_participated": 4}
    assert len(m["files"]) == 100 * len(rows)
    for rel, entry in m["files"].items():
        parsed = parse_partition_file(rel)
        assert parsed is not None and entry["rows"] == rows[_DIR_TO_TABLE[parsed[0]]], rel
    assert_valid(out)
    for name, want in rows.items():
        root = s / TABLES[name].directory
        for sid in (0, 37, 99):
            assert pq.ParquetFile(root / f"scenario_id={sid:04d}" / "data.parquet").metadata.num_rows == want
        tbl = ds.dataset(root, format="parquet", partitioning="hive").to_table()
        assert "scenario_id" in tbl.column_names and tbl.num_rows == 100 * want
        assert sorted(set(tbl.column("scenario_id").to_pylist())) == list(range(100))
        df = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True).collect()
        assert df.height == 100 * want
        assert sorted(df["scenario_id"].unique().cast(pl.Int64).to_list()) == list(range(100))
        # duckdb keeps the zero-padded partition value as a string ('0007'); it casts back exactly
        got = duckdb.sql(f"select count(*), count(distinct scenario_id), min(cast(scenario_id as integer)), "
                         f"max(cast(scenario_id as integer)) "
                         f"from read_parquet('{root}/*/*.parquet', hive_partitioning=true)").fetchall()[0]
        assert got == (100 * want, 100, 0, 99)


# --------------------------------------------------------------------------- hypothesis: any damage, one resume
_DAMAGE = st.lists(st.tuples(st.sampled_from(["delete", "truncate", "flip", "temp"]),
                             st.integers(0, 5), st.integers(0, 9)), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def serial_clean(tmp_path_factory: pytest.TempPathFactory, small_system: System) -> Path:
    from mpi4py import MPI

    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
    from cobre_mpi_io.testing.simulation import synthetic_result

    out = tmp_path_factory.mktemp("serial_clean")
    with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=6), MPI.COMM_SELF) as w:
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(small_system, sid, 3))
    return out


@pytest.mark.timeout(240)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=_DAMAGE, drop_manifest=st.booleans())
def test_resume_repairs_any_damage(tmp_path_factory: pytest.TempPathFactory, serial_clean: Path,
                                   small_system: System, damage: list[tuple[str, int, int]],
                                   drop_manifest: bool) -> None:
    from mpi4py import MPI

    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
    from cobre_mpi_io.testing.simulation import synthetic_result

    out = tmp_path_factory.mktemp("damage")
    shutil.rmtree(out)
    shutil.copytree(serial_clean, out)
    tables = small_system.simulation_tables
    damaged: set[int] = set()
    for kind, sid, t in damage:
        if drop_manifest and kind == "flip":
            # without the manifest's hashes a flipped data byte behind a readable footer with the right row
            # count is undetectable (SPEC §6: the listing is then the only record); damage the footer instead
            kind = "truncate"
        p = sim(out) / partition_file(tables[t % len(tables)], sid)
        if kind == "temp":
            (p.parent / f".data.parquet.{sid}{t}.tmp").write_bytes(b"partial")
            continue
        if not p.exists():
            continue
        if kind == "delete":
            p.unlink()
        elif kind == "truncate":
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        else:
            b = bytearray(p.read_bytes())
            b[len(b) // 3] ^= 0x40
            p.write_bytes(bytes(b))
    if drop_manifest:
        (sim(out) / "_manifest.json").unlink()
    for rel in read_manifest(serial_clean)["files"]:  # type: ignore[index]
        p = sim(out) / rel
        if not p.exists() or p.read_bytes() != (sim(serial_clean) / rel).read_bytes():
            damaged.add(parse_partition_file(rel)[1])  # type: ignore[index]
    untouched = {p: p.stat().st_mtime_ns for p in data_files(out)
                 if parse_partition_file(p.relative_to(sim(out)).as_posix())[1] not in damaged}  # type: ignore[index]
    cfg = SimulationConfig(num_scenarios=6, resume=True)
    with SimulationParquetWriter(out, small_system, cfg, MPI.COMM_SELF) as w:
        assert set(w.pending_scenarios()) == damaged
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(small_system, sid, 3))
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete"
    assert m["checksum"]["value"] == read_manifest(serial_clean)["checksum"]["value"]  # type: ignore[index]
    assert all(p.stat().st_mtime_ns == t for p, t in untouched.items())
    assert [p for p in sim(out).rglob(".*")] == []
    from cobre_mpi_io.validate import validate_simulation

    assert validate_simulation(out).valid
