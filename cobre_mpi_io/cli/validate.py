"""``cobre-mpi-io validate OUT``: the command-line glue of :func:`cobre_mpi_io.validate.validate_output`.

Runs in a plain process; under ``mpiexec`` (the launcher's environment
says several tasks) the per-file work is split over the ranks and rank 0
prints.  Exit code 0 when valid, 1 when a problem was found, 2 for a usage
error (bad option, no such directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import mpi
from ..validate import validate_output
from ..validate.report import SUMMARY_LINES

__all__ = ["add_validate_arguments", "validate_main"]

def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"expected 1..256, got {n}")
    return n


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``cobre-mpi-io validate``."""
    p.add_argument("directory", type=Path, help="output directory (or its simulation/ subdirectory)")
    p.add_argument("--json", action="store_true", help="print one JSON object (every problem) instead of lines")
    p.add_argument("--all", action="store_true", dest="every",
                   help=f"print every problem, one line each; default: every problem when fewer than "
                        f"{SUMMARY_LINES}, else counts per kind of problem with the first paths "
                        f"({SUMMARY_LINES} lines at most)")
    p.add_argument("--deep", action="store_true",
                   help="decode the key columns of every simulation file (row formulas and duplicate keys per "
                        "scenario); default: one reference scenario per table plus footer statistics")
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="worker threads per process (default: available CPUs, at most 4)")


def validate_main(args: argparse.Namespace) -> int:
    """Run ``validate``; exit code 0 when valid, 1 when problems were found, 2 for a usage error."""
    directory: Path = args.directory
    comm = None
    if mpi.launcher_task_count() is not None:  # started by mpiexec/srun with several tasks: split the files
        comm = mpi.resolve_comm(None)
        mpi.check_launch()  # MPI sees singletons: refuse (each would validate and print alone)
    rank = mpi.rank_of(comm) if comm is not None else 0
    if not directory.is_dir():
        if rank == 0:
            what = "does not exist" if not directory.exists() else "is not a directory"
            print(f"cobre-mpi-io validate: error: {directory} {what}", file=sys.stderr)
        return 2
    report = validate_output(directory, deep=args.deep, threads=args.threads, comm=comm)
    if rank != 0:
        return 0 if report.valid else 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines(every=args.every)))
    return 0 if report.valid else 1
