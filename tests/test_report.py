"""The read-only ``report`` command: JSON envelope, summaries, PNG plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from mpi4py import MPI

from cobre_mpi_io.cli.report import add_report_arguments, report_main
from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.manifest import FileEntry, SimulationManifest, utc_now
from cobre_mpi_io.results import SimulationOutput, write_results
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.training import synthetic_training

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    s = System.synthetic("small")
    st = synthetic_training(s, 12, 1, 4, seed=8)
    sm = SimulationManifest(status="complete", started_at=utc_now(), completed_at=utc_now(), scenarios_total=2,
                            scenarios_completed=2, partitions_written=("scenario_id=0000/", "scenario_id=0001/"),
                            world_size=1, ranks_participated=1, tables=("costs",)).with_files({
                                "costs/scenario_id=0000/data.parquet": FileEntry(12, 1000, "0" * 16),
                                "costs/scenario_id=0001/data.parquet": FileEntry(12, 1500, "1" * 16)})
    write_results(out, st.to_training_output(0), SimulationOutput(sm), s,
                  RunConfig(forward_passes=4, upper_bound_evaluation=True, num_scenarios=2), comm=MPI.COMM_SELF)
    return out


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    rc = report_main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def test_report_all_is_one_json_envelope(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, [str(run_dir)])
    assert rc == 0
    assert set(rep["sections"]) == {"convergence", "simulation", "training", "metadata"}
    conv = rep["sections"]["convergence"]["summary"]
    assert conv["iterations"] == 12 and conv["final_gap_percent"] is not None
    assert conv["final_lower_bound"] < conv["final_upper_bound_mean"]
    assert rep["sections"]["convergence"]["rank_timing"]["ranks"] == 1
    sim = rep["sections"]["simulation"]["summary"]
    assert (sim["status"], sim["scenarios_total"], sim["files"], sim["bytes"]) == ("complete", 2, 2, 2500)
    assert rep["sections"]["training"]["manifest"]["status"] == "complete"
    assert rep["sections"]["metadata"]["data_integrity"]["convergence_hash"].startswith("sha256:")


@pytest.mark.parametrize("section", ["convergence", "simulation", "training", "metadata"])
def test_report_single_section(run_dir: Path, capsys: pytest.CaptureFixture[str], section: str) -> None:
    rc, rep = _run(capsys, [str(run_dir), "--section", section])
    assert rc == 0 and list(rep["sections"]) == [section]


def test_report_plot_is_a_valid_png(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "conv.png"
    parser = add_report_arguments(argparse.ArgumentParser())
    rc = report_main(parser.parse_args([str(run_dir), "--section", "convergence", "--plot", str(png)]))
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["plot"] == str(png)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 10_000
    png2 = tmp_path / "no_ranks.png"
    assert report_main([str(run_dir), "--plot", str(png2), "--no-rank-panel"]) == 0
    assert png2.read_bytes()[:8] == PNG_SIGNATURE


def test_report_plot_without_matplotlib(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = report_main([str(run_dir), "--plot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "matplotlib" in err and "pip install" in err
    assert not (tmp_path / "x.png").exists()


def test_report_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, [str(tmp_path)])
    assert rc == 1
    assert "error" in rep["sections"]["training"]["manifest"]
    assert rep["sections"]["simulation"]["ran"] is False
    rc, rep = _run(capsys, [str(tmp_path), "--section", "simulation"])
    assert rc == 1 and "error" in rep["sections"]["simulation"]["manifest"]
    assert report_main([str(tmp_path / "nope")]) == 2
