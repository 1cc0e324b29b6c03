"""Analyses of a run for notebooks and scripts: tables (pandas or Arrow) and matplotlib figures.

The ``cobre-mpi-io report`` command and its HTML page are thin layers over
this package.  Open a run once, then ask for what you need; the simulation
analyses (out of core, duckdb) run on first use and are cached on the run::

    from cobre_mpi_io import report

    run = report.RunDirectory.open("out")        # producer, files to read, warnings
    report.convergence(run)                       # DataFrame, one row per iteration
    report.cost_statistics(run)                   # mean, std, p5 ... p95, CVaR 5 %
    report.stage_percentiles(run, "immediate_cost")
    report.deficit_probability(run, by="bus")
    report.fan_chart(run, "stored_volume")        # matplotlib Figure
    report.build_report(run)                      # the JSON document of `report --json`

Which files are read: exactly those the run's record lists (the run journal,
else the simulation manifest); anything else found is named in
``run.warnings`` and not read.  Trees the real Cobre solver wrote (0.5.x,
0.18) are recognized and read as found (``run.producer``,
``run.producer_version``).

Needs the ``report`` extra (``pip install 'cobre_mpi_io[report]'``: duckdb,
matplotlib, pandas); each is imported on first use, and a missing one raises
an :class:`ImportError` naming the extra.  ``as_arrow=True`` returns
``pyarrow.Table`` and needs no pandas.
"""

from __future__ import annotations

from .analysis import analyse_simulation, read_convergence, read_rank_totals
from .document import SECTIONS, build_report, convergence_summary, dumps_report, plot_convergence, render_text
from .figures import convergence_plot, cost_distribution_plot, deficit_plot, entity_panels, fan_chart
from .frames import (
    ENTITY_QUANTITIES,
    STAGE_QUANTITIES,
    convergence,
    cost_statistics,
    deficit_probability,
    entity_percentiles,
    fan_chart_data,
    scenario_costs,
    stage_percentiles,
)
from .html import render_html, write_html_report
from .run import RunDirectory

__all__ = [
    "ENTITY_QUANTITIES",
    "SECTIONS",
    "STAGE_QUANTITIES",
    "RunDirectory",
    "analyse_simulation",
    "build_report",
    "convergence",
    "convergence_plot",
    "convergence_summary",
    "cost_distribution_plot",
    "cost_statistics",
    "deficit_plot",
    "deficit_probability",
    "dumps_report",
    "entity_panels",
    "entity_percentiles",
    "fan_chart",
    "fan_chart_data",
    "plot_convergence",
    "read_convergence",
    "read_rank_totals",
    "render_html",
    "render_text",
    "scenario_costs",
    "stage_percentiles",
    "write_html_report",
]
