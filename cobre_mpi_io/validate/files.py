"""The per-file work of ``validate``: each file opened once, hashed, its footer or FlatBuffer checked.

pyarrow, NumPy and the policy decoder are imported by the functions that
parse footers or decode: a file the run journal vouches for is only read
and hashed, and needs none of them.

A :class:`Task` names one file and what it must be; :func:`run_one` turns it
into a :class:`Result` (problems, digests, the footer's key-column
statistics) and never raises; :func:`run_tasks` runs a list of tasks on a
thread pool and reduces the results as they come (:class:`Partial`): only
problems and the few results the report needs later are kept, so memory
stays flat in the number of files.  Tasks and partials are picklable: they
cross MPI ranks.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import xxhash

from ..identity import FOOTER_KEY
from ..layout import SIMULATION_DIR
from ..schemas import DEFAULT_FORMAT, table
from .report import Problem

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["Partial", "Reference", "Result", "Task", "formula", "run_one", "run_tasks"]

_WHOLE_FILE: Final = 32 << 20
"""Files up to this size are read once into memory (hash and footer from the same bytes)."""
_BATCH: Final = 256
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
"""Never follow a final link, never wait on a FIFO (``_read`` refuses anything but a regular file)."""
_FOOTER_KEY_B: Final = FOOTER_KEY.encode()


def _stage_reader(kind: str) -> Callable[[str], Any]:
    """The reader of a policy stage directory (``cuts``, ``states``, ``vertices``, ``basis``)."""
    from ..policy import decode

    readers: dict[str, Callable[[str], Any]] = {
        "cuts": decode.read_stage_cuts, "states": decode.read_stage_states,
        "vertices": decode.read_stage_vertices, "basis": decode.read_stage_basis,
    }
    return readers[kind]


class Task(NamedTuple):
    """One file to read (immutable and picklable: tasks cross MPI ranks).

    A named tuple rather than a frozen dataclass: planning makes one per
    file (20,000 at 2,000 scenarios), and a frozen dataclass costs three
    times as much to build.
    """

    kind: str                     # "parquet" | "stage" | "concat" | "bytes"
    section: str
    rel: str                      # relative to the section directory
    table: str | None = None      # parquet: schema name
    rows: int | None = None       # expected (manifest), parquet only
    size: int | None = None       # expected bytes
    xxhash64: str | None = None   # expected digest
    fingerprint: str | None = None
    decode: bool = False          # parquet: decode the key columns (reference / deep)
    keep: bool = False            # send rows/digest/signature/info back to the report
    sha256: bool = False          # also compute sha256 (kept)
    scenario: int | None = None
    stage_id: int = -1            # stage: expected stage id
    state_dimension: int = -1     # stage: expected state dimension (-1: not checked)
    files: tuple[str, ...] = ()   # concat: files (relative to the section) hashed in this order
    fmt: str = DEFAULT_FORMAT     # parquet: output format of ``table`` (the run identity's, formats.py)
    journal: tuple[int, str, int | None] | None = None  # the run journal's (bytes, xxhash64, rows) of the file
    deep: bool = False            # parquet: decode every column, check values against the schema


@dataclass
class Result:
    """What checking one file found: problems, and the figures the report may compare later."""

    problems: list[Problem] = field(default_factory=list)
    rows: int | None = None
    digest: str | None = None
    sha256: str | None = None
    signature: tuple[Any, ...] | None = None
    info: dict[str, Any] | None = None

    def add(self, task: Task, message: str, rel: str | None = None) -> None:
        """Record a problem of ``task``'s file.

        Parameters
        ----------
        task : Task
            The check that found it (its section, and its file unless ``rel`` is given).
        message : str
            What is wrong.
        rel : str, optional
            Another file the problem is about.
        """
        self.problems.append(Problem(task.rel if rel is None else rel, message, task.section))


class _NotRegular(Exception):
    pass


_local = threading.local()


def _buffer(size: int) -> bytearray:
    """This thread's reusable read buffer, at least ``size`` bytes.

    Reading into fresh ``bytes`` for every file costs a page fault per 4 KiB
    (twice the time of hashing and parsing together); a buffer reused by
    the thread does not.  Nothing read into it outlives the check of one file.
    """
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = bytearray(max(size, 1 << 20))
        _local.buf = buf
    return buf


def _read(path: str, want_sha: bool, feed: Sequence[Any] = ()) -> tuple[memoryview | None, int, str, str | None]:
    """Open ``path`` once, refusing links and special files: ``(bytes, size, xxh64, sha256)``.

    The bytes are a view of this thread's buffer (None when the file is
    larger than :data:`_WHOLE_FILE`: then it is hashed in chunks); the file
    is closed on return.  ``feed``: more hash objects updated with the bytes.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _NotRegular
        sha = hashlib.sha256() if want_sha else None
        if st.st_size <= _WHOLE_FILE:
            view = memoryview(_buffer(st.st_size + 1))
            n = 0
            while (got := os.readv(fd, [view[n:]])) > 0:  # +1: a file that grew is read whole, not cut
                n += got
                if n == len(view):
                    view = memoryview(_grow(view, n))
            data = view[:n]
            if feed or sha is not None:
                for h in (*feed, *([sha] if sha is not None else [])):
                    h.update(data)
            return data, n, xxhash.xxh64_hexdigest(data), ("sha256:" + sha.hexdigest()) if sha else None
        h = xxhash.xxh64()
        size = 0
        while chunk := os.read(fd, 8 << 20):
            for g in (h, *feed, *([sha] if sha is not None else [])):
                g.update(chunk)
            size += len(chunk)
        return None, size, h.hexdigest(), ("sha256:" + sha.hexdigest()) if sha else None
    finally:
        os.close(fd)


def _grow(view: memoryview, n: int) -> bytearray:
    """A bigger thread buffer holding the ``n`` bytes of ``view`` (a file larger than its size said)."""
    buf = bytearray(2 * len(view))
    buf[:n] = view[:n]
    _local.buf = buf
    return buf


def _open_problem(exc: BaseException, listed: bool, recorded: bool = False) -> str:
    if isinstance(exc, _NotRegular):
        return "not a regular file (refused)"
    if isinstance(exc, FileNotFoundError):
        return "listed in the manifest but missing" if listed else \
            "recorded in the run journal but missing" if recorded else "missing"
    if isinstance(exc, OSError) and exc.errno == 40:  # ELOOP: O_NOFOLLOW met a symlink
        return "is a symbolic link (refused: readers would follow it)"
    return f"cannot be read: {exc}"


@functools.cache
def _key_columns(table_name: str, fmt: str = DEFAULT_FORMAT) -> list[str]:
    """Columns whose ranges must be the same in every scenario of a table (ids, not codes)."""
    t = table(table_name, fmt)
    names = t.names
    keys = ["stage_id", "block_id", t.entity_column, "lag_index", "iteration", "rank", "scenario_id"]
    if fmt != DEFAULT_FORMAT and t.path.endswith("/"):  # Cobre's partitions carry their own scenario_id
        keys.remove("scenario_id")
    return [c for c in dict.fromkeys(keys) if c is not None and c in names]


def _footer(source: Any) -> Any:
    """The footer of a Parquet file (``FileMetaData``).

    ``pq.ParquetReader`` rather than :func:`pyarrow.parquet.read_metadata`:
    the latter builds a ``ParquetFile`` (a Python walk of the schema), a
    quarter of the per-file cost here.
    """
    import pyarrow.parquet as pq

    reader = pq.ParquetReader()
    reader.open(source)
    try:
        return reader.metadata
    finally:
        reader.close()


def _signature(meta: pq.FileMetaData, keys: Sequence[str]) -> tuple[Any, ...]:
    """``(rows, (column, min, max, nulls) per key column)`` from the footer statistics (None when absent)."""
    names = meta.schema.names
    out: list[tuple[str, Any, Any, int | None]] = []
    for name in keys:
        if name not in names:
            continue
        j = names.index(name)
        lo: Any = None
        hi: Any = None
        nulls: int | None = 0
        known = True
        for i in range(meta.num_row_groups):
            st = meta.row_group(i).column(j).statistics
            if st is None:
                known = False
                break
            if st.has_null_count and nulls is not None:
                nulls += st.null_count
            else:
                nulls = None
            if st.has_min_max:
                lo = st.min if lo is None else min(lo, st.min)
                hi = st.max if hi is None else max(hi, st.max)
        out.append((name, lo, hi, nulls) if known else (name, None, None, None))
    return (meta.num_rows, tuple(out))


def _int_column(tbl: pa.Table, name: str) -> np.ndarray:
    """A key column as int64 NumPy, nulls as -1, from the Arrow buffers.

    (``to_numpy`` and ``pc.fill_null`` import pandas: half a second for one call.)
    """
    import numpy as np
    import pyarrow as pa

    parts = []
    for ch in tbl.column(name).chunks:
        ch = ch.cast(pa.int64())
        lo, hi = ch.offset, ch.offset + len(ch)
        values = np.frombuffer(ch.buffers()[1], dtype=np.int64)[lo:hi].copy()
        if ch.null_count:
            valid = np.unpackbits(np.frombuffer(ch.buffers()[0], dtype=np.uint8), bitorder="little")[lo:hi]
            values[valid == 0] = -1
        parts.append(values)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _decode_info(source: Any, table_name: str, fmt: str = DEFAULT_FORMAT) -> dict[str, Any]:
    """Decode the key columns: distinct stages, blocks, entities, AR orders, repeated keys (NumPy, no Acero)."""
    import numpy as np
    import pyarrow.parquet as pq

    t = table(table_name, fmt)
    names = t.names
    cols = [c for c in ("stage_id", "block_id", t.entity_column, "lag_index", "scenario_id")
            if c is not None and c in names]
    tbl = pq.ParquetFile(source).read(columns=cols, use_threads=False)
    n = tbl.num_rows
    info: dict[str, Any] = {"rows": n}
    keys = {c: _int_column(tbl, c) for c in cols}
    if keys and n:
        mat = np.stack([keys[c] for c in cols])
        order = np.lexsort(mat[::-1])
        s = mat[:, order]
        same = (s[:, 1:] == s[:, :-1]).all(axis=0)
        info["distinct_keys"] = n - int(same.sum())
    else:
        info["distinct_keys"] = n
    if "stage_id" in keys:
        info["stages"] = int(np.unique(keys["stage_id"]).size)
    if "block_id" in cols:
        info["stage_rows"] = tbl.column("block_id").null_count
        info["block_rows"] = n - info["stage_rows"]
    if t.entity_column is not None:
        ent = keys[t.entity_column]
        uniq, inverse = np.unique(ent, return_inverse=True)
        info["entities"] = int(uniq.size)
        if "lag_index" in keys:
            top = np.zeros(uniq.size, dtype=np.int64)
            np.maximum.at(top, inverse, keys["lag_index"])
            info["lag_sum"] = int(top.sum())
    return info


def _check_bytes(task: Task, size: int, digest: str, res: Result, what: str) -> bool | None:
    """Size and xxhash64 against the run journal's record and what ``what`` (the manifest) records.

    Returns True when the journal vouches for the bytes (they are the ones
    the writer renamed into place and checked), None when they differ from
    a record (a problem is added: the file is not the one written, and its
    content is not parsed: a corrupt Parquet footer can abort the reader
    process), False when no record says anything.
    """
    rec = task.journal
    vouched = rec is not None and size == rec[0] and digest == rec[1]
    differs = False
    if rec is not None and not vouched:
        differs = True
        same = (task.size, task.xxhash64) == (rec[0], rec[1])
        res.add(task, f"bytes differ from the run journal's record: size {size}, xxhash64 {digest}; recorded "
                      f"{rec[0]}, {rec[1]}" + (f" (as {what})" if same else ""))
        if same:
            return None
    if task.size is not None and size != task.size:
        differs = True
        res.add(task, f"size {size} differs from {what} ({task.size})")
    if task.xxhash64 is not None and digest != task.xxhash64:
        differs = True
        res.add(task, f"xxhash64 {digest} differs from {what} ({task.xxhash64})")
    return None if differs else vouched


def _check_plain(task: Task, base: str, res: Result) -> None:
    """Any file the run journal records: its bytes (size, xxhash64) are the recorded ones."""
    try:
        _data, size, digest, _sha = _read(f"{base}/{task.rel}", False)
    except (OSError, _NotRegular) as exc:
        res.add(task, _open_problem(exc, False, True))
        return
    res.digest = digest
    _check_bytes(task, size, digest, res, "the run journal")


def _check_parquet(task: Task, base: str, res: Result, codes: Mapping[str, frozenset[int]]) -> None:
    """A Parquet file: bytes (size, xxhash64), footer (rows, schema, run fingerprint, key statistics).

    A file whose bytes are the ones the run journal records was checked by
    its writer: its footer is parsed only when the report needs its
    figures (``keep``), its key columns decoded (``decode``) or every
    column checked (``deep``).
    """
    path = f"{base}/{task.rel}"
    try:
        data, size, digest, sha = _read(path, task.sha256)
    except (OSError, _NotRegular) as exc:
        res.add(task, _open_problem(exc, task.rows is not None, task.journal is not None))
        return
    res.digest, res.sha256 = digest, sha
    vouched = _check_bytes(task, size, digest, res, "the manifest")
    rec = task.journal
    if rec is not None and rec[2] is not None and task.rows is not None and rec[2] != task.rows:
        res.add(task, f"the manifest records {task.rows} rows, the run journal {rec[2]}")
    if vouched is None:
        return  # not the bytes written: reported, never parsed
    if vouched and not (task.keep or task.decode or task.deep):
        res.rows = rec[2] if rec is not None and rec[2] is not None else task.rows
        return
    import pyarrow as pa

    pybuf = pa.py_buffer(data) if data is not None else None

    def source() -> Any:
        return pa.BufferReader(pybuf) if pybuf is not None else path

    try:
        meta = _footer(source())
        _check_footer(task, meta, res)
    except Exception as exc:  # noqa: BLE001 - a footer that does not read or decode is a problem
        res.add(task, f"Parquet footer does not read: {type(exc).__name__}: {exc}")
        return
    if task.decode and task.table is not None:
        try:
            res.info = _decode_info(source(), task.table, task.fmt)
        except Exception as exc:  # noqa: BLE001 - undecodable data is a problem
            res.add(task, f"key columns do not decode: {type(exc).__name__}: {exc}")
        else:
            if res.info.get("distinct_keys", res.info["rows"]) != res.info["rows"]:
                res.add(task, f"{res.info['rows'] - res.info['distinct_keys']} rows repeat the key of another "
                              f"row ({', '.join(c for c in _key_columns(task.table, task.fmt))})")
    if task.deep and task.table is not None:
        try:
            import pyarrow.parquet as pq

            _check_values(task, pq.ParquetFile(source()).read(use_threads=False), codes, res)
        except Exception as exc:  # noqa: BLE001 - undecodable data is a problem
            res.add(task, f"columns do not decode: {type(exc).__name__}: {exc}")


def _values(chunk: pa.Array, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a primitive chunk as NumPy (a view of its buffer) and its validity (None: no nulls)."""
    import numpy as np

    lo, hi = chunk.offset, chunk.offset + len(chunk)
    if dtype == "bool":
        bits = np.unpackbits(np.frombuffer(chunk.buffers()[1], dtype=np.uint8), bitorder="little")[lo:hi]
        values = bits.astype(bool)
    else:
        values = np.frombuffer(chunk.buffers()[1], dtype=dtype)[lo:hi]
    valid = None
    if chunk.null_count:
        valid = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")[lo:hi] == 1
    return values, valid


def _check_values(task: Task, tbl: pa.Table, codes: Mapping[str, frozenset[int]], res: Result) -> None:
    """Every column against the spec: no null where it says not null, floats finite, codes in ``codes.json``."""
    import numpy as np

    assert task.table is not None
    for col in table(task.table, task.fmt).columns:
        if col.name not in tbl.column_names:
            continue  # the footer check named it
        arr = tbl.column(col.name)
        if arr.type != col.arrow_type:
            continue  # the footer check named it
        if not col.nullable and arr.null_count:
            res.add(task, f"column {col.name!r}: {arr.null_count} null(s) where the spec says not null")
        domain = codes.get(col.name.removesuffix("_code")) if col.name.endswith("_code") else None
        if col.type_code != "f64" and domain is None:
            continue
        bad_float = 0
        bad_codes: set[int] = set()
        for chunk in arr.chunks:
            if not len(chunk) or chunk.null_count == len(chunk):
                continue
            values, valid = _values(chunk, col.numpy_dtype)
            if col.type_code == "f64":
                wrong = ~np.isfinite(values)
            else:
                assert domain is not None
                wrong = ~np.isin(values, np.fromiter(domain, dtype=np.int64))
            if valid is not None:
                wrong &= valid
            if wrong.any():
                if col.type_code == "f64":
                    bad_float += int(wrong.sum())
                else:
                    bad_codes.update(int(v) for v in np.unique(values[wrong])[:10])
        if bad_float:
            res.add(task, f"column {col.name!r}: {bad_float} value(s) not finite (NaN or infinite)")
        if bad_codes:
            res.add(task, f"column {col.name!r}: code(s) {sorted(bad_codes)} not in codes.json's "
                          f"{col.name.removesuffix('_code')!r}")


def _check_footer(task: Task, meta: Any, res: Result) -> None:
    """Rows, spec schema, run fingerprint and key-column statistics of a parsed footer."""
    schema = meta.schema.to_arrow_schema()
    res.rows = meta.num_rows
    if task.rows is not None and meta.num_rows != task.rows:
        res.add(task, f"{meta.num_rows} rows where the manifest records {task.rows}")
    if task.table is None:
        return
    expected = table(task.table, task.fmt).arrow_schema
    whose = "the spec's" if task.fmt == DEFAULT_FORMAT else f"format {task.fmt}'s"
    if not schema.equals(expected):  # names, order, types, nullability (the footer's metadata aside)
        if schema.names != expected.names:
            res.add(task, f"columns {schema.names} differ from {whose} {expected.names}")
            return
        for f, e in zip(schema, expected, strict=True):
            if f.type != e.type or f.nullable != e.nullable:
                res.add(task, f"column {f.name!r} is {f.type}{'' if f.nullable else ' not null'}, "
                              f"{whose} is {e.type}{'' if e.nullable else ' not null'}")
    if task.fingerprint is not None:
        found = (meta.metadata or {}).get(_FOOTER_KEY_B)
        if found is None:
            res.add(task, f"carries no run fingerprint ({FOOTER_KEY}) in its footer; the run's is "
                          f"{task.fingerprint}")
        elif found is not None and found.decode("utf-8", "replace") != task.fingerprint:
            res.add(task, f"written by another run: footer run fingerprint {found.decode('utf-8', 'replace')} "
                          f"differs from the manifest's {task.fingerprint}")
    res.signature = _signature(meta, _key_columns(task.table, task.fmt))


def _check_stage(task: Task, base: str, res: Result) -> None:
    """A policy stage file: bytes (xxhash64), decoded by its directory's reader, stage and dimension."""
    path = f"{base}/{task.rel}"
    try:
        _data, size, digest, _sha = _read(path, False)
    except (OSError, _NotRegular) as exc:
        res.add(task, _open_problem(exc, False, task.journal is not None))
        return
    del _data
    res.digest = digest
    vouched = _check_bytes(task, size, digest, res, "the checkpoint's metadata.json")
    if vouched is None or (vouched and not task.deep):
        return  # not the bytes written (reported), or the ones its writer renamed into place (and checked)
    kind = task.rel.split("/")[-2]
    try:
        obj = _stage_reader(kind)(path)  # the readers validate the content (without copying the coefficients)
        sid, dim = int(obj.stage_id), getattr(obj, "state_dimension", None)
    except Exception as exc:  # noqa: BLE001 - every decoding failure is a problem, never raised
        res.add(task, f"does not decode as {kind}: {exc}")
        return
    finally:
        obj = None  # drop the memory map (and its file descriptor) now
    if sid != task.stage_id:
        res.add(task, f"holds stage {sid}, its name says {task.stage_id}")
    if dim is not None and task.state_dimension >= 0 and int(dim) != task.state_dimension:
        res.add(task, f"state dimension {dim} where the checkpoint's metadata.json says {task.state_dimension}")


def _check_concat(task: Task, base: str, res: Result) -> None:
    """sha256 and xxhash64 of the concatenated bytes of ``task.files`` (the policy hashes)."""
    sha, xxh = hashlib.sha256(), xxhash.xxh64()
    for rel in task.files:
        try:
            _read(f"{base}/{rel}", False, feed=(sha, xxh))
        except (OSError, _NotRegular) as exc:
            res.add(task, _open_problem(exc, False), rel)
            return
    res.sha256, res.digest = "sha256:" + sha.hexdigest(), xxh.hexdigest()
    res.info = {"files": len(task.files)}


_WORKERS: Final[dict[str, Callable[[Task, str, Result], None]]] = {
    "stage": _check_stage, "concat": _check_concat, "bytes": _check_plain,
}


def run_one(task: Task, bases: Mapping[str, str], codes: Mapping[str, frozenset[int]] | None = None) -> Result:
    """Check one file; every finding is in the result (whatever the worker found before any failure).

    Parameters
    ----------
    task : Task
        The file and what it must be.
    bases : mapping
        Section name -> its directory.
    codes : mapping, optional
        Code map name (``operative_state``, ...) -> the codes ``codes.json`` defines (``deep`` tasks).
    """
    res = Result()
    try:
        if task.kind == "parquet":
            _check_parquet(task, bases[task.section], res, codes or {})
        else:
            _WORKERS[task.kind](task, bases[task.section], res)
    except Exception as exc:  # noqa: BLE001 - never raised: one more problem (and MPI peers never hang)
        res.add(task, f"could not be checked: {type(exc).__name__}: {exc}")
    return res


# --------------------------------------------------------------------------- reduction
@dataclass(frozen=True)
class Reference:
    """The reference scenario of a simulation table: its footer signature and decoded key counts."""

    scenario: int
    rel: str
    signature: tuple[Any, ...] | None
    info: dict[str, Any] | None


@dataclass
class Partial:
    """What one rank sends to rank 0: problems, counts and the kept results."""

    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    kept: dict[tuple[str, str], Result] = field(default_factory=dict)


def _describe(sig: tuple[Any, ...]) -> str:
    parts = [f"{sig[0]} rows"]
    for name, lo, hi, nulls in sig[1]:
        parts.append(f"{name} {lo}..{hi}" + (f" ({nulls} null)" if nulls else ""))
    return ", ".join(parts)


def formula(table_name: str, info: Mapping[str, Any], costs: Mapping[str, Any] | None,
             detail: str) -> tuple[int, str] | None:
    """Expected rows (SPEC §4) of a partition and the formula's name; None when not checkable.

    Parameters
    ----------
    table_name : str
        The partition's table.
    info : mapping
        Its decoded key counts (``entities``, ``lag_sum``).
    costs : mapping or None
        The decoded key counts of a ``costs`` partition (``stages``, ``block_rows``).
    detail : str
        ``full`` or ``stage``.
    """
    if costs is None or table_name in ("costs", "generic_violations", "scenario_totals"):
        return None
    stages = int(costs.get("stages", 0))
    if table_name == "inflow_lags":
        return stages * int(info.get("lag_sum", 0)), "T × sum of AR orders"
    if "entities" not in info:
        return None
    if detail == "stage":
        return stages * int(info["entities"]), "T × entities (stage detail)"
    return int(costs.get("block_rows", 0)) * int(info["entities"]), "blocks × entities"


def _reduce(partial: Partial, task: Task, res: Result, refs: Mapping[str, Reference], detail: str) -> None:
    partial.files += 1
    partial.problems.extend(res.problems)
    if task.keep:
        partial.kept[(task.section, task.rel)] = res
    if task.section != SIMULATION_DIR or task.table is None:
        return
    ref = refs.get(task.table)
    if ref is None or ref.rel == task.rel:
        return
    if task.table != "generic_violations" and ref.signature is not None and res.signature is not None \
            and res.signature != ref.signature:
        partial.problems.append(Problem(task.rel, f"{_describe(res.signature)}; scenario {ref.scenario} (the "
                                                  f"reference) has {_describe(ref.signature)}"))
    elif task.table != "generic_violations" and ref.signature is not None and res.signature is None \
            and res.rows is not None and res.rows != ref.signature[0]:  # footer not parsed: the recorded rows
        partial.problems.append(Problem(task.rel, f"{res.rows} rows; scenario {ref.scenario} (the reference) has "
                                                  f"{ref.signature[0]} rows"))
    if res.info is not None and task.fmt == DEFAULT_FORMAT:  # SPEC §4 row formulas: the spec's layout only
        costs = refs["costs"].info if "costs" in refs else None
        want = formula(task.table, res.info, costs, detail)
        if want is not None and res.info["rows"] != want[0]:
            partial.problems.append(Problem(task.rel, f"{res.info['rows']} rows where {want[1]} = {want[0]} "
                                                      f"(scenario {task.scenario})"))


def run_tasks(tasks: Sequence[Task], bases: Mapping[str, str], refs: Mapping[str, Reference], detail: str,
              threads: int, codes: Mapping[str, frozenset[int]] | None = None) -> Partial:
    """Check ``tasks`` on ``threads`` threads, reducing each result as it comes.

    Parameters
    ----------
    tasks : sequence of Task
        The files to check (this rank's share).
    bases : mapping
        Section name -> its directory (``simulation`` -> ``OUT/simulation``, ...).
    refs : mapping
        Table -> its reference scenario: every other simulation file is compared with it.
    detail : str
        The simulation's detail level (which SPEC §4 formula applies).
    threads : int
        Worker threads; 1 runs in the calling thread.
    codes : mapping, optional
        The codes of ``codes.json`` (the ``deep`` value check of code columns).

    Returns
    -------
    Partial
        The problems, the number of files, and the results of the tasks marked ``keep``.
    """
    partial = Partial()
    if threads <= 1 or len(tasks) < 2:
        for t in tasks:
            _reduce(partial, t, run_one(t, bases, codes), refs, detail)
        _local.buf = None  # the caller's thread keeps no read buffer
        return partial
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="validate") as pool:
        for start in range(0, len(tasks), _BATCH):
            batch = tasks[start:start + _BATCH]
            for t, res in zip(batch, pool.map(lambda t: run_one(t, bases, codes), batch), strict=True):
                _reduce(partial, t, res, refs, detail)
    return partial
