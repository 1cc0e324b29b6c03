"""``report --html FILE``: one self-contained HTML page of a run's report.

Everything is inside the file: CSS inline, figures as ``data:image/svg+xml``
images (matplotlib SVG with text drawn as paths, so no fonts are fetched),
tables as HTML.  A Content-Security-Policy meta tag forbids every network
load, so a page that renders offline renders anywhere.  One small inline
script only records errors (``error`` events, ``console.error``, CSP
violations) into ``<pre id="render-errors">`` and sets
``<body data-render="ok"|"errors">`` after ``load``: the CI check
(``tests/test_report_html.py``) reads that back from headless Chromium.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .analysis import STAT_KEYS, read_convergence, read_rank_totals
from .run import RunDirectory, as_run

__all__ = ["ERROR_HOOK", "render_html", "write_html_report"]

CSP: Final = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "base-uri 'none'; form-action 'none'")
ERROR_HOOK: Final = """<script>
(function () {
  var errors = [];
  function record(msg) {
    errors.push(String(msg));
    var el = document.getElementById("render-errors");
    if (el) { el.textContent = errors.join("\\n"); el.hidden = false; }
  }
  window.addEventListener("error", function (ev) {
    var t = ev.target;
    record(ev.message ? "error: " + ev.message : "failed to load " + ((t && (t.src || t.href)) || "a resource"));
  }, true);
  window.addEventListener("unhandledrejection", function (ev) { record("unhandled rejection: " + ev.reason); });
  document.addEventListener("securitypolicyviolation", function (ev) { record("blocked by CSP: " + ev.blockedURI); });
  var origError = console.error;
  console.error = function () { record("console.error: " + Array.prototype.join.call(arguments, " ")); origError.apply(console, arguments); };
  window.addEventListener("load", function () {
    var imgs = document.images, broken = 0;
    for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) { broken++; } }
    if (broken) { record(broken + " image(s) did not render"); }
    document.body.setAttribute("data-render", errors.length ? "errors" : "ok");
    document.body.setAttribute("data-images", String(imgs.length));
  });
})();
</script>"""

STYLE: Final = """<style>
:root { --fg: #1d2330; --muted: #5b6474; --line: #dde2ea; --bg: #f6f8fb; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header { background: #17233b; color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .sub { color: #b9c4d8; font-size: 13px; word-break: break-all; }
main { max-width: 1360px; margin: 0 auto; padding: 18px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 0 0 18px; }
h2 { margin: 0 0 10px; font-size: 18px; border-bottom: 2px solid var(--accent); display: inline-block; padding-bottom: 2px; }
h3 { margin: 16px 0 6px; font-size: 15px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; margin: 4px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fbfcfe; }
.card .k { color: var(--muted); font-size: 12px; }
.card .v { font-size: 18px; font-weight: 600; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; }
.ok { background: #dff3e4; color: #17692f; } .warn { background: #fff1d6; color: #8a5a00; } .bad { background: #fde2e1; color: #a1201b; }
.notes { margin: 8px 0 0; padding-left: 20px; color: #8a5a00; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 14px; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: right; white-space: nowrap; }
th { background: #eef2f8; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
.scroll { max-height: 460px; overflow: auto; border: 1px solid var(--line); border-radius: 4px; display: inline-block; max-width: 100%; }
details { margin: 6px 0; } summary { cursor: pointer; color: var(--accent); }
.muted { color: var(--muted); }
#render-errors { color: #a1201b; background: #fde2e1; padding: 8px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 12px; }
</style>"""

_COLORS: Final = {"total_cost": "tab:purple", "immediate_cost": "tab:red", "thermal_generation": "tab:orange",
                  "hydro_generation": "tab:blue", "stored_volume": "tab:cyan"}
_TITLES: Final = {"total_cost": "Total cost per stage (immediate + future)",
                  "immediate_cost": "Immediate cost per stage",
                  "thermal_generation": "Thermal generation per stage",
                  "hydro_generation": "Hydro generation per stage",
                  "stored_volume": "Stored volume at the end of each stage (all hydros)"}


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.{digits}g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return _e(v)


def _img(svg: bytes, alt: str) -> str:
    data = base64.b64encode(svg).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/svg+xml;base64,{data}">'


def _figure(svg: bytes, alt: str, caption: str) -> str:
    return f"<figure>{_img(svg, alt)}<figcaption>{caption}</figcaption></figure>"


def _table(head: Sequence[str] | None, rows: Sequence[Sequence[Any]], *, scroll: bool = False) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head or ())
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _fmt(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    thead = f"<thead><tr>{th}</tr></thead>" if th else ""
    t = f"<table>{thead}<tbody>{body}</tbody></table>"
    return f'<div class="scroll">{t}</div>' if scroll else t


class _Raw(str):
    """Table cell content that is already HTML."""


def _cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{v}</div></div>' for k, v in items) + "</div>"


def _badge(state: str) -> str:
    cls = "ok" if state == "complete" else ("bad" if state in ("failed", "partial") else "warn")
    return f'<span class="badge {cls}">{_e(state)}</span>'


def _series_table(stages: Sequence[int], s: Mapping[str, Any], div: float, unit: str) -> str:
    rows = []
    for i, st in enumerate(stages):
        row: list[Any] = [st]
        if "scenarios" in s:
            row.append(s["scenarios"][i])
        for k in ("mean", *STAT_KEYS):
            v = s[k][i]
            row.append(None if v is None else v / div)
        if "probability" in s:
            p = s["probability"][i]
            row.append(None if p is None else _Raw(f"{p * 100:.1f} %"))
        rows.append(row)
    head = ["stage", *(["scenarios"] if "scenarios" in s else []),
            *(f"{k} ({unit})" for k in ("mean", *STAT_KEYS)), *(["P(deficit)"] if "probability" in s else [])]
    return _table(head, rows, scroll=len(stages) > 15)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{_e(summary)}</summary>{body}</details>"


def _convergence_section(rep: Mapping[str, Any], out: RunDirectory, svg: Callable[[Any], bytes]) -> str:
    from .plots import Z95, convergence_figure, scaled_unit

    sec = rep["sections"].get("convergence")
    if sec is None:
        return ""
    if not sec.get("present"):
        return "<section><h2>Training convergence</h2><p class=muted>No training/convergence.parquet.</p></section>"
    conv = read_convergence(out)
    rt = read_rank_totals(out)
    s = sec["summary"]
    parts = ["<section><h2>Training convergence</h2>"]
    if s["iterations"] and conv is not None:
        div, unit = scaled_unit("$", [s["final_lower_bound"], s["final_upper_bound_mean"]])
        cards = [("iterations", _fmt(s["iterations"])), (f"final lower bound ({unit})", _fmt(s["final_lower_bound"] / div))]
        if s["final_upper_bound_mean"] is not None:
            ub = _fmt(s["final_upper_bound_mean"] / div)
            ci = _fmt(Z95 * (s["final_upper_bound_std"] or 0) / div, 3)
            kind = f", {s['upper_bound_kind']}" if s.get("upper_bound_kind") else ""
            cards.append((f"final upper bound ({unit}{kind}) ± 95 % CI", f"{ub} ± {ci}"))
        if s["final_gap_percent"] is not None:
            cards.append(("final gap", f"{s['final_gap_percent']:.2f} %"))
        cards += [("active cuts", _fmt(s["final_cuts_active"])), ("LP solves", _fmt(s["total_lp_solves"]))]
        if s["total_time_seconds"] is not None:
            cards.append(("training time", f"{s['total_time_seconds']:,} s"))
        if s["peak_memory_mb"] is not None:
            cards.append(("peak memory", f"{s['peak_memory_mb']:,} MB"))
        parts.append(_cards(cards))
        title = "Lower and upper bounds over iterations" + (" with per-rank timing" if rt else "")
        parts.append(_figure(svg(convergence_figure(conv, rt, title)), "convergence plot",
                             "Lower bound, upper-bound estimate with its 95 % confidence band (mean ± 1.96·std) "
                             "and the optimality gap (right axis, dashed)"
                             + ("; below, each MPI rank's forward, backward, communication and idle time summed "
                                "over iterations: unequal bars show load imbalance." if rt else ".")))
        rows = [[conv["iteration"][i], *(None if conv[k][i] is None else conv[k][i] / div
                                         for k in ("lower_bound", "upper_bound_mean", "upper_bound_std")),
                 conv["gap_percent"][i], conv["cuts_active"][i], conv["lp_solves"][i], conv["time_total_ms"][i]]
                for i in range(len(conv["iteration"]))]
        parts.append(_details("Convergence table", _table(
            ["iteration", f"lower bound ({unit})", f"upper bound mean ({unit})", f"upper bound std ({unit})",
             "gap (%)", "active cuts", "LP solves", "time (ms)"], rows, scroll=len(rows) > 15)))
    if rt:
        rts = sec["rank_timing"]
        rows = [[r, rt["forward"][i], rt["backward"][i], rt["communication"][i], rt["idle"][i],
                 rt["lp_solves"][i], rt["scenarios_processed"][i]] for i, r in enumerate(rt["rank"])]
        parts.append(f"<h3>Per-rank timing <span class=muted>(load imbalance, max/mean forward+backward: "
                     f"{_fmt(rts['imbalance_max_over_mean'])})</span></h3>")
        parts.append(_table(["rank", "forward (s)", "backward (s)", "communication (s)", "idle (s)", "LP solves",
                             "forward scenarios"], rows, scroll=len(rows) > 15))
    parts.append("</section>")
    return "".join(parts)


def _results_section(res: Mapping[str, Any], svg: Callable[[Any], bytes]) -> str:
    from .plots import (
        cost_distribution_figure,
        deficit_figure,
        fan_figure,
        scaled_unit,
    )

    stages = res["stages"]
    per = res["per_stage"]
    parts = [f"<section><h2>Simulation results across scenarios</h2>"
             f"<p class=muted>{res['scenarios']:,} scenarios × {len(stages)} stages, detail "
             f"{_e(res.get('detail') or 'unknown')}; computed out of core by {_e(res.get('engine') or 'pyarrow')} "
             f"in {res['seconds']} s over "
             + ", ".join(f"{v['files']:,} {k} files" for k, v in res["tables"].items())
             + ". Fan charts show, per stage, the 5–95 % and 25–75 % ranges over scenarios, the median (line) "
               "and the mean (dashed).</p>"]
    dist = res.get("cost_distribution")
    if dist and dist.get("scenarios"):
        div, unit = scaled_unit("$", [dist["max"]])
        parts.append("<h3>Scenario cost</h3>")
        worst = dist["worst_scenarios"][0]
        pcts = " / ".join(_fmt(dist[k] / div) for k in ("p5", "p50", "p95"))
        parts.append(_cards([(f"mean ({unit})", _fmt(dist["mean"] / div)),
                             (f"std ({unit})", _fmt((dist["std"] or 0) / div)),
                             (f"p5 / p50 / p95 ({unit})", pcts),
                             (f"CVaR 5 % ({unit})", _fmt(dist["cvar95"] / div)),
                             (f"worst scenario ({unit})", f"#{worst['scenario_id']}: {_fmt(worst['cost'] / div)}")]))
        parts.append(_figure(svg(cost_distribution_figure(dist)), "scenario cost distribution",
                             f"Distribution over scenarios of the scenario cost ({_e(dist['source'])}), and its mean "
                             "split by cost component (negative: net contract revenue)."))
        crow = [[k.removesuffix("_cost").replace("_", " "), v["mean"] / div if v["mean"] is not None else None,
                 None if v["share"] is None else _Raw(f"{v['share'] * 100:.2f} %")]
                for k, v in dist["components"].items()]
        parts.append(_details("Cost components and worst scenarios",
                              _table(["component", f"mean ({unit})", "share"], crow)
                              + _table(["scenario", f"cost ({unit})"],
                                       [[w["scenario_id"], w["cost"] / div] for w in dist["worst_scenarios"]])))
    if stages:
        overview = _overview(stages, per)
        if overview:
            parts.append("<h3>Per stage overview (means over scenarios)</h3>" + overview)
        figs = []
        for key in ("immediate_cost", "total_cost", "thermal_generation", "hydro_generation", "stored_volume"):
            if key in per:
                s = per[key]
                div, unit = scaled_unit(s["unit"], s["p95"])
                fig = fan_figure(stages, s, _TITLES[key], _COLORS[key], key.replace("_", " "))
                figs.append(_figure(svg(fig), _TITLES[key],
                                    _e(s["label"]) + _details(f"table ({unit})", _series_table(stages, s, div, unit))))
        if "deficit_probability" in per:
            d = per.get("deficit")
            title = "Deficit (unmet demand) and its probability per stage"
            cap = _e(per["deficit_probability"].get("source", ""))
            if d is not None:
                div, unit = scaled_unit("MWh", d["p95"])
                cap += _details(f"table ({unit})", _series_table(stages, d, div, unit))
            figs.append(_figure(svg(deficit_figure(stages, d, per["deficit_probability"]["values"], title)),
                                title, cap))
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
        parts.append(_entity_block(stages, res.get("per_bus", {}).get("spot_price"),
                                   "Marginal cost (spot price) per bus", "$/MWh", "tab:purple", svg,
                                   res.get("per_bus", {}).get("deficit_probability")))
        parts.append(_entity_block(stages, res.get("per_hydro", {}).get("stored_volume"),
                                   "Stored volume per hydro, end of stage", "hm3", "tab:cyan", svg, None))
    if res.get("unavailable"):
        parts.append("<p class=muted>Not available in this run: "
                     + "; ".join(f"{_e(k)} ({_e(v)})" for k, v in res["unavailable"].items()) + ".</p>")
    parts.append("</section>")
    return "".join(parts)


def _overview(stages: Sequence[int], per: Mapping[str, Any]) -> str:
    from .plots import scaled_unit

    head: list[str] = []
    columns: list[list[Any]] = []
    for key, name in (("total_cost", "total cost"), ("immediate_cost", "immediate cost"),
                      ("deficit", "deficit"), ("stored_volume", "stored volume"),
                      ("thermal_generation", "thermal gen."), ("hydro_generation", "hydro gen.")):
        if key in per:
            s = per[key]
            div, unit = scaled_unit(s["unit"], s["mean"])
            head.append(f"{name} ({unit})")
            columns.append([None if v is None else v / div for v in s["mean"]])
    if "deficit_probability" in per:
        head.append("P(deficit)")
        columns.append([None if v is None else _Raw(f"{v * 100:.1f} %") for v in per["deficit_probability"]["values"]])
    if not head:
        return ""
    rows = [[st, *(c[i] for c in columns)] for i, st in enumerate(stages)]
    return _table(["stage", *head], rows, scroll=len(stages) > 15)


def _entity_block(stages: Sequence[int], q: Mapping[str, Any] | None, title: str, unit: str, color: str,
                  svg: Callable[[Any], bytes], prob: Mapping[str, Any] | None) -> str:
    from .plots import scaled_unit, small_multiples_figure

    if not q or not q["entities"]:
        return ""
    ents = q["entities"]
    # the panels: every entity up to 12, else the 12 with the largest mean (the table has them all)
    order = sorted(ents, key=lambda k: -sum(v for v in ents[k]["mean"] if v is not None))
    chosen = {k: ents[k] for k in (list(ents) if len(ents) <= 12 else order[:12])}
    note = "" if len(ents) <= 12 else f" (the 12 of {len(ents)} with the largest mean; every one in the table)"
    parts = [f"<h3>{_e(title)}{_e(note)}</h3>",
             _figure(svg(small_multiples_figure(stages, chosen, None, unit, color)), title, _e(q["label"]))]
    div, u = scaled_unit(unit, [v for e in ents.values() for v in e["mean"]])
    last = len(stages) - 1
    rows = []
    for k in order:
        e = ents[k]
        vals = [v for v in e["mean"] if v is not None]
        row: list[Any] = [_Raw(f"{_e(e['name'])} <span class=muted>({_e(k)})</span>"),
                          None if not vals else sum(vals) / len(vals) / div,
                          None if e["p5"][0] is None else e["p5"][0] / div,
                          None if e["mean"][0] is None else e["mean"][0] / div,
                          None if e["p95"][0] is None else e["p95"][0] / div,
                          None if e["p5"][last] is None else e["p5"][last] / div,
                          None if e["mean"][last] is None else e["mean"][last] / div,
                          None if e["p95"][last] is None else e["p95"][last] / div]
        if prob is not None:
            pv = [v for v in prob["entities"].get(k, {}).get("values", []) if v is not None]
            row.append(_Raw(f"{max(pv) * 100:.1f} %") if pv else None)
        rows.append(row)
    f, la = stages[0], stages[-1]
    head = ["entity", f"mean over stages ({u})", f"stage {f} p5", f"stage {f} mean", f"stage {f} p95",
            f"stage {la} p5", f"stage {la} mean", f"stage {la} p95"]
    if prob is not None:
        head.append("max P(deficit) over stages")
    parts.append(_details(f"Table: every {q['entity']} ({len(ents)}), sorted by mean",
                          _table(head, rows, scroll=len(rows) > 15)))
    return "".join(parts)


def _run_section(rep: Mapping[str, Any]) -> str:
    run = rep["run"]
    sec = rep["sections"]
    parts = ["<section><h2>Run</h2>", f"<p>State: {_badge(run['state'])}</p>"]
    if run["notes"]:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in run["notes"]) + "</ul>")
    rows: list[list[Any]] = []
    prod = run.get("producer") or {}
    if prod.get("name"):
        rows.append(["written by", f"{prod['name']} {prod.get('version') or ''} (from {prod.get('source')})"])
    files = run.get("files") or {}
    if files.get("listed_by"):
        how = {"journal": "exactly the files the run journal records",
               "manifest": "exactly the files the simulation manifest lists",
               "directory": "every partition found (no file list to go by)"}.get(files["listed_by"], files["listed_by"])
        unlisted = len(files.get("unlisted") or [])
        rows.append(["files analysed", how + (f"; {unlisted} unlisted file(s) NOT analysed" if unlisted else "")])
    t = (sec.get("training") or {}).get("manifest")
    if isinstance(t, dict):
        it, conv, cuts = t.get("iterations") or {}, t.get("convergence") or {}, t.get("cuts") or {}
        iters = f"{it.get('completed')} of {it.get('max_iterations')} ({conv.get('termination_reason')})"
        ncuts = " / ".join(str(cuts.get(k)) for k in ("total_active", "total_generated", "peak_active"))
        rows += [["training status", t.get("status")], ["iterations", iters],
                 ["cuts (active / generated / peak)", ncuts]]
    s = (sec.get("simulation") or {}).get("summary")
    if s:
        rows += [["simulation status", s["status"]],
                 ["scenarios (completed / total / failed)",
                  f"{_fmt(s['scenarios_completed'])} / {_fmt(s['scenarios_total'])} / {_fmt(s['scenarios_failed'])}"],
                 ["detail level", s["detail"]], ["files", s["files"]], ["bytes", s["bytes"]], ["rows", s["rows"]],
                 ["MPI ranks", s["world_size"]], ["checksum (xxhash64)", s["checksum"]]]
    md = sec.get("metadata")
    if isinstance(md, dict) and "run_info" not in md and (prod.get("name") or "cobre_mpi_io") != "cobre_mpi_io":
        # a Cobre training/metadata.json: flat, training status and iterations in it
        it, conv = md.get("iterations") or {}, md.get("convergence") or {}
        dims = md.get("problem_dimensions") or {}
        sizes = " / ".join(str(dims.get(k)) for k in ("num_stages", "num_hydros", "num_thermals", "num_buses"))
        rows += [["training status", md.get("status")],
                 ["iterations", f"{it.get('completed')} ({conv.get('termination_reason')})"],
                 ["training started / completed", f"{md.get('started_at')} / {md.get('completed_at')}"],
                 ["host, LP solver", f"{md.get('hostname')}, {md.get('solver')} {md.get('solver_version') or ''}"],
                 ["stages / hydros / thermals / buses", sizes]]
    elif isinstance(md, dict):
        ri, dims = md.get("run_info") or {}, md.get("problem_dimensions") or {}
        env = md.get("environment") or {}
        sizes = " / ".join(str(dims.get(k)) for k in ("num_stages", "num_hydros", "num_thermals", "num_buses"))
        rows += [["run id", ri.get("run_id")], ["started / completed", f"{ri.get('started_at')} / {ri.get('completed_at')}"],
                 ["host, MPI", f"{ri.get('hostname')}, {env.get('mpi_implementation')} {env.get('mpi_version')}"],
                 ["stages / hydros / thermals / buses", sizes], ["state dimension", dims.get("state_dimension")]]
    if (prod.get("name") or "cobre_mpi_io") != "cobre_mpi_io":
        rows = [r for r in rows if r[1] is not None]  # what another producer does not write, left out
    if rows:
        parts.append(_table(None, [[_Raw(f"<b>{_e(k)}</b>"), v if v is not None else "–"] for k, v in rows]))
    parts.append("</section>")
    return "".join(parts)


def render_html(rep: Mapping[str, Any], run: RunDirectory | None = None) -> str:
    """The HTML page of a report (see :func:`cobre_mpi_io.report.build_report`).

    Parameters
    ----------
    rep : mapping
        The report document.
    run : RunDirectory, optional
        The opened run the report was built from (default: opened again from ``rep["output_dir"]``).

    Returns
    -------
    str
        One self-contained HTML page.

    Raises
    ------
    ImportError
        matplotlib is not installed (the message says how to install it).
    """
    from ._deps import load_matplotlib
    from .plots import figure_svg

    load_matplotlib()
    r = run if run is not None else as_run(rep["output_dir"])
    out = r.path
    body = [_run_section(rep), _convergence_section(rep, r, figure_svg)]
    res = rep["sections"].get("results")
    if res is not None:
        body.append(_results_section(res, figure_svg))
    title = f"Cobre run report — {out.resolve().name}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title>{ERROR_HOOK}{STYLE}</head>"
            f'<body data-render="pending"><header><h1>{_e(title)}</h1><div class="sub">{_e(out.resolve())} · '
            f"cobre_mpi_io {_e(rep['version'])} · generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}</div></header>"
            f'<main><pre id="render-errors" hidden></pre>{"".join(body)}</main>'
            f"<footer>Self-contained page: no network access needed. Made by <code>cobre-mpi-io report "
            f"--html</code>.</footer></body></html>\n")


def write_html_report(rep: Mapping[str, Any], path: str | Path, run: RunDirectory | None = None) -> Path:
    """Write :func:`render_html` of ``rep`` to ``path`` atomically; returns the path.

    Parameters
    ----------
    rep : mapping
        The report document.
    path : str or Path
        The HTML file to write.
    run : RunDirectory, optional
        The opened run (see :func:`render_html`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    IoError
        The file cannot be written.
    """
    from ..atomic import write_bytes_atomic

    text = render_html(rep, run)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(p, text.encode("utf-8"), durable=False)
    return p
