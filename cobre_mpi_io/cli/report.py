"""``cobre-mpi-io report DIR``: what a run produced, read-only (no MPI).

By default a short human summary on stdout: the state of the run (complete,
running, partial, failed, a ``_claim.json`` left behind), training
(iterations, bounds, gap, cuts, per-rank load imbalance), the simulation
manifest (scenarios, files, bytes, checksum) and the **results across
scenarios** (:mod:`cobre_mpi_io.cli.report_analysis`: scenario cost distribution and,
per stage, costs, deficit and its probability, stored volume, thermal and
hydro generation, spot prices per bus).

``--json`` prints one JSON document instead::

    {"report": "cobre_mpi_io", "version", "output_dir", "section",
     "run": {"state", "training_status", "simulation_status", "claim", "notes": [...]},
     "sections": {"training":    {"present", "manifest", "success_marker"},
                  "convergence": {"summary": {...}, "rank_timing": {...}},
                  "simulation":  {"present", "manifest", "summary", "success_marker"},
                  "results":     <analysis>,
                  "metadata":    <training/metadata.json>}}

The simulation manifest's file list and ``partitions_written`` are left out
(their counts are in ``summary``) unless ``--files`` asks for them.
``--section NAME`` restricts the report to one section.  ``--html FILE``
also writes one self-contained HTML page (:mod:`cobre_mpi_io.cli.report_html`);
``--plot FILE.png`` the convergence plot with the per-rank timing panel.

Exit status: 0 when the report was produced (whatever state the run is in:
the report says it); 1 when ``DIR`` is not an output directory, a file the
report needs is unreadable (an :class:`~cobre_mpi_io.errors.OutputError`
naming it), or a needed package (duckdb, matplotlib: the ``[report]``
extra) is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ..documents import read_json_document
from ..errors import IoError, OutputError
from ..layout import CLAIM_NAME, MANIFEST_NAME, SIMULATION_DIR, SUCCESS_NAME, TRAINING_DIR
from .report_analysis import CONVERGENCE_FILE, RANK_TIMING_DIR, read_convergence, read_rank_totals

__all__ = [
    "SECTIONS",
    "add_report_arguments",
    "build_report",
    "convergence_summary",
    "dumps_report",
    "plot_convergence",
    "render_text",
    "report_main",
    "simulation_summary",
]

SECTIONS: Final = ("training", "convergence", "simulation", "results", "metadata")


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` arguments to ``parser`` (``DIR``, ``--json``, ``--html``, ``--section``, ...)."""
    parser.add_argument("output_dir", metavar="DIR", help="the run's output directory (holds training/, simulation/)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the text summary")
    parser.add_argument("--html", metavar="FILE.html", default=None,
                        help="also write a self-contained HTML report (plots and tables; needs matplotlib)")
    parser.add_argument("--section", choices=(*SECTIONS, "all"), default="all",
                        help="report only this section (default all)")
    parser.add_argument("--files", action="store_true",
                        help="include the simulation manifest's file list and partitions_written")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="also draw the convergence plot (with the per-rank timing panel) to this PNG file")
    parser.add_argument("--rank-panel", action=argparse.BooleanOptionalAction, default=None,
                        help="per-rank timing panel in --plot (default: when rank timing exists)")
    return parser


# ------------------------------------------------------------------ reading
def _read_doc(path: Path, name: str) -> Any | None:
    """A JSON document of the output tree (None when absent; ManifestError when not valid JSON)."""
    if not path.exists():
        return None
    return read_json_document(path, name)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def convergence_summary(out: str | Path) -> dict[str, Any]:
    """Summary of ``training/convergence.parquet`` and of the per-rank timing.

    ``{"present": False}`` when there is no convergence file.

    Raises
    ------
    SchemaError
        A convergence or rank-timing file that is not readable Parquet (named).
    """
    t = read_convergence(out)
    if t is None:
        return {"present": False}
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
    result: dict[str, Any] = {"present": True, "summary": summary}
    rt = read_rank_totals(out)
    if rt is not None:
        busy = [f + b for f, b in zip(rt["forward"], rt["backward"])]
        mean = sum(busy) / len(busy) if busy else 0.0
        result["rank_timing"] = {
            "ranks": len(rt["rank"]), "rows": rt["rows"],
            "per_rank": {str(r): {k: rt[k][i] for k in ("forward", "backward", "communication", "idle",
                                                         "lp_solves", "scenarios_processed")}
                         for i, r in enumerate(rt["rank"])},
            "units": {"forward": "s", "backward": "s", "communication": "s", "idle": "s"},
            "imbalance_max_over_mean": round(max(busy) / mean, 4) if mean else None,
        }
    return result


def simulation_summary(manifest: Any) -> dict[str, Any]:
    """Scenarios, files, bytes, rows and status from a simulation manifest dict."""
    if not isinstance(manifest, dict):
        return {}
    files = manifest.get("files") or {}
    sc = manifest.get("scenarios") or {}
    return {
        "status": manifest.get("status"),
        "scenarios_total": sc.get("total"), "scenarios_completed": sc.get("completed"),
        "scenarios_failed": sc.get("failed"),
        "partitions": len(manifest.get("partitions_written") or []),
        "files": len(files),
        "bytes": sum(int(e.get("bytes", 0)) for e in files.values() if isinstance(e, dict)),
        "rows": sum(int(e.get("rows", 0)) for e in files.values() if isinstance(e, dict)),
        "tables": manifest.get("tables"), "detail": manifest.get("detail"),
        "world_size": (manifest.get("mpi_info") or {}).get("world_size"),
        "checksum": (manifest.get("checksum") or {}).get("value"),
        "failures": len(manifest.get("failures") or []),
        "run_fingerprint": manifest.get("run_fingerprint"),
    }


# ------------------------------------------------------------------ the run's state
def _run_state(out: Path, training: Any, simulation: Any) -> dict[str, Any]:
    """Overall state and the notes a reader must see (incomplete run, claim left behind, ...)."""
    notes: list[str] = []
    claim: Any = None
    claim_path = out / CLAIM_NAME
    if claim_path.exists():
        try:
            claim = json.loads(claim_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            claim = {}
        holder = ", ".join(f"{k} {claim.get(k)}" for k in ("host", "pid", "job_id", "started_at")
                           if isinstance(claim, dict) and claim.get(k) is not None) or "unreadable claim"
        notes.append(f"{CLAIM_NAME} present: a run holds this directory or died holding it ({holder})")
    t_status = training.get("status") if isinstance(training, dict) else None
    s_status = simulation.get("status") if isinstance(simulation, dict) else None
    sim_dir = out / SIMULATION_DIR
    if training is None and (out / TRAINING_DIR).is_dir():
        notes.append("training/_manifest.json missing: training did not start its manifest")
    if t_status in ("running", "failed", "interrupted"):
        notes.append(f"training status {t_status!r}"
                     + (": still running, or stopped before finishing" if t_status == "running" else ""))
    if simulation is None and sim_dir.is_dir():
        notes.append("simulation/_manifest.json missing: results cover the partitions found")
    if s_status == "running":
        notes.append("simulation status 'running': not finalized (still running, or killed); "
                     "results cover the partitions written so far")
    elif s_status in ("partial", "failed"):
        sc = simulation.get("scenarios") or {}
        failures = simulation.get("failures") or []
        first = next((f for f in failures if isinstance(f, dict)), None)
        why = ""
        if first is not None:
            msg = str(first.get("message", ""))
            why = f"; first failure on rank {first.get('rank')}: {msg[:200]}{'...' if len(msg) > 200 else ''}"
        notes.append(f"simulation status {s_status!r}: {sc.get('completed')}/{sc.get('total')} scenarios complete, "
                     f"{sc.get('failed')} failed{why}; results cover the partitions written")
    if s_status == "complete" and not (sim_dir / SUCCESS_NAME).exists():
        notes.append("simulation manifest says complete but simulation/_SUCCESS is missing")
    statuses = [s for s in (t_status, s_status) if s is not None]
    if not statuses and not sim_dir.is_dir() and not (out / TRAINING_DIR).is_dir():
        state = "empty"
    elif any(s == "failed" for s in statuses):
        state = "failed"
    elif any(s in ("running", "interrupted") for s in statuses) or claim is not None:
        state = "running or interrupted"
    elif s_status == "partial":
        state = "partial"
    elif statuses and all(s in ("complete", "converged") for s in statuses) and len(notes) == 0:
        state = "complete"
    else:
        state = "incomplete"
    return {"state": state, "training_status": t_status, "simulation_status": s_status,
            "claim": claim, "notes": notes}


# ------------------------------------------------------------------ the report
def build_report(out: str | Path, section: str = "all", *, files: bool = False) -> dict[str, Any]:
    """The report of the output directory ``out`` (the JSON document of the module docs).

    Parameters
    ----------
    out : str or Path
        The run's output directory.
    section : str
        One of :data:`SECTIONS` or ``"all"``.
    files : bool
        Keep the simulation manifest's ``files`` and ``partitions_written``.

    Raises
    ------
    IoError
        ``out`` is not a directory.
    ManifestError, SchemaError
        A manifest, metadata or Parquet file the report needs is unreadable (named).
    ImportError
        duckdb is missing and the ``results`` section is asked for.
    """
    from .._version import __version__

    out = Path(out)
    if not out.is_dir():
        raise IoError(out, "not found", "not an output directory (it should hold training/ and simulation/)")
    if section != "all" and section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    wanted = SECTIONS if section == "all" else (section,)
    tman = _read_doc(out / TRAINING_DIR / MANIFEST_NAME, f"{TRAINING_DIR}/{MANIFEST_NAME}")
    sman = _read_doc(out / SIMULATION_DIR / MANIFEST_NAME, f"{SIMULATION_DIR}/{MANIFEST_NAME}")
    run = _run_state(out, tman, sman)
    if run["state"] == "empty":
        raise IoError(out, "not found", "no training/ or simulation/ here: not a cobre_mpi_io output directory")
    sections: dict[str, Any] = {}
    for s in wanted:
        if s == "training":
            sections[s] = {"present": tman is not None, "manifest": tman,
                           "success_marker": (out / TRAINING_DIR / SUCCESS_NAME).exists()}
        elif s == "metadata":
            sections[s] = _read_doc(out / TRAINING_DIR / "metadata.json", f"{TRAINING_DIR}/metadata.json")
        elif s == "convergence":
            sections[s] = convergence_summary(out)
        elif s == "simulation":
            m = sman
            if isinstance(m, dict) and not files:
                m = {k: v for k, v in m.items() if k not in ("files", "partitions_written")}
            sections[s] = {"present": sman is not None or (out / SIMULATION_DIR).is_dir(), "manifest": m,
                           "summary": simulation_summary(sman),
                           "success_marker": (out / SIMULATION_DIR / SUCCESS_NAME).exists()}
        elif s == "results":
            from .report_analysis import analyse_simulation

            detail = sman.get("detail") if isinstance(sman, dict) else None
            sections[s] = analyse_simulation(out, detail if isinstance(detail, str) else None)
    return {"report": "cobre_mpi_io", "version": __version__, "output_dir": str(out), "section": section,
            "run": run, "sections": sections}


def _compact(v: Any, indent: int = 0) -> str:
    """JSON with objects indented and lists of scalars on one line (a per-stage series is one line)."""
    pad = "  " * (indent + 1)
    if isinstance(v, dict) and v:
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {_compact(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
        return "[\n" + ",\n".join(pad + _compact(x, indent + 1) for x in v) + "\n" + "  " * indent + "]"
    return json.dumps(_round(v), ensure_ascii=False, allow_nan=False)


def _round(v: Any) -> Any:
    """Floats to 7 significant digits (plenty for a report, halves the size of the document)."""
    if isinstance(v, float):
        return float(f"{v:.7g}") if math.isfinite(v) else None
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


def dumps_report(rep: dict[str, Any]) -> str:
    """The report as JSON text (per-stage series on one line each, floats to 7 significant digits)."""
    return _compact(rep) + "\n"


# ------------------------------------------------------------------ text
def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"


def _plural(n: Any, word: str) -> str:
    return f"{_num(n)} {word}" + ("" if n == 1 else "s")


def _bytes(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _text_results(res: dict[str, Any], lines: list[str]) -> None:
    from .report_plots import scaled_unit

    n = res.get("scenarios", 0)
    stages = res.get("stages", [])
    eng = f", {res['engine']}" if res.get("engine") else ""
    shape = f"{n:,} scenarios × {len(stages)} stages" if stages else f"{n:,} scenarios"
    lines.append(f"results     {shape} (detail {res.get('detail') or 'unknown'}{eng}, {res.get('seconds')} s)")
    if not n:
        lines.append("  no simulation partitions or scenario totals to analyse")
        return
    dist = res.get("cost_distribution") or {}
    if dist.get("scenarios"):
        div, unit = scaled_unit("$", [dist["max"]])
        worst = dist["worst_scenarios"][0]
        lines.append(f"  scenario cost ({unit}): mean {dist['mean'] / div:,.4g}  p5 {dist['p5'] / div:,.4g}  "
                     f"p50 {dist['p50'] / div:,.4g}  p95 {dist['p95'] / div:,.4g}  CVaR 5 % {dist['cvar95'] / div:,.4g}"
                     f"  (worst: scenario {worst['scenario_id']}, {worst['cost'] / div:,.4g})")
        comps = [(k.removesuffix("_cost").replace("_", " "), v["share"]) for k, v in dist["components"].items()
                 if v["share"] is not None]
        big = [f"{k} {s * 100:.1f} %" for k, s in comps[:3]]
        rest = sum(s for _k, s in comps[3:])
        lines.append(f"  mean cost by component: {', '.join(big)}" + (f", others {rest * 100:.1f} %" if comps[3:] else ""))
    per = res.get("per_stage", {})
    cols: list[tuple[str, str, Any]] = []  # header, unit, per-stage formatter
    if "immediate_cost" in per:
        s = per["immediate_cost"]
        div, unit = scaled_unit("$", s["p95"])
        cols.append((f"immediate cost ({unit})", "mean [p5, p95]",
                     lambda i, s=s, d=div: f"{_num(_d(s['mean'][i], d))} [{_num(_d(s['p5'][i], d), 3)}, "
                                           f"{_num(_d(s['p95'][i], d), 3)}]"))
    if "deficit_probability" in per:
        p = per["deficit_probability"]["values"]
        cols.append(("P(deficit)", "", lambda i, p=p: "n/a" if p[i] is None else f"{p[i] * 100:.0f} %"))
    for key, head in (("deficit", "deficit"), ("stored_volume", "stored volume"),
                      ("thermal_generation", "thermal gen."), ("hydro_generation", "hydro gen.")):
        if key in per:
            s = per[key]
            div, unit = scaled_unit(s["unit"], s["mean"])
            cols.append((head, f"mean {unit}", lambda i, s=s, d=div: _num(_d(s["mean"][i], d))))
    if cols and stages:
        shown = list(range(len(stages)))
        if len(shown) > 12:
            step = math.ceil(len(shown) / 12)
            shown = sorted(set(shown[::step]) | {len(shown) - 1})
        width = [max(len(h), len(u), 12) for h, u, _f in cols]
        rows = [[f(i) for _h, _u, f in cols] for i in shown]
        width = [max(w, *(len(r[j]) for r in rows)) for j, w in enumerate(width)]
        lines.append("  " + "stage".rjust(5) + "  " + "  ".join(h.rjust(w) for (h, _u, _f), w in zip(cols, width)))
        lines.append("  " + "".rjust(5) + "  " + "  ".join(u.rjust(w) for (_h, u, _f), w in zip(cols, width)))
        for i, r in zip(shown, rows):
            lines.append("  " + str(stages[i]).rjust(5) + "  " + "  ".join(c.rjust(w) for c, w in zip(r, width)))
        if len(shown) < len(stages):
            lines.append(f"  ({len(shown)} of {len(stages)} stages shown; --json or --html for every stage)")
    price = res.get("per_bus", {}).get("spot_price")
    if price:
        parts = []
        for e in list(price["entities"].values())[:8]:
            vals = [v for v in e["mean"] if v is not None]
            parts.append(f"{e['name']} {_num(sum(vals) / len(vals) if vals else None)}")
        more = len(price["entities"]) - 8
        lines.append("  spot price, mean over stages and scenarios ($/MWh): " + ", ".join(parts)
                     + (f" (+{more} more buses)" if more > 0 else ""))
    if res.get("unavailable"):
        lines.append("  not available: " + "; ".join(f"{k} ({v})" for k, v in res["unavailable"].items()))


def _d(v: Any, div: float) -> Any:
    return None if v is None else v / div


def render_text(rep: dict[str, Any]) -> str:
    """The short human summary of a report (see :func:`build_report`)."""
    run = rep["run"]
    sec = rep["sections"]
    lines = [f"cobre-mpi-io report  {rep['output_dir']}", f"state       {run['state']}"]
    lines += [f"  ! {n}" for n in run["notes"]]
    if "training" in sec:
        m = sec["training"]["manifest"]
        if m is None:
            lines.append("training    no training manifest")
        else:
            it = m.get("iterations") or {}
            conv = m.get("convergence") or {}
            lines.append(f"training    {m.get('status')}, {it.get('completed')}/{it.get('max_iterations')} iterations"
                         f" ({conv.get('termination_reason')}), cuts {(m.get('cuts') or {}).get('total_active')} active"
                         f" of {(m.get('cuts') or {}).get('total_generated')} generated")
    if "convergence" in sec:
        c = sec["convergence"]
        s = c.get("summary")
        if not c.get("present"):
            lines.append("convergence no training/convergence.parquet")
        elif s and s["iterations"]:
            from .report_plots import Z95, scaled_unit

            div, unit = scaled_unit("$", [s["final_lower_bound"], s["final_upper_bound_mean"]])
            ub = (f", upper bound {s['final_upper_bound_mean'] / div:,.5g} ± "
                  f"{Z95 * (s['final_upper_bound_std'] or 0) / div:,.3g} (95 % CI), gap {s['final_gap_percent']:.2f} %"
                  if s["final_upper_bound_mean"] is not None and s["final_gap_percent"] is not None else "")
            lines.append(f"convergence {s['iterations']} iterations: lower bound {s['final_lower_bound'] / div:,.5g}"
                         f"{ub} ({unit})")
            lines.append(f"            {_num(s['total_lp_solves'])} LP solves, {s['total_time_seconds']} s, "
                         f"peak {s['peak_memory_mb']} MB")
            rt = c.get("rank_timing")
            if rt:
                lines.append(f"            {_plural(rt['ranks'], 'rank')}, load imbalance (max/mean forward+backward) "
                             f"{_num(rt['imbalance_max_over_mean'])}")
        else:
            lines.append("convergence no iterations recorded")
    if "simulation" in sec:
        s = sec["simulation"]["summary"]
        if not sec["simulation"]["present"]:
            lines.append("simulation  not run (no simulation/ directory)")
        elif not s:
            lines.append("simulation  no manifest")
        else:
            lines.append(f"simulation  {s['status']}, {_num(s['scenarios_completed'])}/{_num(s['scenarios_total'])} "
                         f"scenarios ({_num(s['scenarios_failed'])} failed), detail {s['detail']}, "
                         f"{_plural(s['files'], 'file')}, {_bytes(s['bytes'])}, {_plural(s['world_size'], 'rank')}, "
                         f"checksum {s['checksum']}")
    if "results" in sec:
        _text_results(sec["results"], lines)
    if "metadata" in sec and sec["metadata"] is None:
        lines.append("metadata    no training/metadata.json")
    elif "metadata" in sec and isinstance(sec["metadata"], dict):
        md = sec["metadata"]
        ri, dims = md.get("run_info") or {}, md.get("problem_dimensions") or {}
        lines.append(f"metadata    run {ri.get('run_id')}, {ri.get('hostname')}, {ri.get('duration_seconds')} s; "
                     f"{dims.get('num_stages')} stages, {dims.get('num_hydros')} hydros, "
                     f"{dims.get('num_thermals')} thermals, {dims.get('num_buses')} buses")
    if "simulation" in sec and isinstance(sec["simulation"]["manifest"], dict):
        listed = sec["simulation"]["manifest"].get("files")
        if isinstance(listed, dict):
            lines.append(f"files       ({len(listed)})")
            lines += [f"  {k}  {v.get('rows')} rows  {v.get('bytes')} B  {v.get('xxhash64')}"
                      for k, v in listed.items() if isinstance(v, dict)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ plot (PNG)
def plot_convergence(out: str | Path, png: str | Path, *, rank_panel: bool | None = None) -> Path:
    """Draw the convergence plot of ``out`` to ``png``.

    Lower bound and upper-bound mean with its 95 % confidence band over
    iterations, the gap (%) on a second axis; with ``rank_panel`` (default:
    when rank timing exists) a second panel of per-rank forward / backward /
    communication / idle seconds summed over iterations (load imbalance).

    Parameters
    ----------
    out : path-like
        The run's output directory (its ``training/`` is read).
    png : path-like
        The PNG file to write.
    rank_panel : bool, optional
        Draw the per-rank timing panel; ``None``: when rank timing exists.

    Returns
    -------
    Path
        ``png``.

    Raises
    ------
    ImportError
        matplotlib is not installed (the message says how to install it).
    IoError
        ``training/convergence.parquet`` is missing, or ``rank_panel`` is
        True and there is no rank timing.
    """
    from .report_plots import convergence_figure, figure_png, load_matplotlib

    load_matplotlib()
    out = Path(out)
    conv = read_convergence(out)
    if conv is None:
        raise IoError(out / CONVERGENCE_FILE, "not found", "no convergence history to plot")
    rt = read_rank_totals(out) if rank_panel is not False else None
    if rank_panel and rt is None:
        raise IoError(out / RANK_TIMING_DIR, "not found", "no rank timing files for the rank panel")
    fig = convergence_figure(conv, rt, f"SDDP convergence — {out.resolve().name}")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure_png(fig, png)
    return png


# ------------------------------------------------------------------ entry point
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
        0 when the report was produced; 1 on an unreadable or missing
        output directory or file (the message names it) or a missing
        optional package (the message says how to install it).
    """
    if not isinstance(args, argparse.Namespace):
        parser = add_report_arguments(argparse.ArgumentParser(prog="cobre-mpi-io report"))
        args = parser.parse_args(list(args) if args is not None else None)
    t0 = time.perf_counter()
    try:
        rep = build_report(args.output_dir, args.section, files=args.files)
        if args.html:
            from .report_html import write_html_report

            rep["html"] = str(write_html_report(rep, args.html))
        if args.plot:
            rep["plot"] = str(plot_convergence(args.output_dir, args.plot, rank_panel=args.rank_panel))
    except (OutputError, ImportError) as exc:
        sys.stderr.write(f"cobre-mpi-io report: error: {exc}\n")
        return 1
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        sys.stdout.write(dumps_report(rep))
    else:
        text = render_text(rep)
        for key, what in (("html", "HTML report"), ("plot", "convergence plot")):
            if key in rep:
                text += f"{what:<11} {rep[key]}\n"
        sys.stdout.write(text)
    return 0
