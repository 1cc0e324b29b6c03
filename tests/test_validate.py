"""``cobre-mpi-io validate``: the whole output tree (simulation, training, policy, root), at any size.

Every test starts from a copy of one clean demo run (3 scenarios, 2 training
iterations, 1 rank), breaks one thing, and checks that exactly that thing is
reported, in one line naming the file, never with a traceback.  Problems the
clean run itself has (there should be none: ``test_clean_run_is_valid``) are
subtracted, so each test shows only what its own change caused.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash
from conftest import CASE_4REE, mpiexec_argv, run_cli

from cobre_mpi_io.identity import FOOTER_KEY
from cobre_mpi_io.layout import partition_file
from cobre_mpi_io.manifest import combined_checksum
from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.validate import validate_output

pytestmark = pytest.mark.timeout(240)

PY = sys.executable
OTHER_FINGERPRINT = "sha256:" + "ab" * 32


def plain_env() -> dict[str, str]:
    """This environment without an enclosing MPI job's launcher variables (a plain process)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_", "SLURM_"))}


def cli(*args: str, limit_files: int | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m cobre_mpi_io validate ARGS`` in a plain process (optionally under RLIMIT_NOFILE)."""

    def lower() -> None:
        if limit_files is not None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, hard))

    return subprocess.run([PY, "-m", "cobre_mpi_io", "validate", *args], capture_output=True, text=True,
                          timeout=200, env=plain_env(), preexec_fn=lower, check=False)


def problems(out: Path, **kw: Any) -> set[str]:
    """The problems of ``out`` as ``"path: problem"`` lines."""
    return {str(p) for p in validate_output(out, **kw).problems}


def sim(out: Path) -> Path:
    return out / "simulation"


def read_manifest(out: Path, section: str = "simulation") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / section / "_manifest.json").read_text())
    return doc


def journal_record(out: Path, rel: str) -> None:
    """Record ``OUT/rel``'s bytes in the run journal (when the run has one), as a consistent writer would.

    The tests below that rewrite a file 'consistently' (manifest and journal agree with the new bytes) check
    what validate finds beyond the bytes; ``tests/test_validate_journal.py`` checks the bytes.
    """
    if not (out / "_journal").is_dir():
        return
    from cobre_mpi_io.journal import RankJournal, journal_files

    data = (out / rel).read_bytes()
    rows = pq.read_metadata(out / rel).num_rows if rel.endswith(".parquet") else None
    j = RankJournal(out, max((a for a, _r, _p in journal_files(out)), default=0) + 1, 0)
    j.record(rel, len(data), xxhash.xxh64_hexdigest(data), rows)
    j.close()


def write_manifest(out: Path, doc: dict[str, Any], section: str = "simulation") -> None:
    (out / section / "_manifest.json").write_text(json.dumps(doc, indent=1))
    journal_record(out, f"{section}/_manifest.json")


def record_file(out: Path, rel: str) -> None:
    """Update the simulation manifest's entry and checksum for a rewritten file (a 'consistent' writer bug)."""
    m = read_manifest(out)
    p = sim(out) / rel
    data = p.read_bytes()
    m["files"][rel] = {"rows": pq.read_metadata(p).num_rows, "bytes": len(data),
                       "xxhash64": xxhash.xxh64_hexdigest(data)}
    m["checksum"]["value"] = combined_checksum({k: v["xxhash64"] for k, v in m["files"].items()})
    write_manifest(out, m)
    journal_record(out, f"simulation/{rel}")


def rewrite_parquet(path: Path, tbl: pa.Table, fingerprint: str | None) -> None:
    """Rewrite ``path`` with ``tbl`` and exactly the given footer fingerprint (None: no key at all)."""
    meta = {FOOTER_KEY.encode(): fingerprint.encode()} if fingerprint is not None else None
    pq.write_table(tbl.replace_schema_metadata(meta), path)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validate") / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "3", "--iterations", "2", "--quiet", timeout=180)
    return out


@pytest.fixture(scope="module")
def baseline(clean_run: Path) -> set[str]:
    return problems(clean_run)


@pytest.fixture
def run(clean_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(clean_run, out, symlinks=True)
    return out


def new_problems(out: Path, baseline: set[str], **kw: Any) -> list[str]:
    return sorted(problems(out, **kw) - baseline)


# --------------------------------------------------------------------------- the clean run
def test_clean_run_is_valid(clean_run: Path) -> None:
    report = validate_output(clean_run)
    assert report.valid, [str(p) for p in report.problems]
    assert report.status == "complete" and report.training_status == "complete"
    assert report.scenarios_checked == 3 and report.checkpoints_checked == 1
    n_sim = len(read_manifest(clean_run)["files"])
    assert report.files_checked > n_sim  # training and policy files too
    proc = cli(str(clean_run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid;" in proc.stdout and proc.stderr == ""


def test_a_journaled_run_is_validated_without_the_writers_or_the_policy_codec(clean_run: Path) -> None:
    """What validating a run of ours loads (issue 16: validate <= 3x the floor of reading every file).

    Files the journal vouches for are only hashed; pyarrow and NumPy come in for the reference scenarios
    and the training tables alone (``Array.cast`` brings ``pyarrow.compute``), and nothing of the writers,
    the system model or the policy codec.
    """
    code = ("import json, sys\nfrom cobre_mpi_io.validate import validate_output\n"
            f"assert validate_output({str(clean_run)!r}).valid\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('cobre_mpi_io', 'pyarrow.dataset', "
            "'flatbuffers', 'pandas', 'mpi4py')))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    unwanted = {"pyarrow.dataset", "flatbuffers", "pandas", "mpi4py", "cobre_mpi_io.system",
                "cobre_mpi_io.config", "cobre_mpi_io.results", "cobre_mpi_io.parquet", "cobre_mpi_io.simulation",
                "cobre_mpi_io.training.writer", "cobre_mpi_io.training.dictionaries", "cobre_mpi_io.policy.codec",
                "cobre_mpi_io.policy.decode", "cobre_mpi_io.policy.checkpoint", "cobre_mpi_io.policy.records"}
    assert "cobre_mpi_io.validate.files" in loaded and not unwanted & loaded, sorted(unwanted & loaded)


@pytest.mark.parametrize("args", [("--detail", "stage"), ("--detail", "summary"), ("--iterations", "0"),
                                  ("--case", str(CASE_4REE), "--scenarios", "2")],
                         ids=["stage", "summary", "no-training", "4ree"])
def test_other_runs_are_valid_also_deep(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = tmp_path / "run"
    extra = () if "--scenarios" in args else ("--scenarios", "3")
    run_cli("demo", "--output", str(out), "--iterations", "1", "--quiet", *extra, *args, timeout=180)
    for deep in (False, True):
        report = validate_output(out, deep=deep)
        assert report.valid, [str(p) for p in report.problems]
    assert report.status == "complete"
    assert (report.training_status is None) == ("0" in args)


def test_truncated_file_is_one_finding_per_fact(run: Path, baseline: set[str]) -> None:
    rel = partition_file("hydros", 1)
    data = (sim(run) / rel).read_bytes()
    (sim(run) / rel).write_bytes(data[: len(data) // 2])
    got = new_problems(run, baseline)
    # bytes that are not the recorded ones are reported, never parsed (a corrupt footer can abort pyarrow)
    if (run / "_journal").is_dir():  # the journal and the manifest record the same: one line
        assert len(got) == 1, got
        assert got[0].startswith(f"simulation/{rel}: bytes differ from the run journal's record: size "
                                 f"{len(data) // 2}, ") and got[0].endswith("(as the manifest)")
        return
    assert len(got) == 2, got
    assert got[0].startswith(f"simulation/{rel}: size {len(data) // 2} differs from the manifest ({len(data)})")
    assert got[1].startswith(f"simulation/{rel}: xxhash64 ")


def test_json_names_section_file_and_path(run: Path, baseline: set[str]) -> None:
    (sim(run) / "costs" / "scenario_id=0001" / "notes.txt").write_text("hi")
    proc = cli(str(run), "--json")
    assert proc.returncode == 1
    rep = json.loads(proc.stdout)
    assert rep["valid"] is False and rep["status"] == "complete" and rep["training_status"] == "complete"
    hit = [q for q in rep["problems"] if q["file"] == "costs/scenario_id=0001/notes.txt"]
    assert len(hit) == 1 and hit[0]["section"] == "simulation"
    assert hit[0]["path"] == "simulation/costs/scenario_id=0001/notes.txt"


def test_exit_codes(run: Path, tmp_path: Path) -> None:
    assert cli(str(tmp_path / "nope")).returncode == 2
    (tmp_path / "file").write_text("x")
    assert cli(str(tmp_path / "file")).returncode == 2
    assert cli(str(run), "--threads", "0").returncode == 2
    assert cli(str(run), "--threads", "x").returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli(str(empty))
    assert proc.returncode == 1 and "not an output directory" in proc.stdout


def test_simulation_directory_alone(run: Path, baseline: set[str]) -> None:
    sim_only = {p for p in baseline if p.startswith("simulation/")}
    report = validate_output(sim(run))
    assert {str(p) for p in report.problems} == sim_only
    assert report.scenarios_checked == 3


# --------------------------------------------------------------------------- size: file handles
@pytest.mark.slow
def test_two_thousand_partition_files_under_a_low_open_file_limit(tmp_path: Path) -> None:
    out = tmp_path / "big"
    run_cli("demo", "--output", str(out), "--scenarios", "200", "--iterations", "1", "--quiet", timeout=200)
    n_files = len(read_manifest(out)["files"])
    assert n_files >= 2000
    # the old validator kept every file open; 64 descriptors is far below the number of files
    proc = cli(str(out), limit_files=64)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{n_files}" in proc.stdout or "valid;" in proc.stdout
    report_line = proc.stdout.strip().splitlines()[-1]
    assert "valid;" in report_line and "200 scenarios" in report_line
    # and a problem found under the limit is still reported normally
    victim = sim(out) / partition_file("hydros", 123)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = cli(str(out), "--threads", "4", limit_files=64)
    assert proc.returncode == 1 and "Too many open files" not in proc.stdout + proc.stderr
    assert "simulation/hydros/scenario_id=0123/data.parquet: bytes differ from the run journal's record" \
        in proc.stdout or "simulation/hydros/scenario_id=0123/data.parquet: xxhash64" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- sees everything
def test_unlisted_file_of_any_kind_is_reported(run: Path, baseline: set[str]) -> None:
    (sim(run) / "hydros" / "scenario_id=0001" / "notes.txt").write_text("a note")
    (sim(run) / "README").write_text("x")
    (run / "training" / "timing" / "extra.csv").write_text("x")
    (run / "policy" / "checkpoints" / "iter_000002" / "cuts" / "notes.txt").write_text("x")
    (sim(run) / "scratch").mkdir()
    assert new_problems(run, baseline) == sorted([
        "policy/checkpoints/iter_000002/cuts/notes.txt: unexpected file (not part of the output)",
        "simulation/README: unexpected file (not part of the output)",
        "simulation/hydros/scenario_id=0001/notes.txt: unexpected file (not part of the output)",
        "simulation/scratch: unexpected directory (not part of the output)",
        "training/timing/extra.csv: unexpected file (not part of the output)",
    ])


def test_unlisted_parquet_and_stray_temp_are_reported(run: Path, baseline: set[str]) -> None:
    part = sim(run) / "thermals" / "scenario_id=0002"
    shutil.copy(part / "data.parquet", part / "other.parquet")
    (part / ".data.parquet.1a2b3c.tmp").write_bytes(b"partial")
    extra = sim(run) / "thermals" / "scenario_id=0099"
    extra.mkdir()
    shutil.copy(part / "data.parquet", extra / "data.parquet")
    got = new_problems(run, baseline)
    assert got == sorted([
        ("simulation/thermals/scenario_id=0002/.data.parquet.1a2b3c.tmp: stray temp file (an interrupted write; "
        "--resume removes it)"),
        "simulation/thermals/scenario_id=0002/other.parquet: data file not listed in the manifest",
        "simulation/thermals/scenario_id=0099/data.parquet: data file not listed in the manifest",
    ])


def test_symlink_loop_inside_a_table_is_refused(run: Path, baseline: set[str]) -> None:
    # pyarrow.dataset would follow it (12,030 files read instead of 120 in the reproduction)
    os.symlink("..", sim(run) / "hydros" / "scenario_id=0000" / "loop")
    os.symlink("../thermals", sim(run) / "hydros" / "alias")
    got = new_problems(run, baseline)
    assert got == sorted([
        "simulation/hydros/alias: symbolic link (refused: readers would follow it; remove it)",
        "simulation/hydros/scenario_id=0000/loop: symbolic link (refused: readers would follow it; remove it)",
    ])


def test_symlinked_data_file_and_special_files_are_refused(run: Path, baseline: set[str], tmp_path: Path) -> None:
    rel = partition_file("buses", 1)
    target = tmp_path / "elsewhere.parquet"
    shutil.move(sim(run) / rel, target)
    os.symlink(target, sim(run) / rel)
    os.mkfifo(sim(run) / "costs" / "scenario_id=0000" / "pipe")
    os.mkfifo(run / "training" / "fifo")
    got = new_problems(run, baseline)
    assert f"simulation/{rel}: symbolic link (refused: readers would follow it; remove it)" in got
    assert f"simulation/{rel}: is a symbolic link (refused: readers would follow it)" in got
    assert "simulation/costs/scenario_id=0000/pipe: not a regular file or directory (fifo, socket or device: " \
           "refused)" in got
    assert "training/fifo: not a regular file or directory (fifo, socket or device: refused)" in got
    assert len(got) == 4, got


def test_a_directory_where_a_listed_file_belongs_and_a_file_where_a_partition_belongs(run: Path,
                                                                                     baseline: set[str]) -> None:
    """The walk takes the manifest's partitions without asking about each one: only for the kind they must be."""
    rel = partition_file("hydros", 1)
    (sim(run) / rel).unlink()
    (sim(run) / rel).mkdir()
    (sim(run) / rel / "inside.parquet").write_bytes(b"x")
    shutil.rmtree(sim(run) / "thermals" / "scenario_id=0002")
    (sim(run) / "thermals" / "scenario_id=0002").write_bytes(b"x")
    got = new_problems(run, baseline)
    assert got[:2] == [f"simulation/{rel}: not a regular file (refused)",
                       f"simulation/{rel}: unexpected directory (not part of the output)"], got  # not entered
    assert got[2].startswith("simulation/thermals/scenario_id=0002/data.parquet: cannot be read: [Errno 20] Not a "
                             "directory"), got
    assert got[3:] == ["simulation/thermals/scenario_id=0002: unexpected file (not part of the output)"], got


@pytest.mark.parametrize(("change", "expect"), [
    ({"tables": []}, "tables"),
    ({"detail": [1]}, "detail"),
    ({"detail": "hourly"}, "detail"),
    ({"failures": 3}, "failures"),
    ({"tables": 3}, "tables"),
    ({"tables": ["costs", "nonsense"]}, "tables"),
    ({"partitions_written": ["scenario_id=abc/"]}, "partitions_written"),
    ({"partitions_written": "scenario_id=0000/"}, "partitions_written"),
    ({"scenarios": {"total": "3", "completed": 3, "failed": 0}}, "total"),
    ({"files": {"../../etc/passwd": {"rows": 1, "bytes": 1, "xxhash64": "0" * 16}}}, "etc/passwd"),
], ids=["tables-empty", "detail-list", "detail-unknown", "failures-int", "tables-int", "tables-unknown",
        "partition-abc", "partitions-str", "total-str", "files-escape"])
def test_malformed_manifest_is_one_line_never_a_traceback(run: Path, change: dict[str, Any], expect: str) -> None:
    m = read_manifest(run)
    m.update(change)
    write_manifest(run, m)
    proc = cli(str(run))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stderr == ""
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("simulation/")]
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith("simulation/_manifest.json: unreadable") and expect in lines[0], lines[0]


def test_missing_and_corrupt_manifest(run: Path) -> None:
    (sim(run) / "_manifest.json").write_bytes(b"\x00{ not json \xff")
    proc = cli(str(run))
    assert proc.returncode == 1 and "simulation/_manifest.json: unreadable" in proc.stdout
    (sim(run) / "_manifest.json").unlink()
    proc = cli(str(run))
    assert proc.returncode == 1 and "simulation/_manifest.json: missing" in proc.stdout


# --------------------------------------------------------------------------- simulation content
def test_flipped_byte_and_missing_file(run: Path, baseline: set[str]) -> None:
    rel = partition_file("thermals", 2)
    data = bytearray((sim(run) / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (sim(run) / rel).write_bytes(bytes(data))
    gone = partition_file("exchanges", 1)
    (sim(run) / gone).unlink()
    got = new_problems(run, baseline)
    assert any(g.startswith((f"simulation/{rel}: xxhash64 ", f"simulation/{rel}: bytes differ from the run journal"))
               for g in got), got
    assert f"simulation/{gone}: listed in the manifest but missing" in got
    assert all(rel in g or gone in g for g in got), got


def test_rows_differing_from_the_reference_scenario(run: Path, baseline: set[str]) -> None:
    rel = partition_file("hydros", 2)
    tbl = pq.read_table(sim(run) / rel)
    fp = (pq.read_metadata(sim(run) / rel).metadata or {}).get(FOOTER_KEY.encode())
    rewrite_parquet(sim(run) / rel, tbl.slice(0, tbl.num_rows - 1), fp.decode() if fp else None)
    record_file(run, rel)  # the manifest agrees: only the content is wrong
    got = new_problems(run, baseline)
    assert len(got) == 1 and got[0].startswith(f"simulation/{rel}: {tbl.num_rows - 1} rows"), got
    assert "scenario 0 (the reference)" in got[0]


def test_reference_scenario_checked_against_spec_formula(run: Path, baseline: set[str]) -> None:
    rel = partition_file("buses", 0)
    tbl = pq.read_table(sim(run) / rel)
    fp = (pq.read_metadata(sim(run) / rel).metadata or {}).get(FOOTER_KEY.encode())
    rewrite_parquet(sim(run) / rel, tbl.slice(0, tbl.num_rows - 1), fp.decode() if fp else None)
    record_file(run, rel)
    got = new_problems(run, baseline)
    assert any(g.startswith(f"simulation/{rel}: {tbl.num_rows - 1} rows where blocks × entities") for g in got), got


def test_deep_finds_repeated_keys(run: Path, baseline: set[str]) -> None:
    rel = partition_file("thermals", 1)
    tbl = pq.read_table(sim(run) / rel)
    ids = tbl.column("thermal_id").to_pylist()
    lo, hi = min(ids), max(ids)
    middle = sorted(set(ids))[1]
    assert lo < middle < hi  # same ranges, same row count: only decoding sees it
    swapped = pa.array([lo if v == middle else v for v in ids], type=tbl.schema.field("thermal_id").type)
    tbl = tbl.set_column(tbl.schema.get_field_index("thermal_id"), tbl.schema.field("thermal_id"), swapped)
    fp = (pq.read_metadata(sim(run) / rel).metadata or {}).get(FOOTER_KEY.encode())
    rewrite_parquet(sim(run) / rel, tbl, fp.decode() if fp else None)
    record_file(run, rel)
    assert new_problems(run, baseline) == []  # footers alone cannot tell
    got = new_problems(run, baseline, deep=True)
    assert any(g.startswith(f"simulation/{rel}:") and "repeat the key" in g for g in got), got
    assert any(g.startswith(f"simulation/{rel}:") and "blocks × entities" in g for g in got), got
    assert len(got) == 2, got


def test_stale_success_and_status(run: Path, baseline: set[str]) -> None:
    m = read_manifest(run)
    m["status"] = "partial"
    write_manifest(run, m)
    got = new_problems(run, baseline)
    assert "simulation/_manifest.json: status is 'partial', not complete" in got
    assert "simulation/_SUCCESS: present although the manifest status is 'partial'" in got


# --------------------------------------------------------------------------- run identity
def _ensure_fingerprinted(out: Path) -> str:
    """The run fingerprint of ``out``; a run written before identity gets one, in its manifest and footers."""
    m = read_manifest(out)
    fp = m.get("run_fingerprint")
    if isinstance(fp, str):
        return fp
    fp = "sha256:" + "cd" * 32
    m["run_fingerprint"] = fp
    write_manifest(out, m)
    for rel in list(m["files"]):
        rewrite_parquet(sim(out) / rel, pq.read_table(sim(out) / rel), fp)
        record_file(out, rel)
    return fp


def test_file_from_another_run_is_reported(run: Path) -> None:
    # a run's journal records the bytes its writers wrote: a file from another run differs from its record
    rel = partition_file("costs", 1)
    if (run / "_journal").is_dir():
        rewrite_parquet(sim(run) / rel, pq.read_table(sim(run) / rel), OTHER_FINGERPRINT)
        got = [p for p in problems(run) if p.startswith(f"simulation/{rel}:")]
        assert len(got) == 1 and "bytes differ from the run journal's record" in got[0], got
        shutil.rmtree(run / "_journal")  # below: an output without a journal, where the footer tells
    fp = _ensure_fingerprinted(run)
    before = problems(run)
    rewrite_parquet(sim(run) / rel, pq.read_table(sim(run) / rel), OTHER_FINGERPRINT)
    record_file(run, rel)  # sizes and hashes agree: only the identity differs
    got = sorted(problems(run) - before)
    assert got == [(f"simulation/{rel}: written by another run: footer run fingerprint {OTHER_FINGERPRINT} differs "
                   f"from the manifest's {fp}")]
    unmarked = partition_file("hydros", 2)
    rewrite_parquet(sim(run) / unmarked, pq.read_table(sim(run) / unmarked), None)
    record_file(run, unmarked)
    got = sorted(problems(run) - before)
    assert f"simulation/{unmarked}: carries no run fingerprint ({FOOTER_KEY}) in its footer; the run's is {fp}" in got


def test_fingerprint_check_skipped_only_without_a_manifest_fingerprint(run: Path) -> None:
    shutil.rmtree(run / "_journal", ignore_errors=True)  # an output without a journal: the footer tells
    _ensure_fingerprinted(run)
    rel = partition_file("costs", 1)
    rewrite_parquet(sim(run) / rel, pq.read_table(sim(run) / rel), OTHER_FINGERPRINT)
    record_file(run, rel)
    assert any("written by another run" in p for p in problems(run))
    m = read_manifest(run)
    del m["run_fingerprint"]
    m.pop("run_identity", None)
    write_manifest(run, m)  # an older run: nothing to compare with
    assert not any("written by another run" in p and p.startswith("simulation/") for p in problems(run))


def test_training_and_simulation_from_different_runs(run: Path) -> None:
    tm = read_manifest(run, "training")
    if not isinstance(tm.get("run_fingerprint"), str):
        pytest.skip("this writer records no run_fingerprint in the training manifest yet")  # pragma: no cover
    m = read_manifest(run)
    m["run_fingerprint"] = OTHER_FINGERPRINT
    m.pop("run_identity", None)
    write_manifest(run, m)
    got = problems(run)
    assert any(p.startswith("training/_manifest.json: run_fingerprint") and "different runs" in p for p in got), got


# --------------------------------------------------------------------------- output root
def test_claim_is_reported(run: Path, baseline: set[str]) -> None:
    (run / "_claim.json").write_text(json.dumps({"host": "node7", "pid": 4242, "job_id": "991",
                                                 "started_at": "2026-01-01T00:00:00Z", "world_size": 4}))
    got = new_problems(run, baseline)
    assert len(got) == 1 and got[0].startswith("_claim.json: present: a run holds this directory"), got
    assert "node7" in got[0] and "4242" in got[0]
    assert cli(str(run)).returncode == 1
    (run / "_claim.json").write_text("{ half a clai")  # a run that died while writing it
    got = new_problems(run, baseline)
    assert got == [("_claim.json: present: a run holds this directory or died holding it (an unreadable claim); "
                   "results may be incomplete")]


# --------------------------------------------------------------------------- training
def test_missing_rank_part_and_stale_part(run: Path, baseline: set[str]) -> None:
    parts = run / "training" / "timing" / "mpi_ranks.parquet"
    shutil.copy(parts / "part-rank-0000.parquet", parts / "part-rank-0003.parquet")
    (parts / "part-rank-0000.parquet").unlink()
    got = new_problems(run, baseline)
    assert got == sorted([
        "training/timing/mpi_ranks.parquet/part-rank-0000.parquet: missing although the training manifest is final",
        ("training/timing/mpi_ranks.parquet/part-rank-0003.parquet: timing part of rank 3, but the run has 1 rank(s) "
        "(left by another run)"),
    ])


def test_world_size_needs_every_rank_part(run: Path, baseline: set[str]) -> None:
    tm = read_manifest(run, "training")
    tm["mpi_info"]["world_size"] = 2
    write_manifest(run, tm, "training")
    got = new_problems(run, baseline)
    assert "training/timing/mpi_ranks.parquet/part-rank-0001.parquet: missing although the training manifest " \
           "is final" in got
    assert any(g.startswith("training/metadata.json: environment.num_ranks 1 differs") for g in got), got


def test_rank_part_holding_another_rank(run: Path, baseline: set[str]) -> None:
    p = run / "training" / "timing" / "mpi_ranks.parquet" / "part-rank-0000.parquet"
    tbl = pq.read_table(p)
    fp = (pq.read_metadata(p).metadata or {}).get(FOOTER_KEY.encode())
    i = tbl.schema.get_field_index("rank")
    tbl = tbl.set_column(i, tbl.schema.field("rank"), pa.array([5] * tbl.num_rows, type=tbl.schema.field("rank").type))
    rewrite_parquet(p, tbl, fp.decode() if fp else None)
    journal_record(run, "training/timing/mpi_ranks.parquet/part-rank-0000.parquet")
    got = [g for g in new_problems(run, baseline) if not g.startswith("training/_manifest.json: records ")]
    assert got == [("training/timing/mpi_ranks.parquet/part-rank-0000.parquet: holds rows of rank(s) 5..5, its name "
                   "says 0")]


def test_convergence_file_against_manifest_and_metadata(run: Path, baseline: set[str]) -> None:
    p = run / "training" / "convergence.parquet"
    tbl_bytes = p.read_bytes()
    tbl = pq.read_table(p)
    fp = (pq.read_metadata(p).metadata or {}).get(FOOTER_KEY.encode())
    rewrite_parquet(p, tbl.slice(0, 1), fp.decode() if fp else None)
    journal_record(run, "training/convergence.parquet")
    got = new_problems(run, baseline)
    if read_manifest(run, "training").get("files"):  # the training manifest lists the file as it was written
        assert ("training/_manifest.json: records training/convergence.parquet as "
                f"{len(tbl_bytes)} bytes, xxhash64 {xxhash.xxh64_hexdigest(tbl_bytes)}; the run journal as "
                f"{p.stat().st_size}, {xxhash.xxh64_hexdigest(p.read_bytes())}") in got, got
        got = [g for g in got if not g.startswith("training/_manifest.json: records ")]
    assert "training/convergence.parquet: 1 rows where the training manifest records 2 completed iterations" in got
    assert any(g.startswith("training/_manifest.json: checksum.convergence_value") for g in got), got
    assert any(g.startswith("training/metadata.json: data_integrity.convergence_hash") for g in got), got
    assert len(got) == 3, got


def test_metadata_hashes_are_recomputed(run: Path, baseline: set[str]) -> None:
    path = run / "training" / "metadata.json"
    md = json.loads(path.read_text())
    md["configuration_snapshot"]["seed"] = 7
    md["data_integrity"]["policy_hash"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(md))
    got = new_problems(run, baseline)
    assert any(g.startswith("training/metadata.json: data_integrity.config_hash") for g in got), got
    assert any(g.startswith("training/metadata.json: data_integrity.policy_hash") for g in got), got


def test_training_manifest_missing_or_malformed(run: Path, baseline: set[str]) -> None:
    tm = read_manifest(run, "training")
    tm["iterations"] = 3
    write_manifest(run, tm, "training")
    proc = cli(str(run))
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "training/_manifest.json: unreadable" in proc.stdout
    (run / "training" / "_manifest.json").unlink()
    got = new_problems(run, baseline)
    assert any(g.startswith("training/_manifest.json: missing although training/ exists") for g in got), got


# --------------------------------------------------------------------------- policy
def latest(out: Path) -> Path:
    return (out / "policy" / "latest").resolve()


def test_missing_cut_file_and_policy_hashes(run: Path, baseline: set[str]) -> None:
    (latest(run) / "cuts" / "stage_001.bin").unlink()
    got = new_problems(run, baseline)
    assert any(g.startswith("policy/checkpoints/iter_000002/cuts: no cut file for stage(s) 1 ") for g in got), got
    assert any(g.startswith("training/_manifest.json: checksum.policy_value") for g in got), got
    assert any(g.startswith("training/metadata.json: data_integrity.policy_hash") for g in got), got


def test_corrupt_and_swapped_stage_files_are_reported_not_raised(run: Path, baseline: set[str]) -> None:
    basis = latest(run) / "basis" / "stage_000.bin"
    basis.write_bytes(b"\0" * basis.stat().st_size)
    shutil.copy(latest(run) / "cuts" / "stage_002.bin", latest(run) / "basis" / "stage_001.bin")
    (latest(run) / "states" / "stage_000.bin").write_bytes(b"\x01\x02")
    got = new_problems(run, baseline)
    for rel in ("basis/stage_000.bin", "basis/stage_001.bin", "states/stage_000.bin"):
        assert any(g.startswith(f"policy/checkpoints/iter_000002/{rel}:") for g in got), (rel, got)


def test_recorded_file_hashes_are_checked(run: Path, baseline: set[str]) -> None:
    path = latest(run) / "metadata.json"
    md = json.loads(path.read_text())
    files = md.get("files") if isinstance(md.get("files"), dict) else {}
    files["cuts/stage_000.bin"] = {"bytes": 1, "xxhash64": "0123456789abcdef"}
    files["basis/stage_009.bin"] = {"bytes": 1, "xxhash64": "0123456789abcdef"}
    md["files"] = files
    os.chmod(path, 0o644)
    path.write_text(json.dumps(md))
    got = new_problems(run, baseline)
    assert any(g.startswith("policy/checkpoints/iter_000002/cuts/stage_000.bin: xxhash64") for g in got), got
    assert "policy/checkpoints/iter_000002/basis/stage_009.bin: recorded in metadata.json's files but missing" in got


def test_unrecorded_stage_file_is_reported(run: Path, baseline: set[str]) -> None:
    path = latest(run) / "metadata.json"
    md = json.loads(path.read_text())
    if not isinstance(md.get("files"), dict):  # a writer before per-file hashes: record them as 1.1.0 does
        md["files"] = {p.relative_to(latest(run)).as_posix(): {"bytes": p.stat().st_size,
                                                               "xxhash64": xxhash.xxh64_hexdigest(p.read_bytes())}
                       for p in sorted(latest(run).glob("*/stage_*.bin"))}
    del md["files"]["states/stage_001.bin"]
    os.chmod(path, 0o644)
    path.write_text(json.dumps(md))
    journal_record(run, path.relative_to(run.resolve()).as_posix())
    got = [g for g in new_problems(run, baseline) if not g.startswith("training/_manifest.json: records ")]
    assert got == [("policy/checkpoints/iter_000002/states/stage_001.bin: not recorded in metadata.json's files "
                    "(a file this checkpoint did not write)")]


def test_policy_links(run: Path, baseline: set[str]) -> None:
    (run / "policy" / "cuts").unlink()
    os.symlink("checkpoints/iter_000002/basis", run / "policy" / "basis.tmp")
    os.replace(run / "policy" / "basis.tmp", run / "policy" / "basis")
    got = new_problems(run, baseline)
    assert "policy/cuts: missing: the link to latest/cuts (the fixed path of SPEC §2)" in got
    assert "policy/basis: points to 'checkpoints/iter_000002/basis', not to 'latest/basis'" in got
    (run / "policy" / "latest").unlink()
    os.symlink("checkpoints/iter_000009", run / "policy" / "latest")
    got = new_problems(run, baseline)
    assert "policy/latest: dangling: checkpoints/iter_000009 is not a checkpoint directory" in got


def test_policy_required_by_the_training_manifest(run: Path, baseline: set[str]) -> None:
    shutil.rmtree(run / "policy")
    got = new_problems(run, baseline)
    assert got == ["policy: missing although training/_manifest.json records a policy checksum"]


def test_stray_checkpoint_temp_directory(run: Path, baseline: set[str]) -> None:
    (run / "policy" / "checkpoints" / ".iter_000003.abcdef.tmp").mkdir()
    got = new_problems(run, baseline)
    assert got == [("policy/checkpoints/.iter_000003.abcdef.tmp: stray temp directory (an interrupted checkpoint; "
                   "the next checkpoint removes it)")]


# --------------------------------------------------------------------------- MPI
def test_under_mpiexec_the_report_is_the_same(run: Path) -> None:
    for rel in (partition_file("thermals", 0), partition_file("hydros", 1), partition_file("costs", 2)):
        data = bytearray((sim(run) / rel).read_bytes())
        data[len(data) // 3] ^= 0x10
        (sim(run) / rel).write_bytes(bytes(data))
    (latest(run) / "basis" / "stage_000.bin").write_bytes(b"\0" * 64)
    plain = cli(str(run), "--json")
    proc = subprocess.run([*mpiexec_argv(2), PY, "-m", "cobre_mpi_io", "validate", str(run), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == plain.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == json.loads(plain.stdout)  # printed once (rank 0), same content


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_split_over_ranks_gives_every_rank_the_report_of_one_process(mpi_tmp_path: Path,
                                                                     small_system: System) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    out = mpi_tmp_path / "run"
    n = 2 * size + 1
    with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=n), comm) as w:
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(small_system, sid, 42))
    w.finalize()
    if rank == 0:  # one problem in a file of every rank's share, and one in the tree
        for sid in range(n):
            p = out / "simulation" / partition_file("buses", sid)
            data = bytearray(p.read_bytes())
            data[len(data) // 3] ^= 0x04
            p.write_bytes(bytes(data))
        (out / "simulation" / "costs" / "scenario_id=0000" / "notes.txt").write_text("x")
    comm.Barrier()
    alone = validate_output(out, threads=1) if rank == 0 else None
    split = validate_output(out, comm=comm)
    every = comm.allgather(split.to_dict())
    assert all(d == every[0] for d in every)
    if rank == 0:
        assert alone is not None and split.to_dict() == alone.to_dict()
        assert sum("xxhash64" in p.problem for p in split.problems) == n
        assert any(p.file.endswith("notes.txt") for p in split.problems)
        # the partitions, and the manifest and _SUCCESS the journal records
        assert split.files_checked == alone.files_checked == len(read_manifest(out)["files"]) + 2
    comm.Barrier()


# --------------------------------------------------------------------------- what is printed
def test_summary_counts_kinds_and_shows_the_first_paths() -> None:
    from cobre_mpi_io.validate.report import SUMMARY_LINES, Problem, summarize

    probs = [Problem(f"costs/scenario_id={i:04d}/data.parquet", "data file not listed in the manifest")
             for i in range(20_000)]
    probs += [Problem(f"hydros/scenario_id={i:04d}/data.parquet", f"xxhash64 {i:016x} differs from the manifest "
                      f"({i + 1:016x})") for i in range(7)]
    probs.append(Problem("_manifest.json", "status is 'running', not complete"))
    lines = summarize(probs, "VERDICT")
    assert len(lines) <= SUMMARY_LINES and lines[-1] == "VERDICT"
    assert lines[0].startswith("20,008 problems of 3 kind(s)")
    assert lines[1] == "  20,000 × data file not listed in the manifest"
    assert lines[2:7] == [f"      simulation/costs/scenario_id={i:04d}/data.parquet" for i in range(5)]
    assert lines[7] == "      … and 19,995 more"
    assert lines[8] == "  7 × xxhash64 … differs from the manifest (…)"
    assert lines[9] == f"      simulation/hydros/scenario_id=0000/data.parquet: xxhash64 {0:016x} differs from the " \
                       f"manifest ({1:016x})"
    assert lines[-2] == "  1 × simulation/_manifest.json: status is 'running', not complete"
    # few problems: each on its line; --all: every one however many
    assert summarize(probs[:24], "V") == [*map(str, probs[:24]), "V"]
    assert summarize(probs, "V", every=True) == [*map(str, probs), "V"]


def test_summary_of_more_kinds_than_lines() -> None:
    from cobre_mpi_io.validate.report import Problem, summarize

    probs = [Problem(f"f{k}", f"problem kind {'x' * k}") for k in range(40) for _ in range(2)]
    lines = summarize(probs, "V")
    assert len(lines) == 25 and lines[-1] == "V"
    assert lines[-2] == "  … and 36 more problems of 18 other kind(s)"
    assert sum(int(ln.split(" × ")[0]) for ln in lines if " × " in ln) + 36 == 80


def test_killed_run_prints_a_summary_and_all_prints_every_problem(run: Path) -> None:
    m = read_manifest(run)  # what a run killed during the simulation leaves: running, nothing listed
    m.update(status="running", files={}, partitions_written=[], completed_at=None)
    m["scenarios"]["completed"] = 0
    m["checksum"]["value"] = combined_checksum({})
    write_manifest(run, m)
    (sim(run) / "_SUCCESS").unlink()
    report = validate_output(run)
    n = len(report.problems)
    assert n >= 30
    proc = cli(str(run))
    assert proc.returncode == 1 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) <= 25, proc.stdout
    assert lines[0].startswith(f"{n} problems of ")
    unlisted = sum(p.problem == "data file not listed in the manifest" for p in report.problems)
    assert f"  {unlisted} × data file not listed in the manifest" in lines
    assert lines[-1].endswith("simulation running, training complete") and f"INVALID ({n} problem(s))" in lines[-1]
    every = cli(str(run), "--all")
    assert every.returncode == 1
    assert every.stdout.splitlines() == [*map(str, report.problems), lines[-1]]
    rep = json.loads(cli(str(run), "--json").stdout)
    assert len(rep["problems"]) == n and rep["kinds"]["data file not listed in the manifest"] == unlisted
