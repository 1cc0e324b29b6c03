"""The report's figures for a run: each function takes a run and returns a matplotlib ``Figure``.

The same figures the HTML page shows, built without pyplot (display one in a
notebook by leaving it as the cell's value, or save it with
``fig.savefig(...)`` / :func:`cobre_mpi_io.report.plots.figure_png`).  The
data behind each is a function of :mod:`cobre_mpi_io.report.frames`.
"""

from __future__ import annotations

import os
from typing import Any, Final

from ..errors import IoError
from .analysis import CONVERGENCE_FILE, read_convergence, read_rank_totals, run_results
from .frames import _unavailable
from .run import RunDirectory, as_run

__all__ = ["convergence_plot", "cost_distribution_plot", "deficit_plot", "entity_panels", "fan_chart"]

_Run = RunDirectory | str | os.PathLike[str]
FAN_STYLE: Final = {
    "total_cost": ("Total cost per stage (immediate + future)", "tab:purple"),
    "immediate_cost": ("Immediate cost per stage", "tab:red"),
    "thermal_generation": ("Thermal generation per stage", "tab:orange"),
    "hydro_generation": ("Hydro generation per stage", "tab:blue"),
    "stored_volume": ("Stored volume at the end of each stage (all hydros)", "tab:cyan"),
    "deficit": ("Deficit (unmet demand) per stage", "tab:red"),
}
"""Title and colour of each fan chart."""




def convergence_plot(run: _Run, *, rank_panel: bool | None = None) -> Any:
    """Lower bound, upper bound with its 95 % band and the gap over iterations; per-rank timing below.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    rank_panel : bool, optional
        Draw the per-rank timing panel (default: when the run has rank timing).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    IoError
        No convergence history (or no rank timing when ``rank_panel=True``).
    ImportError
        matplotlib is not installed (the message names the ``report`` extra).
    """
    from .plots import convergence_figure

    r = as_run(run)
    conv = read_convergence(r)
    if conv is None:
        raise IoError(r.path / CONVERGENCE_FILE, "not found", "no convergence history to plot")
    rt = read_rank_totals(r) if rank_panel is not False else None
    if rank_panel and rt is None:
        raise IoError(r.path / "training", "not found", "no rank timing files for the rank panel")
    return convergence_figure(conv, rt, f"SDDP convergence — {r.path.resolve().name}")


def fan_chart(run: _Run, quantity: str) -> Any:
    """The fan chart of a per-stage quantity over scenarios (5–95 % and 25–75 % bands, median, mean).

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    quantity : str
        One of :data:`cobre_mpi_io.report.frames.STAGE_QUANTITIES`.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Unknown ``quantity``.
    OutputError
        The run has no data for it.
    """
    from .plots import fan_figure

    if quantity not in FAN_STYLE:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(FAN_STYLE)}")
    r = as_run(run)
    res = run_results(r)
    s = res["per_stage"].get(quantity)
    if s is None:
        raise _unavailable(r, quantity)
    title, color = FAN_STYLE[quantity]
    return fan_figure(res["stages"], s, title, color, quantity.replace("_", " "))


def cost_distribution_plot(run: _Run) -> Any:
    """Histogram of the scenario cost (p5, median, mean, p95, CVaR 5 % marked) and the mean by component.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    OutputError
        No scenario costs.
    """
    from .plots import cost_distribution_figure

    r = as_run(run)
    dist = run_results(r).get("cost_distribution")
    if not dist or not dist.get("scenarios"):
        raise _unavailable(r, "cost_distribution")
    return cost_distribution_figure(dist)


def deficit_plot(run: _Run) -> Any:
    """Deficit energy over stages (fan) above the probability of a deficit per stage.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    OutputError
        Neither a buses table nor ``deficit_cost`` to tell.
    """
    from .plots import deficit_figure

    r = as_run(run)
    res = run_results(r)
    p = res["per_stage"].get("deficit_probability")
    if p is None:
        raise _unavailable(r, "deficit")
    return deficit_figure(res["stages"], res["per_stage"].get("deficit"), p["values"],
                          "Deficit (unmet demand) and its probability per stage")


def entity_panels(run: _Run, quantity: str, *, max_panels: int = 12) -> Any:
    """One small fan chart per bus (``spot_price``) or hydro (``stored_volume``), the largest means first.

    Parameters
    ----------
    run : RunDirectory or path-like
        The run or its output directory.
    quantity : str
        ``"spot_price"`` or ``"stored_volume"``.
    max_panels : int
        At most this many entities (those with the largest mean over stages when there are more).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Unknown ``quantity``.
    OutputError
        The run has no data for it.
    """
    from .frames import _entity_quantity
    from .plots import small_multiples_figure

    res, q = _entity_quantity(run, quantity)
    return small_multiples_figure(res["stages"], largest_entities(q["entities"], max_panels), None, q["unit"],
                                  "tab:purple" if quantity == "spot_price" else "tab:cyan")


def largest_entities(entities: dict[str, Any], n: int) -> dict[str, Any]:
    """Every entity when there are at most ``n``, else the ``n`` with the largest mean over stages.

    Parameters
    ----------
    entities : dict
        Entity key -> series with a per-stage ``mean``.
    n : int
        How many to keep.

    Returns
    -------
    dict
        A sub-mapping of ``entities``, in their order.
    """
    if len(entities) <= n:
        return dict(entities)
    order = sorted(entities, key=lambda k: -sum(v for v in entities[k]["mean"] if v is not None))[:n]
    keep = set(order)
    return {k: v for k, v in entities.items() if k in keep}
