"""Encoding policy stage files: a NumPy FlatBuffer layout engine streamed with ``os.writev``.

--------
The buffer is laid out with NumPy instead of ``flatbuffers.Builder``: the
small tables (root table, one shared vtable, one fixed-size table per cut)
are a structured array, and each coefficient vector is streamed with
``os.writev`` straight from the caller's array (no copy into a byte array).
Objects are placed front to back so every ``uoffset`` points forward, every
vector is length-prefixed and every ``double`` 8-byte aligned: the vectors
of one stage are ``8 + 8*state_dimension`` bytes apart, which is what lets
the reader expose them as one constant-stride 2-D view.  The files decode
with the flatc-generated code in ``cobre_mpi_io/_generated`` (the tests
check it, independently of this module).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..atomic import atomic_write, write_iovecs
from ..errors import SchemaError, SerializationError
from ..layout import stage_file_name
from .layouts import (
    _SPECS,
    _Child,
    _inline_layout,
    _Matrix,
    _Root,
    _root_layout,
    _Scalar,
    _size,
    _vtable,
)
from .records import _MAX_FLATBUFFER, StageBasis, StageCuts, StageStates, StageVertices, _check_finite

F64 = npt.NDArray[np.float64]

# --------------------------------------------------------------------------
# FlatBuffer layout engine (NumPy, front to back, forward offsets)
# --------------------------------------------------------------------------


def _align(pos: int, n: int) -> int:
    return (pos + n - 1) & ~(n - 1)


_PAD = bytes(8)


@dataclass(frozen=True)
class _Rows:
    """A block of equal-length double vectors, one per row of ``arr``: ``[pad 4][len 4][row]`` each.

    Streamed by :func:`_write_chunks` straight from ``arr`` (no copy); when
    ``check`` is ``(file, column)`` each batch of rows is checked for
    NaN/inf just before it is written, while it is still in cache.
    """

    arr: F64
    check: tuple[str, str] | None

    @property
    def nbytes(self) -> int:
        """Bytes the block takes in the file: an 8-byte header before each row."""
        n, d = self.arr.shape
        return int(n) * (8 + 8 * int(d))


_Chunk = bytes | memoryview | _Rows


@dataclass
class _ChildPlan:
    spec: _Child
    source: Any  # object holding the element arrays
    n: int
    vt: bytes
    off: dict[int, int]
    size: int
    vt_pos: int = 0
    vec_pos: int = 0
    tables_pos: int = 0


def _encode(obj: Any, spec: _Root, state_dimension: int, entity: str,
            check_finite: bool = False) -> list[_Chunk]:
    """Lay out ``obj`` as a FlatBuffer; returns the chunks to write in order.

    Front to back: root offset, file identifier, root vtable, root table,
    then per vector of tables its vtable and offset vector, then the tables
    of every vector, the per-element double vectors (returned as
    :class:`_Rows` blocks over the caller's arrays, no copy) and the vectors
    of scalars.
    """
    d = state_dimension
    chunks: list[_Chunk] = []
    pos = 0

    def emit(b: bytes | memoryview) -> None:
        nonlocal pos
        chunks.append(b)
        pos += len(b)

    def pad_to(n: int) -> None:
        gap = _align(pos, n) - pos
        if gap:
            emit(_PAD[:gap])

    # root layout
    root_off, root_size = _root_layout(spec)
    root_vt = _vtable(spec.n_slots, root_off, root_size)
    vt_pos = 4 + len(spec.identifier)
    root_pos = _align(vt_pos + len(root_vt), 8)
    header_len = root_pos + root_size
    plans: list[_ChildPlan] = []
    for child in spec.children:
        source = obj if child.owner is None else getattr(obj, child.owner)
        n = int(np.asarray(getattr(source, child.scalars[0].name)).shape[0])
        cfields = [(s.slot, _size(s.dtype)) for s in child.scalars] + [(m.slot, 4) for m in child.matrices]
        child_off, child_size = _inline_layout(cfields)
        matrix_slots = {m.slot for m in child.matrices}
        present = {m.slot for m in child.matrices if getattr(source, m.name) is not None}
        child_vt = _vtable(child.n_slots, {k: v for k, v in child_off.items()
                                           if k in present or k not in matrix_slots}, child_size)
        plan = _ChildPlan(child, source, n, child_vt, child_off, child_size)
        plan.vt_pos = header_len
        plan.vec_pos = plan.vt_pos + len(child_vt)  # 4-aligned
        header_len = plan.vec_pos + 4 + 4 * n
        plans.append(plan)
    cursor = header_len
    for plan in plans:
        cursor = _align(cursor, 8)
        plan.tables_pos = cursor
        cursor += plan.n * plan.size
    # matrix blocks: record i = [pad 4][len 4][d doubles] at block + i*stride
    stride = 8 + 8 * d
    blocks: list[tuple[_ChildPlan, _Matrix, int, F64]] = []
    for plan in plans:
        for m in plan.spec.matrices:
            arr = getattr(plan.source, m.name)
            if arr is None:
                continue
            cursor = _align(cursor, 8)
            blocks.append((plan, m, cursor, arr))
            cursor += plan.n * stride
    # tail vectors
    tails: list[tuple[_Scalar, int, np.ndarray]] = []
    for t in spec.tails:
        arr = np.ascontiguousarray(getattr(obj, t.name), dtype=t.dtype)
        cursor = _align(cursor, 4)
        tails.append((t, cursor, arr))
        cursor += 4 + arr.nbytes
    total = _align(cursor, 4)
    if total > _MAX_FLATBUFFER:
        raise SerializationError(entity, f"{total} bytes exceed the 2 GiB FlatBuffers limit")

    # header: root offset, identifier, root vtable, root table, per child its vtable and offset vector
    head = bytearray(header_len)
    struct.pack_into("<I", head, 0, root_pos)
    head[4:vt_pos] = spec.identifier
    head[vt_pos:vt_pos + len(root_vt)] = root_vt
    struct.pack_into("<i", head, root_pos, root_pos - vt_pos)
    for s in spec.scalars:
        struct.pack_into("<" + np.dtype(s.dtype).char, head, root_pos + root_off[s.slot],
                         np.asarray(getattr(obj, s.name)).astype(s.dtype).item())
    for t, tpos, _arr in tails:
        fpos = root_pos + root_off[t.slot]
        struct.pack_into("<I", head, fpos, tpos - fpos)
    for plan in plans:
        fpos = root_pos + root_off[plan.spec.slot]
        struct.pack_into("<I", head, fpos, plan.vec_pos - fpos)
        head[plan.vt_pos:plan.vt_pos + len(plan.vt)] = plan.vt
        struct.pack_into("<I", head, plan.vec_pos, plan.n)
        elem = plan.vec_pos + 4 + 4 * np.arange(plan.n, dtype=np.int64)
        table = plan.tables_pos + plan.size * np.arange(plan.n, dtype=np.int64)
        head[plan.vec_pos + 4:plan.vec_pos + 4 + 4 * plan.n] = (table - elem).astype("<u4").tobytes()
    emit(bytes(head))
    for plan in plans:
        child = plan.spec
        pad_to(8)
        assert pos == plan.tables_pos
        names = ["_soffset"] + [s.name for s in child.scalars] + [m.name for m in child.matrices]
        formats = ["<i4"] + [s.dtype for s in child.scalars] + ["<u4"] * len(child.matrices)
        offs = [0] + [plan.off[s.slot] for s in child.scalars] + [plan.off[m.slot] for m in child.matrices]
        rec = np.zeros(plan.n, dtype=np.dtype({"names": names, "formats": formats, "offsets": offs,
                                               "itemsize": plan.size}))
        table = plan.tables_pos + plan.size * np.arange(plan.n, dtype=np.int64)
        rec["_soffset"] = (table - plan.vt_pos).astype("<i4")
        for s in child.scalars:
            rec[s.name] = getattr(plan.source, s.name)
        for bplan, m, bpos, _arr in blocks:
            if bplan is plan:
                field_pos = table + plan.off[m.slot]
                rec[m.name] = (bpos + 4 + stride * np.arange(plan.n, dtype=np.int64) - field_pos).astype("<u4")
        emit(rec.view(np.uint8).data)
    for bplan, m, bpos, arr in blocks:
        pad_to(8)
        assert pos == bpos
        chunks.append(_Rows(arr, (entity, m.name) if check_finite else None))
        pos += bplan.n * stride
    for _t, tpos, arr in tails:
        pad_to(4)
        assert pos == tpos
        emit(struct.pack("<I", arr.shape[0]))
        if arr.nbytes:
            emit(arr.view(np.uint8).data)
    pad_to(4)
    assert pos == total
    return chunks


_ROWS_PER_CHECK = 512  # rows checked for NaN/inf just before they are written (~8 MB at production size)


def allocate_coefficients(n_cuts: int, state_dimension: int) -> F64:
    """A zeroed ``(n_cuts, state_dimension)`` float64 array laid out as a stage file lays out its cuts.

    Each row is preceded in memory by the 8-byte ``[pad][length]`` header
    the FlatBuffer puts before it (rows ``8 + 8*state_dimension`` bytes
    apart), so :func:`write_stage_cuts` writes the whole coefficient block
    from it with one system call, as ``numpy.ndarray.tofile`` does, instead
    of two ``writev`` segments a row.  Fill it in place (``a[i] = ...``,
    ``np.copyto``); a plain array is written the same, byte for byte, only
    a little slower.  The arrays :func:`read_stage_cuts` returns have this
    layout too (views of the mapped file), so a policy read and written back
    takes the same path.
    """
    n, d = int(n_cuts), int(state_dimension)
    if n < 0 or d < 0:
        raise SchemaError("policy", "coefficients", f"cannot allocate {n} x {d} coefficients")
    buf = np.zeros((n, d + 1), dtype="<f8")
    buf.view("<u4")[:, 1] = d
    return buf[:, 1:]


def _framed(arr: F64) -> tuple[np.ndarray, int] | None:
    """``(memory, offset)`` of ``arr``'s rows when each already lies behind its ``[0][length]`` header.

    True of :func:`allocate_coefficients` arrays and of the views
    :func:`read_stage_cuts` returns; checked on the bytes themselves (every
    header, within the memory that owns ``arr``), never assumed.
    """
    n, d = arr.shape
    stride = 8 + 8 * d
    if n == 0 or d == 0 or arr.dtype != np.dtype("<f8") or arr.strides != (stride, 8):
        return None
    owner: Any = arr
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    try:
        mem = np.frombuffer(owner, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        return None
    start = arr.ctypes.data - 8 - mem.ctypes.data
    if start < 0 or start + n * stride > mem.nbytes:
        return None
    heads = np.ndarray((n,), dtype="<u8", buffer=mem, offset=start, strides=(stride,))  # [pad 0][len d]
    if (heads != np.uint64(d) << np.uint64(32)).any():
        return None
    return mem, start


def _iovecs(chunks: Sequence[_Chunk]) -> tuple[np.ndarray, list[tuple[int, _Rows, int, int]], list[Any]]:
    """The ``struct iovec`` array of ``chunks``, built with NumPy (no Python object per row).

    Returns ``(iov, checks, keep)``: ``iov`` is ``(k, 2)`` ``uint64``
    ``(address, length)``; ``checks`` lists ``(end, block, r0, r1)``: rows
    ``r0:r1`` of ``block``, which the entries of ``iov`` before ``end`` finish
    writing, are checked for NaN/inf just before they are written; ``keep`` holds the
    buffers ``iov`` points into that ``chunks`` does not.  A block whose rows
    already lie behind their headers (:func:`_framed`) is one entry per
    batch of rows; any other, two entries a row (header, row).
    """
    parts: list[np.ndarray] = []
    checks: list[tuple[int, _Rows, int, int]] = []
    keep: list[Any] = []
    k = 0
    for chunk in chunks:
        if not isinstance(chunk, _Rows):
            view = np.frombuffer(chunk, dtype=np.uint8)
            parts.append(np.array([[view.ctypes.data, view.nbytes]], dtype=np.uint64))
            keep.append(view)
            k += 1
            continue
        arr = chunk.arr
        n, d = arr.shape
        stride = 8 + 8 * d
        batches = [(r, min(n, r + _ROWS_PER_CHECK)) for r in range(0, n, _ROWS_PER_CHECK)]
        framed = _framed(arr)
        if framed is not None:
            mem, start = framed
            keep.append(mem)
            bounds = np.array(batches, dtype=np.uint64).reshape(-1, 2)
            block = np.empty((len(batches), 2), dtype=np.uint64)
            block[:, 0] = mem.ctypes.data + start + stride * bounds[:, 0]
            block[:, 1] = stride * (bounds[:, 1] - bounds[:, 0])
            if chunk.check is not None:
                checks += [(k + j + 1, chunk, r0, r1) for j, (r0, r1) in enumerate(batches)]
        else:
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
                keep.append(arr)
            header = np.frombuffer(struct.pack("<II", 0, d), dtype=np.uint8)  # [pad 4][len 4]
            keep.append(header)
            rows = np.empty((n, 2, 2), dtype=np.uint64)
            rows[:, 0, 0] = header.ctypes.data
            rows[:, 0, 1] = 8
            rows[:, 1, 0] = arr.ctypes.data + np.uint64(8 * d) * np.arange(n, dtype=np.uint64)
            rows[:, 1, 1] = 8 * d
            block = rows.reshape(2 * n, 2)
            if chunk.check is not None:
                checks += [(k + 2 * r1, chunk, r0, r1) for r0, r1 in batches]
        parts.append(block)
        k += len(block)
    iov = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.uint64)
    return iov, checks, keep


def _write_chunks(fd: int, chunks: Sequence[_Chunk]) -> int:
    """Write ``chunks`` in order to ``fd`` in one gather stream; returns the bytes written.

    :class:`_Rows` blocks go straight from the caller's array, each row
    preceded by its 8-byte ``[pad][length]`` header
    (:func:`~cobre_mpi_io.atomic.write_iovecs`: IOV_MAX segments a
    ``writev``; one segment per 512 rows for an array from
    :func:`allocate_coefficients`).  A block with a ``check`` is checked
    batch by batch, each batch just before it is written, while it is still
    in cache.
    """
    iov, checks, _keep = _iovecs(chunks)
    total = start = 0
    for end, block, r0, r1 in checks:
        if not np.isfinite(block.arr[r0:r1]).all():
            file, column = block.check or ("policy", "coefficients")
            raise SchemaError(file, column, "holds NaN or infinite values")
        total += write_iovecs(fd, iov[start:end])
        start = end
    return total + write_iovecs(fd, iov[start:])


def _write_flatbuffer(path: str | os.PathLike[str], chunks: Sequence[_Chunk],
                      durable: bool) -> int:
    size = sum(c.nbytes if isinstance(c, _Rows) else memoryview(c).nbytes for c in chunks)  # the file's blocks are allocated before the stream (atomic_write)
    with atomic_write(path, durable=durable, size=size) as fh:
        fh.flush()
        return _write_chunks(fh.fileno(), chunks)


POLICY_FORMATS = ("spec", "cobre-0.18")
"""The formats the policy writers write (``spec``: SPEC §9, which Cobre 0.5.x also reads)."""


def _spec_for(fmt: str, kind: str) -> _Root:
    if fmt not in POLICY_FORMATS:
        raise SchemaError("policy", "format", f"{fmt!r}: the policy writers write {' or '.join(POLICY_FORMATS)}")
    spec = _SPECS.get((fmt, kind))
    if spec is None:
        raise SchemaError("policy", "format", f"format {fmt!r} has no {kind}/ files")
    return spec


def _check_cobre_fields(cuts: StageCuts, file: str) -> None:
    missing = cuts.missing_cobre_fields()
    if missing:
        raise SchemaError(file, missing[0], "required by format 'cobre-0.18' (Cobre >= 0.14 records it in "
                          "every cuts file); take it from a Cobre 0.18 policy or case "
                          "(cobre-mpi-io policy convert --case)")


def write_stage_cuts(path: str | os.PathLike[str], cuts: StageCuts, *, durable: bool = True,
                     check_finite: bool = False, format: str = "spec") -> int:
    """Validate ``cuts`` and write it atomically as a ``StageCuts`` FlatBuffer.

    Not collective: call on the writing rank only.

    Parameters
    ----------
    path : path-like
        Final file path.
    cuts : StageCuts
    durable : bool
        fsync file and directory (default).
    check_finite : bool
        Refuse NaN/inf intercepts and coefficients (:class:`SchemaError`).
        Off by default: the pool is persisted bit for bit, and the check
        costs about 20 ms per production stage (a third of the raw write);
        coefficients are checked batch by batch while they are streamed.
    format : {"spec", "cobre-0.18"}
        ``spec`` (default): SPEC §9's ``StageCuts`` (Cobre 0.5.x reads it).
        ``cobre-0.18``: Cobre >= 0.14's layout (``CBVF`` identifier, 12-field
        root, 7-field cut); needs the ``cost_scale_factor``, ``node_id``,
        ``graph_stage_id``, ``priced_state_date`` and ``entity_manifest``
        fields, and has no place for ``scenario_idx``, ``domination_count``
        and ``states_at_generation`` (not written).

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    SchemaError
        Invalid input (see :meth:`StageCuts.validate`); nothing is written.
    SerializationError
        The stage exceeds the 2 GiB FlatBuffers limit.
    IoError
        The write failed; any previous file at ``path`` is untouched.
    """
    spec = _spec_for(format, "cuts")
    cuts.validate(check_finite=False)
    file = f"cuts/{stage_file_name(cuts.stage_id)}"
    if spec.identifier:
        _check_cobre_fields(cuts, file)
    if check_finite:
        _check_finite(cuts.intercepts, file, "intercepts")
    # coefficients are checked batch by batch while they are streamed (in cache)
    chunks = _encode(cuts, spec, cuts.state_dimension, file, check_finite=check_finite)
    return _write_flatbuffer(path, chunks, durable)


def write_stage_states(path: str | os.PathLike[str], states: StageStates, *, durable: bool = True) -> int:
    """Validate and atomically write a ``StageStates`` FlatBuffer (see :func:`write_stage_cuts`).

    Parameters
    ----------
    path : path-like
        Final file path.
    states : StageStates
        The visited states of one stage; coerced in place by its ``validate``.
    durable : bool, default True
        fsync file and directory.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    SchemaError
        Invalid input (see :meth:`StageStates.validate`); nothing is written. NaN/inf
        components are written as they are.
    SerializationError
        The stage exceeds the 2 GiB FlatBuffers limit.
    IoError
        The write failed; any previous file at ``path`` is untouched.
    """
    states.validate()
    return _write_flatbuffer(path, _encode(states, _SPECS[("spec", "states")], states.state_dimension, str(path)), durable)


def write_stage_vertices(path: str | os.PathLike[str], vertices: StageVertices, *,
                         durable: bool = True) -> int:
    """Validate and atomically write a ``StageVertices`` FlatBuffer (see :func:`write_stage_cuts`).

    Parameters
    ----------
    path : path-like
        Final file path.
    vertices : StageVertices
        The inner-approximation vertices of one stage; coerced in place by its
        ``validate``.
    durable : bool, default True
        fsync file and directory.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    SchemaError
        Invalid input (see :meth:`StageVertices.validate`); nothing is written. NaN/inf
        values are written as they are.
    SerializationError
        The stage exceeds the 2 GiB FlatBuffers limit.
    IoError
        The write failed; any previous file at ``path`` is untouched.
    """
    vertices.validate()
    return _write_flatbuffer(path, _encode(vertices, _SPECS[("spec", "vertices")], vertices.state_dimension, str(path)),
                             durable)


def write_stage_basis(path: str | os.PathLike[str], basis: StageBasis, *, durable: bool = True,
                      format: str = "spec") -> int:
    """Validate and atomically write a ``StageBasis`` FlatBuffer (see :func:`write_stage_cuts`).

    Parameters
    ----------
    path : path-like
        Final file path.
    basis : StageBasis
        The cached LP basis of one stage; coerced in place by its ``validate``.
    durable : bool, default True
        fsync file and directory.
    format : {"spec", "cobre-0.18"}
        The same 7 fields in both; ``cobre-0.18`` adds the ``CBVF`` identifier.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    SchemaError
        Invalid input (see :meth:`StageBasis.validate`); nothing is written.
    SerializationError
        The stage exceeds the 2 GiB FlatBuffers limit.
    IoError
        The write failed; any previous file at ``path`` is untouched.
    """
    spec = _spec_for(format, "basis")
    basis.validate()
    return _write_flatbuffer(path, _encode(basis, spec, 0, str(path)), durable)




def encode_stage(stage: StageCuts | StageStates | StageVertices | StageBasis, *, format: str = "spec") -> bytes:
    """The bytes the ``write_stage_*`` writer of ``stage``'s type writes, built in memory.

    ``stage`` is validated first, like the writers do (NaN/inf are kept).
    For tests and tools that want a buffer rather than a file; the
    ``decode_stage_*`` functions of :mod:`cobre_mpi_io.policy.decode` read
    it back.

    Raises
    ------
    SchemaError
        Invalid ``stage`` (see its ``validate``).
    SerializationError
        The stage exceeds the 2 GiB FlatBuffers limit.
    """
    if isinstance(stage, StageCuts):
        spec = _spec_for(format, "cuts")
        stage.validate(check_finite=False)
        if spec.identifier:
            _check_cobre_fields(stage, f"cuts/{stage_file_name(stage.stage_id)}")
        d = stage.state_dimension
    elif isinstance(stage, StageStates):
        spec, d = _spec_for(format, "states"), stage.validate().state_dimension
    elif isinstance(stage, StageVertices):
        spec, d = _spec_for(format, "vertices"), stage.validate().state_dimension
    else:
        spec = _spec_for(format, "basis")
        stage.validate()
        d = 0
    parts: list[bytes | memoryview] = []
    for chunk in _encode(stage, spec, d, f"stage {stage.stage_id}"):
        if isinstance(chunk, _Rows):  # [pad 4][len 4][row] per row, as _write_chunks streams them
            n, dim = chunk.arr.shape
            block = np.zeros((n, 8 + 8 * dim), dtype=np.uint8)
            block[:, 4:8] = np.frombuffer(struct.pack("<I", dim), dtype=np.uint8)
            block[:, 8:] = chunk.arr.view(np.uint8).reshape(n, 8 * dim)
            parts.append(block.data)
        else:
            parts.append(chunk)
    return b"".join(parts)
