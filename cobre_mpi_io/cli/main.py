"""The ``cobre-mpi-io`` command line (also ``python -m cobre_mpi_io``).

Subcommands: ``demo`` (the main job, under ``mpiexec``), ``bench simulation``,
``bench finalize``, ``bench policy``, ``validate`` and ``report`` (read-only,
no MPI).  Every number is checked while parsing: a bad one exits with status
2 before any work is done or anything is written.

Logging: the library logs through ``logging`` (loggers under
``cobre_mpi_io``) and never prints; this entry point sends the records to
stderr — rank 0 at INFO (``-q``: warnings only, ``-v``: debug), the other
ranks warnings and errors only.  Progress (see :mod:`cobre_mpi_io.progress`)
shows on rank 0 as a tqdm bar when stderr is a terminal, else as a log line
every ``--progress-interval`` seconds.

The entry point never leaves peers hanging: an error every rank agreed on
exits non-zero on every rank (printed once, by rank 0); any other exception
is printed by its rank and aborts the whole MPI job (``MPI_Abort``).  Each
failure says what happened once, on which rank and host, and the command
that continues the run (:mod:`cobre_mpi_io.cli.messages`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, NoReturn

from ..errors import OutputError
from ..progress import ProgressDefaults, ProgressEvent, using_progress_defaults
from .messages import continue_command, describe_error, output_is_a_file, where

__all__ = ["build_parser", "configure_logging", "main"]

_FORMATTER: Final = argparse.RawDescriptionHelpFormatter

DESCRIPTION: Final = """\
Write, check and inspect the output of Cobre SDDP runs: Hive-partitioned Parquet
simulation results, training history, manifests, metadata and dictionaries, and
FlatBuffers policy checkpoints, written in parallel under MPI and crash-safe."""

EPILOG: Final = """\
examples:
  mpiexec -n 4 cobre-mpi-io demo --output out     write a whole synthetic run on 4 ranks
  cobre-mpi-io validate out                       check it (exit 0 when valid)
  cobre-mpi-io report out --section convergence   summarize it
  cobre-mpi-io demo --help                        options and examples of one command

Numbers are checked before anything runs: a bad value exits with status 2 and
writes nothing."""

_EPILOGS: Final[dict[str, str]] = {
    "demo": """\
examples:
  mpiexec -n 4 cobre-mpi-io demo --output out
  mpiexec -n 4 cobre-mpi-io demo --output out --case path/to/case --scenarios 2000
  mpiexec -n 4 cobre-mpi-io demo --output out --scenarios 2000 --resume
      (after a run that was killed or hit its time limit: writes only what is missing)
  cobre-mpi-io demo --output out --iterations 0 --detail summary
      (one process, simulation only)

progress: rank 0 reports on stderr, as a bar when stderr is a terminal, else as a
log line every --progress-interval seconds, e.g.
  simulation 1200/2000 scenarios (60%), 14.2/s, ETA 56 s
mpiexec passes the ranks' output through a pipe: add --progress bar to get the bar
in a terminal. -q shows warnings and errors only.

exit status: 0 done; 1 error (the message names the file, table or scenario);
2 bad arguments (nothing written); 143 stopped by SIGTERM or SIGINT during training
(the last completed iteration is checkpointed).""",
    "validate": """\
examples:
  cobre-mpi-io validate out
  cobre-mpi-io validate out/simulation --json
  cobre-mpi-io validate out --deep --threads 4       (decode the key columns of every file)
  mpiexec -n 4 cobre-mpi-io validate out             (the files split over 4 ranks)

Prints one line per problem, naming the file. exit status: 0 valid, 1 problems found, 2 bad arguments
or no such directory.""",
    "report": """\
examples:
  cobre-mpi-io report out
  cobre-mpi-io report out --json                     (one JSON document, for scripts)
  cobre-mpi-io report out --section convergence
  cobre-mpi-io report out --plot convergence.png     (needs matplotlib: the report or plot extra)
  cobre-mpi-io report out --html report.html         (self-contained page with plots and tables)""",
    "bench": """\
examples:
  mpiexec -n 2 cobre-mpi-io bench simulation --scale production --scenarios 32 --output /tmp/bw --json
  mpiexec -n 2 cobre-mpi-io bench finalize --scenarios 2000 --output /tmp/bf --json
  cobre-mpi-io bench policy --cuts 15000 --state-dim 2080 --stages 3 --output /tmp/bp --json""",
    "bench simulation": """\
examples:
  mpiexec -n 2 cobre-mpi-io bench simulation --scale production --scenarios 32 --repeats 7 --output /tmp/bw --json
  mpiexec -n 1 cobre-mpi-io bench simulation --mode stream --scale small --scenarios 512 --output /tmp/bs
  mpiexec -n 1 cobre-mpi-io bench simulation --mode overlap --scale production --scenarios 32 --output /tmp/bo

The scratch directory is emptied first.""",
    "bench finalize": """\
examples:
  mpiexec -n 2 cobre-mpi-io bench finalize --scenarios 2000 --tables 10 --output /tmp/bf --repeats 5 --json
  mpiexec -n 2 cobre-mpi-io bench finalize --scenarios 20000 --output /tmp/bf --repeats 3""",
    "bench policy": """\
examples:
  cobre-mpi-io bench policy --cuts 15000 --state-dim 2080 --stages 3 --repeats 5 --output /tmp/bp --json
  cobre-mpi-io bench policy --cuts 1000 --state-dim 100 --output /tmp/bp --no-builder""",
}


def _launcher_rank() -> int | None:
    """This process's rank as the MPI launcher tells it (environment), without initializing MPI."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


_USAGE_ERROR_GRACE_S: Final = 3.0
"""How long a rank other than 0 waits before its usage-error exit, so that rank 0 (which prints the
message) exits first: a launcher that sees one rank fail ends the job at once, and Open MPI's prterun then
drops rank 0's unforwarded output. The launcher ends the waiting ranks as soon as rank 0 has exited."""


def _usage_exit(say: Callable[[], None]) -> int:
    """Usage error under a launcher: rank 0 says it and exits; the others wait a little (see above)."""
    if (_launcher_rank() or 0) == 0:
        say()
        sys.stderr.flush()
    else:
        time.sleep(_USAGE_ERROR_GRACE_S)
    return 2


class _Parser(argparse.ArgumentParser):
    """Under ``mpiexec`` every rank parses the same bad command line: only rank 0 prints the error."""

    def error(self, message: str) -> NoReturn:
        def say() -> None:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(_usage_exit(say))


def _common_options() -> argparse.ArgumentParser:
    """``-q`` / ``-v``, shared by every subcommand."""
    p = _Parser(add_help=False)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true",
                   help="only warnings and errors on stderr (no progress); demo: no summary on stdout")
    g.add_argument("-v", "--verbose", action="store_true", help="debug messages on stderr")
    return p


def _sub(sub: Any, name: str, help: str, epilog_key: str | None = None,
         parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help[0].upper() + help[1:] + ".", parents=list(parents),
        epilog=_EPILOGS.get(epilog_key or name), formatter_class=_FORMATTER)
    return parser


_COMMANDS: Final = ("demo", "bench", "validate", "policy", "report")


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand whose options parsing ``argv`` needs, for :func:`build_parser`.

    The first word not starting with ``-`` when it is a subcommand; ``""`` (no
    subcommand's options) when there is none or it is unknown (``--help``,
    ``--version`` or a usage error); ``None`` (all) after a ``--``.
    """
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in _COMMANDS else ""
    return ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every subcommand.

    Parameters
    ----------
    only : str, optional
        Give the options of this subcommand only (the others are listed, with
        their help, but left empty): building a subcommand's options imports
        its module, so ``main`` builds just the one it runs (``validate`` then
        does not import the writers, numpy or the report's libraries).
        Default: every subcommand's options.
    """
    from .._version import __version__

    def wanted(name: str) -> bool:
        return only is None or only == name

    common = _common_options()
    p = _Parser(prog="cobre-mpi-io", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=_FORMATTER)
    p.add_argument("--version", action="version", version=f"cobre-mpi-io {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                         help="what to do (cobre-mpi-io COMMAND --help: its options and examples)")

    demo = _sub(sub, "demo", "write a synthetic Cobre run through the package (run under mpiexec)",
                parents=[common])
    if wanted("demo"):
        from .demo import add_demo_arguments

        add_demo_arguments(demo)

    bench = _sub(sub, "bench", "benchmarks of the writers (simulation, finalize, policy)")
    if wanted("bench"):
        bsub = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK",
                                   help="which writer to time")
        from .bench_simulation import add_simulation_bench_arguments

        add_simulation_bench_arguments(_sub(bsub, "simulation", "time the simulation writer against pyarrow "
                                            "baselines", "bench simulation", [common]))
        from .bench_finalize import add_finalize_bench_arguments

        add_finalize_bench_arguments(_sub(bsub, "finalize", "time the manifest gather, assembly and write at scale",
                                          "bench finalize", [common]))
        from .bench_policy import add_policy_bench_arguments

        add_policy_bench_arguments(_sub(bsub, "policy", "time the policy checkpoint writer and reader against "
                                        "tofile", "bench policy", [common]))

    validate = _sub(sub, "validate", "check an output directory against its schemas and manifest",
                    parents=[common])
    if wanted("validate"):
        from .validate import add_validate_arguments

        add_validate_arguments(validate)
    policy = _sub(sub, "policy", "inspect a policy directory or convert it between formats "
                  "(spec, Cobre 0.5.x, Cobre 0.18)", parents=[common])
    if wanted("policy"):
        from .policy import add_policy_arguments

        add_policy_arguments(policy)
    report = _sub(sub, "report", "summarize a run: state, convergence and the results across scenarios "
                  "(text, --json, --html)", parents=[common])
    if wanted("report"):
        from .report import add_report_arguments

        add_report_arguments(report)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .._lazy import arrow_without_pandas
        from .demo import demo_main

        arrow_without_pandas()  # every rank: its pyarrow inputs are NumPy arrays and lists

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
        from .validate import validate_main

        return validate_main(args)
    if args.command == "policy":
        from .policy import policy_main

        return policy_main(args)
    if args.command == "report":
        from .report import report_main

        return report_main(args)
    raise AssertionError(args.command)  # pragma: no cover


def _uses_mpi(args: argparse.Namespace) -> bool:
    if args.command == "validate":  # splits its files over the ranks when a launcher started several
        from ..mpi import launcher_task_count

        return launcher_task_count() is not None
    return args.command in ("demo", "bench")


# --------------------------------------------------------------------------
# Logging and progress display
# --------------------------------------------------------------------------

_PACKAGE_LOGGER: Final = "cobre_mpi_io"


class _Formatter(logging.Formatter):
    """``2025-01-31 12:00:00 [rank 1] WARNING: message`` (level shown unless INFO)."""

    def __init__(self, rank_prefix: str, with_names: bool) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")
        self.rank_prefix = rank_prefix
        self.with_names = with_names

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        name = f"{record.name}: " if self.with_names else ""
        head = f"{self.formatTime(record, self.datefmt)} {self.rank_prefix}{level}{name}"
        text = head + record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.Handler):
    """Writes to the *current* ``sys.stderr`` (so redirections and test captures see it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


class _BarAwareHandler(logging.Handler):
    """Writes records above the progress bars (``tqdm.write``); drops the progress lines the bars show."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "progress", None) is not None:
            return
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


class TqdmBars:
    """A progress callback drawing one tqdm bar per phase on stderr."""

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.phase)
        if bar is None:
            # Follow the terminal's width; when it reports none (a pipe under mpiexec, a 0x0 pty),
            # tqdm would draw nothing: use $COLUMNS or 80.
            try:
                dynamic = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except (OSError, ValueError):
                dynamic = False
            bar = tqdm(total=event.total, initial=event.initial, desc=event.phase, unit=f" {event.unit}",
                       file=sys.stderr, dynamic_ncols=dynamic,
                       ncols=None if dynamic else shutil.get_terminal_size((80, 24)).columns, leave=True)
            self._bars[event.phase] = bar
        bar.update(event.done - bar.n)
        if event.final:
            bar.close()
            del self._bars[event.phase]

    def close(self) -> None:
        """Close the bars still open."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _want_bar(args: argparse.Namespace, rank: int) -> bool:
    if rank != 0 or args.quiet:
        return False
    mode = getattr(args, "progress", "auto")
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode != "bar":
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:  # pragma: no cover - tqdm is a dependency; fall back to log lines
        return False
    return True


@contextlib.contextmanager
def configure_logging(args: argparse.Namespace, rank: int = 0, size: int = 1) -> Iterator[None]:
    """Send the package's log records to stderr for the duration of a command.

    Rank 0: INFO (``args.quiet``: WARNING, ``args.verbose``: DEBUG); other
    ranks: WARNING, prefixed ``[rank N]``.  On rank 0, progress shows as a
    tqdm bar when ``args.progress`` is ``bar`` (or ``auto`` and stderr is a
    terminal), else as log lines every ``args.progress_interval`` seconds.
    Everything is restored on exit.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line (``quiet``, ``verbose``; optionally ``progress``,
        ``progress_interval``).
    rank, size : int
        This process's rank and the world size.
    """
    logger = logging.getLogger(_PACKAGE_LOGGER)
    saved = (logger.level, logger.propagate)
    if rank == 0:
        level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    else:
        level = logging.WARNING
    bar = _want_bar(args, rank)
    handler: logging.Handler = _BarAwareHandler() if bar else _StderrHandler()
    handler.setFormatter(_Formatter(f"[rank {rank}] " if size > 1 and rank != 0 else "",
                                    with_names=bool(args.verbose)))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    bars = TqdmBars() if bar else None
    interval = getattr(args, "progress_interval", None)
    defaults = ProgressDefaults(interval_s=10.0 if interval is None else interval, callback=bars)
    try:
        with using_progress_defaults(defaults):
            yield
    finally:
        if bars is not None:
            bars.close()
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _failed(exc: BaseException, args: argparse.Namespace, argv: Sequence[str], rank: int, size: int,
            agreed: bool) -> None:
    """Print what happened (once), where, and the command that continues the run."""
    text = describe_error(exc)
    # An agreed error names its rank and host itself (it is the same on every rank); a local one
    # is printed by the rank it happened on.
    _say(f"cobre-mpi-io: error: {text}" if agreed else f"cobre-mpi-io: error on {where(rank, size)}: {text}")
    if not hasattr(exc, "kind") and not isinstance(exc, OSError):  # a bug, not a reported failure
        traceback.print_exception(exc, file=sys.stderr)
    again = continue_command(args, argv, size, exc)
    if again is not None:
        _say(f"cobre-mpi-io: the run in {args.output} stopped before the end; to continue it (writes only "
             f"what is missing):\n  {again}")


def _interrupted(args: argparse.Namespace, argv: Sequence[str], size: int) -> None:
    """Ctrl-C: say so, and how to continue."""
    again = continue_command(args, argv, size)
    tail = f"; to continue the run in {args.output}:\n  {again}" if again is not None else ""
    _say(f"cobre-mpi-io: interrupted (Ctrl-C){tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Under MPI, an :class:`OutputError` that every rank agreed on (marked
    ``agreed``) exits with code 1 on every rank and is printed by rank 0
    only; any other exception is printed by its rank and aborts the whole
    job.  Bad arguments exit with code 2 (``SystemExit``) before any work;
    Ctrl-C exits with code 130.  Every failure says what happened once,
    where (rank and host under MPI), and, for a run that can be continued,
    the full command line with ``--resume``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(given))  # only the options of the subcommand that runs
    args = parser.parse_args(given)
    bad_output = output_is_a_file(args)
    if bad_output is not None:  # a usage error: status 2, nothing written (every rank parses: rank 0 says it)
        return _usage_exit(lambda: _say(f"cobre-mpi-io {args.command}: error: {bad_output}"))
    if not _uses_mpi(args):
        rank = _launcher_rank() or 0  # started by a launcher anyway: only its rank 0 logs below WARNING
        with configure_logging(args, rank, rank + 1):
            try:
                return _run(args)
            except (OutputError, OSError) as exc:
                _failed(exc, args, given, rank, 1, agreed=True)
                return 1
            except KeyboardInterrupt:
                _interrupted(args, given, 1)
                return 130
    from .. import mpi

    comm = mpi.resolve_comm(None)
    rank = mpi.rank_of(comm)
    size = mpi.size_of(comm)
    try:
        with configure_logging(args, rank, size):
            code = _run(args)
        if code == 143 and rank == 0:  # training stopped by SIGTERM/SIGINT, its last iteration checkpointed
            again = continue_command(args, given, size)
            if again is not None:
                _say(f"cobre-mpi-io: stopped by a signal; to continue the run in {args.output}:\n  {again}")
        return code
    except OutputError as exc:
        if getattr(exc, "agreed", False):
            if rank == 0:
                _failed(exc, args, given, rank, size, agreed=True)
            return 1
        _failed(exc, args, given, rank, size, agreed=size == 1)
        mpi.abort_job(None, 1)
    except KeyboardInterrupt:
        if rank == 0:  # Ctrl-C reaches every rank: one message
            _interrupted(args, given, size)
        mpi.abort_job(None, 130)
    except BaseException as exc:  # never leave peers blocked in a collective
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        if isinstance(exc, SystemExit):
            mpi.abort_job(None, exc.code if isinstance(exc.code, int) else 1)
        _failed(exc, args, given, rank, size, agreed=size == 1)
        mpi.abort_job(None, 1)
    return 1  # pragma: no cover
