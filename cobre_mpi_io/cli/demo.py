"""The demo: a synthetic Cobre run written through the package, under ``mpiexec``.

``cobre-mpi-io demo --output DIR`` builds the system (built-in or
``--case``) and produces the whole output tree of a run (SPEC §2):

1. training (``--iterations K``): a plausible synthetic convergence history
   (lower bound rising, upper bound with a shrinking confidence band, cut
   counts, per-rank timings of the actual ranks) fed to the
   :class:`~cobre_mpi_io.training.TrainingParquetWriter`, with a FlatBuffers
   policy checkpoint every ``--checkpoint-every`` iterations, on
   SIGTERM/SIGINT and at the end (:class:`~cobre_mpi_io.checkpoint.PolicyCheckpointer`);
2. simulation: every rank generates the synthetic results of the scenarios
   it owns and streams them through
   :class:`~cobre_mpi_io.simulation.SimulationParquetWriter` (the bytes of
   every file depend only on (case, seed, scenario));
3. :func:`~cobre_mpi_io.results.write_results`: dictionaries, training
   tables, manifests, metadata and ``_SUCCESS`` markers.

A SIGTERM during training checkpoints the last completed iteration, writes a
training manifest with status ``interrupted`` and exits with code 143.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import mpi
from ..config import RunConfig
from ..errors import OutputError
from ..manifest import utc_now
from ..policy.checkpoint import PolicyCheckpointer
from ..policy.convert import cobre_fields_from_case
from ..progress import ProgressReporter
from ..results import SimulationOutput, TrainingOutput, write_results
from ..run import Run, check_output_directory
from ..schemas import DEFAULT_FORMAT, FORMATS
from ..simulation.writer import SimulationConfig, SimulationParquetWriter
from ..system.case_config import load_case_config
from ..system.model import System
from ..testing.policy import synthetic_policy
from ..testing.simulation import synthetic_result
from ..testing.training import synthetic_training
from ..training.dictionaries import state_dictionary
from ..training.writer import TrainingParquetWriter
from .args import non_negative_float, non_negative_int, positive_int

__all__ = [
    "TrainingResult",
    "add_demo_arguments",
    "case_num_scenarios",
    "check_output_dir",
    "cobre_policy_fields",
    "demo_main",
    "load_system",
    "run_config",
    "run_simulation",
    "run_training",
]

_log = logging.getLogger(__name__)

DEFAULT_SEED = 42
"""The seed of a run when neither ``--seed`` nor the case gives one."""


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``cobre-mpi-io demo`` (every number checked while parsing: exit 2, nothing written)."""
    run = p.add_argument_group("run")
    run.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                     help="output directory (created; must not hold a run unless --resume)")
    run.add_argument("--case", type=Path, default=None, metavar="DIR",
                     help="Cobre case directory (default: the built-in system)")
    run.add_argument("--scale", choices=("small", "production"), default="small",
                     help="size of the built-in system (default small; ignored with --case)")
    run.add_argument("--scenarios", type=positive_int, default=None, metavar="N",
                     help="simulation scenarios, >= 1 (default: the case's simulation.num_scenarios, else 16)")
    run.add_argument("--seed", type=non_negative_int, default=None, metavar="N",
                     help="random seed of the run, >= 0; precedence: this option, else the case's own seed "
                          "(Cobre 0.5.x training.scenario_source.seed, Cobre 0.18 training.tree_seed), "
                          f"else {DEFAULT_SEED}")
    run.add_argument("--detail", choices=("full", "stage", "summary"), default="full",
                     help="simulation detail: full (every table, every block), stage (stage-level costs and "
                          "hydros) or summary (one row of totals per scenario); default full")
    run.add_argument("--format", choices=FORMATS, default=DEFAULT_FORMAT, dest="format",
                     help="columns of the tables and meanings of the codes: spec (default) or cobre-0.18 "
                          "(what the Cobre 0.18 solver writes, read by its own loaders; docs/formats.md)")
    run.add_argument("--assignment", choices=("round-robin", "block"), default="round-robin",
                     help="how scenarios are shared among ranks: round-robin (scenario_id modulo the number "
                          "of ranks) or block (contiguous ranges); default round-robin")
    run.add_argument("--queue-capacity", type=positive_int, default=64, metavar="N",
                     help="results each rank may queue for its I/O thread before the producer waits, >= 1 "
                          "(default 64)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run in --output (write only the missing scenarios)")
    run.add_argument("--break-claim", action="store_true",
                     help="remove another run's claim on --output even when its holder cannot be proved dead "
                          "(it ran on another host); only when you know that run is gone")

    train = p.add_argument_group("training")
    train.add_argument("--iterations", type=non_negative_int, default=10, metavar="N",
                       help="training iterations, >= 0 (default 10; 0: no training phase)")
    train.add_argument("--forward-passes", type=positive_int, default=None, metavar="N",
                       help="forward passes per iteration, >= 1 (default: the case's, else 4)")
    train.add_argument("--no-upper-bound", action="store_true",
                       help="no upper-bound evaluation (convergence upper bound and gap columns null)")
    train.add_argument("--checkpoint-every", type=non_negative_int, default=10, metavar="N",
                       help="policy checkpoint period in iterations, >= 0 (default 10; 0: only at the end)")

    out = p.add_argument_group("progress")
    out.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                     help="how rank 0 shows progress on stderr: a bar, log lines, or auto (a bar when stderr "
                          "is a terminal, else lines); default auto")
    out.add_argument("--progress-interval", type=non_negative_float, default=10.0, metavar="SECONDS",
                     help="seconds between two progress log lines, >= 0 (default 10; 0: every update)")

    test = p.add_argument_group("testing (fault injection and slow runs)")
    test.add_argument("--fail-rank", type=non_negative_int, default=None, metavar="RANK",
                      help="this rank raises an error during the simulation ...")
    test.add_argument("--fail-after", type=non_negative_int, default=0, metavar="N",
                      help="... after writing this many scenarios, >= 0 (default 0)")
    test.add_argument("--slow", type=non_negative_float, default=0.0, metavar="SECONDS",
                      help="seconds to sleep after each scenario, >= 0 (default 0)")
    test.add_argument("--iteration-seconds", type=non_negative_float, default=0.0, metavar="SECONDS",
                      help="seconds each training iteration lasts, >= 0 (default 0)")


def load_system(case: Path | None, scale: str) -> System:
    """The case's system, or the built-in one of ``scale``."""
    return System.from_case(case) if case is not None else System.synthetic(scale)


def case_num_scenarios(case: Path | None) -> int | None:
    """The simulation scenarios of the case's ``config.json``, if it gives a count (checked: SchemaError)."""
    cc = load_case_config(case) if case is not None else None
    return cc.num_scenarios if cc is not None else None


def check_output_dir(output: Path, resume: bool) -> None:
    """Refuse a directory the demo must not write into (:func:`~cobre_mpi_io.run.check_output_directory`).

    The demo makes this check through its run handle, with the claim held;
    this function is the same check, for callers that want it up front.

    Raises
    ------
    IoError
        ``output`` holds a finished run, an unfinished one without
        ``resume``, or entries that are not a run.
    """
    check_output_directory(output, resume)


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration: the case's ``config.json`` (if any) overridden by the options."""
    cc = load_case_config(args.case) if args.case is not None else None
    seed = args.seed if args.seed is not None else cc.seed if cc is not None and cc.seed is not None \
        else DEFAULT_SEED
    over: dict[str, Any] = {"seed": seed, "detail": args.detail, "format": args.format,
                            "upper_bound_evaluation": not args.no_upper_bound,
                            "num_scenarios": args.scenarios or (cc.num_scenarios if cc else None) or 16,
                            "forward_passes": args.forward_passes or (cc.forward_passes if cc else None) or 4}
    if args.iterations > 0:
        over["max_iterations"] = args.iterations
    return RunConfig(**{**(cc.run_config_fields() if cc else {}), **over})


@dataclass
class TrainingResult:
    """What the demo's training phase hands to :func:`write_results`."""

    output: TrainingOutput
    interrupted: bool
    error: OutputError | None = None  # the agreed error that stopped training (recorded as failed)


def cobre_policy_fields(args: argparse.Namespace, system: System) -> dict[str, Any] | None:
    """The Cobre 0.18 policy fields of a ``--format cobre-0.18`` run (None in ``spec``).

    Cobre 0.18's policy records what the built-in system does not have (stage
    dates, a state of one storage per hydro): they are taken from the Cobre
    0.18 ``--case`` (:func:`~cobre_mpi_io.policy.convert.cobre_fields_from_case`).

    Raises
    ------
    OutputError
        ``--format cobre-0.18`` without ``--case``, or a case that does not
        give the fields (not a Cobre 0.18 case, inflow lags in the state, ...).
    """
    if args.format != "cobre-0.18":
        return None
    if args.case is None:
        raise OutputError("--format cobre-0.18 needs a Cobre 0.18 --case: its policy records the case's stage "
                          "dates and one storage state per hydro, which the built-in system does not have "
                          "(give --case DIR, or use --format spec)")
    fields = cobre_fields_from_case(args.case, system.num_stages, system.state_dimension)
    return fields.as_mapping()


def run_training(args: argparse.Namespace, system: System, config: RunConfig, comm: Any, *,
                 cobre_fields: Mapping[str, Any] | None = None) -> TrainingResult:
    """Training phase of the demo (collective): Parquet history and policy checkpoints.

    Rank 0 writes the iteration rows, every rank its own timing rows; a
    policy checkpoint is written every ``args.checkpoint_every`` iterations,
    on SIGTERM/SIGINT (training then stops after the current iteration) and
    at the end.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``demo`` options; this phase reads ``output``, ``iterations``,
        ``checkpoint_every``, ``iteration_seconds`` (sleep per iteration)
        and ``break_claim``.
    system : System
        The system being solved (state dimension, stages, hashes).
    config : RunConfig
        The run configuration (seed, forward passes, upper-bound evaluation,
        run identity).
    comm : MPI communicator
        The communicator every rank of the job calls this with.
    cobre_fields : mapping, optional
        The Cobre 0.18 policy fields of a ``--format cobre-0.18`` run
        (:func:`cobre_policy_fields`).

    Returns
    -------
    TrainingResult
        This rank's :class:`~cobre_mpi_io.results.TrainingOutput` (status
        ``failed``, ``interrupted`` or the synthetic history's own), whether
        a signal interrupted training, and the agreed error that stopped it.

    Raises
    ------
    OutputError
        An error that is not agreed among the ranks (an agreed one is
        returned in ``TrainingResult.error`` so that training is still
        recorded as failed).
    """
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    started = utc_now()
    st = synthetic_training(system, iterations=args.iterations, world_size=size,
                            forward_passes=config.forward_passes, seed=config.seed,
                            upper_bound_evaluation=config.upper_bound_evaluation)
    writer = TrainingParquetWriter(args.output, comm, identity=config.identity(system),
                                   break_claim=args.break_claim, fmt=args.format)
    timings = st.rank_timing(rank)

    def policy(iteration: int) -> dict[str, Any]:
        if rank != 0:
            return {}
        kwargs = synthetic_policy(system.state_dimension, system.num_stages, iteration, config.seed,
                                  forward_passes=config.forward_passes, max_iterations=args.iterations,
                                  config_hash=config.config_hash, system_hash=system.system_hash).write_kwargs()
        if cobre_fields is not None:  # Cobre 0.18's policy holds cuts and bases only
            for name in ("stage_states", "stage_vertices", "state_dictionary"):
                kwargs.pop(name)
        return kwargs

    done = 0
    # Rank 0 reports the iterations (every rank runs all of them); checkpoints log themselves.
    progress = ProgressReporter("training", args.iterations, "iterations") if rank == 0 else None
    error: OutputError | None = None
    interrupted = False
    try:
        with PolicyCheckpointer(args.output, every=args.checkpoint_every, comm=comm, training_writer=writer,
                                identity=config.identity(system),
                                state_dictionary=state_dictionary(system), format=args.format,
                                cobre_fields=cobre_fields) as ckpt:
            for k in range(1, args.iterations + 1):
                if args.iteration_seconds:
                    time.sleep(args.iteration_seconds)
                if rank == 0:
                    writer.write_iteration(st.iterations[k - 1])
                writer.write_rank_timing(timings[k - 1])
                done = k
                if progress is not None:
                    progress.update(k)
                ckpt.after_iteration(k, functools.partial(policy, k))
                if ckpt.interrupted:
                    break
            if progress is not None:
                progress.close()
            if done:
                ckpt.final(**policy(done))
            interrupted = ckpt.interrupted
    except OutputError as exc:  # e.g. a checkpoint that could not be written: record training as failed
        if not getattr(exc, "agreed", False):
            raise
        error = exc
    if interrupted and rank == 0:
        _log.warning("training stopped by a signal after iteration %d of %d; the policy of iteration %d is "
                     "checkpointed", done, args.iterations, done)
    status = "failed" if error is not None else "interrupted" if interrupted else st.status
    out = st.to_training_output(rank, started_at=started, policy_dir=Path(args.output) / "policy",
                                writer=writer, status=status,
                                termination_reason=None if interrupted or error else st.termination_reason)
    return TrainingResult(out, interrupted, error)


def run_simulation(args: argparse.Namespace, system: System, config: RunConfig,
                   comm: Any) -> tuple[Any, OutputError | None]:
    """Simulation phase of the demo (collective): the manifest, and the agreed error when it did not complete.

    Every rank writes the synthetic results of the scenarios it owns (those
    still pending when resuming) through a
    :class:`~cobre_mpi_io.simulation.writer.SimulationParquetWriter`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``demo`` options; this phase reads ``output``, ``detail``,
        ``assignment``, ``queue_capacity``, ``resume``, ``break_claim``,
        ``seed``, ``slow`` (sleep per scenario) and the failure injection
        ``fail_rank``/``fail_after``.
    system : System
        The system whose results are written.
    config : RunConfig
        The run configuration (number of scenarios, run identity).
    comm : MPI communicator
        The communicator every rank of the job calls this with.

    Returns
    -------
    tuple of (SimulationManifest, OutputError or None)
        The committed manifest (rank 0: every file; other ranks: their own
        files) and ``None``; or, when the run ended failed or partial with an
        agreed error, the manifest recorded and that error.

    Raises
    ------
    OutputError
        An error that is not agreed among the ranks, or an agreed one raised
        before any manifest was written.
    """
    rank = mpi.rank_of(comm)
    cfg = SimulationConfig(num_scenarios=config.num_scenarios, detail=args.detail, assignment=args.assignment,
                           queue_capacity=args.queue_capacity, resume=args.resume,
                           identity=config.identity(system), break_claim=args.break_claim, format=args.format)
    writer = SimulationParquetWriter(args.output, system, cfg, comm)
    try:
        with writer:
            for k, sid in enumerate(writer.pending_scenarios()):
                if args.fail_rank == rank and k >= args.fail_after:
                    raise RuntimeError(f"injected failure after {k} scenario(s) (--fail-rank {rank})")
                writer.write_scenario(synthetic_result(system, sid, config.seed))
                if args.slow:
                    time.sleep(args.slow)
    except OutputError as exc:
        if not getattr(exc, "agreed", False) or writer.manifest is None:
            raise
        return writer.manifest, exc  # recorded as failed/partial; training is still written below
    return writer.finalize(), None


def demo_main(args: argparse.Namespace) -> int:
    """Run the demo; collective over ``MPI.COMM_WORLD``."""
    comm = mpi.resolve_comm(None)
    system = mpi.run_agreed(comm, lambda: load_system(args.case, args.scale), str(args.case or args.scale))
    assert system is not None
    config = mpi.run_agreed(comm, lambda: run_config(args), "config")
    assert config is not None
    # before anything is written: a cobre-0.18 policy needs the case's Cobre fields
    cobre_fields = mpi.run_agreed(comm, lambda: cobre_policy_fields(args, system), "--format")
    # the run handle takes the claim once, refuses a directory holding another run, a finished run (without
    # --resume) or files that are not a run, checks or records the run's identity; the writers share its claim
    with Run(args.output, system, config, comm, resume=args.resume, break_claim=args.break_claim):
        return _demo_phases(args, system, config, comm, cobre_fields)


def _demo_phases(args: argparse.Namespace, system: System, config: RunConfig, comm: Any,
                 cobre_fields: Mapping[str, Any] | None) -> int:
    rank = mpi.rank_of(comm)
    t0 = time.perf_counter()
    training = (run_training(args, system, config, comm, cobre_fields=cobre_fields) if args.iterations > 0
                else None)
    manifest, sim_error = None, None
    if training is None or not (training.interrupted or training.error):
        manifest, sim_error = run_simulation(args, system, config, comm)
    elif training.error is not None:
        sim_error = training.error
    results = None
    if training is not None:
        results = write_results(args.output, training.output,
                                SimulationOutput(manifest) if manifest is not None else None,
                                system, config, comm)
    if sim_error is not None:  # training is recorded; the simulation's agreed error ends the job non-zero
        raise sim_error
    if rank == 0 and not args.quiet:
        summary: dict[str, Any] = {"output": str(args.output), "system": system.name,
                                   "world_size": mpi.size_of(comm)}
        if results is not None:
            tm = results.training_manifest
            summary["training"] = {"status": tm.status, "iterations": tm.iterations_completed,
                                   "final_gap_percent": tm.final_gap_percent, "policy": tm.policy_value}
        if manifest is not None:
            summary["simulation"] = {
                "status": manifest.status, "scenarios": manifest.scenarios_completed,
                "files": len(manifest.files), "bytes": sum(e.bytes for e in manifest.files.values()),
                "checksum": manifest.checksum_value}
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        print(json.dumps(summary, indent=2))
        sys.stdout.flush()
    return 143 if training is not None and training.interrupted else 0
