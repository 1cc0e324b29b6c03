"""``validate`` against the run journal (issue 14, finding 6): every byte of the tree is checked.

One clean demo run (3 scenarios, 2 iterations) gets a journal record for
every file it wrote (as the run's writers record them: path, bytes,
xxhash64, rows, in ``OUT/_journal/files/``); each test copies it, breaks
one thing and checks that exactly that is reported, one line naming the
file.  A seeded campaign flips one bit in a file of every kind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash
from conftest import json_set, run_cli

from cobre_mpi_io.identity import FOOTER_KEY
from cobre_mpi_io.journal import RankJournal, journal_files, read_journal
from cobre_mpi_io.layout import partition_file
from cobre_mpi_io.manifest import combined_checksum
from cobre_mpi_io.validate import files as validate_files
from cobre_mpi_io.validate import validate_output

pytestmark = pytest.mark.timeout(240)

PY = sys.executable


def journalize(out: Path, skip: tuple[str, ...] = ()) -> int:
    """Record every file of ``out`` in a new attempt of its journal, as the run's writers do; returns the count.

    Links, temp names, ``_claim.json`` and ``_journal/`` are not recorded (nothing records them); ``skip``:
    paths left out (a file the run did not write).
    """
    attempt = max((a for a, _r, _p in journal_files(out)), default=0) + 1
    j = RankJournal(out, attempt, 0)
    n = 0
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = [d for d in dirnames if d != "_journal"]
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(out).as_posix()
            if p.is_symlink() or rel == "_claim.json" or name.startswith(".") or rel in skip:
                continue
            data = p.read_bytes()
            rows = pq.read_metadata(p).num_rows if name.endswith(".parquet") else None
            j.record(rel, len(data), xxhash.xxh64_hexdigest(data), rows)
            n += 1
    j.close()
    return n


def problems(out: Path, **kw: Any) -> set[str]:
    return {str(p) for p in validate_output(out, **kw).problems}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_", "SLURM_"))}
    return subprocess.run([PY, "-m", "cobre_mpi_io", "validate", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def flip(path: Path, rng: random.Random) -> None:
    """Flip one bit of ``path`` at a seeded position (an empty file gets one byte)."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    else:
        data = bytearray(b"\n")
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validate_journal") / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "3", "--iterations", "2", "--quiet", timeout=180)
    journalize(out)
    return out


@pytest.fixture
def run(clean_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(clean_run, out, symlinks=True)
    return out


def test_clean_run_is_valid_against_its_journal(clean_run: Path) -> None:
    for deep in (False, True):
        report = validate_output(clean_run, deep=deep)
        assert report.valid, [str(p) for p in report.problems]
    assert report.journal_records == len(read_journal(clean_run)) > 40
    proc = cli(str(clean_run))
    assert proc.returncode == 0 and "journal records" in proc.stdout, proc.stdout + proc.stderr


# every kind of file the run writes, and the file of that kind the campaign corrupts
KINDS = {
    "simulation partition": partition_file("hydros", 1),
    "simulation manifest": "_manifest.json",
    "simulation marker": "_SUCCESS",
    "training manifest": "../training/_manifest.json",
    "training marker": "../training/_SUCCESS",
    "convergence": "../training/convergence.parquet",
    "iteration timing": "../training/timing/iterations.parquet",
    "rank timing part": "../training/timing/mpi_ranks.parquet/part-rank-0000.parquet",
    "metadata.json": "../training/metadata.json",
    "bounds.parquet": "../training/dictionaries/bounds.parquet",
    "codes.json": "../training/dictionaries/codes.json",
    "entities.csv": "../training/dictionaries/entities.csv",
    "variables.csv": "../training/dictionaries/variables.csv",
    "state_dictionary.json": "../training/dictionaries/state_dictionary.json",
    "policy copy of the state dictionary": "../policy/state_dictionary.json",
    "checkpoint metadata": "../policy/checkpoints/iter_000002/metadata.json",
    "cut file": "../policy/checkpoints/iter_000002/cuts/stage_001.bin",
    "state file": "../policy/checkpoints/iter_000002/states/stage_002.bin",
    "basis file": "../policy/checkpoints/iter_000002/basis/stage_000.bin",
}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_flipped_bit_in_any_file_is_reported(clean_run: Path, tmp_path: Path, seed: int) -> None:
    out = tmp_path / "run"
    shutil.copytree(clean_run, out, symlinks=True)
    rng = random.Random(seed)
    missed = []
    for kind, rel in KINDS.items():
        path = (out / "simulation" / rel).resolve()
        original = path.read_bytes()
        flip(path, rng)
        try:
            name = path.relative_to(out.resolve()).as_posix()
            got = [p for p in problems(out) if p.startswith(name + ":")]
            if not got:
                missed.append(kind)
        finally:
            path.write_bytes(original)
    assert missed == []
    assert validate_output(out).valid


def test_each_mismatch_is_one_line_naming_the_journal(run: Path) -> None:
    rel = "training/dictionaries/variables.csv"
    data = (run / rel).read_bytes()
    (run / rel).write_bytes(data.replace(b"Iteration number", b"Iteration numbre", 1))
    got = sorted(problems(run))
    assert got == [(f"{rel}: bytes differ from the run journal's record: size {len(data)}, xxhash64 "
                   f"{xxhash.xxh64_hexdigest((run / rel).read_bytes())}; recorded {len(data)}, "
                   f"{xxhash.xxh64_hexdigest(data)}")]


def test_a_simulation_partition_is_one_line_and_never_parsed(run: Path) -> None:
    rel = partition_file("costs", 2)
    p = run / "simulation" / rel
    p.write_bytes(p.read_bytes()[:-100])  # the footer is gone: parsing it is pointless (and can abort pyarrow)
    got = sorted(problems(run))
    assert len(got) == 1 and got[0].startswith(f"simulation/{rel}: bytes differ from the run journal's record")
    assert got[0].endswith("(as the manifest)")


def test_unlisted_and_missing_files(clean_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(clean_run, out, symlinks=True, ignore=shutil.ignore_patterns("_journal"))
    journalize(out, skip=("training/dictionaries/entities.csv", "simulation/thermals/scenario_id=0001/data.parquet"))
    (out / "training" / "dictionaries" / "bounds.parquet").unlink()  # only the journal knows it must be there
    got = sorted(problems(out))
    assert got == sorted([
        ("simulation/thermals/scenario_id=0001/data.parquet: unlisted: no record in the run journal (a file this "
        "run did not write)"),  # although the manifest lists it: the manifest is built from the journal
        "training/dictionaries/bounds.parquet: recorded in the run journal but missing",
        "training/dictionaries/entities.csv: unlisted: no record in the run journal (a file this run did not write)",
    ] + (["training/_manifest.json: lists training/dictionaries/entities.csv, which the run journal does not record"]
         if "training/dictionaries/entities.csv" in json.loads((out / "training/_manifest.json").read_text()).get(
             "files", {}) else []))
    # a file missing that other checks name already is one line, not two
    (out / "policy" / "checkpoints" / "iter_000002" / "states" / "stage_003.bin").unlink()
    got = sorted(set(problems(out)) - set(got))
    assert got == [("policy/checkpoints/iter_000002/states/stage_003.bin: recorded in metadata.json's files but "
                   "missing")]


def test_a_removal_record_drops_the_file(run: Path) -> None:
    victim = run / "training" / "timing" / "iterations.parquet"
    j = RankJournal(run, 99, 0)
    j.record_removed(["training/timing/iterations.parquet"])
    j.close()
    got = problems(run)
    assert "training/timing/iterations.parquet: unlisted: no record in the run journal (a file this run did not " \
           "write)" in got
    victim.unlink()
    assert not any(p.startswith("training/timing/iterations.parquet: recorded") for p in problems(run))


def test_codes_json_that_is_not_json(run: Path) -> None:
    path = run / "training" / "dictionaries" / "codes.json"
    path.write_bytes(b'{"operative_state": {"0": "non_existing",')
    got = sorted(p for p in problems(run) if p.startswith("training/dictionaries/codes.json:"))
    assert len(got) == 1 and "not valid JSON" in got[0], got  # one line: its bytes differ from the journal too
    shutil.rmtree(run / "_journal")  # and without a journal
    got = sorted(p for p in problems(run) if p.startswith("training/dictionaries/codes.json:"))
    assert len(got) == 1 and "not valid JSON" in got[0]


@pytest.mark.parametrize(("name", "change"), [
    ("codes.json", lambda d: json.dumps({**json.loads(d), "operative_state": ["x"]})),
    ("entities.csv", lambda d: d.replace("entity_id", "entity", 1)),
    ("entities.csv", lambda d: d + "0,0,TWICE,0,0\n"),
    ("entities.csv", lambda d: d + "99,1,ALIEN,0,0\n"),
    ("variables.csv", lambda d: d + "training/convergence.parquet,x,float16,$,y,false\n"),
    ("variables.csv", lambda d: d + "a,b,c\n"),
    ("state_dictionary.json", lambda d: "[1, 2]"),
], ids=["codes-map", "entities-header", "entities-twice", "entities-code", "variables-type", "variables-short",
        "state-dictionary"])
def test_dictionary_content_without_a_journal(run: Path, name: str, change: Any) -> None:
    shutil.rmtree(run / "_journal")
    path = run / "training" / "dictionaries" / name
    path.write_text(change(path.read_text()))
    got = [p for p in problems(run) if p.startswith(f"training/dictionaries/{name}:")]
    assert len(got) == 1, got


METADATA_EDITS = [
    ("run_info.run_id", "00000000-0000-0000-0000-000000000000"),
    ("run_info.started_at", "2020-01-01T00:00:00Z"),
    ("run_info.completed_at", "2030-01-01T00:00:00Z"),
    ("run_info.duration_seconds", 0.5),
    ("run_info.hostname", "elsewhere"),
    ("run_info.solver", "other"),
    ("configuration_snapshot.forward_passes", 8),
    ("configuration_snapshot.max_iterations", 30),
    ("problem_dimensions.num_stages", 5),
    ("problem_dimensions.state_dimension", 12),
    ("performance_summary.total_lp_solves", 1),
    ("data_integrity.input_hash", "sha256:" + "1" * 64),
    ("data_integrity.system_hash", "sha256:" + "2" * 64),
    ("environment.num_ranks", 1),
]


def test_every_targeted_edit_of_metadata_json_is_reported(run: Path) -> None:
    path = run / "training" / "metadata.json"
    original = path.read_text()
    missed = []
    for field, value in METADATA_EDITS:
        doc = json.loads(original)
        edited = json_set(doc, field, value)
        text = json.dumps(edited, indent=2)
        if text == json.dumps(json.loads(original), indent=2):
            edited = json_set(doc, field, value if not isinstance(value, int) else value + 1)
            text = json.dumps(edited, indent=2)
        path.write_text(text)
        if not any(p.startswith("training/metadata.json:") for p in problems(run)):
            missed.append(field)
    assert missed == []


@pytest.mark.parametrize("rel", [
    "simulation/_manifest.json", "training/_manifest.json", "training/metadata.json",
    "training/dictionaries/codes.json", "training/dictionaries/entities.csv",
    "policy/checkpoints/iter_000002/metadata.json", "simulation/costs/scenario_id=0001/data.parquet",
    "training/convergence.parquet", "_claim.json",
])
def test_a_fifo_where_a_file_belongs_is_a_problem_never_a_hang(run: Path, rel: str) -> None:
    path = run / rel
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    proc = cli(str(run))  # a reader blocked on the FIFO would hit the timeout
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert f"{rel}: " in proc.stdout, proc.stdout


def test_vouched_files_are_hashed_not_parsed(clean_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    footer = validate_files._footer

    def counting(source: Any) -> Any:
        parsed.append("x")
        return footer(source)

    monkeypatch.setattr(validate_files, "_footer", counting)
    report = validate_output(clean_run, threads=1)
    assert report.valid
    n_parquet = sum(1 for p in clean_run.rglob("*.parquet") if p.is_file())
    # only the files whose figures the report compares: the reference scenario of each table, the training tables
    assert len(parsed) <= 10 + 4, (len(parsed), n_parquet)
    parsed.clear()
    assert validate_output(clean_run, threads=1, deep=True).valid
    assert len(parsed) == n_parquet


# --------------------------------------------------------------------------- --deep: every column
def _rewrite_recorded(out: Path, rel: str, tbl: pa.Table) -> None:
    """Rewrite a partition with ``tbl`` and record it everywhere (manifest and journal): only decoding can tell."""
    p = out / "simulation" / rel
    fp = (pq.read_metadata(p).metadata or {}).get(FOOTER_KEY.encode())
    pq.write_table(tbl.replace_schema_metadata({FOOTER_KEY.encode(): fp} if fp else None), p)
    m = json.loads((out / "simulation" / "_manifest.json").read_text())
    data = p.read_bytes()
    m["files"][rel] = {"rows": tbl.num_rows, "bytes": len(data), "xxhash64": xxhash.xxh64_hexdigest(data)}
    m["checksum"]["value"] = combined_checksum({k: v["xxhash64"] for k, v in m["files"].items()})
    (out / "simulation" / "_manifest.json").write_text(json.dumps(m, indent=1))
    journalize(out)


def test_deep_checks_every_value_against_the_schema(run: Path) -> None:
    rel = partition_file("hydros", 2)
    tbl = pq.read_table(run / "simulation" / rel)
    i = tbl.schema.get_field_index("spillage_m3s") if "spillage_m3s" in tbl.column_names else 5
    name = tbl.schema.field(i).name
    assert pa.types.is_floating(tbl.schema.field(i).type)
    vals = tbl.column(i).to_pylist()
    vals[3] = float("nan")
    vals[4] = float("inf")
    tbl = tbl.set_column(i, tbl.schema.field(i), pa.array(vals, type=pa.float64()))
    j = tbl.schema.get_field_index("operative_state_code")
    codes = tbl.column(j).to_pylist()
    codes[0] = 9
    tbl = tbl.set_column(j, tbl.schema.field(j), pa.array(codes, type=tbl.schema.field(j).type))
    _rewrite_recorded(run, rel, tbl)
    assert validate_output(run).valid  # the footer and the bytes are fine
    got = sorted(str(p) for p in validate_output(run, deep=True).problems)
    assert got == sorted([
        f"simulation/{rel}: column {name!r}: 2 value(s) not finite (NaN or infinite)",
        f"simulation/{rel}: column 'operative_state_code': code(s) [9] not in codes.json's 'operative_state'",
    ]), got
