"""The ``cobre-mpi-io`` command line (also ``python -m cobre_mpi_io``).

Subcommands: ``demo`` (the main job, under ``mpiexec``), ``bench simulation``,
``bench policy``, ``validate`` and ``report`` (read-only, no MPI).

The entry point never leaves peers hanging: an error every rank agreed on
exits non-zero on every rank (printed once, by rank 0); any other exception
is printed and aborts the whole MPI job (``MPI_Abort``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import OutputError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from .._version import __version__
    from .demo import add_demo_arguments

    p = argparse.ArgumentParser(prog="cobre-mpi-io", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"cobre-mpi-io {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic Cobre run written through the package (run under mpiexec)")
    add_demo_arguments(demo)

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True)
    from .bench_simulation import add_simulation_bench_arguments

    add_simulation_bench_arguments(bsub.add_parser("simulation", help="simulation writer vs pyarrow baselines"))
    from .bench_finalize import add_finalize_bench_arguments

    add_finalize_bench_arguments(bsub.add_parser("finalize", help="manifest gather/assembly/write at scale"))
    try:
        from .bench_policy import add_policy_bench_arguments
    except ImportError:  # pragma: no cover - policy module not installed
        pass
    else:
        add_policy_bench_arguments(bsub.add_parser("policy", help="policy checkpoint writer/reader vs tofile"))

    val = sub.add_parser("validate", help="check an output directory against the spec and its manifest")
    from ..validate import add_validate_arguments

    add_validate_arguments(val)
    try:
        from .report import add_report_arguments
    except ImportError:  # pragma: no cover
        pass
    else:
        add_report_arguments(sub.add_parser("report", help="print manifests, metadata and summaries"))
    return p


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import demo_main

        return demo_main(args)
    if args.command == "bench":
        if args.bench == "simulation":
            from .bench_simulation import simulation_bench_main

            return simulation_bench_main(args)
        if args.bench == "finalize":
            from .bench_finalize import finalize_bench_main

            return finalize_bench_main(args)
        from .bench_policy import policy_bench_main

        return policy_bench_main(args)
    if args.command == "validate":
        from ..validate import validate_main

        return validate_main(args)
    if args.command == "report":
        from .report import report_main

        return report_main(args)
    raise AssertionError(args.command)  # pragma: no cover


def _uses_mpi(args: argparse.Namespace) -> bool:
    return args.command in ("demo", "bench")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Under MPI, an :class:`OutputError` that every rank agreed on (marked
    ``agreed``) exits with code 1 on every rank and is printed by rank 0
    only; any other exception aborts the whole job.
    """
    args = build_parser().parse_args(argv)
    if not _uses_mpi(args):
        try:
            return _run(args)
        except OutputError as exc:
            print(f"cobre-mpi-io: error: {exc}", file=sys.stderr)
            return 1
    from .. import mpi

    try:
        return _run(args)
    except OutputError as exc:
        if getattr(exc, "agreed", False):
            comm = mpi.resolve_comm(None)
            if mpi.rank_of(comm) == 0:
                print(f"cobre-mpi-io: error: {exc}", file=sys.stderr)
            return 1
        mpi.abort_job(exc, 1)
    except KeyboardInterrupt as exc:
        mpi.abort_job(exc, 130)
    except BaseException as exc:  # never leave peers blocked in a collective
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        mpi.abort_job(exc, 1)
    return 1  # pragma: no cover
