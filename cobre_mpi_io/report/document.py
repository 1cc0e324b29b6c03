"""The report document of a run: what it produced, as a JSON-ready dict, as text, and its convergence plot.

:func:`build_report` gathers, for an output directory, the state of the run
(complete, running, partial, failed, a ``_claim.json`` left behind, who wrote
it), training (iterations, bounds, gap, cuts, per-rank load imbalance), the
simulation manifest (scenarios, files, bytes, checksum) and the **results
across scenarios** (:mod:`cobre_mpi_io.report.analysis`)::

    {"report": "cobre_mpi_io", "version", "output_dir", "section",
     "run": {"state", "training_status", "simulation_status", "claim", "notes": [...],
             "producer": {"name", "version", "source"}, "files": {"listed_by", "unlisted"}},
     "sections": {"training":    {"present", "manifest", "success_marker"},
                  "convergence": {"summary": {...}, "rank_timing": {...}},
                  "simulation":  {"present", "manifest", "summary", "success_marker"},
                  "results":     <analysis>,
                  "metadata":    <training/metadata.json>}}

:func:`render_text` is the short human summary the ``report`` command prints,
:func:`dumps_report` the JSON text of ``report --json``.  On a tree the real
Cobre solver wrote (no ``_manifest.json``) the statuses, scenario counts and
training summary come from its ``metadata.json`` files, and the producer and
version it names are reported.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Final

from ..claim import read_claim
from ..errors import IoError
from ..layout import CLAIM_NAME, SIMULATION_DIR, SUCCESS_NAME, TRAINING_DIR
from .analysis import CONVERGENCE_FILE, RANK_TIMING_DIR, read_convergence, read_rank_totals, run_results
from .run import RunDirectory, as_run

__all__ = [
    "SECTIONS",
    "build_report",
    "convergence_summary",
    "dumps_report",
    "plot_convergence",
    "render_text",
    "simulation_summary",
]

SECTIONS: Final = ("training", "convergence", "simulation", "results", "metadata")


# ------------------------------------------------------------------ reading
def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _total(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _last(values: list[Any]) -> Any:
    return _clean(values[-1]) if values else None


def convergence_summary(out: RunDirectory | str | os.PathLike[str]) -> dict[str, Any]:
    """Summary of ``training/convergence.parquet`` and of the per-rank timing.

    ``{"present": False}`` when there is no convergence file.  A column the
    producer does not write (Cobre 0.18 has no ``memory_peak_mb``) gives None.

    Parameters
    ----------
    out : RunDirectory or path-like
        The run or its output directory.

    Returns
    -------
    dict
        ``present``, ``summary`` (iterations, final bounds and gap, cuts, LP
        solves, time, peak memory, ``upper_bound_kind`` when the producer
        writes one) and ``rank_timing`` when there is rank timing.

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
        ms = _total(t["time_total_ms"])
        mem = [m for m in t["memory_peak_mb"] if m is not None]
        summary.update({
            "first_iteration": t["iteration"][0], "last_iteration": t["iteration"][-1],
            "final_lower_bound": _last(t["lower_bound"]),
            "final_upper_bound_mean": _last(t["upper_bound_mean"]),
            "final_upper_bound_std": _last(t["upper_bound_std"]),
            "final_gap_percent": _last(t["gap_percent"]),
            "min_gap_percent": _clean(min(gaps)) if gaps else None,
            "upper_bound_evaluated": any(u is not None for u in t["upper_bound_mean"]),
            "final_cuts_active": t["cuts_active"][-1],
            "total_cuts_added": _total(t["cuts_added"]),
            "total_lp_solves": _total(t["lp_solves"]),
            "total_time_seconds": None if ms is None else round(ms / 1000.0, 3),
            "peak_memory_mb": max(mem) if mem else None,
        })
        if "upper_bound_kind" in t:
            summary["upper_bound_kind"] = t["upper_bound_kind"][-1]
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
def cobre_simulation_summary(run: RunDirectory) -> dict[str, Any]:
    """The simulation summary of a tree the real Cobre solver wrote (its ``simulation/metadata.json``).

    Parameters
    ----------
    run : RunDirectory
        A Cobre tree.

    Returns
    -------
    dict
        The keys of :func:`simulation_summary`, from ``metadata.json`` and the partitions found.
    """
    md = run.simulation_metadata if isinstance(run.simulation_metadata, dict) else {}
    sc = md.get("scenarios") or {}
    dist = md.get("distribution") or {}
    files = [f for v in run.partitions.values() for f in v]
    tables = sorted(e.name for e in os.scandir(run.path / SIMULATION_DIR) if e.is_dir() and e.name != "solver") \
        if (run.path / SIMULATION_DIR).is_dir() else []
    return {
        "status": md.get("status"), "scenarios_total": sc.get("total"), "scenarios_completed": sc.get("completed"),
        "scenarios_failed": sc.get("failed"), "partitions": None, "files": len(files),
        "bytes": sum(f.stat().st_size for f in files), "rows": None, "tables": tables, "detail": None,
        "world_size": dist.get("world_size"), "checksum": None, "failures": None, "run_fingerprint": None,
        "files_counted": "the partitions of the analysed tables (costs, buses, hydros, thermals)",
    }


def _run_state(run: RunDirectory) -> dict[str, Any]:
    """Overall state and the notes a reader must see (incomplete run, claim left behind, unlisted files, ...)."""
    out = run.path
    training, simulation = run.training_manifest, run.simulation_manifest
    notes: list[str] = []
    claim: Any = None
    claim_path = out / CLAIM_NAME
    if claim_path.exists():
        try:
            claim = read_claim(out)  # opened without blocking: a FIFO there is refused, never waited on
        except OSError:
            claim = {}
        holder = ", ".join(f"{k} {claim.get(k)}" for k in ("host", "pid", "job_id", "started_at")
                           if isinstance(claim, dict) and claim.get(k) is not None) or "unreadable claim"
        notes.append(f"{CLAIM_NAME} present: a run holds this directory or died holding it ({holder})")
    if run.producer != "cobre_mpi_io":
        return _foreign_state(run, claim, notes)
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
    notes += run.warnings  # about the files read, not the run's state: a complete run stays complete
    return {"state": state, "training_status": t_status, "simulation_status": s_status,
            "claim": claim, "notes": notes, **_provenance(run)}


def _provenance(run: RunDirectory) -> dict[str, Any]:
    return {"producer": {"name": run.producer, "version": run.producer_version, "source": run.producer_source},
            "files": {"listed_by": run.listed_by, "unlisted": list(run.unlisted)}}


def _foreign_state(run: RunDirectory, claim: Any, notes: list[str]) -> dict[str, Any]:
    """The state of a tree another producer (the real Cobre solver) wrote, from its ``metadata.json`` files."""
    out = run.path
    statuses: dict[str, Any] = {}
    for name, md in ((TRAINING_DIR, run.training_metadata), (SIMULATION_DIR, run.simulation_metadata)):
        if not (out / name).is_dir():
            continue
        st = md.get("status") if isinstance(md, dict) else None
        statuses[name] = st
        if md is None:
            notes.append(f"{name}/metadata.json missing")
        elif st == "complete" and not (out / name / SUCCESS_NAME).exists():
            notes.append(f"{name}/metadata.json says complete but {name}/{SUCCESS_NAME} is missing")
        elif st not in ("complete", None):
            notes.append(f"{name} status {st!r}")
    notes += [w for w in run.warnings if w not in notes]
    known = [v for v in statuses.values() if v is not None]
    if known and all(v == "complete" for v in known) and not notes and claim is None:
        state = "complete"
    elif any(v == "failed" for v in known):
        state = "failed"
    else:
        state = "incomplete"
    return {"state": state, "training_status": statuses.get(TRAINING_DIR),
            "simulation_status": statuses.get(SIMULATION_DIR), "claim": claim, "notes": notes, **_provenance(run)}


# ------------------------------------------------------------------ the report
def build_report(out: RunDirectory | str | os.PathLike[str], section: str = "all", *,
                 files: bool = False) -> dict[str, Any]:
    """The report of the output directory ``out`` (the JSON document of the module docs).

    Parameters
    ----------
    out : RunDirectory or path-like
        The run (:class:`~cobre_mpi_io.report.run.RunDirectory`) or its output directory.
    section : str
        One of :data:`SECTIONS` or ``"all"``.
    files : bool
        Keep the simulation manifest's ``files`` and ``partitions_written``.

    Returns
    -------
    dict
        JSON-ready (see the module docs).

    Raises
    ------
    IoError
        ``out`` is not a directory, or holds neither ``training/`` nor ``simulation/``.
    ManifestError, SchemaError
        A manifest, metadata or Parquet file the report needs is unreadable (named).
    ImportError
        duckdb is missing and the ``results`` section is asked for.
    """
    from .._version import __version__

    if section != "all" and section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    run = as_run(out)
    path = run.path
    wanted = SECTIONS if section == "all" else (section,)
    tman, sman = run.training_manifest, run.simulation_manifest
    state = _run_state(run)
    sections: dict[str, Any] = {}
    for s in wanted:
        if s == "training":
            sections[s] = {"present": tman is not None or (path / TRAINING_DIR).is_dir(), "manifest": tman,
                           "success_marker": (path / TRAINING_DIR / SUCCESS_NAME).exists()}
        elif s == "metadata":
            sections[s] = run.training_metadata
        elif s == "convergence":
            sections[s] = convergence_summary(run)
        elif s == "simulation":
            m = sman
            if isinstance(m, dict) and not files:
                m = {k: v for k, v in m.items() if k not in ("files", "partitions_written")}
            summary = simulation_summary(sman) if sman is not None or not run.is_cobre \
                else cobre_simulation_summary(run)
            sections[s] = {"present": sman is not None or (path / SIMULATION_DIR).is_dir(), "manifest": m,
                           "summary": summary, "success_marker": (path / SIMULATION_DIR / SUCCESS_NAME).exists()}
            if run.is_cobre:
                sections[s]["metadata"] = run.simulation_metadata
        elif s == "results":
            sections[s] = run_results(run)
    return {"report": "cobre_mpi_io", "version": __version__, "output_dir": str(path), "section": section,
            "run": state, "sections": sections}


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
    from .plots import scaled_unit

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
    prod = run.get("producer") or {}
    if prod.get("name") not in (None, "cobre_mpi_io"):
        lines.append(f"producer    {prod['name']} {prod.get('version') or '(version unknown)'} "
                     f"(from {prod.get('source')}; no _manifest.json: every partition found is read)")
    if "training" in sec:
        m = sec["training"]["manifest"]
        md = sec.get("metadata")
        if m is None and prod.get("name") not in (None, "cobre_mpi_io") and isinstance(md, dict):
            it = md.get("iterations") or {}
            conv = md.get("convergence") or {}
            pool = md.get("row_pool") or md.get("cuts") or {}
            lines.append(f"training    {md.get('status')}, {it.get('completed')} iterations "
                         f"({conv.get('termination_reason')}), cuts {pool.get('total_active')} active "
                         f"of {pool.get('total_generated')} generated")
        elif m is None:
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
            from .plots import Z95, scaled_unit

            div, unit = scaled_unit("$", [s["final_lower_bound"], s["final_upper_bound_mean"]])
            kind = f" ({s['upper_bound_kind']})" if s.get("upper_bound_kind") else ""
            ub = (f", upper bound{kind} {s['final_upper_bound_mean'] / div:,.5g} ± "
                  f"{Z95 * (s['final_upper_bound_std'] or 0) / div:,.3g} (95 % CI), gap {s['final_gap_percent']:.2f} %"
                  if s["final_upper_bound_mean"] is not None and s["final_gap_percent"] is not None else "")
            lines.append(f"convergence {s['iterations']} iterations: lower bound {s['final_lower_bound'] / div:,.5g}"
                         f"{ub} ({unit})")
            peak = f", peak {s['peak_memory_mb']} MB" if s["peak_memory_mb"] is not None else ""
            lines.append(f"            {_num(s['total_lp_solves'])} LP solves, {s['total_time_seconds']} s{peak}")
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
            detail = f", detail {s['detail']}" if s.get("detail") is not None else ""
            checksum = f", checksum {s['checksum']}" if s.get("checksum") is not None else ""
            lines.append(f"simulation  {s['status']}, {_num(s['scenarios_completed'])}/{_num(s['scenarios_total'])} "
                         f"scenarios ({_num(s['scenarios_failed'])} failed){detail}, "
                         f"{_plural(s['files'], 'file')}, {_bytes(s['bytes'])}, {_plural(s['world_size'], 'rank')}"
                         f"{checksum}")
    if "results" in sec:
        _text_results(sec["results"], lines)
    if "metadata" in sec and sec["metadata"] is None:
        lines.append("metadata    no training/metadata.json")
    elif "metadata" in sec and isinstance(sec["metadata"], dict):
        md = sec["metadata"]
        ri, dims = md.get("run_info") or md, md.get("problem_dimensions") or {}  # Cobre's metadata.json is flat
        run_id = f"run {ri.get('run_id')}, " if ri.get("run_id") is not None else ""
        lines.append(f"metadata    {run_id}{ri.get('hostname')}, {ri.get('duration_seconds')} s; "
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
def plot_convergence(out: RunDirectory | str | os.PathLike[str], png: str | os.PathLike[str], *,
                     rank_panel: bool | None = None) -> Path:
    """Draw the convergence plot of ``out`` to ``png``.

    Lower bound and upper-bound mean with its 95 % confidence band over
    iterations, the gap (%) on a second axis; with ``rank_panel`` (default:
    when rank timing exists) a second panel of per-rank forward / backward /
    communication / idle seconds summed over iterations (load imbalance).

    Parameters
    ----------
    out : RunDirectory or path-like
        The run or its output directory (its ``training/`` is read).
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
    from ._deps import load_matplotlib
    from .plots import convergence_figure, figure_png

    load_matplotlib()
    run = as_run(out)
    conv = read_convergence(run)
    if conv is None:
        raise IoError(run.path / CONVERGENCE_FILE, "not found", "no convergence history to plot")
    rt = read_rank_totals(run) if rank_panel is not False else None
    if rank_panel and rt is None:
        raise IoError(run.path / RANK_TIMING_DIR, "not found", "no rank timing files for the rank panel")
    fig = convergence_figure(conv, rt, f"SDDP convergence — {run.path.resolve().name}")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure_png(fig, png)
    return png


