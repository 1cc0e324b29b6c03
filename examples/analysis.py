"""Analysing a run in a notebook: the tables and figures of ``cobre_mpi_io.report``.

Notebook-style (``# %%`` cells: run it cell by cell in Jupyter/VS Code, or as a script)::

    python examples/analysis.py OUT [FIGURES_DIR]

``OUT`` is a run's output directory (one this package wrote, or one the real
Cobre solver 0.5.x / 0.18 wrote); without it a small synthetic run is made
first (``cobre-mpi-io demo``, one process).  The figures are saved as PNG
files into ``FIGURES_DIR`` (default: ``OUT/../figures``).  Needs the
``report`` extra: ``pip install 'cobre_mpi_io[report]'``.
"""

# %% Open the run: who wrote it, which files the analyses read
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from cobre_mpi_io import report

if len(sys.argv) > 1:
    out = Path(sys.argv[1])
else:
    out = Path(tempfile.mkdtemp(prefix="cobre-analysis-")) / "out"
    subprocess.run([sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--scenarios", "32",
                    "--iterations", "10", "--quiet"], check=True)
figures = Path(sys.argv[2]) if len(sys.argv) > 2 else out.parent / "figures"
figures.mkdir(parents=True, exist_ok=True)

run = report.RunDirectory.open(out)
print(f"{out}: written by {run.producer_label}; files read: {run.listed_by}")
for warning in run.warnings:  # e.g. partitions no record lists (they are not read)
    print("warning:", warning)

# %% Training: the bounds over iterations (a pandas DataFrame)
conv = report.convergence(run)
print(conv[["iteration", "lower_bound", "upper_bound_mean", "gap_percent"]].tail())

# %% The scenario cost: one row per scenario, and its statistics
costs = report.scenario_costs(run)
print(costs[["scenario_id", "total_cost"]].describe())
stats = report.cost_statistics(run)
print(f"mean {stats['mean']:,.0f} $, p95 {stats['p95']:,.0f} $, CVaR 5 % {stats['cvar95']:,.0f} $")
gap = stats["mean"] / conv["lower_bound"].iloc[-1]
print(f"simulated mean cost / final lower bound = {gap:.3f}")

# %% Per stage: percentiles over scenarios (the data of a fan chart), and the deficit probability
per_stage = report.stage_percentiles(run, "immediate_cost")
print(per_stage.attrs["unit"], per_stage.attrs["label"])
print(per_stage)
print(report.deficit_probability(run))
print(report.deficit_probability(run, by="bus").pivot(index="stage_id", columns="name", values="probability"))

# %% Per entity: spot price per bus, stored volume per hydro
prices = report.entity_percentiles(run, "spot_price")
print(prices.groupby("name")["mean"].mean().sort_values(ascending=False))

# %% Arrow instead of pandas (no pandas needed), e.g. to hand to polars or duckdb
table = report.stage_percentiles(run, "stored_volume", as_arrow=True)
print(table.schema)

# %% Figures (matplotlib Figure objects: in a notebook, leave one as the cell's value to display it)
for name, fig in {
    "convergence": report.convergence_plot(run),
    "cost_distribution": report.cost_distribution_plot(run),
    "immediate_cost": report.fan_chart(run, "immediate_cost"),
    "deficit": report.deficit_plot(run),
    "spot_price": report.entity_panels(run, "spot_price"),
}.items():
    fig.savefig(figures / f"{name}.png", dpi=100)
print(f"figures in {figures}: {sorted(p.name for p in figures.glob('*.png'))}")

# %% The whole report: the JSON document of `cobre-mpi-io report --json`, and the HTML page
doc = report.build_report(run)
print(doc["run"]["state"], doc["sections"]["results"]["scenarios"], "scenarios")
page = report.write_html_report(doc, figures / "report.html", run)
print(f"HTML report: {page}")
