"""The simulation commit point: from the ranks' records to ``_manifest.json`` and ``_SUCCESS`` (rank 0).

:func:`assemble_manifest` is pure (records in, manifest out, no I/O);
:func:`commit` is what rank 0 runs at
:meth:`~cobre_mpi_io.simulation.SimulationParquetWriter.finalize`: the
summary table (detail ``summary``), the check that every listed file exists
with its recorded size as rank 0 sees it, the manifest and, only when the
run is complete, ``_SUCCESS``.  ``cobre-mpi-io bench finalize`` times these
same functions.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..atomic import missing_files
from ..errors import IoError, ManifestError, OutputError
from ..identity import RunIdentity
from ..journal import JournalEntry, record_write
from ..layout import (
    MANIFEST_NAME,
    MANIFEST_RESERVE_NAME,
    SIMULATION_DIR,
    parse_partition_file,
    partition_file,
)
from ..manifest import (
    Failure,
    FileEntry,
    SimulationManifest,
    utc_now,
    write_simulation_manifest,
    write_success_marker,
)
from ..parquet import FileRecord, ParquetConfig, write_parquet
from ..schemas import table

__all__ = ["RankPart", "assemble_manifest", "commit", "journaled_files", "merged_files"]

SUMMARY_FILE = "scenario_totals.parquet"


@dataclass(frozen=True)
class RankPart:
    """One rank's record of what it wrote: gathered by rank 0 at finalize (records, never data)."""

    rank: int
    files: tuple[FileRecord, ...]
    scenarios_written: tuple[int, ...]
    scenarios_resumed: tuple[int, ...]
    failures: tuple[Failure, ...]
    errors: tuple[OutputError, ...]
    aborted: bool
    totals: tuple[tuple[Any, ...], ...]
    io_seconds: float
    bytes: int
    rows: int


@dataclass(frozen=True)
class CommitContext:
    """What the commit needs besides the ranks' records (the writer's settings)."""

    num_scenarios: int
    detail: str
    tables: tuple[str, ...]
    started_at: str
    world_size: int
    identity: RunIdentity
    parquet: ParquetConfig
    durable: bool = True


def merged_files(parts: Sequence[RankPart]) -> dict[str, FileEntry]:
    """Every file of every rank, ``path -> FileEntry``."""
    return {r.path: FileEntry(r.rows, r.bytes, r.xxhash64) for p in parts for r in p.files}


def journaled_files(parts: Sequence[RankPart], journal: Mapping[str, JournalEntry]) -> tuple[dict[str, FileEntry],
                                                                                               list[str]]:
    """The files of the ranks' records, as the run's journal records them (pure: no I/O).

    Parameters
    ----------
    parts : sequence of RankPart
        Every rank's record: which files it wrote or adopted (paths relative to ``simulation/``).
    journal : mapping of str to JournalEntry
        :func:`~cobre_mpi_io.journal.read_journal` of ``OUT`` (paths relative to ``OUT``).

    Returns
    -------
    (dict, list of str)
        ``path -> FileEntry`` of every file whose journal record is the one
        its rank reported (bytes and xxh64), and the paths whose record is
        missing or differs (the journal did not reach the directory rank 0
        sees): their scenarios are not complete.
    """
    files: dict[str, FileEntry] = {}
    unrecorded: list[str] = []
    for p in parts:
        for r in p.files:
            e = journal.get(f"{SIMULATION_DIR}/{r.path}")
            if e is None or (e.bytes, e.xxhash64) != (r.bytes, r.xxhash64):
                unrecorded.append(r.path)
            else:
                files[r.path] = FileEntry(e.rows if e.rows is not None else r.rows, e.bytes, e.xxhash64)
    return files, unrecorded


def assemble_manifest(parts: Sequence[RankPart], files: Mapping[str, FileEntry], ctx: CommitContext,
                      lost: Collection[str] = ()) -> tuple[SimulationManifest, OutputError | None]:
    """The manifest of a run from its records (pure: no I/O).

    Parameters
    ----------
    parts : sequence of RankPart
        Every rank's record.
    files : mapping
        Every file to list (:func:`merged_files`, plus the summary table).
    ctx : CommitContext
        The run's settings.
    lost : collection of str
        Listed files that rank 0 cannot see (or of another size): their
        scenarios are not complete, and the run is not ``complete``.

    Returns
    -------
    (SimulationManifest, OutputError or None)
        The manifest, and the error to raise on every rank when it is not
        ``complete`` (the lowest rank's first error, with the counts).
    """
    failures = sorted((f for p in parts for f in p.failures),
                      key=lambda f: (f.rank, -1 if f.scenario_id is None else f.scenario_id))
    errors = [e for p in sorted(parts, key=lambda p: p.rank) for e in p.errors]
    present = {s for p in parts for s in p.scenarios_written + p.scenarios_resumed}
    if ctx.tables:
        complete = sorted(s for s in present if all(partition_file(t, s) in files for t in ctx.tables))
    else:
        complete = sorted(present)
    failed_ids = {f.scenario_id for f in failures if f.scenario_id is not None} - set(complete)
    if lost:  # listed by a rank but not (or not so) in the directory rank 0 sees: never "complete"
        lost_sids = {parsed[1] for f in lost if (parsed := parse_partition_file(f)) is not None}
        complete = [s for s in complete if s not in lost_sids]
        shown = ", ".join(sorted(lost)[:5]) + (" ..." if len(lost) > 5 else "")
        failures.append(Failure(-1, None, "io", f"{len(lost)} file(s) written by a rank are missing, differ in "
                                                f"size or lack their journal record as rank 0 sees them: {shown}",
                                host=None))
        errors.append(IoError(min(lost), "missing", f"{len(lost)} file(s) a rank wrote are not (or not so) in the "
                                                    "directory or the run journal rank 0 sees (is the output "
                                                    "directory shared by every host?)"))
    missing = ctx.num_scenarios - len(complete)
    if any(p.aborted for p in parts):
        status = "failed"
    elif missing:
        status = "partial"
        never = missing - len(failed_ids)
        if never > 0:
            failures.append(Failure(-1, None, "manifest", f"{never} scenario(s) were never written", host=None))
    else:
        status = "complete"
    manifest = SimulationManifest(
        status=status, started_at=ctx.started_at, completed_at=utc_now(),
        scenarios_total=ctx.num_scenarios, scenarios_completed=len(complete), scenarios_failed=len(failed_ids),
        partitions_written=tuple(f"scenario_id={s:04d}/" for s in complete) if ctx.tables else (),
        world_size=ctx.world_size,
        ranks_participated=sum(1 for p in parts if p.scenarios_written or p.scenarios_resumed or p.files),
        failures=tuple(failures), detail=ctx.detail, tables=ctx.tables,
        run_fingerprint=ctx.identity.fingerprint, run_identity=ctx.identity.to_dict(),
    ).with_files(files)
    if status == "complete":
        return manifest, None
    first = copy.copy(errors[0]) if errors else ManifestError("simulation", "run incomplete")
    # What happened, once: the counts, then the first error (which names its rank and host).
    counts = f"{ctx.num_scenarios - missing} of {ctx.num_scenarios} scenarios complete"
    if failed_ids:
        counts += f", {len(failed_ids)} failed"
    first.message = f"simulation {status} ({counts}): {first.message}"
    first.args = (first.message,)
    return manifest, first


def _summary_table(parts: Sequence[RankPart]) -> pa.Table | None:
    totals = sorted((t for p in parts for t in p.totals), key=lambda t: t[0])
    if not totals:
        return None
    st = table("scenario_totals")
    cols = list(zip(*totals))
    return pa.Table.from_arrays([pa.array(np.asarray(c, dtype=col.numpy_dtype)) for c, col in zip(cols, st.columns)],
                                schema=st.arrow_schema)


def commit(sim_dir: Path, parts: Sequence[RankPart], ctx: CommitContext,
           journal: Mapping[str, JournalEntry] | None = None) -> tuple[SimulationManifest, OutputError | None]:
    """Rank 0's commit: summary table, file check, manifest, and ``_SUCCESS`` only when complete.

    The manifest lists the files as the run's journal records them: a file a
    rank reported whose record rank 0 cannot read in the journal (or whose
    record differs) is treated like a missing file, so a ``complete``
    manifest never lists a file the journal does not vouch for.

    Parameters
    ----------
    sim_dir : Path
        ``OUT/simulation``.
    parts : sequence of RankPart
        Every rank's record (gathered).
    ctx : CommitContext
        The run's settings.
    journal : mapping of str to JournalEntry, optional
        :func:`~cobre_mpi_io.journal.read_journal` of ``OUT``, read after
        every rank flushed its journal; None (``bench finalize``): the
        ranks' records as they are.

    Returns
    -------
    (SimulationManifest, OutputError or None)
        As :func:`assemble_manifest`; the manifest is on disk.

    Raises
    ------
    OutputError
        When the manifest (or the summary table) cannot be written.
    """
    (sim_dir / MANIFEST_RESERVE_NAME).unlink(missing_ok=True)  # the room held for this manifest
    unrecorded: list[str] = []
    if journal is None:
        files = merged_files(parts)
    else:
        files, unrecorded = journaled_files(parts, journal)
    if ctx.detail == "summary":
        tbl = _summary_table(parts)
        if tbl is not None:
            rec = write_parquet(sim_dir / SUMMARY_FILE, tbl, table("scenario_totals"), ctx.parquet, root=sim_dir,
                                durable=ctx.durable, metadata=ctx.identity.footer_metadata())
            record_write(sim_dir / SUMMARY_FILE, rec.bytes, rec.xxhash64, rec.rows, sync=ctx.durable)
            files[rec.path] = FileEntry(rec.rows, rec.bytes, rec.xxhash64)
    lost = sorted(set(missing_files(sim_dir, {path: e.bytes for path, e in files.items()})) | set(unrecorded))
    manifest, err = assemble_manifest(parts, files, ctx, lost)
    write_simulation_manifest(sim_dir / MANIFEST_NAME, manifest)
    if manifest.status == "complete":
        write_success_marker(sim_dir)
    return manifest, err
