"""Docs that stand alone: the generated column reference is current, the README points only inside
the repository, and the pandas fix the docs give works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli

from cobre_mpi_io.cli.columns import main as columns_main
from cobre_mpi_io.cli.columns import render_columns_markdown
from cobre_mpi_io.schemas import TABLES
from cobre_mpi_io.training.dictionaries import CODES

ROOT = Path(__file__).resolve().parents[1]
COLUMNS_MD = ROOT / "docs" / "columns.md"
README = ROOT / "README.md"


def test_column_reference_is_current() -> None:
    assert COLUMNS_MD.read_text(encoding="utf-8") == render_columns_markdown(), (
        "docs/columns.md is stale: run `python -m cobre_mpi_io.cli.columns` from the repository root")


def test_column_reference_lists_every_table_column_and_code() -> None:
    text = COLUMNS_MD.read_text(encoding="utf-8")
    for t in TABLES.values():
        section = text.split(f"### `{t.name}`\n", 1)[1].split("\n### ", 1)[0]
        documented = re.findall(r"^\| \d+ \| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)
        assert documented == t.names, t.name
    for name, mapping in CODES.items():
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        assert all(f"| {code} | `{label}` |" in section for code, label in mapping.items())


def test_check_mode_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "columns.md"
    assert columns_main(["--output", str(target), "--check"]) == 1  # missing
    assert columns_main(["--output", str(target)]) == 0
    assert columns_main(["--output", str(target), "--check"]) == 0
    target.write_text(target.read_text().replace("`turbined_m3s`", "`turbined`"))
    assert columns_main(["--output", str(target), "--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_generator_runs_as_a_module(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "cobre_mpi_io.cli.columns", "--output", str(tmp_path / "c.md")],
                   check=True)
    assert (tmp_path / "c.md").read_text() == render_columns_markdown()


# Paths in the README that name something in the repository (as opposed to a run's output tree).
_REPO_PATH = re.compile(r"(?<![\w/.])((?:scripts|docs|tests|hostfiles|cobre_mpi_io|\.ci)/[\w./-]*\w)")


def test_readme_stands_alone() -> None:
    text = README.read_text(encoding="utf-8")
    for outside in ("../shared", "/work/", "spec/columns.json", "SPEC §", "SPEC.md"):
        assert outside not in text, f"README refers to {outside!r}, which is not in the repository"
    missing = sorted({p for p in _REPO_PATH.findall(text) if not (ROOT / p).exists()})
    assert not missing, f"README names repository paths that do not exist: {missing}"
    assert "docs/columns.md" in text


def test_pandas_categorical_scenario_id_and_the_documented_fix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "3", "--iterations", "0", "--detail", "stage", "-q")
    raw = pd.read_parquet(out / "simulation" / "hydros")
    assert isinstance(raw["scenario_id"].dtype, pd.CategoricalDtype)  # what the docs warn about
    fixed = pd.read_parquet(out / "simulation" / "hydros").astype({"scenario_id": "int32"})  # the fix
    assert str(fixed["scenario_id"].dtype) == "int32"
    assert sorted(fixed["scenario_id"].unique().tolist()) == [0, 1, 2]
    text = COLUMNS_MD.read_text(encoding="utf-8")
    assert '.astype({"scenario_id": "int32"})' in text
    costs = pd.read_parquet(out / "simulation" / "costs", dtype_backend="numpy_nullable")
    assert str(costs["block_id"].dtype) == "Int32"  # the nullable-integer note


@pytest.mark.slow(40)
def test_flatc_checks_fail_under_ci_without_flatc(tmp_path: Path) -> None:
    """Locally a missing flatc skips (and -rs lists it); under CI=true it fails the run."""
    bindir = tmp_path / "bin"  # a PATH with the interpreter but no flatc
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
           str(ROOT / "tests" / "test_checkpoint.py"), "-k", "generated_code_is_current or flatc_json"]
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    ci = subprocess.run(cmd, check=False, env={**base, "PATH": str(bindir), "CI": "true"}, capture_output=True, text=True,
                        cwd=ROOT, timeout=300)
    assert ci.returncode == 1 and "2 failed" in ci.stdout, ci.stdout
    local = subprocess.run(cmd, check=False, env={**base, "PATH": str(bindir)}, capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
    assert local.returncode == 0 and "SKIPPED [2]" in local.stdout and "flatc not installed" in local.stdout
