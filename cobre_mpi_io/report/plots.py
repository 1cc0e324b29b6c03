"""Figures from the report's data: convergence, per-rank timing, fan charts of simulation quantities over
stages, the scenario-cost distribution, the deficit and its probability.

Fan charts follow SDDP.jl's publication plots: per stage, the 5–95 % and
25–75 % bands of the quantity over scenarios, the median as a line and the
mean dashed.  Values are scaled to a readable unit (``$ billion``, ``GWh``,
...) chosen from their magnitude.  Every function takes plain data (the
dictionaries of :mod:`cobre_mpi_io.report.analysis`) and returns a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (no global state, no
backend switch: safe in a notebook, where the figure displays as it is);
:func:`figure_svg` / :func:`figure_png` serialise it.  The report's style is
applied through ``matplotlib.rc_context`` only while a figure is built and
saved, never to the caller's ``rcParams``.

Legends never sit on the data: every legend is placed outside the axes
(to the right, or below), with margins made for it.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, ParamSpec, TypeVar

from ._deps import load_matplotlib

__all__ = [
    "RANK_PHASES",
    "STYLE",
    "Z95",
    "convergence_figure",
    "cost_distribution_figure",
    "deficit_figure",
    "draw_fan",
    "draw_rank_timing",
    "fan_figure",
    "figure_png",
    "figure_svg",
    "scaled_unit",
    "small_multiples_figure",
]

Z95: Final = 1.959963984540054
RANK_PHASES: Final = ("forward", "backward", "communication", "idle")
STYLE: Final = {
    # text as paths (no fonts needed), stable ids; "$" in a name is a name, not a formula
    "svg.fonttype": "path", "svg.hashsalt": "cobre-report", "text.parse_math": False,
    "font.size": 9.5, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False,
}
"""The rcParams the report's figures are built and saved with (inside ``rc_context`` only)."""
_UNIT_NAMES: Final = {"hm3": "hm³", "m3/s": "m³/s"}
_SCALES: Final = {
    "$": ((1e12, "$ trillion"), (1e9, "$ billion"), (1e6, "$ million"), (1e3, "$ thousand")),
    "MWh": ((1e6, "TWh"), (1e3, "GWh")),
    "hm3": ((1e6, "10⁶ hm³"), (1e3, "10³ hm³")),
}
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _styled(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` inside ``rc_context(STYLE)`` (raises the report extra's ImportError without matplotlib)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        mpl = load_matplotlib()
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kw: Any) -> tuple[Any, Any]:
    """A pyplot-free ``Figure`` and its axes (``Figure.subplots``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def scaled_unit(unit: str, values: Sequence[float | None]) -> tuple[float, str]:
    """``(divisor, unit label)`` that brings the largest ``|value|`` below 1000 where the unit allows."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    top = max(finite, default=0.0)
    for div, name in _SCALES.get(unit, ()):
        if top >= div:
            return div, name
    return 1.0, _UNIT_NAMES.get(unit, unit)


def _arr(values: Sequence[float | None], div: float = 1.0) -> Any:
    import numpy as np

    return np.asarray([math.nan if v is None else v / div for v in values], dtype=float)


@_styled
def figure_svg(fig: Any) -> bytes:
    """The figure as SVG bytes (text as paths: no fonts needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


@_styled
def figure_png(fig: Any, path: Any = None, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (also written atomically to ``path`` when given).

    Parameters
    ----------
    fig : matplotlib Figure
        The figure.
    path : path-like, optional
        Also write the PNG there.
    dpi : int
        Resolution (default 110).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if path is not None:
        from ..atomic import write_bytes_atomic

        write_bytes_atomic(path, data, durable=False)
    return data


def _margins(fig: Any, left: float = 0.85, right: float = 0.2, bottom: float = 0.5, top: float = 0.4,
             hspace: float | None = None, wspace: float | None = None) -> None:
    """Fixed margins in inches (``tight_layout`` costs a full extra draw: 40 % of the page's plotting time).

    The values are scaled to a readable unit, so tick labels stay short and fixed margins fit.
    """
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        hspace=hspace, wspace=wspace)


def _legend_right(ax: Any, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None) -> None:
    """The axes' legend outside it, to the right (the figure leaves a right margin for it)."""
    kw: dict[str, Any] = {"fontsize": "small", "loc": "upper left", "bbox_to_anchor": (1.02, 1.0),
                          "borderaxespad": 0.0}
    if handles is not None:
        ax.legend(handles, labels, **kw)
    else:
        ax.legend(**kw)


def _stage_axis(ax: Any, stages: Sequence[int]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("stage")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    if stages:
        ax.set_xlim(min(stages) - 0.5, max(stages) + 0.5)
    ax.grid(True, alpha=0.3)


def _thousands(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"))


def draw_fan(ax: Any, stages: Sequence[int], series: Mapping[str, Any], color: str, div: float = 1.0, *,
             legend: bool = True) -> None:
    """Fan of ``series`` (``mean``, ``p5`` ... ``p95`` per stage) on ``ax``, values divided by ``div``.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    stages : sequence of int
        The x values (stage ids).
    series : mapping
        ``mean``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95``: one value (or None) per stage.
    color : str
        Fill and line colour.
    div : float
        Divisor of every value (unit scaling, see :func:`scaled_unit`).
    legend : bool
        Draw the legend, outside the axes to the right (leave a right margin of about 1.3 in).
    """
    x = list(stages)
    p5, p25, p50, p75, p95 = (_arr(series[k], div) for k in ("p5", "p25", "p50", "p75", "p95"))
    mean = _arr(series["mean"], div)
    ax.fill_between(x, p5, p95, color=color, alpha=0.18, lw=0, label="5–95 % of\nscenarios")
    ax.fill_between(x, p25, p75, color=color, alpha=0.38, lw=0, label="25–75 %")
    marker = "o" if len(x) <= 24 else None
    ax.plot(x, p50, color=color, lw=2, marker=marker, ms=3.5, label="median")
    ax.plot(x, mean, color="black", lw=1.1, ls="--", label="mean")
    if legend:
        _legend_right(ax)


@_styled
def fan_figure(stages: Sequence[int], series: Mapping[str, Any], title: str, color: str,
               ylabel: str | None = None) -> Any:
    """One fan chart: a per-stage series of :mod:`~cobre_mpi_io.report.analysis` over stages.

    Parameters
    ----------
    stages : sequence of int
        The stage ids.
    series : mapping
        Quantiles per stage (see :func:`draw_fan`) plus ``unit`` and ``label``.
    title : str
        The figure title.
    color : str
        Fan colour.
    ylabel : str, optional
        Axis label (default: the series label up to its first comma); the unit is appended.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _subplots(figsize=(7.4, 3.6))
    div, unit = scaled_unit(series["unit"], list(series["p95"]) + list(series["p5"]))
    draw_fan(ax, stages, series, color, div)
    ax.set_title(title, loc="left")
    ax.set_ylabel(f"{ylabel or series['label'].split(',')[0]} ({unit})")
    _stage_axis(ax, stages)
    _thousands(ax)
    _margins(fig, right=1.35)
    return fig


@_styled
def deficit_figure(stages: Sequence[int], deficit: Mapping[str, Any] | None, probability: Sequence[float | None],
                   title: str) -> Any:
    """Deficit energy fan (when known) above the per-stage probability of a deficit (bars labelled in %).

    The probability axis is scaled to the largest probability (so 5 % is
    visible), and a panel where no scenario has a deficit says so in words.

    Parameters
    ----------
    stages : sequence of int
        The stage ids.
    deficit : mapping, optional
        Deficit energy quantiles per stage (MWh); None at detail levels without it.
    probability : sequence of float or None
        Fraction of scenarios with a deficit, per stage.
    title : str
        The figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob = _arr(probability) * 100.0
    finite = [float(v) for v in prob if math.isfinite(v)]
    top = max(finite, default=0.0)
    if deficit is not None and top > 0:
        fig, (ax, axp) = _subplots(2, 1, figsize=(7.4, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        div, unit = scaled_unit("MWh", deficit["p95"])
        draw_fan(ax, stages, deficit, "tab:red", div)
        ax.set_ylabel(f"deficit ({unit})")
        ax.grid(True, alpha=0.3)
        ax.set_title(title, loc="left")
    else:
        fig, axp = _subplots(figsize=(7.4, 3.0))
        axp.set_title(title, loc="left")
    bars = axp.bar(list(stages), prob, color="tab:red", alpha=0.7, width=0.8)
    axp.set_ylabel("P(deficit) (%)")
    if top > 0:
        axp.set_ylim(0, min(100.0, top * 1.3) if top < 77 else 105)
        if len(stages) <= 24:
            axp.bar_label(bars, labels=[f"{v:.0f} %" if math.isfinite(v) and v > 0 else "" for v in prob],
                          fontsize="small", padding=1)
    else:
        axp.set_ylim(0, 1)
        axp.text(0.5, 0.5, "no deficit in any stage of any scenario" if finite else "no deficit data",
                 transform=axp.transAxes, ha="center", va="center", color="tab:gray")
    _stage_axis(axp, stages)
    _margins(fig, right=1.35, hspace=0.12)
    return fig


@_styled
def small_multiples_figure(stages: Sequence[int], entities: Mapping[str, Mapping[str, Any]], title: str | None,
                           unit: str, color: str, *, max_panels: int = 12) -> Any:
    """One small fan chart per entity (the first ``max_panels`` in the order given), one legend above.

    Parameters
    ----------
    stages : sequence of int
        The stage ids.
    entities : mapping
        Entity key -> quantiles per stage (see :func:`draw_fan`) and ``name``.
    title : str, optional
        Over the whole figure.
    unit : str
        Unit of the values (scaled for display).
    color : str
        Fan colour.
    max_panels : int
        At most this many entities are drawn (default 12).

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = list(entities)[:max_panels]
    ncols = min(3, max(1, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    head = 0.3 + (0.3 if title else 0.0)  # the shared legend (and the title) above the panels
    fig, axes = _subplots(nrows, ncols, figsize=(3.6 * ncols + 0.4, 2.5 * nrows + head), squeeze=False,
                          sharex=True)
    for i, k in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        s = entities[k]
        div, u = scaled_unit(unit, s["p95"])
        draw_fan(ax, stages, s, color, div, legend=False)
        ax.set_title(f"{s['name']}", fontsize=9.5)
        ax.set_ylabel(u)
        _stage_axis(ax, stages)
        _thousands(ax)
        if i // ncols != nrows - 1:
            ax.set_xlabel("")
    for j in range(len(keys), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    if keys:
        handles, labels = axes[0][0].get_legend_handles_labels()
        labels = [lb.replace("\n", " ") for lb in labels]
        h = fig.get_size_inches()[1]
        fig.legend(handles, labels, loc="upper center", ncol=4, fontsize="small",
                   bbox_to_anchor=(0.5, 1 - (0.3 if title else 0.02) / h))
    if title:
        fig.suptitle(title, fontweight="bold", fontsize=11)
    _margins(fig, left=0.75, top=head + 0.25, hspace=0.35, wspace=0.45)
    return fig


def _main_components(components: Mapping[str, Mapping[str, Any]], min_share: float = 0.005) -> list[tuple[str, float]]:
    """``(name, mean)`` of the components worth a bar (|share| >= ``min_share``); the rest summed as "others"."""
    main: list[tuple[str, float]] = []
    rest: list[float] = []
    for k, v in components.items():
        if not v["mean"]:
            continue
        share = v.get("share")
        if share is None or abs(share) >= min_share:
            main.append((k.removesuffix("_cost").replace("_", " "), v["mean"]))
        else:
            rest.append(v["mean"])
    if rest:
        main.append((f"{len(rest)} others (< {min_share * 100:g} % each)", sum(rest)))
    return main


@_styled
def cost_distribution_figure(dist: Mapping[str, Any]) -> Any:
    """Histogram of the scenario cost (mean, p5, p50, p95, CVaR 5 % marked) beside the mean cost by component.

    Parameters
    ----------
    dist : mapping
        The ``cost_distribution`` of :func:`~cobre_mpi_io.report.analysis.analyse_simulation`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    comps = _main_components(dist["components"])
    fig, (ax, axc) = _subplots(1, 2, figsize=(12.8, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    edges, counts = dist["histogram"]["edges"], dist["histogram"]["counts"]
    div, unit = scaled_unit("$", [dist["max"], dist["min"]])
    e = _arr(edges, div)
    ax.bar(e[:-1], counts, width=(e[1:] - e[:-1]), align="edge", color="tab:blue", alpha=0.55,
           edgecolor="white", lw=0.5)
    for key, label, style, color in (("p5", "p5", ":", "tab:gray"), ("p50", "median", "-", "black"),
                                     ("mean", "mean", "--", "black"), ("p95", "p95", ":", "tab:gray"),
                                     ("cvar95", "CVaR 5 % (mean of the worst 5 %)", "-.", "tab:red")):
        if dist.get(key) is not None:
            ax.axvline(dist[key] / div, ls=style, color=color, lw=1.3, label=f"{label}: {dist[key] / div:,.4g}")
    ax.set_xlabel(f"scenario cost ({unit})")
    ax.set_ylabel("scenarios")
    ax.set_title(f"Cost over {dist['scenarios']:,} scenarios", loc="left")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3)
    ax.grid(True, axis="y", alpha=0.3)
    if comps:
        cdiv, cunit = scaled_unit("$", [v for _k, v in comps])
        names = [k for k, _v in comps][::-1]
        vals = [v / cdiv for _k, v in comps][::-1]
        bars = axc.barh(names, vals, color=["tab:red" if v < 0 else "tab:blue" for v in vals], alpha=0.7)
        total = dist.get("mean")
        if total:  # each bar's share of the mean scenario cost
            axc.bar_label(bars, labels=[f"{v * cdiv / total * 100:.1f} %" for v in vals], fontsize="small",
                          padding=2)
            lo, hi = min(0.0, *vals), max(0.0, *vals)
            axc.set_xlim(lo - 0.2 * (hi - lo) if lo < 0 else 0, hi + 0.2 * (hi - lo))
        axc.set_xlabel(f"mean over scenarios ({cunit})")
        axc.set_title("Mean cost by component", loc="left")
        axc.grid(True, axis="x", alpha=0.3)
    else:
        axc.set_visible(False)
    _margins(fig, left=0.75, right=0.3, bottom=1.25, wspace=0.55)
    return fig


@_styled
def convergence_figure(conv: Mapping[str, Sequence[Any]], rank_totals: Mapping[str, Sequence[float]] | None,
                       title: str) -> Any:
    """Bounds over iterations (upper bound with its 95 % band, gap on a second axis) and the rank panel.

    Parameters
    ----------
    conv : mapping
        Convergence columns (``iteration``, ``lower_bound``, upper-bound mean/std, ``gap_percent``).
    rank_totals : mapping, optional
        Phase -> seconds per rank, summed over iterations: the per-rank timing panel below, when given.
    title : str
        The figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    panels = 2 if rank_totals else 1
    fig, axes = _subplots(panels, 1, figsize=(10.5, 3.9 * panels), squeeze=False,
                          gridspec_kw={"height_ratios": [3, 2][:panels]})
    ax = axes[0][0]
    it = _arr(conv["iteration"])
    lb, ub, sd, gap = (_arr(conv[k]) for k in ("lower_bound", "upper_bound_mean", "upper_bound_std",
                                                "gap_percent"))
    sd = np.where(np.isfinite(sd), sd, 0.0)
    vals = [v for v in list(lb) + list(ub + Z95 * sd) + list(ub - Z95 * sd) if math.isfinite(v)]
    div, unit = scaled_unit("$", vals)
    ax.plot(it, lb / div, color="tab:blue", lw=2, marker="o" if len(it) <= 30 else None, ms=3, label="lower bound")
    if np.isfinite(ub).any():
        ax.plot(it, ub / div, color="tab:red", lw=1.5, label="upper bound (mean)")
        if (sd > 0).any():
            ax.fill_between(it, (ub - Z95 * sd) / div, (ub + Z95 * sd) / div, color="tab:red", alpha=0.18, lw=0,
                            label="upper bound\n95 % CI")
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"expected cost ({unit})")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if np.isfinite(gap).any():
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        ax2.plot(it, gap, color="tab:green", lw=1.2, ls="--", label="gap (%)")
        ax2.set_ylabel("gap (%)", color="tab:green")
        ax2.tick_params(axis="y", colors="tab:green")
        if np.nanmin(gap) >= 0:
            ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    # right of the gap axis's labels, outside every axes
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.09, 1.0), borderaxespad=0.0, fontsize="small")
    ax.set_title(title, loc="left")
    if rank_totals:
        draw_rank_timing(axes[1][0], rank_totals)
    _margins(fig, right=2.35, hspace=0.4 if rank_totals else None)
    return fig


def draw_rank_timing(ax: Any, rank_totals: Mapping[str, Sequence[float]]) -> None:
    """Stacked bars per rank of the seconds in each of :data:`RANK_PHASES`, legend outside to the right.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    rank_totals : mapping
        ``rank`` (the x values) and, per phase of :data:`RANK_PHASES`, seconds per rank.
    """
    import numpy as np

    ranks = list(rank_totals["rank"])
    bottom = np.zeros(len(ranks))
    for k, color in zip(RANK_PHASES, ("tab:blue", "tab:orange", "tab:purple", "tab:gray")):
        v = np.asarray(rank_totals[k], dtype=float)
        ax.bar(ranks, v, bottom=bottom, color=color, label=k)
        bottom += v
    busy = np.asarray(rank_totals["forward"], dtype=float) + np.asarray(rank_totals["backward"], dtype=float)
    title = "Per-rank time over all iterations"
    if len(busy) and busy.mean() > 0:
        ax.axhline(busy.mean(), color="k", lw=0.8, ls=":", label="mean forward\n+ backward")
        title += f" (load imbalance: max/mean forward+backward = {busy.max() / busy.mean():.2f})"
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("MPI rank")
    ax.set_ylabel("time (s)")
    ax.set_xticks(ranks)
    ax.set_ylim(0, float(bottom.max()) * 1.1 if len(bottom) and bottom.max() > 0 else 1.0)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.09, 1.0), borderaxespad=0.0)
    ax.grid(True, axis="y", alpha=0.3)
