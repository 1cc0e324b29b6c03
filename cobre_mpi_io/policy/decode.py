"""Decoding policy stage files: memory-mapped, bounds-checked, zero-copy where the layout allows.

:func:`read_stage_cuts` (and friends) memory-map the file and return NumPy
views into it: the coefficient matrix is a zero-copy ``(n_cuts,
state_dimension)`` strided view whenever the vectors sit at a constant
stride with the expected length (always, for our files), and a gathered
copy otherwise (files from another writer).

"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import IoError, OutputError, SerializationError
from .codec import _BASIS_SPEC, _CUT_SPEC, _STATES_SPEC, _VERTICES_SPEC, _Root, _size
from .records import StageBasis, StageCuts, StageStates, StageVertices

F64 = npt.NDArray[np.float64]

# --------------------------------------------------------------------------
# Decoding (memory-mapped, zero-copy where the layout allows)
# --------------------------------------------------------------------------


class _Buf:
    """A read-only memory-mapped file with bounds-checked little-endian accessors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < 8:
                    raise SerializationError(str(path), f"file of {size} bytes is not a FlatBuffer")
                self.mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise IoError.from_os_error(path, exc) from exc
        self.u8 = np.frombuffer(self.mm, dtype=np.uint8)
        self.size = size

    def fail(self, message: str) -> SerializationError:
        return SerializationError(str(self.path), f"corrupt FlatBuffer: {message}")

    def check(self, pos: Any, nbytes: int) -> None:
        p = np.asarray(pos)
        if p.size and (int(p.min()) < 0 or int(p.max()) + nbytes > self.size):
            raise self.fail(f"offset outside the file ({self.size} bytes)")

    def scalar(self, fmt: str, pos: int) -> Any:
        self.check(pos, struct.calcsize("<" + fmt))
        return struct.unpack_from("<" + fmt, self.mm, pos)[0]

    def gather(self, pos: np.ndarray, dtype: str) -> np.ndarray:
        k = np.dtype(dtype).itemsize
        self.check(pos, k)
        if pos.size == 0:
            return np.zeros(0, dtype=dtype)
        idx = pos.astype(np.int64)[:, None] + np.arange(k, dtype=np.int64)
        values: np.ndarray = self.u8[idx].view(dtype).reshape(-1)
        return values

    def field_pos(self, table: int, slot: int) -> int:
        """Absolute position of field ``slot`` of the table at ``table``, 0 if absent."""
        vt = table - self.scalar("i", table)
        vt_size = self.scalar("H", vt)
        if 4 + 2 * slot >= vt_size:
            return 0
        off = self.scalar("H", vt + 4 + 2 * slot)
        return table + off if off else 0

    def field_pos_many(self, tables: np.ndarray, slot: int) -> np.ndarray:
        """Vectorised :meth:`field_pos`; 0 where absent."""
        vt = tables - self.gather(tables, "<i4").astype(np.int64)
        vt_size = self.gather(vt, "<u2").astype(np.int64)
        has = 4 + 2 * slot < vt_size
        off = np.zeros(tables.shape[0], dtype=np.int64)
        if has.any():
            off[has] = self.gather(vt[has] + 4 + 2 * slot, "<u2")
        return np.where(off > 0, tables + off, 0)

    def vector(self, field: int) -> tuple[int, int]:
        """(start of elements, length) of the vector referenced at ``field``."""
        vec = field + self.scalar("I", field)
        return vec + 4, int(self.scalar("I", vec))


def _decode(path: Path, spec: _Root, entity_fields: dict[str, Any]) -> dict[str, Any]:
    """Decode a root table of ``spec`` into a dict of attribute -> value/array."""
    buf = _Buf(path)
    try:
        return _decode_buf(buf, spec, entity_fields)
    except OutputError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError) as exc:
        raise buf.fail(repr(exc)) from exc


def _decode_buf(buf: _Buf, spec: _Root, out: dict[str, Any]) -> dict[str, Any]:
    root = int(buf.scalar("I", 0))
    for s in spec.scalars:
        fpos = buf.field_pos(root, s.slot)
        v = buf.scalar(np.dtype(s.dtype).char, fpos) if fpos else s.default
        out[s.name] = v
    for t in spec.tails:
        fpos = buf.field_pos(root, t.slot)
        if not fpos:
            out[t.name] = np.zeros(0, dtype=t.dtype)
            continue
        start, length = buf.vector(fpos)
        nbytes = length * _size(t.dtype)
        buf.check(start, nbytes)
        out[t.name] = np.frombuffer(buf.mm, dtype=t.dtype, count=length, offset=start)
    child = spec.child
    if child is None:
        return out
    d = int(out.get("state_dimension", 0))
    fpos = buf.field_pos(root, child.slot)
    if fpos:
        start, n = buf.vector(fpos)
        buf.check(start, 4 * n)
        elems = start + 4 * np.arange(n, dtype=np.int64)
        tables = elems + np.frombuffer(buf.mm, dtype="<u4", count=n, offset=start).astype(np.int64)
    else:
        n = 0
        tables = np.zeros(0, dtype=np.int64)
    for s in child.scalars:
        fp = buf.field_pos_many(tables, s.slot)
        vals = np.full(n, s.default, dtype=s.dtype)
        has = fp > 0
        if has.any():
            vals[has] = buf.gather(fp[has], s.dtype)
        out[s.name] = vals.astype(np.bool_) if s.name == "is_active" else vals
    for m in child.matrices:
        fp = buf.field_pos_many(tables, m.slot)
        if not (fp > 0).any() and (n or m.optional):
            out[m.name] = None if m.optional else np.zeros((0, d), dtype="<f8")
            continue
        if n and not (fp > 0).all():
            raise buf.fail(f"field {m.name} present on some elements only")
        vecs = fp + buf.gather(fp, "<u4").astype(np.int64)
        lengths = buf.gather(vecs, "<u4")
        if m.optional and n and d and not lengths.any():
            # The Cobre solver writes state_at_generation as an empty vector on every cut: "not
            # recorded", the same as an absent field (None). A mix of empty and full is corrupt.
            out[m.name] = None
            continue
        if n and (lengths != d).any():
            raise buf.fail(f"{m.name} vectors must have state_dimension={d} entries")
        out[m.name] = _matrix_view(buf, vecs + 4, n, d)
    return out


def _matrix_view(buf: _Buf, starts: np.ndarray, n: int, d: int) -> F64:
    """(n, d) float64 rows starting at ``starts``: a zero-copy strided view when possible."""
    if n == 0:
        return np.zeros((0, d), dtype="<f8")
    buf.check(starts, 8 * d)
    steps = np.diff(starts)
    stride = int(steps[0]) if n > 1 else 8 * d
    if (int(starts[0]) % 8 == 0 and stride % 8 == 0 and stride >= 8 * d
            and (n == 1 or bool((steps == stride).all()))):
        return np.ndarray((n, d), dtype="<f8", buffer=buf.mm, offset=int(starts[0]),
                          strides=(stride, 8))
    out = np.empty((n, d), dtype="<f8")
    for i, s in enumerate(starts.tolist()):
        out[i] = np.frombuffer(buf.mm, dtype="<f8", count=d, offset=s)
    return out


def read_stage_cuts(path: str | os.PathLike[str]) -> StageCuts:
    """Read a ``cuts/stage_NNN.bin`` file, memory-mapped.

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
    SerializationError
        The bytes are not a valid ``StageCuts`` FlatBuffer.
    """
    v = _decode(Path(path), _CUT_SPEC, {})
    populated = int(v.pop("populated_count"))
    sc = StageCuts(**v)
    if populated != sc.n_cuts:
        raise SerializationError(str(path), f"populated_count {populated} != {sc.n_cuts} cuts in the file")
    return sc


def read_stage_states(path: str | os.PathLike[str]) -> StageStates:
    """Read a ``states/stage_NNN.bin`` file (memory-mapped; see :func:`read_stage_cuts`)."""
    return StageStates(**_decode(Path(path), _STATES_SPEC, {}))


def read_stage_vertices(path: str | os.PathLike[str]) -> StageVertices:
    """Read a ``vertices/stage_NNN.bin`` file (memory-mapped; see :func:`read_stage_cuts`)."""
    return StageVertices(**_decode(Path(path), _VERTICES_SPEC, {}))


def read_stage_basis(path: str | os.PathLike[str]) -> StageBasis:
    """Read a ``basis/stage_NNN.bin`` file (memory-mapped; see :func:`read_stage_cuts`)."""
    return StageBasis(**_decode(Path(path), _BASIS_SPEC, {}))


