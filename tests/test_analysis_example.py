"""examples/analysis.py, the notebook-style tour of ``cobre_mpi_io.report``: it runs as written (CI runs
the tests), on a run it makes itself and on a tree the real Cobre solver 0.18 wrote, and saves its figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "analysis.py"
COBRE_018 = ROOT / "tests" / "data" / "cobre-real" / "run-1dtoy-v018"


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=170,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


FIGURES = ["convergence.png", "cost_distribution.png", "deficit.png", "immediate_cost.png", "spot_price.png"]


@pytest.mark.slow(60)
def test_example_on_its_own_demo_run(tmp_path: Path) -> None:
    out = tmp_path / "run" / "out"
    subprocess.run([sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--scenarios", "16",
                    "--iterations", "8", "--quiet"], check=True, timeout=120)
    text = _run(str(out), str(tmp_path / "figs"))
    assert "written by cobre_mpi_io" in text and "files read: journal" in text
    ratio = float(text.split("simulated mean cost / final lower bound = ")[1].split()[0])
    assert 0.5 < ratio < 2.0  # the synthetic solver's one cost model
    assert sorted(p.name for p in (tmp_path / "figs").glob("*.png")) == FIGURES
    assert (tmp_path / "figs" / "report.html").stat().st_size > 10_000


def test_example_on_a_cobre_018_tree(tmp_path: Path) -> None:
    text = _run(str(COBRE_018), str(tmp_path / "figs"))
    assert "written by cobre 0.18.0" in text and "files read: directory" in text
    assert sorted(p.name for p in (tmp_path / "figs").glob("*.png")) == FIGURES
