"""The run handle: one object that holds a run's output directory from start to commit.

A solver opens the run once::

    with open_run(out, system, config, comm=comm) as run:        # collective
        tw = run.training_writer()
        ...                                                       # iterations
        run.write_policy(stage_cuts, stage_bases, metadata)
        with run.simulation_writer() as sw:
            for sid in sw.pending_scenarios():
                sw.write_scenario(solve(sid))
        run.write_results(training_output, SimulationOutput(sw.finalize()))

Opening the run (:class:`Run`, collective over ``comm``):

1. takes the directory's claim once (:func:`~cobre_mpi_io.claim.acquire_run`),
   which every writer handed out by the run shares;
2. checks the directory (:func:`check_output_directory`), with the claim
   held: a fresh run (``resume=False``) needs an empty or new directory, so a
   finished run, an unfinished one, and a non-empty directory that holds no
   run are all refused, naming what is there, before anything is written;
   ``resume=True`` continues a run (a directory holding files that are not a
   run is still refused);
3. compares the run's identity with ``OUT/_journal/identity.json`` (a resume
   with another case file, seed, option or version is refused, naming it) or
   records it there, durably, before any data.

Leaving the ``with`` block releases the claim; an exception inside it
releases the claim too (every share of it in this process), so a failed run
never leaves ``_claim.json`` behind for the next one to break.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import mpi
from .atomic import is_temp_name
from .claim import RunLease, acquire_run, finished_phases
from .config import RunConfig
from .errors import IoError
from .identity import RunIdentity
from .layout import CLAIM_NAME, COBRE_CHECKPOINTS_DIR, JOURNAL_DIR, POLICY_DIR, SIMULATION_DIR, TRAINING_DIR
from .parquet import ParquetConfig
from .policy.checkpoint import PolicyCheckpointer, write_policy_checkpoint
from .policy.records import (
    CheckpointRecord,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
)
from .results import SimulationOutput, TrainingOutput, WrittenResults, write_results
from .simulation.writer import SimulationConfig, SimulationParquetWriter
from .system.model import System
from .training.dictionaries import state_dictionary as system_state_dictionary
from .training.writer import TrainingParquetWriter

__all__ = ["RUN_ENTRIES", "Run", "check_output_directory", "open_run"]

RUN_ENTRIES = frozenset({SIMULATION_DIR, TRAINING_DIR, POLICY_DIR, COBRE_CHECKPOINTS_DIR, JOURNAL_DIR})
"""The entries of an output root that belong to a run (besides ``_claim.json`` and temp names)."""

_SHOWN = 5


def _holds_something(path: Path) -> bool:
    """A file, or a directory with anything in it (an empty directory left by a refused start is nothing)."""
    try:
        return not path.is_dir() or path.is_symlink() or any(os.scandir(path))
    except OSError:
        return True


def check_output_directory(output_dir: str | os.PathLike[str], resume: bool) -> None:
    """Refuse an output directory a run must not write into (rank 0, with the claim held).

    Parameters
    ----------
    output_dir : path-like
        The run's output root.
    resume : bool
        ``False``: a fresh run; the directory must be new or empty.
        ``True``: a resume; the directory must be empty or hold a run.

    Raises
    ------
    IoError
        Naming the directory: it holds a finished run (cause ``"finished
        run"``, naming its markers), an unfinished run without ``resume``
        (``"not empty"``), or entries that are not a run (``"not empty"``,
        naming a few of them).
    """
    out = Path(output_dir)
    try:
        names = sorted(e.name for e in os.scandir(out) if e.name != CLAIM_NAME and not is_temp_name(e.name))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise IoError.from_os_error(out, exc) from exc
    run = [n for n in names if n in RUN_ENTRIES and _holds_something(out / n)]
    foreign = [n for n in names if n not in RUN_ENTRIES]
    if foreign and not run:
        shown = ", ".join(foreign[:_SHOWN]) + (f", ... ({len(foreign)} entries)" if len(foreign) > _SHOWN else "")
        raise IoError(out, "not empty",
                      f"is not empty and holds no run ({shown}); a run is written only into a new or empty "
                      "directory, never beside other files: choose another output directory")
    if resume or not run:
        return
    done = finished_phases(out)
    if done:
        raise IoError(out, "finished run",
                      f"holds a finished run ({', '.join(done)}); a finished run is never written over: choose an "
                      "empty output directory, or resume it (--resume; resume=True) to redo it")
    raise IoError(out, "not empty",
                  f"output directory already holds a run ({', '.join(n + '/' for n in run)}); use --resume "
                  "(resume=True) to continue it, or choose an empty directory (two runs are never mixed)")


class Run:
    """A run's output directory, held from start to commit: the claim, the identity, the writers.

    Collective over ``comm`` (construction): every rank opens the run with
    the same arguments.  Use it as a context manager (or call :meth:`close`).

    Parameters
    ----------
    output_dir : path-like
        The run's output root ``OUT``.
    system : System
        The system being solved.
    config : RunConfig, mapping or None
        The run configuration (:meth:`RunConfig.coerce`): seed, iterations,
        forward passes, scenarios, detail, ...; with ``system`` it is the run's
        identity.
    comm : MPI communicator, optional
        Default ``MPI.COMM_WORLD``; ``MPI.COMM_SELF`` for a serial run.
    resume : bool, default False
        Continue the run in ``output_dir`` (its recorded identity must be
        this one).  Without it the directory must be new or empty.
    break_claim : bool, default False
        Remove a claim whose holder cannot be proved dead (it ran on another
        host or in another container): only when that run is known to be gone.

    Raises
    ------
    OutputError
        The same on every rank, before anything is written: another run holds
        the directory, it holds a finished run or files that are not a run,
        its recorded identity differs (naming the setting or case file), or
        the ranks do not see one directory.

    Attributes
    ----------
    output_dir : Path
    system : System
    config : RunConfig
    identity : RunIdentity
        Recorded in ``OUT/_journal/identity.json``.
    resume : bool
    """

    def __init__(self, output_dir: str | os.PathLike[str], system: System, config: RunConfig | Mapping[str, Any] |
                 None = None, comm: mpi.Comm | None = None, *, resume: bool = False, break_claim: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.system = system
        self.comm = mpi.resolve_comm(comm)
        self.config: RunConfig = mpi.run_agreed(self.comm, lambda: RunConfig.coerce(config), "config")
        self.identity: RunIdentity = mpi.run_agreed(self.comm, lambda: self.config.identity(system),
                                                    "run identity")
        self.resume = bool(resume)
        self.break_claim = bool(break_claim)
        self._lease: RunLease | None = acquire_run(
            self.comm, self.output_dir, self.identity, break_claim=self.break_claim, resume=True,
            preflight=functools.partial(check_output_directory, resume=self.resume))

    # ------------------------------------------------------------ writers
    def _open(self) -> None:
        if self._lease is None:
            raise IoError(self.output_dir, "closed", "this run is closed; open the run again to write into it")

    def training_writer(self, *, parquet: ParquetConfig | None = None) -> TrainingParquetWriter:
        """The training history writer of this run (collective over the run's communicator).

        Parameters
        ----------
        parquet : ParquetConfig, optional
            Parquet settings (SPEC §3 defaults).

        Returns
        -------
        TrainingParquetWriter
            Sharing the run's claim; finalized by :meth:`write_results`.
        """
        self._open()
        return TrainingParquetWriter(self.output_dir, self.comm, config=parquet, identity=self.identity,
                                     fmt=self.config.format)

    def simulation_writer(self, *, assignment: mpi.Assignment = "round-robin", queue_capacity: int = 64,
                          parquet: ParquetConfig | None = None, **options: Any) -> SimulationParquetWriter:
        """The simulation writer of this run (collective over the run's communicator).

        The scenario count, detail level and identity are the run's; a
        resumed run writes only the scenarios still missing.

        Parameters
        ----------
        assignment : {"round-robin", "block"}
            How scenarios are shared among ranks.
        queue_capacity : int
            Results each rank may queue for its I/O thread.
        parquet : ParquetConfig, optional
            Parquet settings.
        **options
            Other :class:`SimulationConfig` fields (e.g. ``durability``).

        Returns
        -------
        SimulationParquetWriter
            Sharing the run's claim.
        """
        self._open()
        kw: dict[str, Any] = {"parquet": parquet} if parquet is not None else {}
        cfg = SimulationConfig(num_scenarios=self.config.num_scenarios, detail=self.config.detail,
                               assignment=assignment, queue_capacity=queue_capacity, resume=self.resume,
                               identity=self.identity, break_claim=self.break_claim, format=self.config.format,
                               **kw, **options)
        return SimulationParquetWriter(self.output_dir, self.system, cfg, self.comm)

    def checkpointer(self, *, every: int = 10, keep: int = 3, training_writer: Any = None,
                     state_dictionary: Mapping[str, Any] | None = None, install_signal_handlers: bool = True,
                     durable: bool = True, cobre_fields: Mapping[str, Any] | None = None) -> PolicyCheckpointer:
        """Periodic, on-signal and final policy checkpoints of this run (collective).

        Parameters
        ----------
        every : int
            Checkpoint period in iterations (0: only on signal and at the end).
        keep : int
            Checkpoints retained (0 keeps all).
        training_writer : object, optional
            Checkpointed with each policy checkpoint (its ``checkpoint()``).
        state_dictionary : mapping, optional
            Default: the system's (:func:`~cobre_mpi_io.training.state_dictionary`).
        install_signal_handlers : bool
            Catch SIGTERM/SIGINT until the checkpointer is closed.
        durable : bool
            fsync files and directories.
        cobre_fields : mapping, optional
            What a ``cobre-0.18`` policy records beyond the spec's metadata
            (see :class:`PolicyCheckpointer`); the format is the run's.

        Returns
        -------
        PolicyCheckpointer
            Sharing the run's claim.
        """
        self._open()
        return PolicyCheckpointer(self.output_dir, every=every, keep=keep, comm=self.comm,
                                  training_writer=training_writer,
                                  install_signal_handlers=install_signal_handlers,
                                  state_dictionary=state_dictionary if state_dictionary is not None
                                  else system_state_dictionary(self.system), durable=durable,
                                  identity=self.identity, format=self.config.format, cobre_fields=cobre_fields)

    def write_policy(self, stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                     metadata: PolicyMetadata, **kwargs: Any) -> CheckpointRecord:
        """Write one policy checkpoint under ``OUT/policy`` (collective; see :func:`write_policy_checkpoint`).

        Parameters
        ----------
        stage_cuts : sequence of StageCuts
            One per stage.
        stage_bases : sequence of StageBasis
            LP bases (may be empty).
        metadata : PolicyMetadata
            The checkpoint's metadata.
        **kwargs
            ``stage_states``, ``stage_vertices``, ``state_dictionary``,
            ``keep``, ``durable``, ``check_finite``, ``cobre_fields``; the
            format is the run's.

        Returns
        -------
        CheckpointRecord
            On every rank.
        """
        self._open()
        states: Sequence[StageStates] | None = kwargs.pop("stage_states", None)
        vertices: Sequence[StageVertices] | None = kwargs.pop("stage_vertices", None)
        if self.config.format == "spec":
            kwargs.setdefault("state_dictionary", system_state_dictionary(self.system))
        return write_policy_checkpoint(self.output_dir / POLICY_DIR, stage_cuts, stage_bases, metadata,
                                       stage_states=states, stage_vertices=vertices, comm=self.comm,
                                       format=self.config.format, **kwargs)

    def write_results(self, training: TrainingOutput, simulation: SimulationOutput | None = None) -> WrittenResults:
        """Commit the run: dictionaries, training tables, manifests, metadata, markers (collective).

        Parameters
        ----------
        training : TrainingOutput
            This rank's training outcome.
        simulation : SimulationOutput, optional
            The simulation's committed manifest.

        Returns
        -------
        WrittenResults
            See :func:`~cobre_mpi_io.results.write_results`.
        """
        self._open()
        return write_results(self.output_dir, training, simulation, self.system, self.config, self.comm,
                             fmt=self.config.format)

    # ------------------------------------------------------------ lifetime
    def close(self, *, failed: bool = False) -> None:
        """Release the run's claim (local, no collective).

        Parameters
        ----------
        failed : bool, default False
            Release every share of the claim in this process at once (the
            writers' too): the claim is removed now.
        """
        if self._lease is not None:
            self._lease.release(everything=failed)
            self._lease = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(failed=exc_type is not None)


def open_run(output_dir: str | os.PathLike[str], system: System, config: RunConfig | Mapping[str, Any] | None = None,
             comm: mpi.Comm | None = None, *, resume: bool = False, break_claim: bool = False) -> Run:
    """Open a run (collective over ``comm``): :class:`Run` with the same parameters.

    Parameters
    ----------
    output_dir : path-like
        The run's output root.
    system : System
        The system being solved.
    config : RunConfig, mapping or None
        The run configuration.
    comm : MPI communicator, optional
        Default ``MPI.COMM_WORLD``.
    resume : bool, default False
        Continue the run in ``output_dir``.
    break_claim : bool, default False
        Remove a claim whose holder cannot be proved dead.

    Returns
    -------
    Run
        A context manager; every rank gets its own handle on the same run.
    """
    return Run(output_dir, system, config, comm, resume=resume, break_claim=break_claim)
