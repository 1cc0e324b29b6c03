"""validate on trees the real Cobre solver wrote (validate/cobre.py): 0.18 (a committed subset of its run)
and 0.5.1 (written here by cobre-python 0.5.1 on case-1dtoy, 3 iterations and 3 scenarios)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from cobre_mpi_io.validate import validate_output
from cobre_mpi_io.validate.cobre import detect_cobre_tree, validate_cobre_tree

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "cobre-real"
REAL018 = DATA / "run-1dtoy-v018"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def tree018(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(REAL018, out)
    for p in out.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return out


def test_detects_and_validates_a_cobre018_tree() -> None:
    tree = detect_cobre_tree(REAL018)
    assert tree is not None and (tree.producer, tree.version, tree.format) == ("cobre", "0.18.0", "cobre-0.18")
    rep = validate_output(REAL018)
    assert rep.valid, rep.problems
    assert rep.scenarios_checked == 3 and rep.checkpoints_checked == 1 and rep.files_checked >= 30
    assert rep.verdict().startswith("written by cobre 0.18.0 (schemas cobre-0.18); ")
    assert rep.to_dict()["version"] == "0.18.0" and rep.status == "complete" and rep.training_status == "complete"


def test_our_trees_are_not_taken_for_cobres(tmp_path: Path) -> None:
    (tmp_path / "simulation").mkdir()
    (tmp_path / "simulation" / "_manifest.json").write_text("{}")
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "metadata.json").write_text(json.dumps({"software": "cobre", "software_version": "0.18.0"}))
    assert detect_cobre_tree(tmp_path) is None
    assert detect_cobre_tree(REAL018 / "simulation") is None  # no producer there
    rep = validate_cobre_tree(tmp_path / "nothing")
    assert not rep.valid and "not a tree the Cobre solver wrote" in rep.problems[0].problem


def _problems(out: Path) -> list[str]:
    return [str(p) for p in validate_output(out).problems]


def test_each_damage_is_one_named_problem(tree018: Path) -> None:
    sim = tree018 / "simulation"
    shutil.rmtree(sim / "hydros" / "scenario_id=0001")
    costs = sim / "costs" / "scenario_id=0002" / "data.parquet"
    pq.write_table(pq.read_table(costs).drop(["node_id"]), costs, compression="zstd")
    thermals = sim / "thermals" / "scenario_id=0000" / "data.parquet"
    thermals.write_bytes(thermals.read_bytes()[:100])
    conv = tree018 / "training" / "convergence.parquet"
    pq.write_table(pq.read_table(conv).slice(0, 100), conv, compression="zstd")
    (tree018 / "policy" / "cuts" / "001.bin").write_bytes(b"\0" * 64)
    got = _problems(tree018)
    assert len(got) == 5, got
    assert any(p.startswith("simulation/hydros: 1 scenario(s) the other tables have are missing (first [1])")
               for p in got)
    assert any(p.startswith("simulation/costs/scenario_id=0002/data.parquet: schema differs from cobre-0.18's costs: "
                            "missing columns ['node_id']") for p in got)
    assert any(p.startswith("simulation/thermals/scenario_id=0000/data.parquet: unreadable Parquet file") for p in got)
    assert "training/convergence.parquet: 100 rows where metadata.json records 128 completed iterations" in got
    assert any(p.startswith("policy/.: the policy does not read") for p in got)


def test_partition_holding_another_scenario(tree018: Path) -> None:
    src = tree018 / "simulation" / "buses" / "scenario_id=0000" / "data.parquet"
    shutil.copy(src, tree018 / "simulation" / "buses" / "scenario_id=0001" / "data.parquet")
    assert _problems(tree018) == [("simulation/buses/scenario_id=0001/data.parquet: scenario_id column holds [0], "
                                  "not its partition's 1")]


def test_cli_says_producer_and_version_under_mpiexec() -> None:
    proc = run_cli("validate", str(REAL018), n=2)
    assert proc.stdout.strip().splitlines()[-1].startswith("written by cobre 0.18.0 (schemas cobre-0.18); ")
    assert "valid;" in proc.stdout
    doc = json.loads(run_cli("validate", "--json", str(REAL018)).stdout)
    assert (doc["producer"], doc["version"], doc["valid"]) == ("cobre", "0.18.0", True)


def _cobre051() -> str:
    exe = os.environ.get("COBRE_PYTHON") or str(ROOT / ".venv-cobre" / "bin" / "python")
    if not Path(exe).is_file():
        exe = "/work/main/.venv-cobre/bin/python"
    if not Path(exe).is_file():
        if IN_CI:
            pytest.fail("the Cobre 0.5.1 venv is missing (CI=true: this test must run in CI)")
        pytest.skip("no Cobre 0.5.1 venv (scripts/cobre_venv.sh; $COBRE_PYTHON)")
    return exe


@pytest.fixture(scope="module")
def tree051(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Cobre 0.5.1 writes for case-1dtoy: 3 iterations, 3 simulated scenarios, a fresh policy."""
    exe = _cobre051()
    base = tmp_path_factory.mktemp("cobre051")
    case = base / "case"
    shutil.copytree(DATA / "case-1dtoy", case)
    cfg = json.loads((case / "config.json").read_text())
    cfg["policy"] = {"path": "policy", "mode": "fresh"}
    cfg["training"]["stopping_rules"] = [{"type": "iteration_limit", "limit": 3}]
    cfg["simulation"] = {"enabled": True, "num_scenarios": 3}
    (case / "config.json").write_text(json.dumps(cfg))
    out = base / "out"
    subprocess.run([exe, "-c", "import sys, cobre; cobre.run.run(sys.argv[1], output_dir=sys.argv[2])",
                    str(case), str(out)], check=True, capture_output=True, timeout=120)
    return out


def test_validates_a_cobre051_tree(tree051: Path) -> None:
    tree = detect_cobre_tree(tree051)
    assert tree is not None and (tree.version, tree.format) == ("0.5.1", "cobre-0.5")
    rep = validate_output(tree051)
    assert rep.valid, rep.problems
    assert rep.scenarios_checked == 3 and rep.checkpoints_checked == 1
    assert rep.verdict().startswith("written by cobre 0.5.1 (schemas cobre-0.5); ")


def test_a_cobre051_table_in_a_cobre018_tree_is_named(tree018: Path, tree051: Path) -> None:
    dst = tree018 / "simulation" / "hydros" / "scenario_id=0000" / "data.parquet"
    shutil.copy(tree051 / "simulation" / "hydros" / "scenario_id=0000" / "data.parquet", dst)
    got = _problems(tree018)
    assert len(got) == 1 and got[0].startswith(
        "simulation/hydros/scenario_id=0000/data.parquet: schema differs from cobre-0.18's hydros: missing columns "
        "['scenario_id', 'node_id', 'equivalent_productivity_mw_per_m3s'"), got
