"""The read-only ``report`` command: text summary, ``--json``, the out-of-core analyses, run states, bad input.

The runs are real demo runs (``python -m cobre_mpi_io demo``, world size 1) at the three detail levels
with the same seed, so the analyses are checked against an independent NumPy computation over the same
partitions and against each other (``stage`` and ``summary`` must agree with ``full`` where they overlap).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pytest
from conftest import run_cli

from cobre_mpi_io.cli.report import add_report_arguments, build_report, report_main
from cobre_mpi_io.report.analysis import DEFICIT_TOLERANCE_MWH, QUANTILES, STAT_KEYS, analyse_simulation
from cobre_mpi_io.system import System

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIOS = 30
ITERATIONS = 6


def _demo(out: Path, *extra: str, check: bool = True) -> Path:
    run_cli("demo", "--output", str(out), "--scenarios", str(SCENARIOS), "--iterations", str(ITERATIONS),
            "--seed", "7", "--quiet", *extra, check=check)
    return out


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _demo(tmp_path_factory.mktemp("full") / "out")


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _demo(tmp_path_factory.mktemp("stage") / "out", "--detail", "stage")


@pytest.fixture(scope="module")
def summary_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _demo(tmp_path_factory.mktemp("summary") / "out", "--detail", "summary")


@pytest.fixture(scope="module")
def full_report(full_run: Path) -> dict[str, Any]:
    return build_report(full_run)


def _main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    rc = report_main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    rc, out, err = _main(capsys, [*argv, "--json"])
    assert rc == 0, err
    return rc, json.loads(out)


def _read(out: Path, tbl: str, cols: list[str]) -> dict[str, np.ndarray]:
    """Every partition of a simulation table, read independently of the report (pyarrow.dataset)."""
    t = ds.dataset(out / "simulation" / tbl, format="parquet", partitioning="hive").to_table(
        columns=[*cols, "scenario_id"])
    d = {c: t.column(c).to_numpy(zero_copy_only=False) for c in [*cols, "scenario_id"]}
    if "block_id" in d:
        d["block_id"] = np.asarray(t.column("block_id").fill_null(-1).to_numpy(), dtype=np.int64)
    return d


def _close(a: Any, b: Any, rel: float = 1e-9) -> None:
    assert np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rel, atol=1e-9), (a, b)


def _stats(values: np.ndarray) -> dict[str, Any]:
    """mean and quantiles over axis 0 (scenarios), like the report."""
    q = np.quantile(values, QUANTILES, axis=0)
    return {"mean": values.mean(axis=0), **{k: q[i] for i, k in enumerate(STAT_KEYS)}}


def _check_series(series: dict[str, Any], expected: dict[str, Any], rel: float = 1e-9) -> None:
    for k in ("mean", *STAT_KEYS):
        _close(series[k], expected[k], rel)


# ------------------------------------------------------------------ text and JSON
def test_text_is_a_short_human_summary(full_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _main(capsys, [str(full_run)])
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) < 40
    assert lines[1].split() == ["state", "complete"]
    for word in ("training", "convergence", "simulation", "results", "scenario cost", "immediate cost",
                 "P(deficit)", "stored volume", "thermal gen.", "hydro gen.", "spot price", "BUS_0"):
        assert word in out, word
    assert f"{SCENARIOS}/{SCENARIOS} scenarios" in out
    assert "scenario_id=" not in out and "data.parquet" not in out  # no file list


def test_json_is_compact_and_has_no_file_list(full_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, rep = _json(capsys, [str(full_run)])
    assert set(rep["sections"]) == {"training", "convergence", "simulation", "results", "metadata"}
    assert rep["run"]["state"] == "complete" and rep["run"]["notes"] == []
    sim = rep["sections"]["simulation"]
    assert "files" not in sim["manifest"] and "partitions_written" not in sim["manifest"]
    assert sim["summary"]["files"] == SCENARIOS * len(sim["summary"]["tables"])
    assert sim["summary"]["partitions"] == SCENARIOS and sim["success_marker"] is True
    conv = rep["sections"]["convergence"]
    assert conv["summary"]["iterations"] == ITERATIONS
    assert conv["summary"]["final_lower_bound"] < conv["summary"]["final_upper_bound_mean"]
    assert conv["rank_timing"]["ranks"] == 1
    assert rep["sections"]["metadata"]["data_integrity"]["convergence_hash"].startswith("sha256:")
    res = rep["sections"]["results"]
    assert res["scenarios"] == SCENARIOS and res["stages"] == [0, 1, 2, 3] and res["unavailable"] == {}
    assert res["engine"].startswith("duckdb")
    # a per-stage series is one line of the document
    _, text, _ = _main(capsys, [str(full_run), "--json"])
    assert any(line.strip().startswith('"p95": [') and line.rstrip().endswith("],") for line in text.splitlines())


def test_files_only_when_asked(full_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, rep = _json(capsys, [str(full_run), "--section", "simulation", "--files"])
    m = rep["sections"]["simulation"]["manifest"]
    assert len(m["files"]) == rep["sections"]["simulation"]["summary"]["files"]
    assert len(m["partitions_written"]) == SCENARIOS
    rc, text, _ = _main(capsys, [str(full_run), "--section", "simulation", "--files"])
    assert rc == 0 and "costs/scenario_id=0000/data.parquet" in text


@pytest.mark.parametrize("section", ["training", "convergence", "simulation", "results", "metadata"])
def test_single_section(full_run: Path, capsys: pytest.CaptureFixture[str], section: str) -> None:
    _, rep = _json(capsys, [str(full_run), "--section", section])
    assert list(rep["sections"]) == [section]
    rc, text, _ = _main(capsys, [str(full_run), "--section", section])
    assert rc == 0 and text.startswith("cobre-mpi-io report")


# ------------------------------------------------------------------ the analyses, checked independently
def test_costs_per_stage_and_cost_distribution(full_run: Path, full_report: dict[str, Any]) -> None:
    res = full_report["sections"]["results"]
    c = _read(full_run, "costs", ["stage_id", "block_id", "total_cost", "immediate_cost", "discount_factor"])
    stage_rows = c["block_id"] < 0
    sids = np.unique(c["scenario_id"])
    for col in ("total_cost", "immediate_cost"):
        m = np.zeros((len(sids), 4))
        m[np.searchsorted(sids, c["scenario_id"][stage_rows]), c["stage_id"][stage_rows]] = c[col][stage_rows]
        _check_series(res["per_stage"][col], _stats(m))
        assert res["per_stage"][col]["scenarios"] == [SCENARIOS] * 4 and res["per_stage"][col]["unit"] == "$"
    tot = np.bincount(np.searchsorted(sids, c["scenario_id"][stage_rows]),
                      weights=(c["immediate_cost"] * c["discount_factor"])[stage_rows])
    dist = res["cost_distribution"]
    assert dist["scenarios"] == SCENARIOS and sum(dist["histogram"]["counts"]) == SCENARIOS
    _close([dist["mean"], dist["min"], dist["max"], dist["p50"], dist["p95"]],
           [tot.mean(), tot.min(), tot.max(), np.median(tot), np.quantile(tot, 0.95)])
    worst = np.sort(tot)[::-1]
    _close(dist["cvar95"], worst[: int(np.ceil(0.05 * SCENARIOS))].mean())
    assert dist["worst_scenarios"][0]["scenario_id"] == int(sids[np.argmax(tot)])
    _close(sum(v["mean"] for v in dist["components"].values()), tot.mean())


def test_buses_hydros_thermals_per_stage(full_run: Path, full_report: dict[str, Any], small_system: System) -> None:
    res = full_report["sections"]["results"]
    hours = small_system.hours_matrix  # independent of the load_mwh / load_mw the report derives them from
    b = _read(full_run, "buses", ["stage_id", "block_id", "bus_id", "spot_price", "deficit_mwh"])
    sids = np.unique(b["scenario_id"])
    si = np.searchsorted(sids, b["scenario_id"])
    h = hours[b["stage_id"], b["block_id"]]
    shape = (len(sids), 4, 3)
    ph, hh, dd = (np.zeros(shape) for _ in range(3))
    np.add.at(ph, (si, b["stage_id"], b["bus_id"]), b["spot_price"] * h)
    np.add.at(hh, (si, b["stage_id"], b["bus_id"]), h)
    np.add.at(dd, (si, b["stage_id"], b["bus_id"]), b["deficit_mwh"])
    price = _stats(ph / hh)
    for bus in range(3):
        e = res["per_bus"]["spot_price"]["entities"][str(bus)]
        assert e["name"] == f"BUS_{bus}"
        _check_series(e, {k: v[:, bus] for k, v in price.items()}, rel=1e-7)
        _close(res["per_bus"]["deficit_probability"]["entities"][str(bus)]["values"],
               (dd[:, :, bus] > DEFICIT_TOLERANCE_MWH).mean(axis=0))
    deficit = dd.sum(axis=2)
    _check_series(res["per_stage"]["deficit"], _stats(deficit))
    _close(res["per_stage"]["deficit"]["probability"], (deficit > DEFICIT_TOLERANCE_MWH).mean(axis=0))
    _close(res["per_stage"]["deficit_probability"]["values"], (deficit > DEFICIT_TOLERANCE_MWH).mean(axis=0))

    hy = _read(full_run, "hydros", ["stage_id", "block_id", "hydro_id", "storage_final_hm3", "generation_mwh"])
    si = np.searchsorted(sids, hy["scenario_id"])
    last = hy["block_id"] == 1  # the small system has 2 blocks per stage
    vol = np.zeros((len(sids), 4, 6))
    vol[si[last], hy["stage_id"][last], hy["hydro_id"][last]] = hy["storage_final_hm3"][last]
    gen = np.zeros((len(sids), 4))
    np.add.at(gen, (si, hy["stage_id"]), hy["generation_mwh"])
    _check_series(res["per_stage"]["stored_volume"], _stats(vol.sum(axis=2)))
    _check_series(res["per_stage"]["hydro_generation"], _stats(gen))
    per_hydro = _stats(vol)
    for hid in range(6):
        e = res["per_hydro"]["stored_volume"]["entities"][str(hid)]
        assert e["name"] == f"HYDRO_{hid:03d}"
        _check_series(e, {k: v[:, hid] for k, v in per_hydro.items()})

    th = _read(full_run, "thermals", ["stage_id", "generation_mwh"])
    tg = np.zeros((len(sids), 4))
    np.add.at(tg, (np.searchsorted(sids, th["scenario_id"]), th["stage_id"]), th["generation_mwh"])
    _check_series(res["per_stage"]["thermal_generation"], _stats(tg))


def test_detail_stage_agrees_with_full(stage_run: Path, full_report: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    full = full_report["sections"]["results"]
    res = analyse_simulation(stage_run)
    assert set(res["tables"]) == {"costs", "hydros"}
    for key in ("total_cost", "immediate_cost", "stored_volume", "hydro_generation"):
        _check_series(res["per_stage"][key], full["per_stage"][key], rel=1e-9)
    assert set(res["unavailable"]) == {"deficit", "spot_price", "thermal_generation"}
    assert res["per_bus"] == {} and "deficit" not in res["per_stage"]
    # deficit probability from costs.deficit_cost > 0 (there are no buses at this level)
    assert "deficit_cost" in res["per_stage"]["deficit_probability"]["source"]
    _close(res["per_stage"]["deficit_probability"]["values"], full["per_stage"]["deficit_probability"]["values"])
    _close(res["cost_distribution"]["mean"], full["cost_distribution"]["mean"])
    rc, text, _ = _main(capsys, [str(stage_run)])
    assert rc == 0 and "not available: deficit" in text and "detail stage" in text


def test_detail_summary_has_the_cost_distribution(summary_run: Path, full_report: dict[str, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    full = full_report["sections"]["results"]["cost_distribution"]
    rc, rep = _json(capsys, [str(summary_run), "--section", "results"])
    res = rep["sections"]["results"]
    assert res["tables"] == {"scenario_totals": {"files": 1, "scenarios": SCENARIOS}}
    assert res["stages"] == [] and res["per_stage"] == {}
    d = res["cost_distribution"]
    assert d["source"] == "scenario_totals.parquet" and d["scenarios"] == SCENARIOS
    for k in ("mean", "p5", "p50", "p95", "min", "max", "cvar95"):
        _close(d[k], full[k], rel=1e-6)  # the JSON keeps 7 significant digits
    assert [w["scenario_id"] for w in d["worst_scenarios"]] == [w["scenario_id"] for w in full["worst_scenarios"]]
    rc, text, _ = _main(capsys, [str(summary_run)])
    assert rc == 0 and "scenario cost" in text and "not available" in text


# ------------------------------------------------------------------ runs that are not complete
def test_failed_run_is_reported_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _demo(tmp_path / "out", "--fail-rank", "0", "--fail-after", "5", check=False)
    _, rep = _json(capsys, [str(out)])
    assert rep["run"]["state"] == "failed" and rep["run"]["simulation_status"] == "failed"
    assert any("failed" in n and "rank 0" in n for n in rep["run"]["notes"])
    res = rep["sections"]["results"]
    assert res["scenarios"] == 5 and res["per_stage"]["immediate_cost"]["scenarios"] == [5] * 4
    rc, text, _ = _main(capsys, [str(out)])
    assert rc == 0 and "state       failed" in text and "! simulation status 'failed'" in text


def test_running_run_with_a_claim(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    m = json.loads((out / "simulation" / "_manifest.json").read_text())
    m.update(status="running", completed_at=None)
    (out / "simulation" / "_manifest.json").write_text(json.dumps(m))
    (out / "simulation" / "_SUCCESS").unlink()
    for sid in range(10, SCENARIOS):  # written so far: scenarios 0-9 (hydros only 0-8)
        for tbl in ("costs", "buses", "hydros", "thermals"):
            shutil.rmtree(out / "simulation" / tbl / f"scenario_id={sid:04d}")
    shutil.rmtree(out / "simulation" / "hydros" / "scenario_id=0009")
    (out / "simulation" / "costs" / "scenario_id=0003" / ".data.parquet.abc.tmp").write_bytes(b"half")
    (out / "_claim.json").write_text(json.dumps({"host": "node7", "pid": 4242, "job_id": "991",
                                                 "started_at": "2026-01-01T00:00:00Z", "world_size": 4}))
    _, rep = _json(capsys, [str(out)])
    run = rep["run"]
    assert run["state"] == "running or interrupted" and run["claim"]["host"] == "node7"
    assert any("_claim.json present" in n and "node7" in n and "pid 4242" in n for n in run["notes"])
    assert any("'running'" in n for n in run["notes"])
    res = rep["sections"]["results"]
    assert res["tables"]["costs"]["scenarios"] == 10 and res["tables"]["hydros"]["scenarios"] == 9
    assert res["per_stage"]["immediate_cost"]["scenarios"] == [10] * 4
    assert res["per_stage"]["stored_volume"]["scenarios"] == [9] * 4
    rc, text, _ = _main(capsys, [str(out)])
    assert rc == 0 and "running or interrupted" in text and "a run holds this directory" in text


def test_training_only_directory(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(full_run / "training", out / "training")
    _, rep = _json(capsys, [str(out)])
    assert rep["sections"]["simulation"]["present"] is False
    assert rep["sections"]["results"]["scenarios"] == 0
    assert "cost_distribution" in rep["sections"]["results"]["unavailable"]
    rc, text, _ = _main(capsys, [str(out)])
    assert rc == 0 and "simulation  not run" in text


# ------------------------------------------------------------------ bad input: one clear message, exit 1
def test_missing_and_empty_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _main(capsys, [str(tmp_path / "nope")])
    assert rc == 1 and out == "" and str(tmp_path / "nope") in err and "Traceback" not in err
    rc, out, err = _main(capsys, [str(tmp_path)])
    assert rc == 1 and "not a cobre_mpi_io output directory" in err


def test_corrupt_partition_is_named(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    bad = out / "simulation" / "buses" / "scenario_id=0017" / "data.parquet"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated: no footer
    rc, stdout, err = _main(capsys, [str(out)])
    assert rc == 1 and stdout == "" and "Traceback" not in err
    assert "buses/scenario_id=0017/data.parquet" in err and "differ from the run journal's record" in err, err
    # without the journal (the manifest lists the file), the reader names it
    shutil.rmtree(out / "_journal")
    bad.write_bytes(b"garbage")
    rc, _, err = _main(capsys, [str(out), "--json"])
    assert rc == 1 and "buses/scenario_id=0017/data.parquet" in err and "not readable Parquet" in err


def test_missing_column_is_named(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    f = out / "simulation" / "hydros" / "scenario_id=0004" / "data.parquet"
    pq.write_table(pq.read_table(f).drop_columns(["storage_final_hm3"]), f)
    rc, _, err = _main(capsys, [str(out)])
    assert rc == 1 and "hydros/scenario_id=0004/data.parquet" in err and "journal" in err, err
    shutil.rmtree(out / "_journal")  # the manifest lists the file: the reader names the column
    rc, _, err = _main(capsys, [str(out)])
    assert rc == 1 and "hydros/scenario_id=0004/data.parquet" in err and "storage_final_hm3" in err, err


@pytest.mark.parametrize("rel", ["simulation/_manifest.json", "training/_manifest.json", "training/metadata.json",
                                 "training/convergence.parquet"])
def test_corrupt_document_is_named(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   rel: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    (out / rel).write_bytes(b"{ not json")
    rc, stdout, err = _main(capsys, [str(out)])
    assert rc == 1 and stdout == "" and rel in err and "Traceback" not in err, err


def test_cli_entry_point_bad_input(tmp_path: Path) -> None:
    proc = run_cli("report", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 1 and "missing" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ plots and optional dependencies
def test_plot_is_a_valid_png(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "conv.png"
    parser = add_report_arguments(argparse.ArgumentParser())
    rc = report_main(parser.parse_args([str(full_run), "--section", "convergence", "--plot", str(png), "--json"]))
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["plot"] == str(png)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 10_000
    png2 = tmp_path / "no_ranks.png"
    rc, text, _ = _main(capsys, [str(full_run), "--plot", str(png2), "--no-rank-panel", "--section", "convergence"])
    assert rc == 0 and png2.read_bytes()[:8] == PNG_SIGNATURE and str(png2) in text
    # the rank panel makes the figure taller
    from PIL import Image

    with Image.open(png) as a, Image.open(png2) as b:
        assert a.size[1] > b.size[1] * 1.4


def test_plot_and_html_without_matplotlib(full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for flag, path in (("--plot", tmp_path / "x.png"), ("--html", tmp_path / "x.html")):
        rc, out, err = _main(capsys, [str(full_run), "--section", "convergence", flag, str(path)])
        assert rc == 1 and out == "" and "matplotlib" in err and "pip install 'cobre_mpi_io[report]'" in err
        assert not path.exists()


def test_results_without_duckdb(full_run: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    rc, out, err = _main(capsys, [str(full_run)])
    assert rc == 1 and "duckdb" in err and "pip install 'cobre_mpi_io[report]'" in err
    rc, out, _ = _main(capsys, [str(full_run), "--section", "convergence"])  # needs only pyarrow
    assert rc == 0 and "convergence" in out


def test_duckdb_never_draws_its_progress_bar(full_run: Path) -> None:
    """duckdb draws a progress bar on queries over 2 s by default: it would land in the report's output."""
    from cobre_mpi_io.report.analysis import _Engine
    from cobre_mpi_io.report.run import RunDirectory

    eng = _Engine(RunDirectory.open(full_run))
    assert eng.con.sql("select current_setting('enable_progress_bar')").fetchall() == [(False,)]
    eng.con.close()
