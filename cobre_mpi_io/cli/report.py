"""``cobre-mpi-io report DIR``: read-only summary of a run's output (no MPI).

Prints one JSON envelope on stdout::

    {"report": "cobre_mpi_io", "version": ..., "output_dir": ..., "sections": {
        "training":    {"manifest": <training/_manifest.json>},
        "convergence": {"summary": {...iterations, final bounds and gap...}, "rank_timing": {...}},
        "simulation":  {"manifest": <simulation/_manifest.json>, "summary": {...}},
        "metadata":    <training/metadata.json>}}

A section whose file is missing or unreadable holds ``{"error": ...}`` and
the exit status is 1 (with ``--section all``, a run without a ``simulation/``
directory reports ``{"ran": false}`` there instead). ``--plot FILE.png`` draws the convergence plot (lower
bound, upper bound with its 95% confidence band, gap on a second axis) and,
when rank timing exists, a per-rank timing panel showing load imbalance;
it needs matplotlib (``pip install cobre_mpi_io[plot]``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "SECTIONS",
    "add_report_arguments",
    "build_report",
    "convergence_summary",
    "plot_convergence",
    "report_main",
    "simulation_summary",
]

SECTIONS: Final = ("convergence", "simulation", "training", "metadata")
Z95: Final = 1.959963984540054


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` arguments (``DIR``, ``--section``, ``--plot``, ``--rank-panel``) to ``parser``."""
    parser.add_argument("output_dir", metavar="DIR", help="the run's output directory (holds training/, simulation/)")
    parser.add_argument("--section", choices=(*SECTIONS, "all"), default="all", help="what to report (default all)")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="also draw the convergence plot to this PNG file (needs matplotlib)")
    parser.add_argument("--rank-panel", action=argparse.BooleanOptionalAction, default=None,
                        help="add the per-rank timing panel to the plot (default: when rank timing exists)")
    return parser


def _read_json(path: Path) -> Any:
    if not path.exists():
        return {"error": f"{path} does not exist"}
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return {"error": f"{path} is not readable JSON: {exc}"}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _read_convergence(out: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(out / "training" / "convergence.parquet")


def _read_rank_timing(out: Path) -> Any | None:
    import pyarrow.parquet as pq

    d = out / "training" / "timing" / "mpi_ranks.parquet"
    if not d.is_dir() or not any(d.glob("part-rank-*.parquet")):
        return None
    return pq.read_table(d)


def convergence_summary(out: str | Path) -> dict[str, Any]:
    """Summary of ``training/convergence.parquet`` and the per-rank timing (``{"error"}`` when missing)."""
    out = Path(out)
    p = out / "training" / "convergence.parquet"
    if not p.exists():
        return {"error": f"{p} does not exist"}
    try:
        t = _read_convergence(out).to_pydict()
    except Exception as exc:  # noqa: BLE001 - report, never crash
        return {"error": f"{p} is not readable Parquet: {exc}"}
    n = len(t["iteration"])
    summary: dict[str, Any] = {"iterations": n}
    if n:
        gaps = [g for g in t["gap_percent"] if g is not None]
        summary.update({
            "first_iteration": t["iteration"][0], "last_iteration": t["iteration"][-1],
            "final_lower_bound": _clean(t["lower_bound"][-1]),
            "final_upper_bound_mean": _clean(t["upper_bound_mean"][-1]),
            "final_upper_bound_std": _clean(t["upper_bound_std"][-1]),
            "final_gap_percent": _clean(t["gap_percent"][-1]),
            "min_gap_percent": _clean(min(gaps)) if gaps else None,
            "upper_bound_evaluated": any(u is not None for u in t["upper_bound_mean"]),
            "final_cuts_active": t["cuts_active"][-1],
            "total_cuts_added": sum(t["cuts_added"]),
            "total_lp_solves": sum(t["lp_solves"]),
            "total_time_seconds": round(sum(t["time_total_ms"]) / 1000.0, 3),
            "peak_memory_mb": max(t["memory_peak_mb"]),
        })
    result: dict[str, Any] = {"summary": summary}
    try:
        rt = _read_rank_timing(out)
    except Exception as exc:  # noqa: BLE001
        result["rank_timing"] = {"error": f"rank timing not readable: {exc}"}
        return result
    if rt is not None:
        d = rt.to_pydict()
        per: dict[int, dict[str, int]] = {}
        for i, r in enumerate(d["rank"]):
            acc = per.setdefault(r, {"forward_time_ms": 0, "backward_time_ms": 0, "communication_time_ms": 0,
                                     "idle_time_ms": 0, "lp_solves": 0, "scenarios_processed": 0, "rows": 0})
            for k in acc:
                acc[k] += 1 if k == "rows" else d[k][i]
        busy = [v["forward_time_ms"] + v["backward_time_ms"] for v in per.values()]
        mean = sum(busy) / len(busy) if busy else 0
        result["rank_timing"] = {
            "ranks": len(per), "rows": rt.num_rows,
            "per_rank": {str(r): per[r] for r in sorted(per)},
            "imbalance_max_over_mean": round(max(busy) / mean, 4) if mean else None,
        }
    return result


def simulation_summary(manifest: Any) -> dict[str, Any]:
    """Scenarios, files, bytes, rows and status from a simulation manifest dict."""
    if not isinstance(manifest, dict) or "error" in manifest:
        return {"error": manifest.get("error") if isinstance(manifest, dict) else "not an object"}
    files = manifest.get("files") or {}
    sc = manifest.get("scenarios") or {}
    return {
        "status": manifest.get("status"),
        "scenarios_total": sc.get("total"), "scenarios_completed": sc.get("completed"),
        "scenarios_failed": sc.get("failed"),
        "partitions": len(manifest.get("partitions_written") or []),
        "files": len(files),
        "bytes": sum(int(e.get("bytes", 0)) for e in files.values()),
        "rows": sum(int(e.get("rows", 0)) for e in files.values()),
        "tables": manifest.get("tables"), "detail": manifest.get("detail"),
        "world_size": (manifest.get("mpi_info") or {}).get("world_size"),
        "checksum": (manifest.get("checksum") or {}).get("value"),
    }


def build_report(out: str | Path, section: str = "all") -> dict[str, Any]:
    """The report envelope for ``out`` (see module docs)."""
    from .._version import __version__

    out = Path(out)
    wanted = SECTIONS if section == "all" else (section,)
    sections: dict[str, Any] = {}
    for s in wanted:
        if s == "training":
            sections[s] = {"manifest": _read_json(out / "training" / "_manifest.json"),
                           "success_marker": (out / "training" / "_SUCCESS").exists()}
        elif s == "metadata":
            sections[s] = _read_json(out / "training" / "metadata.json")
        elif s == "convergence":
            sections[s] = convergence_summary(out)
        elif s == "simulation" and section == "all" and not (out / "simulation").exists():
            sections[s] = {"ran": False, "manifest": None, "summary": None, "success_marker": False}
        elif s == "simulation":
            m = _read_json(out / "simulation" / "_manifest.json")
            sections[s] = {"manifest": m, "summary": simulation_summary(m),
                           "success_marker": (out / "simulation" / "_SUCCESS").exists()}
    return {"report": "cobre_mpi_io", "version": __version__, "output_dir": str(out), "section": section,
            "sections": sections}


def _has_error(v: Any) -> bool:
    if isinstance(v, dict):
        return "error" in v or any(_has_error(x) for k, x in v.items() if k in ("manifest", "summary"))
    return False


def plot_convergence(out: str | Path, png: str | Path, *, rank_panel: bool | None = None) -> Path:
    """Draw the convergence plot of ``out`` to ``png``.

    Lower bound and upper-bound mean with its 95% confidence band
    (mean ± 1.96·std) over iterations, the gap (%) on a second axis; with
    ``rank_panel`` (default: when rank timing exists) a second panel of
    per-rank forward/backward/communication/idle time summed over
    iterations, showing load imbalance.

    Raises
    ------
    ImportError
        When matplotlib is not installed (message says how to install it).
    FileNotFoundError
        When ``training/convergence.parquet`` is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'cobre_mpi_io[plot]' (or pip install matplotlib)") \
            from exc
    import numpy as np

    out = Path(out)
    if not (out / "training" / "convergence.parquet").exists():
        raise FileNotFoundError(f"{out / 'training' / 'convergence.parquet'} does not exist")
    t = _read_convergence(out).to_pydict()
    rt = _read_rank_timing(out) if rank_panel is not False else None
    if rank_panel and rt is None:
        raise FileNotFoundError(f"{out / 'training/timing/mpi_ranks.parquet'} has no rank timing files")
    it = np.asarray(t["iteration"], dtype=float)
    nan = float("nan")
    lb = np.asarray(t["lower_bound"], dtype=float)
    ub = np.asarray([nan if v is None else v for v in t["upper_bound_mean"]], dtype=float)
    sd = np.asarray([nan if v is None else v for v in t["upper_bound_std"]], dtype=float)
    gap = np.asarray([nan if v is None else v for v in t["gap_percent"]], dtype=float)
    panels = 2 if rt is not None else 1
    fig, axes = plt.subplots(panels, 1, figsize=(9, 4.2 * panels), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2][:panels]})
    ax = axes[0][0]
    ax.plot(it, lb, color="tab:blue", lw=2, label="lower bound")
    if np.isfinite(ub).any():
        ax.plot(it, ub, color="tab:red", lw=1.5, label="upper bound (mean)")
        ax.fill_between(it, ub - Z95 * sd, ub + Z95 * sd, color="tab:red", alpha=0.18, lw=0,
                        label="upper bound 95% CI")
    ax.set_xlabel("iteration")
    ax.set_ylabel("expected cost ($)")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if np.isfinite(gap).any():
        ax2 = ax.twinx()
        ax2.plot(it, gap, color="tab:green", lw=1.2, ls="--", label="gap (%)")
        ax2.set_ylabel("gap (%)", color="tab:green")
        ax2.tick_params(axis="y", colors="tab:green")
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="center right", fontsize="small")
    ax.set_title(f"SDDP convergence — {out.name or out}")
    if rt is not None:
        d = rt.to_pydict()
        ranks = sorted(set(d["rank"]))
        keys = ("forward_time_ms", "backward_time_ms", "communication_time_ms", "idle_time_ms")
        tot = {k: np.zeros(len(ranks)) for k in keys}
        pos = {r: i for i, r in enumerate(ranks)}
        for i, r in enumerate(d["rank"]):
            for k in keys:
                tot[k][pos[r]] += d[k][i]
        axr = axes[1][0]
        bottom = np.zeros(len(ranks))
        for k, color in zip(keys, ("tab:blue", "tab:orange", "tab:purple", "tab:gray")):
            axr.bar(ranks, tot[k] / 1000.0, bottom=bottom, color=color, label=k.removesuffix("_time_ms"))
            bottom += tot[k] / 1000.0
        busy = (tot["forward_time_ms"] + tot["backward_time_ms"]) / 1000.0
        if busy.mean() > 0:
            axr.axhline(busy.mean(), color="k", lw=0.8, ls=":", label="mean forward+backward")
            axr.set_title(f"per-rank time over all iterations (imbalance max/mean = {busy.max() / busy.mean():.2f})")
        axr.set_xlabel("rank")
        axr.set_ylabel("time (s)")
        axr.set_xticks(ranks)
        axr.set_ylim(0, float(bottom.max()) * 1.3 if bottom.max() > 0 else 1.0)
        axr.legend(fontsize="small", ncol=5, loc="upper center")
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png


def report_main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run the report command; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace, list of str or None
        Parsed arguments (from a parser given :func:`add_report_arguments`),
        or a command line to parse (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a requested file is missing or unreadable,
        2 when ``DIR`` does not exist or the plot cannot be drawn (e.g.
        matplotlib not installed).
    """
    if not isinstance(args, argparse.Namespace):
        parser = add_report_arguments(argparse.ArgumentParser(prog="cobre-mpi-io report"))
        args = parser.parse_args(list(args) if args is not None else None)
    out = Path(args.output_dir)
    if not out.is_dir():
        sys.stderr.write(f"cobre-mpi-io report: {out} is not a directory\n")
        return 2
    rep = build_report(out, args.section)
    status = 1 if any(_has_error(v) for v in rep["sections"].values()) else 0
    if getattr(args, "plot", None):
        try:
            rep["plot"] = str(plot_convergence(out, args.plot, rank_panel=getattr(args, "rank_panel", None)))
        except (ImportError, FileNotFoundError) as exc:
            sys.stdout.write(json.dumps(rep, indent=2, allow_nan=False) + "\n")
            sys.stderr.write(f"cobre-mpi-io report: cannot draw the plot: {exc}\n")
            return 2
    sys.stdout.write(json.dumps(rep, indent=2, allow_nan=False) + "\n")
    return status
