"""Training Parquet tables (SPEC §5): convergence, iteration timing, rank timing.

:class:`TrainingParquetWriter` keeps the (small) training history in memory
as columnar lists and rewrites the files atomically at each
:meth:`~TrainingParquetWriter.checkpoint` and at
:meth:`~TrainingParquetWriter.finalize`, so the history up to the last
checkpoint survives a crash:

- ``training/convergence.parquet`` and ``training/timing/iterations.parquet``
  (schemas ``convergence`` and ``iteration_timing``, one row per iteration)
  are written by rank 0 only;
- ``training/timing/mpi_ranks.parquet/part-rank-{rank:04d}.parquet``
  (schema ``rank_timing``, including the ``rank`` column) is written by
  every rank for its own rows; the directory reads as one table.

Column lists come from :mod:`cobre_mpi_io.schemas`; the record dataclasses
are checked against them at import time, so a schema change cannot silently
drop a column.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from .. import mpi
from ..atomic import missing_files
from ..claim import acquire_run
from ..errors import IoError, SchemaError
from ..formats import to_format
from ..identity import RunIdentity
from ..journal import RankJournal, open_journal
from ..manifest import withdraw_training_completion
from ..parquet import FileRecord, ParquetConfig, write_parquet
from ..schemas import DEFAULT_FORMAT, TableSchema, check_format, table

__all__ = [
    "CONVERGENCE_PATH",
    "ITERATION_TIMING_PATH",
    "RANK_TIMING_DIR",
    "IterationRecord",
    "RankTimingRecord",
    "TrainingParquetWriter",
    "rank_timing_path",
]

CONVERGENCE_PATH: Final = "training/convergence.parquet"
ITERATION_TIMING_PATH: Final = "training/timing/iterations.parquet"
RANK_TIMING_DIR: Final = "training/timing/mpi_ranks.parquet"


def rank_timing_path(rank: int) -> str:
    """Path of ``rank``'s timing part file, relative to the output directory."""
    return f"{RANK_TIMING_DIR}/part-rank-{rank:04d}.parquet"


@dataclass(frozen=True)
class IterationRecord:
    """One training iteration: a ``convergence`` row and an ``iteration_timing`` row.

    Field names are the column names of both schemas (``iteration`` is shared).
    The upper-bound fields and ``gap_percent`` are ``None`` (null in Parquet)
    when upper-bound evaluation is off or the gap is not computable; NaN is
    treated as null there.
    """

    iteration: int
    lower_bound: float
    upper_bound_mean: float | None = None
    upper_bound_std: float | None = None
    gap_percent: float | None = None
    cuts_added: int = 0
    cuts_removed: int = 0
    cuts_active: int = 0
    time_forward_ms: int = 0
    time_backward_ms: int = 0
    time_total_ms: int = 0
    memory_peak_mb: int = 0
    forward_passes: int = 0
    lp_solves: int = 0
    forward_solve_ms: int = 0
    forward_sample_ms: int = 0
    backward_solve_ms: int = 0
    backward_cut_ms: int = 0
    cut_selection_ms: int = 0
    mpi_allreduce_ms: int = 0
    mpi_broadcast_ms: int = 0
    io_write_ms: int = 0
    overhead_ms: int = 0


@dataclass(frozen=True)
class RankTimingRecord:
    """One ``rank_timing`` row: what one rank did in one iteration."""

    iteration: int
    rank: int
    forward_time_ms: int = 0
    backward_time_ms: int = 0
    communication_time_ms: int = 0
    idle_time_ms: int = 0
    lp_solves: int = 0
    scenarios_processed: int = 0


def _check_record_fields() -> None:
    it_fields = {f.name for f in fields(IterationRecord)}
    want = set(table("convergence").names) | set(table("iteration_timing").names)
    rk_fields = [f.name for f in fields(RankTimingRecord)]
    if it_fields != want or rk_fields != table("rank_timing").names:  # pragma: no cover - import-time guard
        raise SchemaError("training", None, "record dataclasses do not match the training schemas")


_check_record_fields()


class _Columns:
    """Columnar buffers for one table: one Python list per column."""

    def __init__(self, schema: TableSchema) -> None:
        self.schema = schema
        self.data: dict[str, list[Any]] = {c.name: [] for c in schema.columns}

    def __len__(self) -> int:
        return len(self.data[self.schema.columns[0].name])

    def append(self, record: Any, file: str) -> None:
        row = {}
        for c in self.schema.columns:
            v = getattr(record, c.name)
            if c.type_code == "f64":
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    if not c.nullable:
                        raise SchemaError(file, c.name, f"null/NaN in a non-nullable column (iteration "
                                                        f"{getattr(record, 'iteration', '?')})")
                    v = None
                else:
                    v = float(v)
            else:
                if v is None:
                    if not c.nullable:
                        raise SchemaError(file, c.name, "null in a non-nullable column")
                elif isinstance(v, bool) or int(v) != v:
                    raise SchemaError(file, c.name, f"expected an integer, got {v!r}")
                else:
                    v = int(v)
            row[c.name] = v
        for k, v in row.items():
            self.data[k].append(v)

    def to_table(self, file: str) -> pa.Table:
        arrays = []
        for c in self.schema.columns:
            try:
                arrays.append(pa.array(self.data[c.name], type=c.arrow_type))
            except (pa.ArrowException, OverflowError) as exc:
                raise SchemaError(file, c.name, f"value out of range for {c.arrow_type}: {exc}") from exc
        return pa.Table.from_arrays(arrays, schema=self.schema.arrow_schema)


class TrainingParquetWriter:
    """Writer of the training Parquet tables of one run (SPEC §5).

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``; files go below ``OUT/training/``.
    comm : MPI communicator, optional
        Default ``MPI.COMM_WORLD``. Only :meth:`finalize` is collective.
    config : ParquetConfig, optional
        Parquet settings (SPEC §3 defaults).
    fmt : {"spec", "cobre-0.18"}
        Columns of ``convergence.parquet`` and ``timing/iterations.parquet``:
        the spec's (default) or Cobre 0.18's (:mod:`cobre_mpi_io.formats`);
        the records are the same either way.

    Notes
    -----
    Every rank may call :meth:`write_iteration` (the rows are kept on every
    rank, only rank 0 writes them); :meth:`write_rank_timing` takes this
    rank's rows only. :meth:`checkpoint` is collective-free: each rank
    rewrites only its own files, so it is safe from a signal-triggered
    checkpoint path.
    """

    def __init__(self, output_dir: str | os.PathLike[str], comm: mpi.Comm | None = None, *,
                 config: ParquetConfig | None = None, identity: RunIdentity | None = None,
                 break_claim: bool = False, fmt: str = DEFAULT_FORMAT) -> None:
        self.format = check_format(fmt)
        self.output_dir = Path(output_dir)
        self.comm = mpi.resolve_comm(comm)
        self.identity = identity
        self._footer = identity.footer_metadata() if identity is not None else None
        self._lease = acquire_run(self.comm, self.output_dir, identity, break_claim=break_claim,
                                  resume=False)  # standalone: a finished run is refused
        self.rank = mpi.rank_of(self.comm)
        self.world_size = mpi.size_of(self.comm)
        try:
            self._journal: RankJournal = open_journal(self.comm, self.output_dir,
                                                      identity.fingerprint if identity is not None else None)
            try:
                # before anything of training is rewritten (a resumed complete run trains again):
                # no _SUCCESS and no "complete" status stands over the files in change
                mpi.run_on_root(self.comm, lambda: withdraw_training_completion(self.output_dir / "training")
                                if self.rank == 0 else None, str(self.output_dir / "training"))
            except BaseException:
                self._journal.release()
                raise
        except BaseException:
            self._lease.release()
            raise
        self.config = config or ParquetConfig()
        self._convergence = _Columns(table("convergence"))
        self._iteration_timing = _Columns(table("iteration_timing"))
        self._rank_timing = _Columns(table("rank_timing"))
        self._last_iteration = 0
        self._last_rank_iteration = 0
        self._finalized: list[FileRecord] | None = None

    # ------------------------------------------------------------ recording
    @property
    def iterations(self) -> int:
        """Number of iteration rows recorded so far."""
        return len(self._convergence)

    @property
    def iteration_records(self) -> tuple[IterationRecord, ...]:
        """The recorded iterations, rebuilt from the columnar buffers."""
        conv, tim = self._convergence.data, self._iteration_timing.data
        names = [f.name for f in fields(IterationRecord)]
        return tuple(IterationRecord(**{n: (conv[n][i] if n in conv else tim[n][i]) for n in names})
                     for i in range(len(self._convergence)))

    @property
    def rank_timing_records(self) -> tuple[RankTimingRecord, ...]:
        """This rank's recorded timing rows."""
        d = self._rank_timing.data
        return tuple(RankTimingRecord(**{k: d[k][i] for k in d}) for i in range(len(self._rank_timing)))

    def write_iteration(self, record: IterationRecord) -> None:
        """Record one iteration (a convergence row and an iteration-timing row).

        Parameters
        ----------
        record : IterationRecord
            Iteration numbers must start at 1 and increase strictly.

        Raises
        ------
        SchemaError
            Out-of-order iteration, null/NaN in a non-nullable field, non-integer
            count; nothing is recorded then.
        """
        self._check_open()
        if record.iteration <= self._last_iteration:
            raise SchemaError(CONVERGENCE_PATH, "iteration",
                              f"iteration {record.iteration} after {self._last_iteration}: must increase")
        if record.iteration < 1:
            raise SchemaError(CONVERGENCE_PATH, "iteration", "iterations are 1-based")
        # validate both rows before appending either
        probe_c, probe_t = _Columns(table("convergence")), _Columns(table("iteration_timing"))
        probe_c.append(record, CONVERGENCE_PATH)
        probe_t.append(record, ITERATION_TIMING_PATH)
        for src, dst in ((probe_c, self._convergence), (probe_t, self._iteration_timing)):
            for k, v in src.data.items():
                dst.data[k].extend(v)
        self._last_iteration = record.iteration

    def write_rank_timing(self, records: RankTimingRecord | Iterable[RankTimingRecord]) -> None:
        """Record this rank's timing rows.

        Parameters
        ----------
        records : RankTimingRecord or iterable of them
            Rows whose ``rank`` is this rank; iterations must increase.

        Raises
        ------
        SchemaError
            A row for another rank, out-of-order iteration or bad value; none
            of ``records`` is recorded then.
        """
        self._check_open()
        recs: Sequence[RankTimingRecord] = [records] if isinstance(records, RankTimingRecord) else list(records)
        file = rank_timing_path(self.rank)
        probe = _Columns(table("rank_timing"))
        last = self._last_rank_iteration
        for r in recs:
            if r.rank != self.rank:
                raise SchemaError(file, "rank", f"rank {self.rank} was given a row of rank {r.rank}")
            if r.iteration <= last or r.iteration < 1:
                raise SchemaError(file, "iteration", f"iteration {r.iteration} after {last}: must increase")
            if r.scenarios_processed < 0:
                raise SchemaError(file, "scenarios_processed", "negative count")
            probe.append(r, file)
            last = r.iteration
        for k, v in probe.data.items():
            self._rank_timing.data[k].extend(v)
        self._last_rank_iteration = last

    # -------------------------------------------------------------- writing
    def checkpoint(self) -> list[FileRecord]:
        """Rewrite this rank's files atomically with everything recorded so far.

        Collective-free: rank 0 writes the convergence and iteration-timing
        files and its part file; every other rank writes only its part file.

        Returns
        -------
        list of FileRecord
            What this rank wrote (paths relative to ``output_dir``).

        Raises
        ------
        SchemaError, SerializationError, IoError
        """
        out: list[FileRecord] = []
        root = self.output_dir
        try:
            if self.rank == 0:
                for cols, rel in ((self._convergence, CONVERGENCE_PATH),
                                  (self._iteration_timing, ITERATION_TIMING_PATH)):
                    name = cols.schema.name
                    out.append(write_parquet(root / rel, to_format(cols.to_table(rel), name, self.format),
                                             table(name, self.format), self.config, root=root,
                                             metadata=self._footer))
                    self._journal.record(rel, out[-1].bytes, out[-1].xxhash64, out[-1].rows)
            rel = rank_timing_path(self.rank)
            out.append(write_parquet(root / rel, self._rank_timing.to_table(rel), self._rank_timing.schema,
                                     self.config, root=root, metadata=self._footer))
            self._journal.record(rel, out[-1].bytes, out[-1].xxhash64, out[-1].rows)
        finally:
            self._journal.flush(sync=True)  # the files are fsynced: their records too
        return out

    def finalize(self) -> list[FileRecord]:
        """Write the final versions of the training tables.

        Collective over ``comm``: every rank writes its own files, then all
        ranks agree; rank 0 also removes part files of ranks that do not
        exist in this run (left by an earlier run with more ranks).

        Returns
        -------
        list of FileRecord
            Every training file written by any rank, on every rank, sorted by
            path. Calling it again returns the same list without writing.

        Raises
        ------
        OutputError
            The same error on every rank when any rank failed.
        """
        if self._finalized is not None:
            return list(self._finalized)
        try:
            mine = mpi.run_agreed(self.comm, self._write_final, "training tables")
            every = sorted((r for part in mpi.allgather(self.comm, mine) for r in part), key=lambda r: r.path)
            # the commit checks what it commits: every rank's files, as rank 0 sees them
            mpi.run_agreed(self.comm, lambda: self._check_present(every) if self.rank == 0 else None,
                           "training tables")
        finally:
            self._journal.release()
            self._lease.release()
        self._finalized = every
        return list(self._finalized)

    def _write_final(self) -> list[FileRecord]:
        mine = self.checkpoint()
        if self.rank == 0:
            self._remove_stale_parts()
        return mine

    def _check_present(self, records: Sequence[FileRecord]) -> None:
        lost = missing_files(self.output_dir, {r.path: r.bytes for r in records})
        if lost:
            raise IoError(self.output_dir / lost[0], "missing",
                          f"{len(lost)} training file(s) written by a rank are not in the directory rank 0 sees "
                          f"({', '.join(lost[:5])}): is the output directory shared by every host?")

    def _remove_stale_parts(self) -> None:
        d = self.output_dir / RANK_TIMING_DIR
        if not d.is_dir():
            return
        for p in d.glob("part-rank-*.parquet"):
            stem = p.name[len("part-rank-"):-len(".parquet")]
            if stem.isdigit() and int(stem) >= self.world_size:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                self._journal.record_removed([p])
        self._journal.flush(sync=True)

    def _check_open(self) -> None:
        if self._finalized is not None:
            raise SchemaError("training", None, "the training writer is already finalized")
