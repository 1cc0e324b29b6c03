"""Finding what an earlier (interrupted) run already wrote, by its journal.

Used by ``--resume``: each rank checks the scenarios it owns.  A scenario
counts as done when every table file it needs has a record in the run's
journal (:mod:`cobre_mpi_io.journal`) with the expected row count and the
bytes on disk match that record: same size and same xxh64 of the whole file
(:func:`~cobre_mpi_io.journal.verify_entry`).  Nothing is adopted by its
footer, its size or a manifest alone: a file swapped with another
scenario's, overwritten with another table's, emptied, or with zeroed
blocks inside its data pages (a lost unflushed write) fails the check, and
its scenario is written again.

A file that fails the check is about to be overwritten: when its Parquet
footer reads and carries another run's fingerprint
(:data:`~cobre_mpi_io.identity.FOOTER_KEY`), or none, the scan refuses with
a :class:`ManifestError` naming it instead: a file of another run is never
adopted or overwritten.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ..errors import ManifestError
from ..identity import FOOTER_KEY
from ..journal import JournalEntry, verify_entry
from ..layout import SIMULATION_DIR, partition_file
from ..parquet import FileRecord

__all__ = ["ScanResult", "scan_scenarios"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    """Scenarios found complete, with the records of their files."""

    done: frozenset[int]
    files: tuple[FileRecord, ...]


def _footer(path: Path) -> tuple[int, str | None] | None:
    """``(rows, run fingerprint)`` from a Parquet footer; None when the footer does not read."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):  # a FIFO would block the reader; a symlink is not a file of ours
            return None
        meta = pq.read_metadata(path)
    except Exception:  # noqa: BLE001 - any unreadable footer means "not complete"
        return None
    kv = meta.metadata or {}
    fp = kv.get(FOOTER_KEY.encode())
    return meta.num_rows, fp.decode("utf-8", "replace") if fp is not None else None


def _check_fingerprint(path: Path, found: str | None, expected: str) -> None:
    if found != expected:
        what = f"run fingerprint {found}" if found is not None else "no run fingerprint (an older version or " \
                                                                    "another tool)"
        raise ManifestError(str(path), f"cannot resume: this file was written by another run: it carries {what}, "
                                       f"this run's is {expected}; resume only with the arguments of the "
                                       "original run, or use an empty output directory")


def _candidate(entry: JournalEntry | None, expected_rows: int | None) -> JournalEntry | None:
    """``entry`` when it could be adopted (a record with the expected row count), else None."""
    if entry is None or (expected_rows is not None and entry.rows is not None and entry.rows != expected_rows):
        return None
    return entry


def _verified(output_dir: Path, entries: list[JournalEntry], threads: int) -> set[str]:
    """Paths of ``entries`` whose bytes on disk match; on ``threads`` threads from 64 files up (reads and
    xxh64 release the GIL: the latency of a network or parallel filesystem is hidden)."""
    if len(entries) < 64 or threads <= 1:
        return {e.path for e in entries if verify_entry(output_dir, e)}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        oks = pool.map(lambda e: verify_entry(output_dir, e), entries, chunksize=16)
        return {e.path for e, ok in zip(entries, oks) if ok}


def _refuse_foreign(path: Path, expected_fingerprint: str) -> None:
    """A file of an incomplete scenario is about to be overwritten: refuse if another run wrote it."""
    footer = _footer(path)
    if footer is not None:  # missing or unreadable: nothing anyone could lose
        _check_fingerprint(path, footer[1], expected_fingerprint)


def scan_scenarios(sim_dir: Path, scenario_ids: Iterable[int], tables: Iterable[str],
                   journal: Mapping[str, JournalEntry],
                   expected_rows: Mapping[str, int | None] | None = None,
                   expected_fingerprint: str | None = None, threads: int = 8) -> ScanResult:
    """Which of ``scenario_ids`` are complete in ``sim_dir``, by the run's journal.

    Parameters
    ----------
    sim_dir : Path
        ``OUT/simulation``.
    scenario_ids : iterable of int
        Scenarios to check (a rank checks the ones it owns).
    tables : iterable of str
        Tables every scenario must have.
    journal : mapping of str to JournalEntry
        The run's journal (:func:`~cobre_mpi_io.journal.read_journal` of ``OUT``).
    expected_rows : mapping, optional
        Rows per table file; a record of another row count is not adopted.
    expected_fingerprint : str, optional
        The resuming run's :attr:`RunIdentity.fingerprint
        <cobre_mpi_io.identity.RunIdentity.fingerprint>`.  When given, every
        existing file that is not adopted (it would be overwritten) and whose
        footer reads must carry it.
    threads : int, default 8
        Threads verifying the files (from 64 files up; ``1``: none).

    Returns
    -------
    ScanResult
        The complete scenarios and the records of their files (paths relative to ``sim_dir``).

    Raises
    ------
    ManifestError
        ``expected_fingerprint`` is given and a file to be overwritten
        carries another fingerprint, or none: it names the file and both
        fingerprints.
    """
    tables = tuple(tables)
    rows = expected_rows or {}
    out = sim_dir.parent
    scenario_ids = list(scenario_ids)
    wanted = {(sid, t): _candidate(journal.get(f"{SIMULATION_DIR}/{partition_file(t, sid)}"), rows.get(t))
              for sid in scenario_ids for t in tables}
    ok = _verified(out, [e for e in wanted.values() if e is not None], threads)
    done: set[int] = set()
    files: list[FileRecord] = []
    for sid in scenario_ids:
        recs: list[FileRecord] = []
        complete = True
        for t in tables:
            rel = partition_file(t, sid)
            e = wanted[sid, t]
            if complete and e is not None and e.path in ok:
                recs.append(FileRecord(rel, e.rows if e.rows is not None else (rows.get(t) or 0), e.bytes,
                                       e.xxhash64))
                continue
            complete = False
            if expected_fingerprint is not None:
                _refuse_foreign(sim_dir / rel, expected_fingerprint)
        if complete:  # the verified files of an incomplete scenario match this run's records: they are its own
            done.add(sid)
            files.extend(recs)
    return ScanResult(frozenset(done), tuple(files))
