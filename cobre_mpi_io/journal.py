"""The run journal: a durable, per-rank record of every file a run renamed into place.

Each rank appends one line per file it published under ``OUT`` to its own
file ``OUT/_journal/files/<attempt>-r<rank>.jsonl``::

    {"path":"simulation/costs/scenario_id=0003/data.parquet","bytes":41230,"xxhash64":"9f0c...","rows":180} 5d1e0c7a9b2f4e11

- ``path`` is relative to ``OUT`` (POSIX), ``bytes`` and ``xxhash64`` (seed 0,
  16 lowercase hex digits) describe the bytes the writer handed to the
  atomic rename (hashed while they were in memory: no extra pass over the
  data), ``rows`` is the row count of a table (``null`` otherwise).
  A removal (a checkpoint dropped by retention, a withdrawn ``_SUCCESS``)
  is the line ``{"path": ..., "removed": true}``.
- The 16 hex digits after the JSON are the xxh64 of the JSON text: every
  line checks itself, so a torn or zeroed tail (a crash in the middle of an
  append, lost unsynced blocks after a power cut) is ignored, never misread.
- ``<attempt>`` is a zero-padded counter that rank 0 chooses when a process
  opens the run's journal (one more than any attempt found), so the files of
  successive attempts (a run, its resumes) sort in the order they were
  written whatever the hosts' clocks say.  :func:`read_journal` reads them in
  that order (attempt, then rank, then line) and the last record of a path
  wins.

What the journal is for: **nothing is adopted by trust**.  A resume adopts a
file only when its bytes on disk match its record (:func:`verify_entry`:
size, then xxh64 of the whole file); the simulation commit builds its
manifest from the journal; ``validate`` and ``report`` verify every byte
against it.  The journal therefore never needs to be more durable than the
data: a record lost in a crash only means the file is rewritten, a record
whose data was lost only means the check fails and the file is rewritten.
``docs/journal.md`` states what each ``durability`` mode guarantees.

Writers inside this package record through :class:`RankJournal` (the
simulation I/O thread, in batches) or :func:`record_write` (one-off files of
rank 0: manifests, dictionaries, ``metadata.json``, markers), which finds the
journal the run opened in this process with :func:`open_journal`.  Outside a
run (a writer function called on its own) nothing is recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import xxhash

from . import mpi
from .atomic import ensure_dir, fsync_dir, json_document_bytes, write_bytes_atomic
from .errors import IoError
from .hashing import xxh64_hex
from .layout import JOURNAL_DIR

__all__ = [
    "JOURNAL_FILES_DIR",
    "JournalEntry",
    "RankJournal",
    "active_journal",
    "journal_files",
    "open_journal",
    "read_journal",
    "record_removed",
    "record_write",
    "verify_entry",
    "write_bytes_recorded",
    "write_json_recorded",
]

JOURNAL_FILES_DIR: Final = f"{JOURNAL_DIR}/files"
"""``OUT``-relative directory of the per-rank journal files."""

_FILE_RE: Final = re.compile(r"^(\d+)-r(\d+)\.jsonl$")
_HEX16: Final = re.compile(r"^[0-9a-f]{16}$")
_CHUNK: Final = 8 << 20


@dataclass(frozen=True)
class JournalEntry:
    """The record of one file as it was renamed into place.

    Attributes
    ----------
    path : str
        Path relative to the output directory ``OUT`` (POSIX separators).
    bytes : int
        Size of the file.
    xxhash64 : str
        xxh64 (seed 0) of its bytes, 16 lowercase hex digits.
    rows : int or None
        Rows of a table file; None for other files.
    """

    path: str
    bytes: int
    xxhash64: str
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form of a journal line (without its check digits)."""
        return {"path": self.path, "bytes": self.bytes, "xxhash64": self.xxhash64, "rows": self.rows}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JournalEntry:
        """Parse the JSON form; :class:`ValueError` when a field is missing or of the wrong type."""
        path, size, digest, rows = d.get("path"), d.get("bytes"), d.get("xxhash64"), d.get("rows")
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"bad path {path!r}")
        if type(size) is not int or size < 0:  # exactly int: a bool is not a size
            raise ValueError(f"bad bytes {size!r}")
        if not isinstance(digest, str) or not _HEX16.match(digest):
            raise ValueError(f"bad xxhash64 {digest!r}")
        if rows is not None and (type(rows) is not int or rows < 0):
            raise ValueError(f"bad rows {rows!r}")
        return cls(path, size, digest, rows)


# ------------------------------------------------------------------ lines

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _line(doc: Mapping[str, Any]) -> bytes:
    text = _ENCODER.encode(doc)
    return f"{text} {xxh64_hex(text.encode('utf-8'))}\n".encode()


def _checked_body(raw: bytes) -> bytes | None:
    """The JSON text of one complete line whose check digits match; None for a torn, zeroed or altered one."""
    if not raw.endswith(b"\n"):
        return None
    body, sep, check = raw[:-1].rpartition(b" ")
    if not sep or len(check) != 16 or xxhash.xxh64_hexdigest(body).encode() != check:
        return None
    return body


def _open_regular(path: Path) -> int:
    """``os.open`` for reading without blocking or following a final symlink; IoError unless a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise IoError.from_os_error(path, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise IoError(path, "not a regular file", "expected a regular file (found a FIFO, device or directory)")
    return fd


def journal_files(output_dir: str | os.PathLike[str]) -> list[tuple[int, int, Path]]:
    """``(attempt, rank, path)`` of every journal file of ``output_dir``, in reading order.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.

    Returns
    -------
    list of (int, int, Path)
        Sorted by attempt, then rank; empty when there is no journal. Names
        that are not ``<attempt>-r<rank>.jsonl`` (temp files) are skipped.
    """
    d = Path(output_dir) / JOURNAL_FILES_DIR
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IoError.from_os_error(d, exc) from exc
    found = [(int(m.group(1)), int(m.group(2)), d / name) for name in names if (m := _FILE_RE.match(name))]
    return sorted(found)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of the lines of ``path`` that check, in order: one ``json.loads`` for all of them.

    Lines that do not check (a torn, zeroed or altered tail) are skipped.  Texts that check but are not one
    JSON value each (only a forger makes them match their check digits) are decoded one at a time, so each
    such line is skipped alone.
    """
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        bodies = [b for b in map(_checked_body, fh) if b is not None]
    try:
        docs = json.loads((b"[" + b",".join(bodies) + b"]").decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        docs = []
    if len(docs) != len(bodies):
        docs = []
        for body in bodies:
            with contextlib.suppress(ValueError):
                docs.append(json.loads(body.decode("utf-8")))
    return [d for d in docs if isinstance(d, dict)]


def read_journal(output_dir: str | os.PathLike[str], run_fingerprint: str | None = None) -> dict[str, JournalEntry]:
    """Every file the run's journal records, the last record of each path winning.

    Lines that do not check (a torn or zeroed tail) are ignored; a removal
    record drops the path.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.
    run_fingerprint : str, optional
        Keep only the records written under this run fingerprint (a journal
        file declares the fingerprint of the run that writes it in a
        ``{"run_fingerprint": ...}`` line before its records); records of
        another run, or of a writer that declared none, are ignored.

    Returns
    -------
    dict of str to JournalEntry
        Keyed by ``OUT``-relative POSIX path; empty without a journal.

    Raises
    ------
    IoError
        A journal file cannot be read or is not a regular file (a FIFO
        there would otherwise block the reader).
    """
    entries: dict[str, JournalEntry] = {}
    for _attempt, _rank, path in journal_files(output_dir):
        declared: str | None = None
        for doc in _read_lines(path):
            if "run_fingerprint" in doc:
                fp = doc["run_fingerprint"]
                declared = fp if isinstance(fp, str) else None
                continue
            if run_fingerprint is not None and declared != run_fingerprint:
                continue
            p = doc.get("path")
            if doc.get("removed") is True and isinstance(p, str):
                entries.pop(p, None)
                continue
            try:
                e = JournalEntry.from_dict(doc)
            except ValueError:
                continue
            entries[e.path] = e
    return entries


def verify_entry(output_dir: str | os.PathLike[str], entry: JournalEntry) -> bool:
    """Whether the file at ``entry.path`` holds exactly the recorded bytes.

    One ``fstat`` (the size must match) and then one read of the whole file
    (its xxh64 must match). A missing file, a symlink, a FIFO or another
    non-regular file is not the recorded file: False, without blocking.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.
    entry : JournalEntry
        The record to check.

    Returns
    -------
    bool
        True when size and xxh64 of the bytes on disk match the record.
    """
    path = Path(output_dir) / entry.path
    try:
        fd = _open_regular(path)
    except IoError:
        return False
    try:
        if os.fstat(fd).st_size != entry.bytes:
            return False
        h = xxhash.xxh64(seed=0)
        size = 0
        with os.fdopen(fd, "rb", buffering=0) as fh:
            fd = -1
            buf = bytearray(min(_CHUNK, max(entry.bytes, 1)))
            view = memoryview(buf)
            while n := fh.readinto(view):
                h.update(view[:n])
                size += n
        return size == entry.bytes and h.hexdigest() == entry.xxhash64
    except OSError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)


# ----------------------------------------------------------------- writer

class RankJournal:
    """This rank's journal file of one attempt: records are batched in memory and appended on :meth:`flush`.

    Thread-safe (the simulation I/O thread and the main thread record into
    the same journal). Obtain it with :func:`open_journal` inside a run; the
    constructor is for tests and tools.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.
    attempt : int
        The attempt number (the same on every rank of a process group).
    rank : int
        This process's rank.
    """

    def __init__(self, output_dir: str | os.PathLike[str], attempt: int, rank: int) -> None:
        self.output_dir = Path(output_dir)
        self.attempt = int(attempt)
        self.rank = int(rank)
        self.path = self.output_dir / JOURNAL_FILES_DIR / f"{self.attempt:06d}-r{self.rank:04d}.jsonl"
        self._base = os.path.abspath(self.output_dir)
        given = os.path.normpath(os.fspath(self.output_dir))
        self._rel_base = None if os.path.isabs(given) or given == "." else given
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._fd = -1
        self._users = 0
        self._declared: str | None = None
        self.enabled = True

    def declare(self, run_fingerprint: str | None) -> None:
        """Declare the fingerprint of the run whose files the following records describe (see :func:`read_journal`).

        Written before the next record; a no-op when ``None`` or already declared.
        """
        if run_fingerprint is None or not self.enabled:
            return
        with self._lock:
            if self._declared != run_fingerprint:
                self._declared = run_fingerprint
                self._pending.append(_line({"run_fingerprint": run_fingerprint}))

    # ------------------------------------------------------------ record
    def relpath(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to ``OUT`` (POSIX).

        ``path`` is absolute, or relative to the working directory and built
        from the (relative) output directory this journal was opened with
        (``out / "simulation" / ...``), or else already relative to ``OUT``.

        Raises
        ------
        ValueError
            An absolute ``path`` that is not below ``OUT``.
        """
        p = os.path.normpath(os.fspath(path))
        if os.path.isabs(p):
            ap = p
        elif self._rel_base is not None and p.startswith(self._rel_base + os.sep):
            ap = os.path.abspath(p)
        else:
            return p.replace(os.sep, "/")
        if ap.startswith(self._base + os.sep):
            return ap[len(self._base) + 1:].replace(os.sep, "/")
        raise ValueError(f"{p} is not below the output directory {self.output_dir}")

    def record(self, path: str | os.PathLike[str], nbytes: int, xxhash64: str, rows: int | None = None) -> None:
        """Queue the record of a file just renamed into place (written at the next :meth:`flush`).

        Parameters
        ----------
        path : path-like
            The file (absolute, or relative to ``OUT``).
        nbytes : int
            Its size.
        xxhash64 : str
            xxh64 of its bytes, 16 lowercase hex digits.
        rows : int, optional
            Row count of a table.
        """
        if not self.enabled:
            return
        line = _line({"path": self.relpath(path), "bytes": int(nbytes), "xxhash64": xxhash64,
                      "rows": None if rows is None else int(rows)})
        with self._lock:
            self._pending.append(line)

    def record_removed(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Queue removal records: each path no longer belongs to the run's tree."""
        if not self.enabled:
            return
        lines = [_line({"path": self.relpath(p), "removed": True}) for p in paths]
        with self._lock:
            self._pending.extend(lines)

    # ------------------------------------------------------------- write
    def flush(self, *, sync: bool = False) -> None:
        """Append the queued records to the journal file (one ``write``); ``sync``: then ``fsync`` it.

        Raises
        ------
        IoError
            Naming the journal file when it cannot be created or written.
        """
        with self._lock:
            data = b"".join(self._pending)
            self._pending.clear()
            if not data and not (sync and self._fd >= 0):
                return
            try:
                if self._fd < 0:
                    new = not self.path.exists()
                    ensure_dir(self.path.parent)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    if new:
                        fsync_dir(self.path.parent)
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
                if sync:
                    os.fsync(self._fd)
            except OSError as exc:
                if isinstance(exc, IoError):
                    raise
                raise IoError.from_os_error(self.path, exc) from exc

    def close(self) -> None:
        """Flush (without ``fsync``) and close the file; a later record reopens it (``O_APPEND``).

        Closing is what makes the lines visible to other hosts on NFS
        (close-to-open consistency) without forcing them to the disk.
        """
        self.flush()
        with self._lock:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                with contextlib.suppress(OSError):
                    os.close(fd)

    def discard(self) -> None:
        """Drop the queued records and close the file without writing: the journal's file is gone."""
        with self._lock:
            self.enabled = False
            self._pending.clear()
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                with contextlib.suppress(OSError):
                    os.close(fd)

    # ----------------------------------------------------------- sharing
    def release(self) -> None:
        """Give back one :func:`open_journal` share; the last one flushes, ``fsync``\\ s and closes the file."""
        with _REGISTRY_LOCK:
            self._users -= 1
            last = self._users <= 0
            if last:
                for k, j in list(_OPEN.items()):
                    if j is self:
                        del _OPEN[k]
        if last:
            try:
                self.flush(sync=True)
            finally:
                self.close()


_OPEN: dict[tuple[str, int], RankJournal] = {}
_REGISTRY_LOCK = threading.Lock()
_DISABLED: list[bool] = []


def _key(output_dir: Path, comm: Any) -> tuple[str, int]:
    return os.path.realpath(output_dir), mpi.comm_key(comm)


def _next_attempt(output_dir: Path) -> int:
    ensure_dir(output_dir / JOURNAL_FILES_DIR)
    return max((a for a, _r, _p in journal_files(output_dir)), default=0) + 1


def _still_there(j: RankJournal) -> bool:
    """False when the journal's file or directory was removed under an open journal (a path reused)."""
    if not j.path.parent.is_dir():
        return False
    fd = j._fd
    if fd < 0:
        return True
    try:
        return os.fstat(fd).st_nlink > 0
    except OSError:
        return False


def open_journal(comm: Any, output_dir: str | os.PathLike[str], run_fingerprint: str | None = None) -> RankJournal:
    """Collective over ``comm``: this rank's journal of the current attempt on ``output_dir``.

    Writers of one run in one process share it (each call takes a share,
    :meth:`RankJournal.release` gives it back). Rank 0 chooses the attempt
    number (one more than any journal file found) and broadcasts it, so all
    ranks of a process group write the files of one attempt. Call it after
    the run's claim is taken: the claim is what makes the attempt number
    unique.

    Parameters
    ----------
    comm : mpi4py communicator
        Every rank of the run.
    output_dir : path-like
        The run's output directory ``OUT``.
    run_fingerprint : str, optional
        The run's :attr:`~cobre_mpi_io.identity.RunIdentity.fingerprint`,
        declared in the journal before the next record (:meth:`RankJournal.declare`).

    Returns
    -------
    RankJournal
        On every rank, its own journal (file ``<attempt>-r<rank>.jsonl``).

    Raises
    ------
    OutputError
        The same on every rank when rank 0 cannot create ``OUT/_journal/files``.
    """
    out = Path(output_dir)
    rank = mpi.rank_of(comm)
    key = _key(out, comm)
    with _REGISTRY_LOCK:
        held = _OPEN.get(key)
    if held is not None and not _still_there(held):
        held.discard()  # its records would go to a removed file: drop them, and the file descriptor
        held = None

    def choose() -> int:
        return held.attempt if held is not None else _next_attempt(out)

    attempt = mpi.run_on_root(comm, choose, str(out / JOURNAL_FILES_DIR))
    with _REGISTRY_LOCK:
        if held is None or held.attempt != attempt:
            if held is not None:
                held.close()
            held = RankJournal(out, attempt, rank)
            held.enabled = not _DISABLED
            _OPEN[key] = held
        held._users += 1
    held.declare(run_fingerprint)
    return held


def active_journal(path: str | os.PathLike[str]) -> RankJournal | None:
    """The journal this process has open for the run whose output directory holds ``path``, if any."""
    with _REGISTRY_LOCK:
        if not _OPEN:
            return None
        journals = list(_OPEN.values())
    ap = os.path.realpath(path) if os.path.lexists(path) else os.path.join(
        os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
    best: RankJournal | None = None
    for j in journals:
        base = os.path.realpath(j.output_dir)
        if ap.startswith(base + os.sep) and (best is None or len(base) > len(os.path.realpath(best.output_dir))):
            best = j
    return best


def _resolve_under(j: RankJournal, path: str | os.PathLike[str]) -> str:
    base = os.path.realpath(j.output_dir)
    ap = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
    return ap[len(base) + 1:].replace(os.sep, "/")


def record_write(path: str | os.PathLike[str], nbytes: int, xxhash64: str, rows: int | None = None, *,
                 sync: bool = True) -> bool:
    """Record a file just renamed into place in the run's journal, when this process has one open for it.

    For the one-off files of a run (manifests, dictionaries,
    ``metadata.json``, markers, policy checkpoint files): the record is
    appended at once, and ``fsync``\\ ed when ``sync``.

    Parameters
    ----------
    path : path-like
        The file (absolute or relative to the working directory).
    nbytes : int
        Its size.
    xxhash64 : str
        xxh64 of its bytes.
    rows : int, optional
        Row count of a table.
    sync : bool, default True
        ``fsync`` the journal after appending.

    Returns
    -------
    bool
        Whether a journal recorded it (False outside a run).

    Raises
    ------
    IoError
        The journal cannot be written.
    """
    j = active_journal(path)
    if j is None:
        return False
    j.record(_resolve_under(j, path), nbytes, xxhash64, rows)
    j.flush(sync=sync)
    return True


def record_removed(paths: Iterable[str | os.PathLike[str]], *, sync: bool = True) -> None:
    """Record that the files ``paths`` were removed from the run's tree, when a journal is open for them.

    Pass files, not directories: :func:`read_journal` drops exactly the paths
    recorded as removed. ``sync``: ``fsync`` the journal after appending.
    """
    by_journal: dict[int, tuple[RankJournal, list[str]]] = {}
    for p in paths:
        j = active_journal(p)
        if j is not None:
            by_journal.setdefault(id(j), (j, []))[1].append(_resolve_under(j, p))
    for j, rels in by_journal.values():
        j.record_removed(rels)
        j.flush(sync=sync)


def write_bytes_recorded(path: str | os.PathLike[str], data: bytes | memoryview, *, durable: bool = True,
                         rows: int | None = None) -> int:
    """:func:`~cobre_mpi_io.atomic.write_bytes_atomic`, then :func:`record_write` of the bytes written.

    Parameters
    ----------
    path : path-like
        Final path.
    data : bytes or memoryview
        The whole content (hashed in memory: no read back).
    durable : bool, default True
        fsync the file, its directory and the journal record.
    rows : int, optional
        Row count when the file is a table.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    IoError
        As :func:`~cobre_mpi_io.atomic.write_bytes_atomic`, or the journal cannot be written.
    """
    n = write_bytes_atomic(path, data, durable=durable)
    if active_journal(path) is not None:
        record_write(path, n, xxh64_hex(data), rows, sync=durable)
    return n


def write_json_recorded(path: str | os.PathLike[str], obj: Any, *, entity: str | None = None) -> int:
    """:func:`~cobre_mpi_io.atomic.write_json_atomic` (same bytes, durable), recorded like
    :func:`write_bytes_recorded`.

    Parameters
    ----------
    path : path-like
        Final path.
    obj : Any
        A JSON-serializable value.
    entity : str, optional
        What the document is, named in a serialization error (default ``path``).

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    SerializationError
        ``obj`` is not JSON-serializable (nothing is written).
    IoError
        As :func:`write_bytes_recorded`.
    """
    return write_bytes_recorded(path, json_document_bytes(obj, entity=entity or str(path)))


@contextlib.contextmanager
def _without_journal() -> Iterator[None]:
    """Journals opened inside the block record nothing: only for measuring the journal's own cost
    (``cobre-mpi-io bench simulation``). Never use it for a real run."""
    _DISABLED.append(True)
    try:
        yield
    finally:
        _DISABLED.pop()
