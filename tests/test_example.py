"""examples/solver_integration.py: runs under ``mpiexec -n 2``, uses only the public API, output validates.

Serial-suite tests (no ``mpi`` marker): each starts its own 2-rank job through the configured launcher
(``conftest.mpiexec_argv``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
from conftest import CASE_4REE, mpiexec_argv

import cobre_mpi_io
from cobre_mpi_io import System, read_simulation_manifest, validate_simulation

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "solver_integration.py"


def _run_example(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*mpiexec_argv(2), sys.executable, str(EXAMPLE), str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.parametrize("case", [
    pytest.param(None, id="synthetic-small"),
    pytest.param(CASE_4REE, id="4ree",
                 marks=pytest.mark.mpi_agnostic("the case read by the example; under each launcher: synthetic-small"))])
def test_example_runs_on_two_ranks_and_validates(tmp_path: Path, case: Path | None) -> None:
    out = tmp_path / "out"
    proc = _run_example(out, *([str(case)] if case is not None else []))
    assert "validation passed" in proc.stdout and "2 ranks" in proc.stdout

    report = validate_simulation(out)
    assert report.valid, "\n".join(str(p) for p in report.problems)
    system = System.from_case(case) if case is not None else System.synthetic("small")
    m = read_simulation_manifest(out / "simulation" / "_manifest.json")
    assert (m.status, m.scenarios_completed, m.world_size) == ("complete", 8, 2)
    assert tuple(m.tables) == system.simulation_tables
    assert len(m.files) == 8 * len(system.simulation_tables)
    for marker in ("simulation/_SUCCESS", "training/_SUCCESS", "policy/metadata.json",
                   "training/dictionaries/variables.csv"):
        assert (out / marker).exists(), marker

    # the LP vectors landed where the keys say: derived columns agree, row counts are the spec's
    hydros = ds.dataset(out / "simulation" / "hydros", format="parquet", partitioning="hive").to_table()
    assert hydros.num_rows == 8 * system.expected_rows("hydros")
    gen, mwh = hydros["generation_mw"].to_numpy(), hydros["generation_mwh"].to_numpy()
    hours = system.hours_matrix[hydros["stage_id"].to_numpy(), hydros["block_id"].to_numpy()]
    np.testing.assert_allclose(mwh, gen * hours)
    assert not np.isnan(hydros["water_value_per_hm3"].to_numpy()).any()
    if "generic_violations" in system.simulation_tables:  # only the rows with a violation are stored
        gv = ds.dataset(out / "simulation" / "violations" / "generic", format="parquet",
                        partitioning="hive").to_table()
        assert gv.num_rows > 0 and (gv["slack_value"].to_numpy() > 0).all()


def test_example_uses_only_the_public_api() -> None:
    tree = ast.parse(EXAMPLE.read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cobre_mpi_io"):
            assert node.module == "cobre_mpi_io", f"imports the internal module {node.module}"
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("cobre_mpi_io.") for a in node.names)
    assert imported and set(imported) <= set(cobre_mpi_io.__all__), set(imported) - set(cobre_mpi_io.__all__)
    assert "empty_scenario_result" in imported


def test_example_usage_message_without_arguments() -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "mpiexec -n 2 python examples/solver_integration.py" in proc.stderr
