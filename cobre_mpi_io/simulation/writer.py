"""The streaming, per-rank simulation Parquet writer (SPEC §4, §6).

Each rank owns a set of scenarios (round-robin by default) and writes their
Hive partitions ``{table}/scenario_id={id:04d}/data.parquet`` from one
background I/O thread draining a bounded queue.  :meth:`finalize` is the
commit point: every rank contributes the record of what it wrote, rank 0
assembles ``simulation/_manifest.json`` and writes ``_SUCCESS`` only when
the run is complete, and every rank learns the outcome.

Example
-------
>>> with SimulationParquetWriter(out, system, SimulationConfig(num_scenarios=100)) as w:
...     for sid in w.pending_scenarios():
...         w.write_scenario(simulate(sid))
... # leaving the block calls finalize() (collective)
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa

from .. import mpi
from ..atomic import ensure_dir, remove_stray_temps, reserve_space, sync_filesystem
from ..claim import RunLease, acquire_run
from ..errors import IoError, OutputError, SchemaError, as_output_error
from ..formats import format_tables_for
from ..identity import RunIdentity
from ..journal import RankJournal, open_journal, read_journal
from ..layout import (
    MANIFEST_NAME,
    MANIFEST_RESERVE_NAME,
    SIMULATION_DIR,
    partition_file,
    simulation_dir,
)
from ..manifest import (
    Failure,
    FileEntry,
    SimulationManifest,
    remove_success_marker,
    utc_now,
    write_simulation_manifest,
)
from ..parquet import FileRecord, ParquetConfig, write_parquet
from ..progress import ProgressReporter
from ..schemas import COST_COMPONENTS, DEFAULT_FORMAT, DETAIL_LEVELS, check_format, table
from ..schemas import tables_for_detail as _tables_for_detail
from ..system.model import System
from .commit import CommitContext, RankPart, commit
from .payload import SimulationScenarioResult, ValidatedResult, validate_result
from .recovery import scan_scenarios
from .tables import build_table

__all__ = ["RankPart", "SimulationConfig", "SimulationParquetWriter", "rows_for_detail", "tables_for_detail"]


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of a simulation output run.

    Attributes
    ----------
    num_scenarios : int
        Total scenarios of the run (ids ``0..num_scenarios-1``).
    detail : {"full", "stage", "summary"}
        ``full``: every table. ``stage``: ``costs`` with only its stage-level
        rows and ``hydros`` aggregated per (stage, hydro) (``block_id`` null;
        rates hours-weighted, energies and costs summed, initial storage of
        the first block, final storage/water value/codes of the last block).
        ``summary``: no partitions; ``scenario_totals.parquet`` (one row per
        scenario, total and 14 component costs) written by rank 0.
    assignment : {"round-robin", "block"}
        Scenario → rank (``scenario_id % world_size`` or contiguous blocks).
    queue_capacity : int
        Results waiting for the I/O thread (backpressure beyond it).
    parquet : ParquetConfig
        Encoding settings (SPEC §3).
    resume : bool
        Continue an interrupted run in the same directory.
    durability : {"commit", "file", "none"}
        Every file is always written atomically (temp + rename), so a
        crash never leaves a partial file visible, and recorded in the run's
        journal (one append per scenario); a resume adopts a file only when
        its bytes match its record, so no mode can make a resume adopt lost
        data: the modes decide how much work survives. ``"commit"``
        (default): each rank flushes the filesystem once (``syncfs``, which
        covers the journal) at :meth:`~SimulationParquetWriter.finalize`,
        before the manifest (the commit point, always fsynced) is written,
        so every file a ``complete`` manifest lists is on stable storage;
        after a power cut mid-run, files and records not yet written back
        are rewritten by the resume. ``"file"``: fsync every file and its
        directory as it is written and the journal after every scenario (a
        power cut mid-run loses at most the scenario in flight per rank, at
        a large cost on slow disks). ``"none"``: no flush (benchmarks of
        the encoder; even a ``complete`` run may lose partitions to a power
        cut, which ``validate`` and a resume detect). After ``kill -9`` of
        any rank every mode loses at most the scenario in flight per rank.
        ``docs/journal.md`` states the guarantees and how they are tested.
    identity : RunIdentity, optional
        The run's identity (system, configuration with the seed, detail,
        scenario count), recorded in the manifest and every file's footer and
        checked on resume; default: the system's hash, no configuration hash,
        this config's detail and scenario count.
    break_claim : bool
        Break a claim on the output directory whose holder cannot be proved
        dead (it ran on another host): see :mod:`cobre_mpi_io.claim`.
    format : {"spec", "cobre-0.18"}
        The tables' columns: the spec's (default) or Cobre 0.18's
        (:mod:`cobre_mpi_io.formats`; ``costs`` then has stage rows only).
    """

    num_scenarios: int
    detail: str = "full"
    assignment: mpi.Assignment = "round-robin"
    queue_capacity: int = 64
    parquet: ParquetConfig = field(default_factory=ParquetConfig)
    resume: bool = False
    durability: str = "commit"
    identity: RunIdentity | None = None
    break_claim: bool = False
    format: str = DEFAULT_FORMAT

    def __post_init__(self) -> None:
        check_format(self.format)
        ident_cfg = self.identity.config if self.identity is not None else None
        recorded = ident_cfg.get("format", DEFAULT_FORMAT) if ident_cfg is not None else self.format
        if recorded != self.format:
            raise SchemaError("simulation config", "format", f"the run identity says format {recorded!r}, "
                                                             f"the config {self.format!r}")
        if self.detail not in DETAIL_LEVELS:
            raise SchemaError("simulation config", "detail", f"unknown detail level {self.detail!r}")
        if self.assignment not in ("round-robin", "block"):
            raise SchemaError("simulation config", "assignment", f"unknown assignment {self.assignment!r}")
        if not isinstance(self.num_scenarios, int) or self.num_scenarios < 1:
            raise SchemaError("simulation config", "num_scenarios", "must be a positive integer")
        if self.durability not in ("commit", "file", "none"):
            raise SchemaError("simulation config", "durability", f"unknown durability {self.durability!r}")
        if self.queue_capacity < 1:
            raise SchemaError("simulation config", "queue_capacity", "must be >= 1")
        ident = self.identity
        if ident is not None and (ident.detail, ident.num_scenarios) != (self.detail, self.num_scenarios):
            raise SchemaError("simulation config", "identity",
                              f"the run identity says detail={ident.detail!r} and {ident.num_scenarios} scenarios, "
                              f"the config detail={self.detail!r} and {self.num_scenarios}")


def tables_for_detail(system: System, detail: str) -> tuple[str, ...]:
    """Partitioned tables written per scenario at ``detail`` (:func:`cobre_mpi_io.schemas.tables_for_detail`)."""
    return _tables_for_detail(detail, system.simulation_tables, partitioned=True)


def rows_for_detail(system: System, name: str, detail: str, fmt: str = DEFAULT_FORMAT) -> int | None:
    """Rows of one partition of ``name`` at ``detail`` (None when variable).

    Parameters
    ----------
    system : System
        The system (stages, blocks, entities).
    name : str
        A partitioned simulation table, e.g. ``"hydros"`` or ``"costs"``.
    detail : str
        The output detail level; at ``"stage"`` only stage-level rows are
        written (one per stage for ``costs``, one per stage and hydro otherwise).

    Returns
    -------
    int or None
        Rows of one scenario's file of ``name``; ``None`` when the count
        varies by scenario (``generic_violations``). Format ``cobre-0.18``
        writes ``costs`` with stage rows only.
    """
    if detail == "stage" or (fmt != DEFAULT_FORMAT and name == "costs"):
        return system.num_stages * (1 if name == "costs" else len(system.hydros))
    return system.expected_rows(name)


_STOP = object()


@dataclass(frozen=True)
class _Pending:
    """A scenario waiting for the I/O thread: its Arrow tables and its totals row."""

    scenario_id: int
    totals: tuple[Any, ...]
    tables: tuple[tuple[str, pa.Table], ...]


def _as_output_error(exc: BaseException, what: str) -> OutputError:
    if isinstance(exc, (OutputError, OSError, pa.ArrowException, ValueError, TypeError, MemoryError)):
        return as_output_error(exc, what)
    # an exception of the caller (e.g. the producer of results): keep its text, kind "output"
    if isinstance(exc, KeyboardInterrupt):
        err = OutputError(f"{what}: interrupted (Ctrl-C or SIGINT)")
    else:
        err = OutputError(f"{what}: {type(exc).__name__}" + (f": {exc}" if str(exc) else ""))
    err.__cause__ = exc
    return err


class SimulationParquetWriter:
    """Write the simulation results of the scenarios this rank owns.

    Construction is collective over ``comm``: rank 0 checks the output
    directory (a non-empty one is refused unless ``config.resume``), and
    writes a ``running`` manifest before any partition is written; on
    resume every rank finds which of its scenarios are already complete.

    Parameters
    ----------
    output_dir : path-like
        Run output root; files go below ``output_dir/simulation``.
    system : System
        Entities, stages and block hours (derived columns, validation).
    config : SimulationConfig
        Run settings.
    comm : mpi4py communicator, optional
        Defaults to ``MPI.COMM_WORLD``; ``MPI.COMM_SELF`` for a serial run.

    Raises
    ------
    OutputError
        The same error on every rank when the directory is refused or the
        running manifest cannot be written.
    """

    def __init__(self, output_dir: str | Path, system: System, config: SimulationConfig, comm: mpi.Comm | None = None) -> None:
        self.system = system
        self.config = config
        self.comm = mpi.resolve_comm(comm)
        self.rank = mpi.rank_of(self.comm)
        self.world_size = mpi.size_of(self.comm)
        self.output_dir = Path(output_dir)
        self.sim_dir = simulation_dir(self.output_dir)
        self.tables = format_tables_for(config.format, tables_for_detail(system, config.detail))
        self.identity = config.identity or RunIdentity(system.system_hash, "", config.detail, config.num_scenarios)
        self._footer = self.identity.footer_metadata()
        self.started_at = utc_now()
        self._owned = mpi.owned_scenarios(config.num_scenarios, self.rank, self.world_size, config.assignment)
        self._owned_set = frozenset(self._owned)
        self._done: frozenset[int] = frozenset()
        self._resumed_files: tuple[FileRecord, ...] = ()
        self._accepted: set[int] = set()
        self._files: list[FileRecord] = []
        self._written: list[int] = []
        self._failures: list[Failure] = []
        self._errors: list[OutputError] = []
        self._pending_error: OutputError | None = None
        self._totals: list[tuple[Any, ...]] = []
        self._io_seconds = 0.0
        self._bytes = 0
        self._rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self._manifest: SimulationManifest | None = None
        self._lease: RunLease = acquire_run(self.comm, self.output_dir, self.identity,
                                            break_claim=config.break_claim, resume=config.resume)
        self._monitor = mpi.job_monitor(self.comm)
        try:
            self._journal: RankJournal = open_journal(self.comm, self.output_dir, self.identity.fingerprint)
        except BaseException:
            self._lease.release()
            raise
        try:
            self._start()
        except BaseException:
            self._journal.release()
            self._lease.release()
            raise
        # one collective at start: how many scenarios a resume already found, for rank 0's progress
        done_before = sum(mpi.allgather(self.comm, len(self._done)))
        self._progress = (ProgressReporter("simulation", config.num_scenarios, "scenarios", initial=done_before)
                          if self.rank == 0 else None)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.queue_capacity)
        self._thread = threading.Thread(target=self._drain, name=f"cobre-io-rank{self.rank}", daemon=True)
        self._thread.start()

    # --------------------------------------------------------------- start
    def _collective(self, fn: Any) -> Any:
        return mpi.run_agreed(self.comm, fn, str(self.sim_dir))

    def _start(self) -> None:
        cfg = self.config

        def preflight() -> None:
            if self.rank != 0:
                return
            if self.sim_dir.exists() and not cfg.resume and any(self.sim_dir.iterdir()):
                raise IoError(self.sim_dir, "not empty",
                              "output directory already holds a simulation; use --resume to continue "
                              "it, or choose an empty directory (two runs are never mixed)")
            ensure_dir(self.sim_dir)

        self._collective(preflight)

        if cfg.resume and self.tables:
            def scan() -> None:
                # another detail level or scenario count was refused at start (the run identity covers both);
                # a file is adopted only when its bytes match its journal record (never by its footer alone)
                expected = {t: rows_for_detail(self.system, t, cfg.detail, cfg.format) for t in self.tables}
                journal = read_journal(self.output_dir, self.identity.fingerprint)
                res = scan_scenarios(self.sim_dir, self._owned, self.tables, journal, expected,
                                     expected_fingerprint=self.identity.fingerprint)
                self._done = res.done
                self._resumed_files = res.files

            self._collective(scan)
        mpi.barrier(self.comm)  # everyone has read the previous manifest before rank 0 replaces it

        def running() -> None:
            if self.rank != 0:
                return
            # the marker goes first, durably: it never stands over a tree in change
            remove_success_marker(self.sim_dir)
            if cfg.resume:
                remove_stray_temps(self.sim_dir)
            write_simulation_manifest(self.sim_dir / MANIFEST_NAME, SimulationManifest(
                status="running", started_at=self.started_at, scenarios_total=cfg.num_scenarios,
                world_size=self.world_size, detail=cfg.detail, tables=self.tables,
                run_fingerprint=self.identity.fingerprint, run_identity=self.identity.to_dict()))
            # room for the final manifest even if the disk fills up during the run
            reserve_space(self.sim_dir / MANIFEST_RESERVE_NAME,
                          65536 + cfg.num_scenarios * (len(self.tables) * 120 + 32))

        self._collective(running)

    # ------------------------------------------------------------ producer
    @property
    def owned_scenarios(self) -> list[int]:
        """Scenario ids this rank owns, ascending."""
        return list(self._owned)

    def pending_scenarios(self) -> list[int]:
        """Owned scenarios still to write (all of them unless resuming)."""
        return [s for s in self._owned if s not in self._done]

    def _raise_pending(self) -> None:
        with self._lock:
            err, self._pending_error = self._pending_error, None
        if err is not None:
            raise err

    def record_failure(self, scenario_id: int | None, exc: BaseException) -> OutputError:
        """Record that ``scenario_id`` could not be produced (the run becomes ``partial``); returns the error."""
        err = _as_output_error(exc, f"scenario {scenario_id}")
        sid = int(scenario_id) if isinstance(scenario_id, (int, np.integer)) and scenario_id >= 0 else None
        with self._lock:
            self._failures.append(Failure(self.rank, sid, err.kind, str(err)))
            self._errors.append(err)
        return err

    def write_scenario(self, result: SimulationScenarioResult) -> bool:
        """Validate ``result`` and queue it for the I/O thread.

        Blocks while the queue is full (backpressure). The writer takes
        ownership of the arrays: do not modify them after the call.

        Returns
        -------
        bool
            True when queued, False when the scenario was already complete
            on disk (resume) and is skipped.

        Raises
        ------
        SchemaError
            Bad payload (nothing of it is written), a scenario this rank
            does not own, outside ``0..num_scenarios-1``, or given twice.
        OutputError
            An error of the I/O thread from an earlier scenario (each one
            is raised once, here or at :meth:`finalize`), before ``result``
            is taken: to go on, give ``result`` again. Also when another rank
            failed (:meth:`check_peers`).
        """
        if self._closed:
            raise OutputError("write_scenario after finalize")
        self.check_peers()
        self._raise_pending()
        if not isinstance(result, SimulationScenarioResult):
            raise SchemaError("write_scenario", "result",
                              f"expected a SimulationScenarioResult, got {type(result).__name__}")
        sid = result.scenario_id
        where = f"scenario_id={sid:04d}" if isinstance(sid, int) else f"scenario {sid!r}"
        try:
            if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)):
                raise SchemaError(where, "scenario_id", "scenario id must be an integer")
            sid = int(sid)
            if not 0 <= sid < self.config.num_scenarios:
                raise SchemaError(where, "scenario_id",
                                  f"outside 0..{self.config.num_scenarios - 1} (num_scenarios)")
            if sid not in self._owned_set:
                owner = mpi.owner_rank(sid, self.world_size, self.config.assignment,
                                       self.config.num_scenarios)
                raise SchemaError(where, "scenario_id", f"owned by rank {owner}, refused by rank {self.rank}")
            if sid in self._accepted:
                raise SchemaError(where, "scenario_id", "scenario given twice")
            if sid in self._done:
                self._accepted.add(sid)
                return False
            validated = validate_result(result, self.system, self.config.detail)
            pending = self._build(validated)
        except OutputError as exc:
            if isinstance(sid, int) and sid in self._owned_set and sid not in self._accepted:
                self.record_failure(sid, exc)
            raise
        self._accepted.add(sid)
        self._queue.put(pending)
        self._report_progress()
        return True

    def _report_progress(self, force: bool = False) -> None:
        """Non-blocking: this rank's count to rank 0; on rank 0, refresh the job-wide progress."""
        with self._lock:
            written = len(self._written)
        self._monitor.report_progress("simulation", written, force=force)
        if self._progress is not None:
            self._progress.update(self._progress.initial + self._monitor.progress_total("simulation"))

    def check_peers(self) -> None:
        """Raise if another rank has failed (a non-blocking probe, microseconds).

        :meth:`write_scenario` calls it; call it yourself between long
        computations so this rank stops taking new work within seconds of
        a peer's failure instead of at :meth:`finalize`.

        Raises
        ------
        OutputError
            Naming the rank, host and error that stopped the job (marked
            ``peer_failure``; :meth:`finalize` then records the run as
            ``failed`` with that rank's error).
        """
        peer = self._monitor.poll_failure()
        if peer is not None and peer[0] != self.rank:
            err = OutputError(f"rank {self.rank} stopped because {peer[1]}")
            err.peer_failure = True  # type: ignore[attr-defined]
            raise err

    def _build(self, vr: ValidatedResult) -> _Pending:
        """Arrow tables of a validated result (derived columns computed), on the producer's thread,
        so the I/O thread only encodes and writes."""
        tables = []
        for name in self.tables:
            try:
                tables.append((name, build_table(name, vr.tables[name], self.system, self.config.detail,
                                                 name in vr.canonical, scenario_id=vr.scenario_id,
                                                 fmt=self.config.format)))
            except Exception as exc:  # Arrow/NumPy failures become SerializationError
                raise _as_output_error(exc, f"scenario {vr.scenario_id} {name}") from exc
        return _Pending(vr.scenario_id, (vr.scenario_id, vr.total_cost,
                                         *(vr.category_costs[c] for c in COST_COMPONENTS)), tuple(tables))

    # ----------------------------------------------------------- I/O thread
    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            t0 = time.perf_counter()
            try:
                self._write(item)
            except BaseException as exc:  # noqa: BLE001 - surfaced on the producer side
                err = self.record_failure(item.scenario_id, exc)
                with self._lock:
                    if self._pending_error is None:
                        self._pending_error = err
            finally:
                self._io_seconds += time.perf_counter() - t0

    def _write(self, item: _Pending) -> None:
        try:
            for name, tbl in item.tables:
                rel = partition_file(name, item.scenario_id)
                rec = write_parquet(self.sim_dir / rel, tbl, table(name, self.config.format), self.config.parquet,
                                    root=self.sim_dir, durable=self.config.durability == "file",
                                    start_writeback=self.config.durability == "commit", metadata=self._footer)
                # record every file as soon as it exists, so the manifest accounts for the files of a
                # scenario that fails part-way (disk full on a later table); the scenario itself only
                # counts as written, below, once all its tables are
                self._journal.record(f"{SIMULATION_DIR}/{rec.path}", rec.bytes, rec.xxhash64, rec.rows)
                with self._lock:
                    self._files.append(rec)
                    self._bytes += rec.bytes
                    self._rows += rec.rows
        finally:
            # one append per scenario; "file": fsynced, so a resume after a power cut adopts it
            self._journal.flush(sync=self.config.durability == "file")
        with self._lock:
            self._written.append(item.scenario_id)
            self._totals.append(item.totals)

    # ------------------------------------------------------------- finalize
    @property
    def manifest(self) -> SimulationManifest | None:
        """The manifest :meth:`finalize` committed (also after it raised), or None before."""
        return self._manifest

    @property
    def rank_part(self) -> RankPart:
        """This rank's record of what it wrote so far."""
        with self._lock:
            return RankPart(self.rank, tuple(self._resumed_files) + tuple(self._files), tuple(self._written),
                            tuple(sorted(self._done)), tuple(self._failures), tuple(self._errors),
                            False, tuple(self._totals), self._io_seconds, self._bytes, self._rows)

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def finalize(self, error: BaseException | None = None) -> SimulationManifest:
        """Drain the queue and commit the run. Collective over ``comm``.

        Every rank contributes its :class:`RankPart`; rank 0 assembles and
        atomically writes ``simulation/_manifest.json`` (status ``complete``,
        ``partial`` or ``failed``) and then, only when complete, ``_SUCCESS``.

        Parameters
        ----------
        error : exception, optional
            Why this rank stopped early (the context manager passes the
            exception that left the ``with`` block): the run is ``failed``.

        Returns
        -------
        SimulationManifest
            On rank 0 the full manifest; on the other ranks the same
            manifest with ``files`` holding only this rank's files.

        Raises
        ------
        OutputError
            On every rank, the same error, when the status is not
            ``complete`` (the first failure, lowest rank first) or the
            manifest cannot be written.
        """
        if self._manifest is not None:
            return self._manifest
        self._closed = True
        self._stop_thread()
        try:  # the journal is what the commit reads: on disk before the commit (syncfs covers it in "commit")
            if self.config.durability == "file":
                self._journal.flush(sync=True)
            else:
                self._journal.close()  # every line written, and visible to rank 0 on NFS (close-to-open)
            if self.config.durability == "commit" and self._files:
                sync_filesystem(self.sim_dir)
        except OutputError as exc:
            self.record_failure(None, exc)
        part = self.rank_part
        if error is not None:
            err = _as_output_error(error, f"rank {self.rank} (host {mpi.hostname()})")
            if getattr(err, "peer_failure", False):  # stopped for another rank's failure: not a failure of its own
                part = replace(part, aborted=True)
            else:
                self._monitor.notify_failure(f"rank {self.rank} (host {mpi.hostname()}) failed: {err}")
                part = replace(part, aborted=True, errors=part.errors + (err,),
                               failures=part.failures + (Failure(self.rank, None, err.kind, str(err)),))
        self._report_progress(force=True)
        # no rank blocks in a collective while a peer still works or has died; rank 0 keeps reporting
        self._monitor.wait_all(on_poll=self._report_progress if self._progress is not None else None)
        parts = mpi.gather_to_root(self.comm, part)
        if self._progress is not None and parts is not None:  # exact job-wide count (counts may be in flight)
            self._progress.update(self._progress.initial + sum(len(p.scenarios_written) for p in parts))
        full: SimulationManifest | None = None

        def commit_on_root() -> tuple[SimulationManifest, OutputError | None]:
            nonlocal full
            assert parts is not None
            full, not_complete = self._commit(parts)
            # broadcast without the file list (it can hold 10^5 entries): every rank learns status,
            # counts and checksum; the other ranks then list only their own files
            return replace(full, files={}), not_complete

        try:
            shared, err_out = mpi.run_on_root(self.comm, commit_on_root, str(self.sim_dir / MANIFEST_NAME))
        finally:
            self._journal.release()
            self._lease.release()
            if self._progress is not None:
                self._progress.close()
        manifest = full if full is not None else replace(
            shared, files={r.path: FileEntry(r.rows, r.bytes, r.xxhash64) for r in part.files})
        self._manifest = manifest
        if err_out is not None:
            raise mpi.mark_agreed(err_out)
        return manifest

    def _commit(self, parts: list[RankPart]) -> tuple[SimulationManifest, OutputError | None]:
        cfg = self.config
        return commit(self.sim_dir, parts, CommitContext(
            cfg.num_scenarios, cfg.detail, self.tables, self.started_at, self.world_size, self.identity,
            cfg.parquet, durable=cfg.durability != "none"),
            journal=read_journal(self.output_dir, self.identity.fingerprint) if self._journal.enabled else None)

    # -------------------------------------------------------- context manager
    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._manifest is not None:
            return
        if exc is None:
            self.finalize()
        else:
            try:
                self.finalize(error=exc)
            except OutputError as agreed:
                if agreed is not exc:
                    raise agreed from exc

    def __del__(self) -> None:  # pragma: no cover - best effort: do not leave the thread blocked
        try:
            if getattr(self, "_thread", None) is not None and self._thread.is_alive():
                self._queue.put_nowait(_STOP)
        except Exception:  # noqa: BLE001, S110 - best effort in __del__
            pass

