"""The public analysis package ``cobre_mpi_io.report``: tables and figures for a notebook, the files it reads,
and trees the real Cobre solver wrote.

- the tables (pandas and Arrow) agree with an independent NumPy computation over the same partitions;
- the report reads exactly the files the run journal (else the manifest) lists: an extra
  ``scenario_id=0999`` partition changes no statistic and the report names it in a warning (issue 14.7);
- a Cobre 0.18 tree and a Cobre 0.5.1 tree (tests/data/cobre-real, see PROVENANCE.txt) are recognized,
  the producer and version reported, convergence and results read from the columns that version writes;
- every legend of every figure sits outside every axes (never on the data), and building a figure changes
  nothing global (no pyplot figure, no rcParams);
- without pandas the DataFrame functions raise an ImportError naming the ``report`` extra (Arrow still works).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from cobre_mpi_io import report
from cobre_mpi_io.errors import OutputError
from cobre_mpi_io.report import RunDirectory

pytestmark = pytest.mark.timeout(180)

DATA = Path(__file__).parent / "data" / "cobre-real"
SCENARIOS = 12
ITERATIONS = 5


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api") / "out"
    run_cli("demo", "--output", str(out), "--scenarios", str(SCENARIOS), "--iterations", str(ITERATIONS),
            "--seed", "3", "--quiet")
    return out


def _stage_costs(out: Path) -> pa.Table:
    t = ds.dataset(out / "simulation" / "costs", format="parquet", partitioning="hive").to_table()
    return t.filter(pc.is_null(t.column("block_id")))


# ------------------------------------------------------------------ tables
def test_tables_agree_with_numpy(run_dir: Path) -> None:
    run = RunDirectory.open(run_dir)
    assert run.producer == "cobre_mpi_io" and run.listed_by == "journal" and run.unlisted == ()
    stage = _stage_costs(run_dir)
    sid = stage.column("scenario_id").to_numpy()
    st = stage.column("stage_id").to_numpy()
    imm = stage.column("immediate_cost").to_numpy() * stage.column("discount_factor").to_numpy()

    conv = report.convergence(run)
    assert list(conv["iteration"]) == list(range(1, ITERATIONS + 1))
    assert conv["lower_bound"].iloc[-1] == pq.read_table(run_dir / "training" / "convergence.parquet")[
        "lower_bound"][-1].as_py()

    costs = report.scenario_costs(run)
    assert list(costs["scenario_id"]) == list(range(SCENARIOS)) and "deficit_cost" in costs.columns
    np.testing.assert_allclose(costs["total_cost"], np.bincount(sid, imm))
    stats = report.cost_statistics(run)
    assert stats["scenarios"] == SCENARIOS
    assert stats["mean"] == pytest.approx(np.bincount(sid, imm).mean())
    assert stats["p95"] == pytest.approx(np.quantile(np.bincount(sid, imm), 0.95))

    per = report.stage_percentiles(run, "immediate_cost")
    assert per.attrs["unit"] == "$" and list(per["stage_id"]) == sorted(set(st.tolist()))
    raw = stage.column("immediate_cost").to_numpy()
    np.testing.assert_allclose(per["mean"], [raw[st == s].mean() for s in per["stage_id"]])
    np.testing.assert_allclose(per["p50"], [np.median(raw[st == s]) for s in per["stage_id"]])
    arrow = report.stage_percentiles(run, "immediate_cost", as_arrow=True)
    assert isinstance(arrow, pa.Table) and arrow.schema.metadata[b"unit"] == b"$"

    fan = report.fan_chart_data(run, "stored_volume")
    assert sorted(set(fan["band"])) == ["25-75", "5-95", "mean", "median"] and len(fan) == 4 * len(per)
    assert (fan["low"] <= fan["high"] + 1e-9).all()

    dp = report.deficit_probability(run)
    buses = ds.dataset(run_dir / "simulation" / "buses", format="parquet", partitioning="hive").to_table(
        columns=["scenario_id", "stage_id", "deficit_mwh"]).to_pandas()
    per_sc = buses.groupby(["stage_id", "scenario_id"])["deficit_mwh"].sum()
    expect = (per_sc > 1e-3).groupby("stage_id").mean()
    np.testing.assert_allclose(dp["probability"], expect.to_numpy())
    by_bus = report.deficit_probability(run, by="bus")
    assert set(by_bus.columns) == {"bus_id", "name", "stage_id", "probability"}
    prices = report.entity_percentiles(run, "spot_price")
    assert set(prices["name"]) == {"BUS_0", "BUS_1", "BUS_2"} and (prices["scenarios"] == SCENARIOS).all()
    assert len(report.entity_percentiles(run, "stored_volume", as_arrow=True)) == 6 * len(per)

    with pytest.raises(ValueError, match="unknown quantity"):
        report.stage_percentiles(run, "nope")
    with pytest.raises(ValueError, match="by must be"):
        report.deficit_probability(run, by="hydro")


def test_unavailable_quantity_says_why(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "4", "--iterations", "2", "--detail", "stage", "--quiet")
    with pytest.raises(OutputError, match="spot_price.*no buses table at detail 'stage'"):
        report.entity_percentiles(out, "spot_price")
    # the deficit probability comes from costs.deficit_cost at this detail
    assert len(report.deficit_probability(out)) == 4


def test_dataframes_need_pandas_arrow_does_not(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDirectory.open(run_dir)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pandas.*pip install 'cobre_mpi_io\[report\]'"):
        report.convergence(run)
    assert report.convergence(run, as_arrow=True).num_rows == ITERATIONS
    assert report.scenario_costs(run, as_arrow=True).num_rows == SCENARIOS


# ------------------------------------------------------------------ exactly the listed files (issue 14.7)
def _add_foreign_partition(out: Path) -> None:
    """scenario_id=0999 in every analysed table: scenario 2's files, its costs multiplied by 100."""
    for tbl in ("costs", "buses", "hydros", "thermals"):
        src = out / "simulation" / tbl / "scenario_id=0002" / "data.parquet"
        dst = out / "simulation" / tbl / "scenario_id=0999" / "data.parquet"
        dst.parent.mkdir()
        t = pq.read_table(src)
        if tbl == "costs":
            t = t.set_column(t.schema.get_field_index("immediate_cost"), "immediate_cost",
                             pc.multiply(t.column("immediate_cost"), 100.0))
        pq.write_table(t, dst)


def _same(a: Any, b: Any, where: str) -> None:
    """``a == b``, floats to 1e-12 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-9), where
    else:
        assert a == b, where


@pytest.mark.parametrize("record", ["journal", "manifest"])
def test_unlisted_partition_changes_nothing_and_is_named(run_dir: Path, tmp_path: Path, record: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = report.build_report(run_dir)["sections"]["results"]
    out = tmp_path / "out"
    shutil.copytree(run_dir, out, symlinks=True)
    if record == "manifest":
        shutil.rmtree(out / "_journal")
    _add_foreign_partition(out)
    run = RunDirectory.open(out)
    assert run.listed_by == record
    assert sum("scenario_id=0999" in u for u in run.unlisted) == 4
    res = report.build_report(run)["sections"]["results"]
    assert res["scenarios"] == SCENARIOS
    for key in ("cost_distribution", "per_stage", "per_bus", "per_hydro"):
        _same(res[key], base[key], key)  # duckdb's parallel sums may differ in the last bit
    # the text summary and --json both say it, naming the partition
    from cobre_mpi_io.cli.report import report_main

    assert report_main([str(out)]) == 0
    text = capsys.readouterr().out
    assert "state       complete" in text and "NOT analysed" in text
    assert "simulation/costs/scenario_id=0999/data.parquet" in text
    assert report_main([str(out), "--json"]) == 0
    cap = capsys.readouterr()
    assert "warning" in cap.err and "scenario_id=0999" in cap.err
    doc = json.loads(cap.out)
    assert doc["run"]["files"]["listed_by"] == record and len(doc["run"]["files"]["unlisted"]) == 4


# ------------------------------------------------------------------ trees the real Cobre solver wrote
def _independent_costs(out: Path) -> np.ndarray:
    files = sorted((out / "simulation" / "costs").glob("scenario_id=*/data.parquet"))
    return np.array([sum(r["immediate_cost"] * r["discount_factor"] for r in pq.read_table(f).to_pylist()
                         if r["block_id"] is None) for f in files])


@pytest.mark.parametrize(("tree", "version", "source", "component", "absent"), [
    ("run-1dtoy-v018", "0.18.0", "software/software_version", "turbined_cost", "fpha_turbined_cost"),
    ("run-1dtoy-v051", "0.5.1", "cobre_version", "fpha_turbined_cost", "turbined_cost"),
])
@pytest.mark.slow(30)
def test_cobre_tree(tree: str, version: str, source: str, component: str, absent: str, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    out = DATA / tree
    run = RunDirectory.open(out)
    assert (run.producer, run.producer_version, run.listed_by) == ("cobre", version, "directory")
    assert source in run.producer_source
    rep = report.build_report(run)
    assert rep["run"]["state"] == "complete" and rep["run"]["producer"]["version"] == version
    conv = rep["sections"]["convergence"]["summary"]
    expect = pq.read_table(out / "training" / "convergence.parquet")
    assert conv["iterations"] == expect.num_rows
    assert conv["final_lower_bound"] == expect.column("lower_bound")[-1].as_py()
    ub = "upper_bound" if version == "0.18.0" else "upper_bound_mean"
    assert conv["final_upper_bound_mean"] == expect.column(ub)[-1].as_py()
    if version == "0.18.0":
        assert conv["upper_bound_kind"] == "statistical" and conv["peak_memory_mb"] is None
    res = rep["sections"]["results"]
    assert res["scenarios"] == 3 and res["producer"] == f"cobre {version}" and not res["unavailable"]
    comps = res["cost_distribution"]["components"]
    assert component in comps and absent not in comps
    np.testing.assert_allclose(report.scenario_costs(run)["total_cost"], _independent_costs(out))
    assert report.convergence(run)["upper_bound_mean"].iloc[-1] == expect.column(ub)[-1].as_py()
    text = report.render_text(rep)
    assert f"producer    cobre {version} (from " in text and "no _manifest.json" in text
    page = report.write_html_report(rep, tmp_path / "r.html", run).read_text(encoding="utf-8")
    assert f"cobre {version}" in page and page.count("data:image/svg+xml") >= 5
    # the command line: exit 0, same summary
    rc = run_cli("report", str(out))
    assert f"cobre {version}" in rc.stdout and "results     3 scenarios" in rc.stdout


# ------------------------------------------------------------------ figures: legends off the data
def _assert_legends_clear(fig: Any) -> int:
    """Every legend lies inside the figure and overlaps no visible axes; returns how many there are."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    frame = fig.bbox
    for leg in legends:
        box = leg.get_window_extent(r)
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and \
            box.y1 <= frame.y1 + 1, f"legend {box} outside the figure {frame}"
        for ax in fig.axes:
            if ax.get_visible():
                inner = ax.get_window_extent(r).shrunk(0.999, 0.999)
                assert not box.overlaps(inner), f"legend {box} over the axes {inner} ({ax.get_title()!r})"
    return len(legends)


def test_legends_never_cover_data(run_dir: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    run = RunDirectory.open(run_dir)
    figs = {"convergence": report.convergence_plot(run), "cost": report.cost_distribution_plot(run),
            "deficit": report.deficit_plot(run), "prices": report.entity_panels(run, "spot_price"),
            "volumes": report.entity_panels(run, "stored_volume"),
            **{q: report.fan_chart(run, q) for q in report.STAGE_QUANTITIES}}
    counts = {k: _assert_legends_clear(f) for k, f in figs.items()}
    assert all(n >= 1 for n in counts.values()), counts  # every figure explains its lines
    assert counts["convergence"] == 2  # bounds and the rank panel
    # building figures touched no global state
    assert dict(matplotlib.rcParams) == before
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    png = report.plots.figure_png(figs["cost"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_deficit_panel_says_something() -> None:
    """Probabilities are labelled and the axis fits them; a run without deficit says so in words."""
    fig = report.plots.deficit_figure([0, 1, 2, 3], None, [0.05, 0.0, 0.1, 0.0], "t")
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 20  # 10 % fills most of the panel, not a tenth of it
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["5 %", "10 %"]
    fig = report.plots.deficit_figure([0, 1], None, [0.0, 0.0], "t")
    assert any("no deficit" in t.get_text() for t in fig.axes[0].texts)


# ------------------------------------------------------------------ files that are not regular files
@pytest.mark.parametrize("place", ["training/convergence.parquet", "training/dictionaries/entities.csv",
                                   "training/timing/mpi_ranks.parquet/part-rank-0000.parquet",
                                   "simulation/costs/scenario_id=0003/data.parquet"])
def test_a_fifo_never_hangs_the_report(run_dir: Path, tmp_path: Path, place: str) -> None:
    import os

    out = tmp_path / "out"
    shutil.copytree(run_dir, out, symlinks=True)
    (out / place).unlink()
    os.mkfifo(out / place)
    rep = run_cli("report", str(out), check=False, timeout=60)  # a hang fails here (TimeoutExpired)
    assert "Traceback" not in rep.stderr, rep.stderr
    if place.endswith("entities.csv"):  # names are cosmetic: ids instead
        assert rep.returncode == 0 and "bus 0" in rep.stdout
    elif place.startswith("simulation/"):  # not a partition file: named, not read
        assert rep.returncode == 0 and "partition(s) the journal lists are missing" in rep.stdout
        assert "scenario_id=0003" in rep.stdout
    else:
        assert rep.returncode == 1 and "FIFO" in rep.stderr and place.split("/")[-1] in rep.stderr, rep.stderr


def test_training_files_reach_pyarrow_as_memory_never_as_python_files(run_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow reads a Python file on its I/O threads, and one of them releasing the last read after the
    interpreter began exiting aborted a failing report (exit 134, ~1 in 60): the report hands it bytes."""
    seen: list[type] = []
    parquet_file = pq.ParquetFile

    def spy(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(type(source))
        return parquet_file(source, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("pq.read_table: a dataset scan"))
    assert report.read_convergence(run_dir) is not None and report.read_rank_totals(run_dir) is not None
    assert seen and set(seen) == {pa.BufferReader}, seen  # in memory, read on the calling thread
