"""Decoding policy stage files: memory-mapped, bounds-checked, zero-copy where the layout allows.

:func:`read_stage_cuts` (and friends) memory-map the file and return NumPy
views into it: the coefficient matrix is a zero-copy ``(n_cuts,
state_dimension)`` strided view whenever the vectors sit at a constant
stride with the expected length (always, for our files), and a gathered
copy otherwise (files from another writer).  :func:`decode_stage_cuts`
(and friends) decode bytes already in memory the same way.

Every decode is bounded by the file.  A first pass walks what the kind's
schema reaches from the root table, reading offsets and lengths only, and
refuses the file (:class:`SerializationError`) unless

- every table's vtable lies inside the file and has no more fields than the
  schema's table (roots: ``StageCuts`` 7, ``StageStates`` 3,
  ``StageVertices`` 4, ``StageBasis`` 7; elements: ``BendersCut`` 10,
  ``VisitedState`` and ``Vertex`` 7), and every present field lies inside
  its table;
- every vector lies inside the file (its length is checked against the file
  size before anything is allocated);
- the objects reached (root offset, tables, vectors, vtables) do not overlap
  -- distinct cuts may not share bytes; only vtables may be shared -- and
  cover the file up to alignment padding (7 bytes per object at most): the
  objects of a file of another kind are not reached from this kind's root;
- the root vtable is not the one this package writes for another kind
  (a ``StageStates`` and a ``StageVertices`` without ``stage_lipschitz`` are
  otherwise the same bytes).

Only then are the fields materialised (views, or copies of disjoint pieces
of the file), so a decode allocates a small multiple of the file size at
most.  The record must then carry the ``stage_id`` of its file name and the
expected ``state_dimension`` (:class:`SchemaError`) and pass its
``validate()``.  A flipped bit that leaves all of this valid (one
coefficient) is caught by the xxhash64 the checkpoint records
(``expected=``, checked before decoding).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import OutputError, SchemaError, SerializationError
from ..layout import STAGE_FILE_RE
from .layouts import _SPECS, _Root, _root_vtable, _size
from .mapped import _MIN_SIZE, _map
from .records import EntityManifest, FileDigest, StageBasis, StageCuts, StageStates, StageVertices

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Buffer = bytes | bytearray | memoryview | mmap.mmap

_PADDING = 7  # alignment padding allowed before each object (8-byte alignment at most)


@dataclass(frozen=True)
class _Kind:
    subdir: str  # directory of its files
    name: str  # root table
    element: str  # element table ("" for StageBasis)
    spec: _Root
    format: str = "spec"


_NAMES = {"cuts": ("StageCuts", "BendersCut"), "states": ("StageStates", "VisitedState"),
          "vertices": ("StageVertices", "Vertex"), "basis": ("StageBasis", "")}
_ALL_KINDS = {key: _Kind(key[1], *_NAMES[key[1]], spec, key[0]) for key, spec in _SPECS.items()}
_KINDS = {sub: k for (fmt, sub), k in _ALL_KINDS.items() if fmt == "spec"}
_OWN_ROOT_VTABLES = {sub: _root_vtable(k.spec) for sub, k in _KINDS.items()}
_BOOLEAN = frozenset({"is_active", "was_active"})


def stage_file_format(data: Buffer) -> str:
    """``"cobre-0.18"`` when ``data`` carries Cobre's ``CBVF`` file identifier, else ``"spec"``.

    Cobre 0.5.x files have the spec layout and no identifier.
    """
    head = bytes(memoryview(data)[4:8]) if len(data) >= 8 else b""
    return "cobre-0.18" if head == _SPECS[("cobre-0.18", "cuts")].identifier else "spec"

# --------------------------------------------------------------------------
# Bounds-checked reads and the objects reached
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tables:
    """Tables at ``pos`` and their distinct vtables."""

    pos: I64
    vt: I64  # distinct vtable positions
    inv: I64  # index into ``vt`` of each table's vtable
    slots: I64  # number of field slots of each distinct vtable
    size: I64  # inline size of the tables of each distinct vtable


class _Buf:
    """Bounds-checked little-endian reads of a FlatBuffer, and the extents of the objects reached."""

    def __init__(self, data: Buffer, source: str, kind: _Kind) -> None:
        self.data = data
        self.source = source
        self.kind = kind
        self.u8 = np.frombuffer(data, dtype=np.uint8)
        self.size = int(self.u8.shape[0])
        self._starts: list[I64] = []
        self._ends: list[I64] = []
        self._vtables: list[tuple[I64, I64]] = []
        self._windows: dict[int, np.ndarray] = {}  # itemsize -> every k-byte window of the file (a view)
        if self.size < _MIN_SIZE:
            raise self.fail(f"{self.size} bytes cannot hold one")

    def fail(self, message: str) -> SerializationError:
        return SerializationError(self.source, f"not a valid {self.kind.name} FlatBuffer: {message}")

    def check(self, pos: Any, nbytes: Any, what: str) -> None:
        """Every ``[pos, pos + nbytes)`` inside the file."""
        p = np.asarray(pos, dtype=np.int64)
        if p.size and (int(p.min()) < 0 or int((p + nbytes).max()) > self.size):
            raise self.fail(f"{what} outside the file ({self.size} bytes)")

    def gather(self, pos: I64, dtype: str) -> np.ndarray:
        """The ``dtype`` values at byte positions ``pos`` (a copy of ``itemsize`` bytes each)."""
        k = np.dtype(dtype).itemsize
        self.check(pos, k, "a field")
        if pos.size == 0:
            return np.zeros(0, dtype=dtype)
        windows = self._windows.get(k)
        if windows is None:  # built once per item size: a third of a small file's decode time otherwise
            windows = self._windows[k] = np.lib.stride_tricks.sliding_window_view(self.u8, k)
        values: np.ndarray = windows[pos].view(dtype).reshape(-1)
        return values

    def reached(self, start: I64, end: I64) -> None:
        self._starts.append(start)
        self._ends.append(end)

    def tables(self, pos: I64, max_slots: int, what: str) -> _Tables:
        """Check the tables at ``pos`` (``what``: the table name) and their vtables; record both."""
        self.check(pos, 4, f"a {what} table")
        vt_all = pos - self.gather(pos, "<i4").astype(np.int64)
        if bool((vt_all == vt_all[0]).all()):  # the usual case: one vtable shared by all the elements
            vt, inv = vt_all[:1].copy(), np.zeros(pos.shape[0], dtype=np.intp)
        else:
            vt, inv = np.unique(vt_all, return_inverse=True)
        del vt_all
        self.check(vt, 4, f"a {what} vtable")
        vsize = self.gather(vt, "<u2").astype(np.int64)
        tsize = self.gather(vt + 2, "<u2").astype(np.int64)
        if ((vsize < 4) | (vsize % 2 == 1) | (tsize < 4)).any():
            raise self.fail(f"a {what} vtable has impossible sizes")
        slots = (vsize - 4) // 2
        if int(slots.max()) > max_slots:
            raise self.fail(f"a {what} table has {int(slots.max())} fields, the schema's {max_slots} "
                            "(a file of another kind?)")
        self.check(vt, vsize, f"a {what} vtable")
        self._vtables.append((vt, vt + vsize))
        self.check(pos, tsize[inv], f"a {what} table")
        self.reached(pos, pos + tsize[inv])
        return _Tables(pos, vt, inv.reshape(-1), slots, tsize)

    def offsets(self, t: _Tables, slot: int, size: int, name: str) -> I64:
        """Offset of field ``slot`` (``size`` bytes) in the tables of each distinct vtable of ``t``; 0: absent."""
        off = np.zeros(t.vt.shape[0], dtype=np.int64)
        has = t.slots > slot
        if has.any():
            off[has] = self.gather(t.vt[has] + 4 + 2 * slot, "<u2")
        if ((off > 0) & ((off < 4) | (off + size > t.size))).any():
            raise self.fail(f"field {name} lies outside its table")
        return off

    def field(self, t: _Tables, slot: int, size: int, name: str) -> I64:
        """Position of field ``slot`` (``size`` bytes) in each table of ``t``; 0 where absent."""
        return _positions(t, self.offsets(t, slot, size, name))

    def vectors(self, fields: I64, elem: int, name: str) -> tuple[I64, I64]:
        """(first element, length) of the vectors referenced at ``fields``; checked and recorded."""
        vec = fields + self.gather(fields, "<u4").astype(np.int64)
        self.check(vec, 4, f"the {name} vector")
        length = self.gather(vec, "<u4").astype(np.int64)
        end = vec + 4 + length * elem
        if end.size and int(end.max()) > self.size:
            raise self.fail(f"the {name} vector of {int(length[int(end.argmax())])} elements claims more "
                            f"bytes than the file holds ({self.size})")
        if _overlap(vec, 4):  # early, before the objects pile up
            raise self.fail(f"two {name} fields point at the same vector (distinct elements may not share bytes)")
        self.reached(vec, end)
        return vec + 4, length

    def finish(self) -> None:
        """The objects reached must not overlap and must cover the file up to alignment padding."""
        vt = np.concatenate([v for v, _e in self._vtables])
        vt, first = np.unique(vt, return_index=True)  # a vtable may be shared by many tables
        vt_end = np.concatenate([e for _v, e in self._vtables])[first]
        starts = np.concatenate([*self._starts, vt])
        self._starts.clear()
        ends = np.concatenate([*self._ends, vt_end])
        self._ends.clear()
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        ends = ends[order]
        del order
        clash = ends[:-1] > starts[1:]
        if clash.any():
            i = int(clash.argmax())
            raise self.fail(f"objects at bytes {starts[i]}..{ends[i]} and {starts[i + 1]}..{ends[i + 1]} "
                            "overlap (distinct fields may not share bytes)")
        unreached = self.size - int((ends - starts).sum())
        if unreached > _PADDING * starts.shape[0]:
            raise self.fail(f"{unreached} of its {self.size} bytes are not reached from a {self.kind.name} "
                            "root table (a file of another kind, or bytes appended)")

    def matrix(self, starts: I64, n: int, d: int) -> F64:
        """(n, d) float64 rows at ``starts``: a zero-copy strided view when possible, else a copy."""
        if n == 0 or d == 0:
            return np.zeros((n, d), dtype="<f8")
        steps = np.diff(starts)
        stride = int(steps[0]) if n > 1 else 8 * d
        first = int(starts[0])
        if (first % 8 == 0 and stride % 8 == 0 and stride >= 8 * d
                and (n == 1 or bool((steps == stride).all()))):
            return np.ndarray((n, d), dtype="<f8", buffer=self.data, offset=first, strides=(stride, 8))
        rows = np.lib.stride_tricks.sliding_window_view(self.u8, 8 * d)[starts]
        out: F64 = rows.view("<f8")
        return out


def _overlap(pos: I64, size: int) -> bool:
    """Whether objects of at least ``size`` bytes at ``pos`` would overlap (no sort when ascending)."""
    if pos.shape[0] < 2:
        return False
    if bool((np.diff(pos) >= size).all()):
        return False
    return bool((np.diff(np.sort(pos)) < size).any())


def _positions(t: _Tables, off: I64) -> I64:
    """Per-table positions of a field at per-vtable offsets ``off`` (0 where absent)."""
    per = off[t.inv]
    return np.where(per > 0, t.pos + per, 0)


def _check_layout(buf: _Buf, root: _Tables) -> None:
    """Refuse a root vtable that is the one this package writes for another kind."""
    vt = int(root.vt[0])
    raw = buf.u8[vt:vt + 4 + 2 * int(root.slots[0])].tobytes()
    if raw == _OWN_ROOT_VTABLES[buf.kind.subdir]:
        return
    for sub, own in _OWN_ROOT_VTABLES.items():
        if raw == own:
            raise buf.fail(f"its root table is laid out as cobre_mpi_io writes a {_KINDS[sub].name} "
                           f"(a {sub}/ file)")


def _decode_buf(buf: _Buf) -> dict[str, Any]:
    """Decode the root table of ``buf.kind`` into a dict of attribute -> value/array."""
    spec = buf.kind.spec
    zero = np.zeros(1, dtype=np.int64)
    buf.reached(zero, zero + 4 + len(spec.identifier))
    if spec.identifier and buf.u8[4:8].tobytes() != spec.identifier:
        raise buf.fail(f'missing the FlatBuffers file identifier "{spec.identifier.decode()}"')
    root = buf.tables(buf.gather(zero, "<u4").astype(np.int64), spec.n_slots, buf.kind.name)
    if buf.kind.format == "spec":
        _check_layout(buf, root)
    out: dict[str, Any] = {}
    for s in spec.scalars:
        fp = buf.field(root, s.slot, _size(s.dtype), s.name)
        out[s.name] = buf.gather(fp, s.dtype)[0].item() if fp[0] else s.default
    tails: list[tuple[str, str, int, int]] = []
    for t in spec.tails:
        fp = buf.field(root, t.slot, 4, t.name)
        if fp[0]:
            start, length = buf.vectors(fp, _size(t.dtype), t.name)
            tails.append((t.name, t.dtype, int(start[0]), int(length[0])))
        else:
            tails.append((t.name, t.dtype, 0, 0))
    d = int(out.get("state_dimension", 0))
    children: list[tuple[Any, int, _Tables | None, list[tuple[Any, I64 | None]],
                         list[tuple[Any, I64 | None, I64 | None]]]] = []
    for child in spec.children:
        element = buf.kind.element if child.owner is None else child.owner
        fp = buf.field(root, child.slot, 4, f"{element} vector")
        tables = np.zeros(0, dtype=np.int64)
        n = 0
        if fp[0]:
            start, length = buf.vectors(fp, 4, element)
            n, first = int(length[0]), int(start[0])
            offsets = buf.u8[first:first + 4 * n].view("<u4")
            tables = first + 4 * np.arange(n, dtype=np.int64) + offsets
            del offsets
        if _overlap(tables, 4):
            raise buf.fail(f"two {element} entries point at the same bytes "
                           "(distinct elements may not share bytes)")
        elems = buf.tables(tables, child.n_slots, element) if n else None
        if elems is not None:
            for slot in child.absent:
                if bool(buf.offsets(elems, slot, 1, f"slot {slot}").any()):
                    raise buf.fail(f"a {element} sets field slot {slot}, which this reader does not know")
        scalars: list[tuple[Any, I64 | None]] = []  # per-vtable offsets (positions follow one at a time)
        matrices: list[tuple[Any, I64 | None, I64 | None]] = []
        for s in child.scalars:
            scalars.append((s, buf.offsets(elems, s.slot, _size(s.dtype), s.name) if elems is not None else None))
        for m in child.matrices:
            if elems is None:
                matrices.append((m, None, None))  # no elements: (0, d), or None when optional
                continue
            mp = buf.field(elems, m.slot, 4, m.name)
            present = mp > 0
            if not present.all():
                if present.any():
                    raise buf.fail(f"field {m.name} present on some elements only")
                if n and not m.optional and d:
                    raise buf.fail(f"a {element} has no {m.name}")
                matrices.append((m, None, None))
                continue
            starts, lengths = buf.vectors(mp, 8, m.name)
            matrices.append((m, starts, lengths))
        children.append((child, n, elems, scalars, matrices))
    buf.finish()
    # materialise: every piece below is a view, or a copy of bytes no other piece reads
    for name, dtype, at, count in tails:
        out[name] = (np.frombuffer(buf.data, dtype=dtype, count=count, offset=at) if count
                     else np.zeros(0, dtype=dtype))
    for child, n, elems, scalars, matrices in children:
        target: dict[str, Any] = out if child.owner is None else out.setdefault(child.owner, {})
        for s, off in scalars:
            vals = np.full(n, s.default, dtype=s.dtype)
            if elems is not None and off is not None and off.any():
                pos = _positions(elems, off)
                has = pos > 0
                vals[has] = buf.gather(pos[has], s.dtype)
                del pos, has
            if s.name in _BOOLEAN:
                if bool((vals > 1).any()):
                    raise buf.fail(f"an {s.name} byte is neither 0 nor 1")
                vals = vals.astype(np.bool_)
            target[s.name] = vals
        for m, rows, sizes in matrices:
            if rows is None or sizes is None:
                target[m.name] = None if m.optional else np.zeros((n, d) if n and not d else (0, d), dtype="<f8")
                continue
            if m.optional and n and d and not sizes.any():
                # The Cobre solver writes state_at_generation as an empty vector on every cut: "not
                # recorded", the same as an absent field (None). A mix of empty and full is corrupt.
                target[m.name] = None
                continue
            if n and bool((sizes != d).any()):
                raise buf.fail(f"{m.name} vectors must have state_dimension={d} entries")
            target[m.name] = buf.matrix(rows, n, d)
    return out


def _decode(data: Buffer, subdir: str, source: str, fmt: str = "spec") -> dict[str, Any]:
    kind = _ALL_KINDS.get((fmt, subdir))
    if kind is None:
        raise SerializationError(source, f"reading {subdir}/ files of format {fmt} is not supported")
    buf = _Buf(data, source, kind)
    try:
        return _decode_buf(buf)
    except OutputError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise buf.fail(f"{type(exc).__name__}: {exc}") from exc


def _expect(obj: Any, source: str, stage_id: int | None, state_dimension: int | None) -> None:
    """SchemaError unless ``obj`` is stage ``stage_id`` of ``state_dimension`` (when given)."""
    if stage_id is not None and obj.stage_id != stage_id:
        raise SchemaError(source, "stage_id", f"the file holds stage {obj.stage_id}, its name says {stage_id}")
    dim = getattr(obj, "state_dimension", None)
    if state_dimension is not None and dim is not None and dim != state_dimension:
        raise SchemaError(source, "state_dimension", f"{dim}, expected {state_dimension} (metadata.json)")


# --------------------------------------------------------------------------
# Public decoders: bytes in memory, and files (memory-mapped, optionally verified)
# --------------------------------------------------------------------------


def decode_stage_cuts(data: Buffer, *, source: str = "cuts", stage_id: int | None = None,
                      state_dimension: int | None = None) -> StageCuts:
    """Decode a ``StageCuts`` FlatBuffer held in memory (see :func:`read_stage_cuts`).

    Parameters
    ----------
    data : bytes-like
        The whole buffer; the returned arrays may be views into it.
    source : str
        Named in errors.
    stage_id, state_dimension : int, optional
        Expected values (:class:`SchemaError` when they differ).

    Returns
    -------
    StageCuts
        A file with Cobre's ``CBVF`` identifier (Cobre >= 0.14) is decoded
        with that layout: its ``cost_scale_factor``, ``node_id``,
        ``graph_stage_id``, ``priced_state_date`` and ``entity_manifest``
        are set; ``scenario_idx`` and ``domination_count`` (which it lacks)
        are 0 and ``states_at_generation`` None.  Any other file is decoded
        with the spec layout (which Cobre 0.5.x files share).

    Raises
    ------
    SerializationError
        Not a valid ``StageCuts`` FlatBuffer (see the module docstring).
    SchemaError
        Unexpected stage or dimension, or the content fails ``validate()``.
    """
    fmt = stage_file_format(data)
    v = _decode(data, "cuts", source, fmt)
    populated = int(v.pop("populated_count"))
    if fmt != "spec":  # Cobre >= 0.14: no scenario_idx, domination_count nor states_at_generation
        n = int(v["cut_ids"].shape[0])
        v["scenario_idx"] = np.zeros(n, dtype="<u4")
        v["entity_manifest"] = EntityManifest(**v["entity_manifest"])
    sc = StageCuts(**v)
    if populated != sc.n_cuts:
        raise SerializationError(source, f"populated_count {populated} != {sc.n_cuts} cuts in the file")
    _expect(sc, source, stage_id, state_dimension)
    return sc.validate(check_finite=False, contiguous=False)


def decode_stage_states(data: Buffer, *, source: str = "states", stage_id: int | None = None,
                        state_dimension: int | None = None) -> StageStates:
    """Decode a ``StageStates`` FlatBuffer held in memory (see :func:`decode_stage_cuts`).

    Parameters
    ----------
    data : bytes-like
        The whole buffer; the returned arrays may be views into it.
    source : str, default ``"states"``
        Named in errors (the file path when reading a file).
    stage_id : int, optional
        The stage the buffer must hold (:class:`SchemaError` when it differs).
    state_dimension : int, optional
        The dimension the buffer must have (:class:`SchemaError` when it differs).

    Returns
    -------
    StageStates
        The decoded, validated stage.

    Raises
    ------
    SerializationError
        Not a valid ``StageStates`` FlatBuffer (see the module docstring).
    SchemaError
        Unexpected stage or dimension, or the content fails :meth:`StageStates.validate`.
    """
    st = StageStates(**_decode(data, "states", source))
    _expect(st, source, stage_id, state_dimension)
    return st.validate(contiguous=False)


def decode_stage_vertices(data: Buffer, *, source: str = "vertices", stage_id: int | None = None,
                          state_dimension: int | None = None) -> StageVertices:
    """Decode a ``StageVertices`` FlatBuffer held in memory (see :func:`decode_stage_cuts`).

    Parameters
    ----------
    data : bytes-like
        The whole buffer; the returned arrays may be views into it.
    source : str, default ``"vertices"``
        Named in errors (the file path when reading a file).
    stage_id : int, optional
        The stage the buffer must hold (:class:`SchemaError` when it differs).
    state_dimension : int, optional
        The dimension the buffer must have (:class:`SchemaError` when it differs).

    Returns
    -------
    StageVertices
        The decoded, validated stage.

    Raises
    ------
    SerializationError
        Not a valid ``StageVertices`` FlatBuffer (see the module docstring).
    SchemaError
        Unexpected stage or dimension, or the content fails :meth:`StageVertices.validate`.
    """
    vx = StageVertices(**_decode(data, "vertices", source))
    _expect(vx, source, stage_id, state_dimension)
    return vx.validate(contiguous=False)


def decode_stage_basis(data: Buffer, *, source: str = "basis", stage_id: int | None = None) -> StageBasis:
    """Decode a ``StageBasis`` FlatBuffer held in memory (see :func:`decode_stage_cuts`).

    Parameters
    ----------
    data : bytes-like
        The whole buffer; the returned arrays may be views into it.
    source : str, default ``"basis"``
        Named in errors (the file path when reading a file).
    stage_id : int, optional
        The stage the buffer must hold (:class:`SchemaError` when it differs).

    Returns
    -------
    StageBasis
        The decoded, validated stage.

    Raises
    ------
    SerializationError
        Not a valid ``StageBasis`` FlatBuffer (see the module docstring).
    SchemaError
        Unexpected stage, or the content fails :meth:`StageBasis.validate`.
    """
    bs = StageBasis(**_decode(data, "basis", source, stage_file_format(data)))
    _expect(bs, source, stage_id, None)
    return bs.validate()


def _name_stage(path: Path, stage_id: int | None) -> int | None:
    if stage_id is not None:
        return stage_id
    m = STAGE_FILE_RE.match(path.name)
    return int(m.group(1)) if m else None


def read_stage_cuts(path: str | os.PathLike[str], *, stage_id: int | None = None,
                    state_dimension: int | None = None, expected: FileDigest | None = None) -> StageCuts:
    """Read a ``cuts/stage_NNN.bin`` file, memory-mapped and checked (see the module docstring).

    Parameters
    ----------
    path : path-like
    stage_id : int, optional
        The stage the file must hold; default: ``NNN`` of a ``stage_NNN.bin``
        file name (no check for other names).
    state_dimension : int, optional
        The dimension the file must have.
    expected : FileDigest, optional
        Size and xxhash64 recorded for the file: checked on the whole file
        before decoding (reads every page: about 20-30 ms per 250 MB here).

    Returns
    -------
    StageCuts
        ``coefficients`` (and ``states_at_generation``, None when the file
        has none) are zero-copy ``(n_cuts, state_dimension)`` views into the
        mapped file when the vectors are laid out at a constant stride; the
        map stays open as long as a view references it.  Per-cut scalars are
        small copies; ``active_cut_indices`` is a view.

    Files written by the Cobre solver itself (0.5.x) read too: their
    ``state_at_generation`` vectors are all empty, read as None (not
    recorded), and their placeholder cuts (cut_id 0, iteration 0,
    inactive) are ordinary inactive cuts.  Cobre's ``Cut`` slot 4 is a
    deprecated, never-written field: it reads as ``scenario_idx`` 0, and
    the absent ``domination_count`` as 0.

    Raises
    ------
    IoError
        The file cannot be opened.
    ManifestError
        Its size or xxhash64 differs from ``expected``.
    SerializationError
        The bytes are not a valid ``StageCuts`` FlatBuffer.
    SchemaError
        Another stage or dimension than expected, or content that fails
        :meth:`StageCuts.validate`.
    """
    p = Path(path)
    return decode_stage_cuts(_map(p, expected), source=str(p), stage_id=_name_stage(p, stage_id),
                             state_dimension=state_dimension)


def read_stage_states(path: str | os.PathLike[str], *, stage_id: int | None = None,
                      state_dimension: int | None = None, expected: FileDigest | None = None) -> StageStates:
    """Read a ``states/stage_NNN.bin`` file (memory-mapped, checked; see :func:`read_stage_cuts`).

    Parameters
    ----------
    path : path-like
        The file.
    stage_id : int, optional
        The stage the file must hold; default: ``NNN`` of a ``stage_NNN.bin``
        file name (no check for other names).
    state_dimension : int, optional
        The dimension the file must have.
    expected : FileDigest, optional
        Size and xxhash64 recorded for the file: checked on the whole file
        before decoding.

    Returns
    -------
    StageStates
        The stage; its arrays may be zero-copy views into the mapped file
        (the map stays open as long as a view references it).

    Raises
    ------
    IoError
        The file cannot be opened.
    ManifestError
        Its size or xxhash64 differs from ``expected``.
    SerializationError
        The bytes are not a valid ``StageStates`` FlatBuffer.
    SchemaError
        Another stage or dimension than expected, or content that fails :meth:`StageStates.validate`.
    """
    p = Path(path)
    return decode_stage_states(_map(p, expected), source=str(p), stage_id=_name_stage(p, stage_id),
                               state_dimension=state_dimension)


def read_stage_vertices(path: str | os.PathLike[str], *, stage_id: int | None = None,
                        state_dimension: int | None = None,
                        expected: FileDigest | None = None) -> StageVertices:
    """Read a ``vertices/stage_NNN.bin`` file (memory-mapped, checked; see :func:`read_stage_cuts`).

    Parameters
    ----------
    path : path-like
        The file.
    stage_id : int, optional
        The stage the file must hold; default: ``NNN`` of a ``stage_NNN.bin``
        file name (no check for other names).
    state_dimension : int, optional
        The dimension the file must have.
    expected : FileDigest, optional
        Size and xxhash64 recorded for the file: checked on the whole file
        before decoding.

    Returns
    -------
    StageVertices
        The stage; its arrays may be zero-copy views into the mapped file
        (the map stays open as long as a view references it).

    Raises
    ------
    IoError
        The file cannot be opened.
    ManifestError
        Its size or xxhash64 differs from ``expected``.
    SerializationError
        The bytes are not a valid ``StageVertices`` FlatBuffer.
    SchemaError
        Another stage or dimension than expected, or content that fails :meth:`StageVertices.validate`.
    """
    p = Path(path)
    return decode_stage_vertices(_map(p, expected), source=str(p), stage_id=_name_stage(p, stage_id),
                                 state_dimension=state_dimension)


def read_stage_basis(path: str | os.PathLike[str], *, stage_id: int | None = None,
                     expected: FileDigest | None = None) -> StageBasis:
    """Read a ``basis/stage_NNN.bin`` file (memory-mapped, checked; see :func:`read_stage_cuts`).

    Parameters
    ----------
    path : path-like
        The file.
    stage_id : int, optional
        The stage the file must hold; default: ``NNN`` of a ``stage_NNN.bin``
        file name (no check for other names).
    expected : FileDigest, optional
        Size and xxhash64 recorded for the file: checked on the whole file
        before decoding.

    Returns
    -------
    StageBasis
        The stage; its arrays may be zero-copy views into the mapped file
        (the map stays open as long as a view references it).

    Raises
    ------
    IoError
        The file cannot be opened.
    ManifestError
        Its size or xxhash64 differs from ``expected``.
    SerializationError
        The bytes are not a valid ``StageBasis`` FlatBuffer.
    SchemaError
        Another stage than expected, or content that fails :meth:`StageBasis.validate`.
    """
    p = Path(path)
    return decode_stage_basis(_map(p, expected), source=str(p), stage_id=_name_stage(p, stage_id))
