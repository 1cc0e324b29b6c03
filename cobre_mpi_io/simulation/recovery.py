"""Finding what an earlier (interrupted) run already wrote.

Used by ``--resume`` (each rank checks its own scenarios) and by the
``validate`` command.  A scenario counts as done when every table file it
needs exists and matches the previous manifest's record (size and
xxhash64) when there is one; without a usable manifest, a file counts when
its Parquet footer reads and its row count is right.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ..errors import IoError, ManifestError
from ..hashing import xxh64_file
from ..layout import MANIFEST_NAME, partition_file
from ..manifest import FileEntry, SimulationManifest, read_simulation_manifest
from ..parquet import FileRecord

__all__ = ["ScanResult", "read_previous_manifest", "scan_scenarios"]

def read_previous_manifest(sim_dir: Path) -> SimulationManifest | None:
    """The existing ``_manifest.json`` of ``sim_dir``, or None if missing or unreadable."""
    try:
        return read_simulation_manifest(sim_dir / MANIFEST_NAME)
    except (ManifestError, IoError):
        return None


@dataclass(frozen=True)
class ScanResult:
    """Scenarios found complete, with the records of their files."""

    done: frozenset[int]
    files: tuple[FileRecord, ...]


def _file_ok(path: Path, rel: str, prev: Mapping[str, FileEntry] | None, expected_rows: int | None
             ) -> FileRecord | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    entry = prev.get(rel) if prev is not None else None
    if entry is not None and entry.bytes != st.st_size:
        return None
    size, digest = xxh64_file(path)
    if entry is not None:
        return FileRecord(rel, entry.rows, size, digest) if digest == entry.xxhash64 else None
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - any unreadable footer means "not done"
        return None
    if expected_rows is not None and rows != expected_rows:
        return None
    return FileRecord(rel, rows, size, digest)


def scan_scenarios(sim_dir: Path, scenario_ids: Iterable[int], tables: Iterable[str],
                   previous: SimulationManifest | None,
                   expected_rows: Mapping[str, int | None] | None = None) -> ScanResult:
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
    """
    tables = tuple(tables)
    prev = dict(previous.files) if previous is not None and previous.files else None
    done: set[int] = set()
    files: list[FileRecord] = []
    for sid in scenario_ids:
        recs = []
        for t in tables:
            rel = partition_file(t, sid)
            rec = _file_ok(sim_dir / rel, rel, prev, (expected_rows or {}).get(t))
            if rec is None:
                break
            recs.append(rec)
        else:
            done.add(sid)
            files.extend(recs)
    return ScanResult(frozenset(done), tuple(files))
