"""``cobre-mpi-io report DIR``: what a run produced, read-only (no MPI).

A thin command line over the public package :mod:`cobre_mpi_io.report`
(which a notebook calls directly): :func:`~cobre_mpi_io.report.build_report`,
:func:`~cobre_mpi_io.report.render_text`, :func:`~cobre_mpi_io.report.write_html_report`,
:func:`~cobre_mpi_io.report.plot_convergence`.

By default a short human summary on stdout: the state of the run (complete,
running, partial, failed, a ``_claim.json`` left behind), training
(iterations, bounds, gap, cuts, per-rank load imbalance), the simulation
manifest (scenarios, files, bytes, checksum) and the **results across
scenarios** (:mod:`cobre_mpi_io.report.analysis`: scenario cost distribution and,
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
also writes one self-contained HTML page (:mod:`cobre_mpi_io.report.html`);
``--plot FILE.png`` the convergence plot with the per-rank timing panel.

Exit status: 0 when the report was produced (whatever state the run is in:
the report says it); 1 when ``DIR`` is not an output directory, a file the
report needs is unreadable (an :class:`~cobre_mpi_io.errors.OutputError`
naming it), or a needed package (duckdb, matplotlib: the ``[report]``
extra) is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ..errors import OutputError
from ..report.document import SECTIONS, build_report, dumps_report, plot_convergence, render_text
from ..report.run import RunDirectory

__all__ = ["SECTIONS", "add_report_arguments", "build_report", "report_main"]


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
        run = RunDirectory.open(args.output_dir)
        rep = build_report(run, args.section, files=args.files)
        if args.html:
            from ..report.html import write_html_report

            rep["html"] = str(write_html_report(rep, args.html, run))
        if args.plot:
            rep["plot"] = str(plot_convergence(run, args.plot, rank_panel=args.rank_panel))
    except (OutputError, ImportError) as exc:
        sys.stderr.write(f"cobre-mpi-io report: error: {exc}\n")
        return 1
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        for w in run.warnings:  # the text summary shows them as "! ..." notes
            sys.stderr.write(f"cobre-mpi-io report: warning: {w}\n")
        sys.stdout.write(dumps_report(rep))
    else:
        text = render_text(rep)
        for key, what in (("html", "HTML report"), ("plot", "convergence plot")):
            if key in rep:
                text += f"{what:<11} {rep[key]}\n"
        sys.stdout.write(text)
    return 0
