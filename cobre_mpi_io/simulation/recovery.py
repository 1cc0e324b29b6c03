"""Finding what an earlier (interrupted) run already wrote.

Used by ``--resume``: each rank checks the scenarios it owns.  A scenario counts as done when every table file it
needs exists and matches the previous manifest's record (size and
xxhash64) when there is one; without a record (no usable manifest, or a
``running`` one that lists no files) a file counts when its Parquet footer
reads, its row count is right and it carries the run's fingerprint.

A previous manifest that cannot be used for any reason (missing, not JSON,
valid JSON of the wrong shape, unknown values) is treated as absent: the
scan rebuilds the state from the partitions themselves, and the
fingerprint in each file's footer
(:data:`~cobre_mpi_io.identity.FOOTER_KEY`) tells whether the file belongs
to the run being resumed.  A file of another run is never adopted or
overwritten: the scan refuses with a :class:`ManifestError` naming it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ..errors import IoError, ManifestError
from ..hashing import xxh64_file
from ..identity import FOOTER_KEY
from ..layout import MANIFEST_NAME, partition_file
from ..manifest import FileEntry, SimulationManifest, read_simulation_manifest
from ..parquet import FileRecord

__all__ = ["ScanResult", "read_previous_manifest", "scan_scenarios"]

_log = logging.getLogger(__name__)


def read_previous_manifest(sim_dir: Path, *, warn: bool = True) -> SimulationManifest | None:
    """The existing ``_manifest.json`` of ``sim_dir``, or None if missing or unusable.

    Unusable means any :class:`ManifestError` (not JSON, a field of the wrong
    type or value, inconsistent counts) or :class:`IoError` (cannot be
    read); unless ``warn`` is False (every rank but one, so a large job logs
    it once) the reason is logged as a warning (logger
    ``cobre_mpi_io.simulation.recovery``), and the caller rebuilds from the
    partitions.
    """
    try:
        return read_simulation_manifest(sim_dir / MANIFEST_NAME)
    except (ManifestError, IoError) as exc:
        if warn and (sim_dir / MANIFEST_NAME).exists():
            _log.warning("previous manifest unusable, rebuilding from the partitions: %s", exc)
        return None


@dataclass(frozen=True)
class ScanResult:
    """Scenarios found complete, with the records of their files."""

    done: frozenset[int]
    files: tuple[FileRecord, ...]


def _footer(path: Path) -> tuple[int, str | None] | None:
    """``(rows, run fingerprint)`` from a Parquet footer; None when the footer does not read."""
    try:
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


def _file_ok(path: Path, rel: str, prev: Mapping[str, FileEntry] | None, expected_rows: int | None,
             expected_fingerprint: str | None) -> FileRecord | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    entry = prev.get(rel) if prev is not None else None
    if entry is not None:
        if entry.bytes != st.st_size:
            return None
        size, digest = xxh64_file(path)
        return FileRecord(rel, entry.rows, size, digest) if digest == entry.xxhash64 else None
    footer = _footer(path)
    if footer is None:
        return None
    rows, fingerprint = footer
    if expected_fingerprint is not None:
        _check_fingerprint(path, fingerprint, expected_fingerprint)
    if expected_rows is not None and rows != expected_rows:
        return None
    size, digest = xxh64_file(path)
    return FileRecord(rel, rows, size, digest)


def _refuse_foreign(path: Path, expected_fingerprint: str) -> None:
    """A file of an incomplete scenario is about to be overwritten: refuse if another run wrote it."""
    footer = _footer(path)
    if footer is not None:  # missing or unreadable: nothing anyone could lose
        _check_fingerprint(path, footer[1], expected_fingerprint)


def scan_scenarios(sim_dir: Path, scenario_ids: Iterable[int], tables: Iterable[str],
                   previous: SimulationManifest | None,
                   expected_rows: Mapping[str, int | None] | None = None,
                   expected_fingerprint: str | None = None) -> ScanResult:
    """Which of ``scenario_ids`` are complete in ``sim_dir``.

    Parameters
    ----------
    sim_dir : Path
        ``OUT/simulation``.
    scenario_ids : iterable of int
        Scenarios to check (a rank checks the ones it owns).
    tables : iterable of str
        Tables every scenario must have.
    previous : SimulationManifest or None
        The earlier run's manifest; its records are authoritative when present.
    expected_rows : mapping, optional
        Rows per table file, checked when there is no manifest record.
    expected_fingerprint : str, optional
        The resuming run's :attr:`RunIdentity.fingerprint
        <cobre_mpi_io.identity.RunIdentity.fingerprint>`.  When given, every
        existing file without a manifest record whose footer reads must carry
        it (files of incomplete scenarios too, as they would be overwritten).

    Returns
    -------
    ScanResult
        The complete scenarios and the records of their files.

    Raises
    ------
    ManifestError
        ``expected_fingerprint`` is given and a file carries another
        fingerprint, or none: it names the file and both fingerprints.
    IoError
        A file exists but cannot be examined.
    """
    tables = tuple(tables)
    rows = expected_rows or {}
    prev = dict(previous.files) if previous is not None and previous.files else None
    done: set[int] = set()
    files: list[FileRecord] = []
    for sid in scenario_ids:
        recs: list[FileRecord] = []
        complete = True
        for t in tables:
            rel = partition_file(t, sid)
            if complete:
                rec = _file_ok(sim_dir / rel, rel, prev, rows.get(t), expected_fingerprint)
                if rec is not None:
                    recs.append(rec)
                    continue
                complete = False
            elif expected_fingerprint is not None and (prev is None or rel not in prev):
                _refuse_foreign(sim_dir / rel, expected_fingerprint)
        if complete:
            done.add(sid)
            files.extend(recs)
    return ScanResult(frozenset(done), tuple(files))
