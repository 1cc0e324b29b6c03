"""The FlatBuffers policy checkpoint (SPEC §9): types, writer, reader, periodic checkpoints.

In memory a stage is **columnar**: one NumPy array per field, the cut
coefficients one ``(n_cuts, state_dimension)`` array.  On disk each stage is
one FlatBuffer per file, schema ``cobre_mpi_io/fbs/policy.fbs`` (namespace
``cobre.policy``, fields in the corpus order, no file identifier)::

    <checkpoint>/cuts/stage_NNN.bin      root StageCuts
    <checkpoint>/states/stage_NNN.bin    root StageStates   (when given)
    <checkpoint>/vertices/stage_NNN.bin  root StageVertices (when given)
    <checkpoint>/basis/stage_NNN.bin     root StageBasis
    <checkpoint>/metadata.json           PolicyMetadata, for people to read
    <checkpoint>/state_dictionary.json   (when given)

Encoding
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

Decoding
--------
:func:`read_stage_cuts` (and friends) memory-map the file and return NumPy
views into it: the coefficient matrix is a zero-copy ``(n_cuts,
state_dimension)`` strided view whenever the vectors sit at a constant
stride with the expected length (always, for our files), and a gathered
copy otherwise (files from another writer).

Whole-checkpoint atomicity
--------------------------
A checkpoint is written into a dot-prefixed temp directory under
``policy/checkpoints/``, fsynced, renamed to ``iter_NNNNNN`` and then
published by atomically replacing the symlink ``policy/latest`` (a new
symlink renamed over the old one).  ``policy/{cuts,states,vertices,basis,
metadata.json,state_dictionary.json}`` are fixed symlinks into ``latest``,
so the SPEC §2 paths (``OUT/policy/cuts/stage_000.bin``) always show one
complete checkpoint and switch as one.  A crash at any point leaves the
previous ``latest`` intact; stray temp directories are removed by the next
checkpoint.  The last ``keep`` (default 3) checkpoints are retained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import mmap
import os
import re
import secrets
import shutil
import signal
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from . import mpi
from .atomic import atomic_write, ensure_dir, fsync_dir, write_json_atomic
from .errors import IoError, ManifestError, OutputError, SchemaError, SerializationError
from .manifest import read_json_document, utc_now

__all__ = [
    "POLICY_FORMAT_VERSION",
    "STAGE_SUBDIRS",
    "CheckpointRecord",
    "PolicyCheckpoint",
    "PolicyCheckpointer",
    "PolicyMetadata",
    "StageBasis",
    "StageCuts",
    "StageStates",
    "StageVertices",
    "list_checkpoints",
    "policy_cut_files",
    "read_policy_checkpoint",
    "read_stage_basis",
    "read_stage_cuts",
    "read_stage_states",
    "read_stage_vertices",
    "resolve_checkpoint_dir",
    "stage_file_name",
    "synthetic_policy",
    "write_policy_checkpoint",
    "write_stage_basis",
    "write_stage_cuts",
    "write_stage_states",
    "write_stage_vertices",
]

POLICY_FORMAT_VERSION = "1.0.0"
STAGE_SUBDIRS = ("cuts", "states", "vertices", "basis")
_LINKED_FILES = ("metadata.json", "state_dictionary.json")
_CHECKPOINTS = "checkpoints"
_LATEST = "latest"
_CKPT_RE = re.compile(r"^iter_(\d+)(?:-(\d+))?$")
_STAGE_RE = re.compile(r"^stage_(\d+)\.bin$")
_MAX_FLATBUFFER = 2**31 - 1

F64 = npt.NDArray[np.float64]


def stage_file_name(stage_id: int) -> str:
    """``stage_{stage_id:03d}.bin``, the name of a stage file (SPEC §2)."""
    return f"stage_{int(stage_id):03d}.bin"


# --------------------------------------------------------------------------
# In-memory types
# --------------------------------------------------------------------------


def _as_array(value: Any, dtype: Any, n: int | None, file: str, column: str, *,
              default: Any = None) -> np.ndarray:
    """Coerce ``value`` to a 1-D array of ``dtype`` of length ``n`` or raise SchemaError."""
    if value is None:
        if default is None or n is None:
            raise SchemaError(file, column, "is required")
        return np.full(n, default, dtype=dtype)
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise SchemaError(file, column, f"must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise SchemaError(file, column, f"has {arr.shape[0]} entries, expected {n}")
    target = np.dtype(dtype)
    if arr.dtype != target:
        if arr.size and target.kind in "ui":
            if arr.dtype.kind not in "uib":
                raise SchemaError(file, column, f"must be integer, got {arr.dtype}")
            info = np.iinfo(target)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise SchemaError(file, column, f"values {lo}..{hi} outside {target} range")
        if target.kind == "b" and arr.dtype.kind not in "bui":
            raise SchemaError(file, column, f"must be boolean, got {arr.dtype}")
        if target.kind == "f" and arr.dtype.kind not in "fiu":
            raise SchemaError(file, column, f"must be numeric, got {arr.dtype}")
        arr = arr.astype(target)
    return arr


def _as_matrix(value: Any, n: int, d: int, file: str, column: str) -> F64:
    """Coerce to a C-contiguous little-endian float64 ``(n, d)`` array or raise SchemaError."""
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape != (n, d):
        raise SchemaError(file, column, f"must have shape ({n}, {d}), got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise SchemaError(file, column, f"must be numeric, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype="<f8")


def _check_finite(arr: np.ndarray, file: str, column: str, rows: int = 4096) -> None:
    """SchemaError if ``arr`` holds NaN/inf (checked in row chunks to bound memory)."""
    for start in range(0, arr.shape[0], rows):
        if not np.isfinite(arr[start:start + rows]).all():
            raise SchemaError(file, column, "holds NaN or infinite values")


def _u32(value: Any, file: str, column: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(file, column, f"must be an integer, got {value!r}") from exc
    if not 0 <= v < 2**32:
        raise SchemaError(file, column, f"{v} outside uint32 range")
    return v


@dataclass(eq=False)
class StageCuts:
    """The cut pool of one stage, columnar (root table ``StageCuts``).

    Row ``i`` of every per-cut array describes the same cut; rows are written
    in this order.  Arrays are coerced to their on-disk dtypes and checked by
    :meth:`validate` (called by the writers).

    Parameters
    ----------
    stage_id, state_dimension, capacity, warm_start_count : int
        Stage header. ``capacity`` is the number of slots of the pool.
    cut_ids : array of uint64, shape (n_cuts,)
    slot_index : array of uint32
        Pool slot of each cut: unique, ``< capacity``.
    iteration, forward_pass_idx, scenario_idx : arrays of uint32
    intercepts : array of float64
    coefficients : array of float64, shape (n_cuts, state_dimension)
    states_at_generation : array of float64, same shape, optional
    is_active : array of bool, optional (default all True)
    domination_count : array of uint32, optional (default 0)
    active_cut_indices : array of uint32, optional
        Slot indices of the active cuts; derived from ``is_active`` (sorted)
        when omitted. Must be exactly the slots whose ``is_active`` is set.
    """

    stage_id: int
    state_dimension: int
    capacity: int
    warm_start_count: int
    cut_ids: Any
    slot_index: Any
    iteration: Any
    forward_pass_idx: Any
    scenario_idx: Any
    intercepts: Any
    coefficients: Any
    states_at_generation: Any = None
    is_active: Any = None
    domination_count: Any = None
    active_cut_indices: Any = None

    @property
    def n_cuts(self) -> int:
        """Number of cuts (the populated count)."""
        return int(np.asarray(self.cut_ids).shape[0])

    @property
    def populated_count(self) -> int:
        """Populated slots of the pool, ``n_cuts``."""
        return self.n_cuts

    def validate(self, *, check_finite: bool = True) -> StageCuts:
        """Coerce arrays in place and check shapes, ranges and consistency.

        Raises
        ------
        SchemaError
            Naming ``cuts/stage_NNN.bin`` and the field: wrong shape or
            dtype, populated count above capacity, slot index out of range
            or repeated, active indices out of range or disagreeing with
            ``is_active``, NaN/inf in intercepts or coefficients.
        """
        file = f"cuts/{stage_file_name(_u32(self.stage_id, 'cuts', 'stage_id'))}"
        self.stage_id = _u32(self.stage_id, file, "stage_id")
        self.state_dimension = d = _u32(self.state_dimension, file, "state_dimension")
        self.capacity = _u32(self.capacity, file, "capacity")
        self.warm_start_count = _u32(self.warm_start_count, file, "warm_start_count")
        self.cut_ids = _as_array(self.cut_ids, "<u8", None, file, "cut_ids")
        n = self.cut_ids.shape[0]
        if n > self.capacity:
            raise SchemaError(file, "populated_count", f"{n} cuts exceed capacity {self.capacity}")
        self.slot_index = _as_array(self.slot_index, "<u4", n, file, "slot_index")
        self.iteration = _as_array(self.iteration, "<u4", n, file, "iteration")
        self.forward_pass_idx = _as_array(self.forward_pass_idx, "<u4", n, file, "forward_pass_idx")
        self.scenario_idx = _as_array(self.scenario_idx, "<u4", n, file, "scenario_idx")
        self.intercepts = _as_array(self.intercepts, "<f8", n, file, "intercepts")
        self.is_active = _as_array(self.is_active, np.bool_, n, file, "is_active", default=True)
        self.domination_count = _as_array(self.domination_count, "<u4", n, file, "domination_count",
                                          default=0)
        self.coefficients = _as_matrix(self.coefficients, n, d, file, "coefficients")
        if self.states_at_generation is not None:
            self.states_at_generation = _as_matrix(self.states_at_generation, n, d, file,
                                                   "states_at_generation")
        if n and int(self.slot_index.max()) >= self.capacity:
            raise SchemaError(file, "slot_index",
                              f"slot {int(self.slot_index.max())} outside 0..{self.capacity - 1}")
        if np.unique(self.slot_index).shape[0] != n:
            raise SchemaError(file, "slot_index", "slot indices are not unique")
        active_slots = np.sort(self.slot_index[self.is_active])
        if self.active_cut_indices is None:
            self.active_cut_indices = active_slots.astype("<u4")
        else:
            self.active_cut_indices = _as_array(self.active_cut_indices, "<u4", None, file,
                                                "active_cut_indices")
            aci = self.active_cut_indices
            if aci.size and int(aci.max()) >= self.capacity:
                raise SchemaError(file, "active_cut_indices",
                                  f"index {int(aci.max())} outside 0..{self.capacity - 1}")
            if not np.array_equal(np.sort(aci), active_slots):
                raise SchemaError(file, "active_cut_indices",
                                  "must list exactly the slot indices of the cuts with is_active set")
        if check_finite:
            _check_finite(self.intercepts, file, "intercepts")
            _check_finite(self.coefficients, file, "coefficients")
        return self


def _validate_points(obj: Any, kind: str, id_field: str, extra: Sequence[tuple[str, str]]) -> str:
    """Shared validation of :class:`StageStates` and :class:`StageVertices` (points in state space).

    Coerces in place ``stage_id``, ``state_dimension``, the ``id_field`` ids (uint64), ``iteration``,
    ``forward_pass_idx``, ``scenario_idx`` (uint32), ``components`` (n, state_dimension) and the
    ``extra`` per-point arrays; returns the stage file name used in errors.
    """
    file = f"{kind}/{stage_file_name(_u32(obj.stage_id, kind, 'stage_id'))}"
    obj.stage_id = _u32(obj.stage_id, file, "stage_id")
    obj.state_dimension = d = _u32(obj.state_dimension, file, "state_dimension")
    ids = _as_array(getattr(obj, id_field), "<u8", None, file, id_field)
    setattr(obj, id_field, ids)
    n = ids.shape[0]
    for name, dtype in (("iteration", "<u4"), ("forward_pass_idx", "<u4"), ("scenario_idx", "<u4")):
        setattr(obj, name, _as_array(getattr(obj, name), dtype, n, file, name))
    obj.components = _as_matrix(obj.components, n, d, file, "components")
    for name, dtype in extra:
        setattr(obj, name, _as_array(getattr(obj, name), dtype, n, file, name))
    return file


@dataclass(eq=False)
class StageStates:
    """Visited states of one stage, columnar (root table ``StageStates``).

    Parameters
    ----------
    stage_id, state_dimension : int
    state_ids : array of uint64, shape (n_states,)
    iteration, forward_pass_idx, scenario_idx : arrays of uint32
    components : array of float64, shape (n_states, state_dimension)
    dominating_cut_id : array of uint64
    dominating_objective : array of float64
    """

    stage_id: int
    state_dimension: int
    state_ids: Any
    iteration: Any
    forward_pass_idx: Any
    scenario_idx: Any
    components: Any
    dominating_cut_id: Any
    dominating_objective: Any

    @property
    def n_states(self) -> int:
        """Number of visited states."""
        return int(np.asarray(self.state_ids).shape[0])

    def validate(self) -> StageStates:
        """Coerce arrays in place and check shapes; :class:`SchemaError` naming the field."""
        _validate_points(self, "states", "state_ids", (("dominating_cut_id", "<u8"), ("dominating_objective", "<f8")))
        return self


@dataclass(eq=False)
class StageVertices:
    """Inner-approximation vertices of one stage (root table ``StageVertices``).

    Parameters
    ----------
    stage_id, state_dimension : int
    vertex_ids : array of uint64, shape (n_vertices,)
    iteration, forward_pass_idx, scenario_idx : arrays of uint32
    components : array of float64, shape (n_vertices, state_dimension)
    upper_bound_value, lipschitz_constant : arrays of float64
    stage_lipschitz : float
    """

    stage_id: int
    state_dimension: int
    vertex_ids: Any
    iteration: Any
    forward_pass_idx: Any
    scenario_idx: Any
    components: Any
    upper_bound_value: Any
    lipschitz_constant: Any
    stage_lipschitz: float = 0.0

    @property
    def n_vertices(self) -> int:
        """Number of vertices."""
        return int(np.asarray(self.vertex_ids).shape[0])

    def validate(self) -> StageVertices:
        """Coerce arrays in place and check shapes; :class:`SchemaError` naming the field."""
        file = _validate_points(self, "vertices", "vertex_ids",
                                (("upper_bound_value", "<f8"), ("lipschitz_constant", "<f8")))
        try:
            self.stage_lipschitz = float(self.stage_lipschitz)
        except (TypeError, ValueError) as exc:
            raise SchemaError(file, "stage_lipschitz", f"must be a number, got {self.stage_lipschitz!r}") from exc
        return self


@dataclass(eq=False)
class StageBasis:
    """The cached LP basis of one stage (root table ``StageBasis``).

    Parameters
    ----------
    stage_id, iteration : int
    num_columns, num_rows : int
        LP size; ``column_status`` has ``num_columns`` entries and
        ``row_status`` ``num_rows`` entries.
    column_status, row_status : arrays of uint8
    num_cut_rows : int
        How many of the rows are cut rows (``<= num_rows``).
    """

    stage_id: int
    iteration: int
    num_columns: int
    num_rows: int
    column_status: Any
    row_status: Any
    num_cut_rows: int = 0

    def validate(self) -> StageBasis:
        """Coerce arrays in place and check lengths; :class:`SchemaError` naming the field."""
        file = f"basis/{stage_file_name(_u32(self.stage_id, 'basis', 'stage_id'))}"
        self.stage_id = _u32(self.stage_id, file, "stage_id")
        self.iteration = _u32(self.iteration, file, "iteration")
        self.num_columns = _u32(self.num_columns, file, "num_columns")
        self.num_rows = _u32(self.num_rows, file, "num_rows")
        self.num_cut_rows = _u32(self.num_cut_rows, file, "num_cut_rows")
        self.column_status = _as_array(self.column_status, "u1", self.num_columns, file, "column_status")
        self.row_status = _as_array(self.row_status, "u1", self.num_rows, file, "row_status")
        if self.num_cut_rows > self.num_rows:
            raise SchemaError(file, "num_cut_rows", f"{self.num_cut_rows} exceeds num_rows {self.num_rows}")
        return self


@dataclass(frozen=True)
class PolicyMetadata:
    """``policy/metadata.json`` (SPEC §9), written as JSON for people to read.

    ``best_upper_bound`` may be None (not evaluated); non-finite floats are
    written as null.
    """

    completed_iterations: int
    state_dimension: int
    num_stages: int
    last_forward_pass: int = 0
    final_lower_bound: float | None = None
    best_upper_bound: float | None = None
    max_iterations: int = 0
    forward_passes: int = 0
    warm_start_cuts: int = 0
    rng_seed: int = 0
    rng_state: tuple[int, ...] = ()
    config_hash: str = ""
    system_hash: str = ""
    cobre_version: str = ""
    created_at: str = ""
    version: str = POLICY_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys in the SPEC §9 order."""

        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(float(x)) else float(x)

        return {
            "version": self.version,
            "cobre_version": self.cobre_version,
            "created_at": self.created_at,
            "completed_iterations": int(self.completed_iterations),
            "last_forward_pass": int(self.last_forward_pass),
            "final_lower_bound": num(self.final_lower_bound),
            "best_upper_bound": num(self.best_upper_bound),
            "max_iterations": int(self.max_iterations),
            "forward_passes": int(self.forward_passes),
            "warm_start_cuts": int(self.warm_start_cuts),
            "rng_seed": int(self.rng_seed),
            "rng_state": [int(x) for x in self.rng_state],
            "state_dimension": int(self.state_dimension),
            "num_stages": int(self.num_stages),
            "config_hash": self.config_hash,
            "system_hash": self.system_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "policy/metadata.json") -> PolicyMetadata:
        """Rebuild from :meth:`to_dict` output; :class:`ManifestError` if a field is missing/bad."""
        try:
            return cls(
                version=str(data["version"]),
                cobre_version=str(data.get("cobre_version", "")),
                created_at=str(data.get("created_at", "")),
                completed_iterations=int(data["completed_iterations"]),
                last_forward_pass=int(data.get("last_forward_pass", 0)),
                final_lower_bound=data.get("final_lower_bound"),
                best_upper_bound=data.get("best_upper_bound"),
                max_iterations=int(data.get("max_iterations", 0)),
                forward_passes=int(data.get("forward_passes", 0)),
                warm_start_cuts=int(data.get("warm_start_cuts", 0)),
                rng_seed=int(data.get("rng_seed", 0)),
                rng_state=tuple(int(x) for x in data.get("rng_state", ())),
                state_dimension=int(data["state_dimension"]),
                num_stages=int(data["num_stages"]),
                config_hash=str(data.get("config_hash", "")),
                system_hash=str(data.get("system_hash", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(source, f"invalid policy metadata: {exc!r}") from exc


@dataclass
class PolicyCheckpoint:
    """A whole policy checkpoint in memory (what :func:`read_policy_checkpoint` returns).

    Attributes
    ----------
    metadata : PolicyMetadata
    cuts, bases, states, vertices : lists, in stage order
        ``states``/``vertices`` are empty when the checkpoint has none.
    state_dictionary : dict or None
    path : Path or None
        The resolved checkpoint directory it was read from.
    """

    metadata: PolicyMetadata
    cuts: list[StageCuts]
    bases: list[StageBasis] = field(default_factory=list)
    states: list[StageStates] = field(default_factory=list)
    vertices: list[StageVertices] = field(default_factory=list)
    state_dictionary: dict[str, Any] | None = None
    path: Path | None = None

    def write_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`write_policy_checkpoint` that rewrite this checkpoint."""
        return {
            "stage_cuts": self.cuts,
            "stage_bases": self.bases,
            "metadata": self.metadata,
            "stage_states": self.states or None,
            "stage_vertices": self.vertices or None,
            "state_dictionary": self.state_dictionary,
        }


@dataclass(frozen=True)
class CheckpointRecord:
    """What :func:`write_policy_checkpoint` wrote (the same on every rank).

    Attributes
    ----------
    policy_dir : str
        The ``policy/`` directory (holding ``latest`` and ``checkpoints/``).
    checkpoint_dir : str
        The published checkpoint, ``policy/checkpoints/iter_NNNNNN``.
    iteration : int
    files : dict
        Path relative to the checkpoint directory -> bytes.
    removed : tuple of str
        Older checkpoints deleted by retention.
    """

    policy_dir: str
    checkpoint_dir: str
    iteration: int
    files: dict[str, int]
    removed: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of the written files."""
        return sum(self.files.values())


# --------------------------------------------------------------------------
# FlatBuffer layout engine (NumPy, front to back, forward offsets)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scalar:
    slot: int
    name: str  # attribute of the in-memory type
    dtype: str  # numpy dtype string, little-endian
    default: float | int | bool = 0


@dataclass(frozen=True)
class _Matrix:
    slot: int
    name: str  # attribute: (n, state_dimension) float64, or None -> field absent
    optional: bool = False


@dataclass(frozen=True)
class _Child:
    """A vector of tables, all sharing one vtable and one fixed inline layout."""

    slot: int
    n_slots: int
    scalars: tuple[_Scalar, ...]
    matrices: tuple[_Matrix, ...]


@dataclass(frozen=True)
class _Root:
    n_slots: int
    scalars: tuple[_Scalar, ...]
    child: _Child | None
    tails: tuple[_Scalar, ...]  # vectors of scalars: name -> 1-D array, dtype = element type


def _size(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def _inline_layout(fields: Sequence[tuple[int, int]]) -> tuple[dict[int, int], int]:
    """Offsets (from the table start) of ``(slot, size)`` fields and the padded inline size.

    The table starts with its 4-byte soffset; 8-byte fields land on 8-aligned
    offsets (tables themselves start 8-aligned).
    """
    by_size: dict[int, list[int]] = {8: [], 4: [], 1: []}
    for slot, size in fields:
        by_size[size].append(slot)
    offsets: dict[int, int] = {}
    cursor = 4
    fours = list(by_size[4])
    if fours:
        offsets[fours.pop(0)] = 4
        cursor = 8
    cursor = (cursor + 7) & ~7
    for slot in by_size[8]:
        offsets[slot] = cursor
        cursor += 8
    for slot in fours:
        offsets[slot] = cursor
        cursor += 4
    for slot in by_size[1]:
        offsets[slot] = cursor
        cursor += 1
    return offsets, max(8, (cursor + 7) & ~7)


def _vtable(n_slots: int, offsets: Mapping[int, int], table_size: int) -> bytes:
    entries = [offsets.get(s, 0) for s in range(n_slots)]
    raw = struct.pack(f"<HH{n_slots}H", 4 + 2 * n_slots, table_size, *entries)
    return raw + b"\0" * (-len(raw) % 4)


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


_Chunk = bytes | memoryview | _Rows


def _encode(obj: Any, spec: _Root, state_dimension: int, entity: str,
            check_finite: bool = False) -> list[_Chunk]:
    """Lay out ``obj`` as a FlatBuffer; returns the chunks to write in order.

    The big per-element double vectors are returned as :class:`_Rows`
    blocks over the caller's arrays (no copy).
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
    root_fields = [(s.slot, _size(s.dtype)) for s in spec.scalars]
    root_fields += [(t.slot, 4) for t in spec.tails]
    if spec.child is not None:
        root_fields.append((spec.child.slot, 4))
    root_off, root_size = _inline_layout(root_fields)
    root_vt = _vtable(spec.n_slots, root_off, root_size)
    vt_pos = 4
    root_pos = _align(vt_pos + len(root_vt), 8)
    header_len = root_pos + root_size
    child = spec.child
    n = 0
    child_vec_pos = child_vt_pos = 0
    child_vt = b""
    child_off: dict[int, int] = {}
    child_size = 0
    if child is not None:
        n = int(getattr(obj, child.scalars[0].name).shape[0])
        cfields = [(s.slot, _size(s.dtype)) for s in child.scalars] + [(m.slot, 4) for m in child.matrices]
        child_off, child_size = _inline_layout(cfields)
        present = {m.slot for m in child.matrices if getattr(obj, m.name) is not None}
        child_vt = _vtable(child.n_slots, {k: v for k, v in child_off.items()
                                           if k in present or k not in {m.slot for m in child.matrices}},
                           child_size)
        child_vt_pos = header_len
        child_vec_pos = child_vt_pos + len(child_vt)  # 4-aligned
        header_len = child_vec_pos + 4 + 4 * n
    tables_pos = _align(header_len, 8)
    pos_after_tables = tables_pos + n * child_size
    # matrix blocks: record i = [pad 4][len 4][d doubles] at block + i*stride
    stride = 8 + 8 * d
    blocks: list[tuple[_Matrix, int, F64]] = []
    cursor = pos_after_tables
    if child is not None:
        for m in child.matrices:
            arr = getattr(obj, m.name)
            if arr is None:
                continue
            cursor = _align(cursor, 8)
            blocks.append((m, cursor, arr))
            cursor += n * stride
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

    # header: root offset, root vtable, root table, child vtable, child offset vector
    head = bytearray(header_len)
    struct.pack_into("<I", head, 0, root_pos)
    head[vt_pos:vt_pos + len(root_vt)] = root_vt
    struct.pack_into("<i", head, root_pos, root_pos - vt_pos)
    for s in spec.scalars:
        struct.pack_into("<" + np.dtype(s.dtype).char, head, root_pos + root_off[s.slot],
                         np.asarray(getattr(obj, s.name)).astype(s.dtype).item())
    for t, tpos, _arr in tails:
        fpos = root_pos + root_off[t.slot]
        struct.pack_into("<I", head, fpos, tpos - fpos)
    if child is not None:
        fpos = root_pos + root_off[child.slot]
        struct.pack_into("<I", head, fpos, child_vec_pos - fpos)
        head[child_vt_pos:child_vt_pos + len(child_vt)] = child_vt
        struct.pack_into("<I", head, child_vec_pos, n)
        elem = child_vec_pos + 4 + 4 * np.arange(n, dtype=np.int64)
        table = tables_pos + child_size * np.arange(n, dtype=np.int64)
        head[child_vec_pos + 4:] = (table - elem).astype("<u4").tobytes()
    emit(bytes(head))
    if child is not None:
        pad_to(8)
        names = ["_soffset"] + [s.name for s in child.scalars] + [m.name for m in child.matrices]
        formats = ["<i4"] + [s.dtype for s in child.scalars] + ["<u4"] * len(child.matrices)
        offs = [0] + [child_off[s.slot] for s in child.scalars] + [child_off[m.slot] for m in child.matrices]
        rec = np.zeros(n, dtype=np.dtype({"names": names, "formats": formats, "offsets": offs,
                                          "itemsize": child_size}))
        table = tables_pos + child_size * np.arange(n, dtype=np.int64)
        rec["_soffset"] = (table - child_vt_pos).astype("<i4")
        for s in child.scalars:
            rec[s.name] = getattr(obj, s.name)
        for m, bpos, _arr in blocks:
            field_pos = table + child_off[m.slot]
            rec[m.name] = (bpos + 4 + stride * np.arange(n, dtype=np.int64) - field_pos).astype("<u4")
        emit(rec.view(np.uint8).data)
        assert pos == pos_after_tables
        for m, bpos, arr in blocks:
            pad_to(8)
            assert pos == bpos
            chunks.append(_Rows(arr, (entity, m.name) if check_finite else None))
            pos += n * stride
    for _t, tpos, arr in tails:
        pad_to(4)
        assert pos == tpos
        emit(struct.pack("<I", arr.shape[0]))
        if arr.nbytes:
            emit(arr.view(np.uint8).data)
    pad_to(4)
    assert pos == total
    return chunks


def _iov_max() -> int:
    try:
        return max(16, min(int(os.sysconf("SC_IOV_MAX")), 1024))
    except (AttributeError, ValueError, OSError):
        return 1024


_IOV_MAX = _iov_max()


_ROWS_PER_BATCH = 512  # IOV_MAX (1024) iovecs, ~8 MB at production size: fewest writev calls


def _write_chunks(fd: int, chunks: Sequence[_Chunk]) -> int:
    """Write ``chunks`` in order to ``fd`` with ``os.writev``; returns the bytes written.

    :class:`_Rows` blocks are streamed in batches of rows, each row preceded
    by its 8-byte ``[pad][length]`` header, straight from the array.
    """
    total = 0
    pending: list[bytes | memoryview] = []
    for chunk in chunks:
        if not isinstance(chunk, _Rows):
            pending.append(chunk)
            continue
        n, d = chunk.arr.shape
        header = struct.pack("<II", 0, d)
        row_bytes = 8 * d
        flat = chunk.arr.reshape(-1).view(np.uint8).data
        if pending:
            total += _writev_all(fd, pending)
        for start in range(0, n, _ROWS_PER_BATCH):
            stop = min(n, start + _ROWS_PER_BATCH)
            if chunk.check is not None and not np.isfinite(chunk.arr[start:stop]).all():
                raise SchemaError(chunk.check[0], chunk.check[1], "holds NaN or infinite values")
            pending = [header] * (2 * (stop - start))
            pending[1::2] = [flat[i:i + row_bytes] for i in range(start * row_bytes, stop * row_bytes, row_bytes)]
            total += _writev_all(fd, pending, (stop - start) * (8 + row_bytes))
        pending = []
    return total + _writev_all(fd, pending)


def _writev_all(fd: int, chunks: Sequence[bytes | memoryview], nbytes: int | None = None) -> int:
    """``os.writev`` of ``chunks`` (``nbytes`` in all, if known) in batches of IOV_MAX.

    Handles short writes by finishing the batch chunk by chunk.
    """
    total = 0
    writev = getattr(os, "writev", None)
    i = 0
    while i < len(chunks):
        batch = chunks[i:i + _IOV_MAX]
        i += len(batch)
        if nbytes is not None and len(batch) == len(chunks):
            want = nbytes
        else:
            want = sum(len(b) for b in batch)
        if writev is None:
            done = 0
        else:
            done = writev(fd, batch)
            total += done
            if done == want:
                continue
        # short write (or no writev): finish this batch chunk by chunk
        for b in batch:
            if done >= len(b):
                done -= len(b)
                continue
            rest = memoryview(b)[done:]
            done = 0
            while rest:
                k = os.write(fd, rest)
                rest = rest[k:]
                total += k
    return total


def _write_flatbuffer(path: str | os.PathLike[str], chunks: Sequence[_Chunk],
                      durable: bool) -> int:
    with atomic_write(path, durable=durable) as fh:
        fh.flush()
        return _write_chunks(fh.fileno(), chunks)


_CUT_SPEC = _Root(
    n_slots=7,
    scalars=(
        _Scalar(0, "stage_id", "<u4"),
        _Scalar(1, "state_dimension", "<u4"),
        _Scalar(2, "capacity", "<u4"),
        _Scalar(3, "warm_start_count", "<u4"),
        _Scalar(6, "populated_count", "<u4"),
    ),
    child=_Child(
        slot=4,
        n_slots=10,
        scalars=(
            _Scalar(0, "cut_ids", "<u8"),
            _Scalar(1, "slot_index", "<u4"),
            _Scalar(2, "iteration", "<u4"),
            _Scalar(3, "forward_pass_idx", "<u4"),
            _Scalar(4, "scenario_idx", "<u4"),
            _Scalar(5, "intercepts", "<f8"),
            _Scalar(8, "is_active", "u1", True),
            _Scalar(9, "domination_count", "<u4", 0),
        ),
        matrices=(_Matrix(6, "coefficients"), _Matrix(7, "states_at_generation", optional=True)),
    ),
    tails=(_Scalar(5, "active_cut_indices", "<u4"),),
)

_STATES_SPEC = _Root(
    n_slots=3,
    scalars=(_Scalar(0, "stage_id", "<u4"), _Scalar(1, "state_dimension", "<u4")),
    child=_Child(
        slot=2,
        n_slots=7,
        scalars=(
            _Scalar(0, "state_ids", "<u8"),
            _Scalar(1, "iteration", "<u4"),
            _Scalar(2, "forward_pass_idx", "<u4"),
            _Scalar(3, "scenario_idx", "<u4"),
            _Scalar(5, "dominating_cut_id", "<u8"),
            _Scalar(6, "dominating_objective", "<f8"),
        ),
        matrices=(_Matrix(4, "components"),),
    ),
    tails=(),
)

_VERTICES_SPEC = _Root(
    n_slots=4,
    scalars=(_Scalar(0, "stage_id", "<u4"), _Scalar(1, "state_dimension", "<u4"),
             _Scalar(3, "stage_lipschitz", "<f8")),
    child=_Child(
        slot=2,
        n_slots=7,
        scalars=(
            _Scalar(0, "vertex_ids", "<u8"),
            _Scalar(1, "iteration", "<u4"),
            _Scalar(2, "forward_pass_idx", "<u4"),
            _Scalar(3, "scenario_idx", "<u4"),
            _Scalar(5, "upper_bound_value", "<f8"),
            _Scalar(6, "lipschitz_constant", "<f8"),
        ),
        matrices=(_Matrix(4, "components"),),
    ),
    tails=(),
)

_BASIS_SPEC = _Root(
    n_slots=7,
    scalars=(
        _Scalar(0, "stage_id", "<u4"),
        _Scalar(1, "iteration", "<u4"),
        _Scalar(2, "num_columns", "<u4"),
        _Scalar(3, "num_rows", "<u4"),
        _Scalar(6, "num_cut_rows", "<u4"),
    ),
    child=None,
    tails=(_Scalar(4, "column_status", "u1"), _Scalar(5, "row_status", "u1")),
)


def write_stage_cuts(path: str | os.PathLike[str], cuts: StageCuts, *, durable: bool = True,
                     check_finite: bool = False) -> int:
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
    cuts.validate(check_finite=False)
    file = f"cuts/{stage_file_name(cuts.stage_id)}"
    if check_finite:
        _check_finite(cuts.intercepts, file, "intercepts")
    # coefficients are checked batch by batch while they are streamed (in cache)
    chunks = _encode(cuts, _CUT_SPEC, cuts.state_dimension, file, check_finite=check_finite)
    return _write_flatbuffer(path, chunks, durable)


def write_stage_states(path: str | os.PathLike[str], states: StageStates, *, durable: bool = True) -> int:
    """Validate and atomically write a ``StageStates`` FlatBuffer; returns bytes (see :func:`write_stage_cuts`)."""
    states.validate()
    return _write_flatbuffer(path, _encode(states, _STATES_SPEC, states.state_dimension, str(path)), durable)


def write_stage_vertices(path: str | os.PathLike[str], vertices: StageVertices, *,
                         durable: bool = True) -> int:
    """Validate and atomically write a ``StageVertices`` FlatBuffer; returns bytes (see :func:`write_stage_cuts`)."""
    vertices.validate()
    return _write_flatbuffer(path, _encode(vertices, _VERTICES_SPEC, vertices.state_dimension, str(path)),
                             durable)


def write_stage_basis(path: str | os.PathLike[str], basis: StageBasis, *, durable: bool = True) -> int:
    """Validate and atomically write a ``StageBasis`` FlatBuffer; returns bytes (see :func:`write_stage_cuts`)."""
    basis.validate()
    return _write_flatbuffer(path, _encode(basis, _BASIS_SPEC, 0, str(path)), durable)


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


# --------------------------------------------------------------------------
# Whole checkpoints
# --------------------------------------------------------------------------


def _checkpoint_name(iteration: int) -> str:
    return f"iter_{int(iteration):06d}"


def list_checkpoints(policy_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints under ``policy_dir/checkpoints``, oldest iteration first."""
    root = Path(policy_dir) / _CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), int(m.group(2) or 0), p) for p in root.iterdir()
             if (m := _CKPT_RE.match(p.name)) and p.is_dir()]
    return [p for _it, _k, p in sorted(found)]


def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory ``path`` designates.

    ``path`` may be a ``policy/`` directory (its ``latest`` pointer is
    followed) or a checkpoint directory itself.

    Raises
    ------
    ManifestError
        Neither a ``latest`` pointer nor a ``metadata.json`` is found.
    """
    p = Path(path)
    latest = p / _LATEST
    if latest.is_symlink() or latest.exists():
        if not latest.exists():
            raise ManifestError(str(latest), "the latest pointer is dangling")
        return latest.resolve()
    if (p / "metadata.json").is_file():
        return p.resolve()
    raise ManifestError(str(p), "no policy checkpoint here (no latest pointer, no metadata.json)")


def _stage_files(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), directory / name) for name in os.listdir(directory)
             if (m := _STAGE_RE.match(name))]
    return sorted(found)


def policy_cut_files(policy_dir: str | os.PathLike[str] | None) -> list[Path]:
    """``cuts/stage_*.bin`` of the checkpoint ``policy_dir`` designates, in stage order.

    The SHA-256 of their concatenated bytes is ``metadata.json``'s
    ``policy_hash`` (SPEC §7).  Paths are resolved (they do not change if
    ``latest`` moves while they are read).  ``[]`` when ``policy_dir`` is
    None or holds no cut files.
    """
    if policy_dir is None:
        return []
    try:
        directory = resolve_checkpoint_dir(policy_dir)
    except ManifestError:  # no checkpoint pointer: a plain directory of stage files, if any
        directory = Path(policy_dir).resolve()
    return [p for _sid, p in _stage_files(directory / "cuts")]


def read_policy_checkpoint(
    path: str | os.PathLike[str],
    *,
    expected_state_dimension: int | None = None,
    expected_num_stages: int | None = None,
    config_hash: str | None = None,
    system_hash: str | None = None,
) -> PolicyCheckpoint:
    """Load a policy checkpoint, memory-mapped and zero-copy where possible.

    Not collective (any rank may read).

    Parameters
    ----------
    path : path-like
        ``OUT/policy`` (follows ``latest``) or a checkpoint directory.
    expected_state_dimension, expected_num_stages : int, optional
        The running system's values; a mismatch is a hard error.
    config_hash, system_hash : str, optional
        For a resume: must equal the hashes recorded in ``metadata.json``.

    Returns
    -------
    PolicyCheckpoint

    Raises
    ------
    SchemaError
        State dimension or stage count differ from the expected values or
        between ``metadata.json`` and the stage files.
    ManifestError
        Missing/corrupt ``metadata.json``, or a config/system hash mismatch.
    SerializationError
        A stage file is not a valid FlatBuffer.
    IoError
        A file cannot be read.
    """
    ckpt = resolve_checkpoint_dir(path)
    meta_path = ckpt / "metadata.json"
    meta = PolicyMetadata.from_dict(read_json_document(meta_path, str(meta_path)), str(meta_path))
    file = "policy/metadata.json"
    if expected_state_dimension is not None and meta.state_dimension != expected_state_dimension:
        raise SchemaError(file, "state_dimension",
                          f"checkpoint has {meta.state_dimension}, the system has {expected_state_dimension}")
    if expected_num_stages is not None and meta.num_stages != expected_num_stages:
        raise SchemaError(file, "num_stages",
                          f"checkpoint has {meta.num_stages} stages, the system has {expected_num_stages}")
    if config_hash is not None and meta.config_hash != config_hash:
        raise ManifestError("policy", f"config_hash {meta.config_hash!r} differs from {config_hash!r}: "
                            "cannot resume with a different configuration")
    if system_hash is not None and meta.system_hash != system_hash:
        raise ManifestError("policy", f"system_hash {meta.system_hash!r} differs from {system_hash!r}: "
                            "cannot resume with a different system")
    cut_files = _stage_files(ckpt / "cuts")
    if len(cut_files) != meta.num_stages:
        raise SchemaError("policy/cuts", "num_stages",
                          f"{len(cut_files)} stage files, metadata.json says {meta.num_stages}")
    cuts = []
    for sid, p in cut_files:
        sc = read_stage_cuts(p)
        if sc.stage_id != sid:
            raise SchemaError(f"cuts/{p.name}", "stage_id", f"file holds stage {sc.stage_id}")
        if sc.state_dimension != meta.state_dimension:
            raise SchemaError(f"cuts/{p.name}", "state_dimension",
                              f"{sc.state_dimension} != {meta.state_dimension} in metadata.json")
        cuts.append(sc)
    states = [read_stage_states(p) for _s, p in _stage_files(ckpt / "states")]
    vertices = [read_stage_vertices(p) for _s, p in _stage_files(ckpt / "vertices")]
    bases = [read_stage_basis(p) for _s, p in _stage_files(ckpt / "basis")]
    for kind, items in (("states", states), ("vertices", vertices)):
        for it in items:
            if it.state_dimension != meta.state_dimension:
                raise SchemaError(f"{kind}/{stage_file_name(it.stage_id)}", "state_dimension",
                                  f"{it.state_dimension} != {meta.state_dimension} in metadata.json")
    sd_path = ckpt / "state_dictionary.json"
    state_dictionary = read_json_document(sd_path, str(sd_path)) if sd_path.is_file() else None
    return PolicyCheckpoint(metadata=meta, cuts=cuts, bases=bases, states=states, vertices=vertices,
                            state_dictionary=state_dictionary, path=ckpt)


def _replace_symlink(link: Path, target: str) -> None:
    """Atomically point ``link`` at ``target`` (new symlink renamed over the old one)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}.tmp")
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise IoError.from_os_error(link, exc) from exc


def _ensure_fixed_links(policy_dir: Path, published: Path) -> None:
    """Create ``policy/{cuts,...,metadata.json}`` -> ``latest/...`` (they never change).

    ``state_dictionary.json`` is linked only while the published checkpoint has one.
    """
    for name in STAGE_SUBDIRS + _LINKED_FILES:
        link = policy_dir / name
        want = f"{_LATEST}/{name}"
        if not (published / name).exists():
            if link.is_symlink():
                link.unlink()
            continue
        if link.is_symlink() and os.readlink(link) == want:
            continue
        if link.exists() and not link.is_symlink():
            raise IoError(link, "exists", "expected a symlink into latest/; remove the stale entry")
        _replace_symlink(link, want)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _write_checkpoint_dir(
    ckpt: Path,
    stage_cuts: Sequence[StageCuts],
    stage_bases: Sequence[StageBasis],
    metadata: PolicyMetadata,
    stage_states: Sequence[StageStates] | None,
    stage_vertices: Sequence[StageVertices] | None,
    state_dictionary: Mapping[str, Any] | None,
    durable: bool,
    check_finite: bool,
) -> dict[str, int]:
    files: dict[str, int] = {}
    for sub in STAGE_SUBDIRS:
        ensure_dir(ckpt / sub)
    for sc in stage_cuts:
        rel = f"cuts/{stage_file_name(sc.stage_id)}"
        files[rel] = write_stage_cuts(ckpt / rel, sc, durable=durable, check_finite=check_finite)
    for st in stage_states or ():
        rel = f"states/{stage_file_name(st.stage_id)}"
        files[rel] = write_stage_states(ckpt / rel, st, durable=durable)
    for vx in stage_vertices or ():
        rel = f"vertices/{stage_file_name(vx.stage_id)}"
        files[rel] = write_stage_vertices(ckpt / rel, vx, durable=durable)
    for bs in stage_bases:
        rel = f"basis/{stage_file_name(bs.stage_id)}"
        files[rel] = write_stage_basis(ckpt / rel, bs, durable=durable)
    if state_dictionary is not None:
        files["state_dictionary.json"] = write_json_atomic(ckpt / "state_dictionary.json",
                                                           dict(state_dictionary),
                                                           entity="policy/state_dictionary.json")
    files["metadata.json"] = write_json_atomic(ckpt / "metadata.json", metadata.to_dict(),
                                               entity="policy/metadata.json")
    for sub in STAGE_SUBDIRS:
        fsync_dir(ckpt / sub)
    fsync_dir(ckpt)
    return files


def _check_policy(stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                  metadata: PolicyMetadata, stage_states: Sequence[StageStates] | None,
                  stage_vertices: Sequence[StageVertices] | None) -> None:
    file = "policy/metadata.json"
    if len(stage_cuts) != metadata.num_stages:
        raise SchemaError(file, "num_stages", f"{len(stage_cuts)} stages of cuts, metadata says "
                          f"{metadata.num_stages}")
    groups: list[tuple[str, Sequence[Any]]] = [("cuts", stage_cuts), ("basis", stage_bases),
                                               ("states", stage_states or ()),
                                               ("vertices", stage_vertices or ())]
    cut_ids = set()
    for kind, items in groups:
        seen: set[int] = set()
        for it in items:
            sid = _u32(it.stage_id, kind, "stage_id")
            if sid in seen:
                raise SchemaError(f"{kind}/{stage_file_name(sid)}", "stage_id", "stage given twice")
            seen.add(sid)
            dim = getattr(it, "state_dimension", None)
            if dim is not None and int(dim) != metadata.state_dimension:
                raise SchemaError(f"{kind}/{stage_file_name(sid)}", "state_dimension",
                                  f"{dim} != metadata state_dimension {metadata.state_dimension}")
        if kind == "cuts":
            cut_ids = seen
        elif not seen <= cut_ids:
            extra = min(seen - cut_ids)
            raise SchemaError(f"{kind}/{stage_file_name(extra)}", "stage_id", "no cuts for this stage")


def _publish(policy_dir: Path, ckpt_tmp: Path, final: Path, keep: int) -> tuple[str, ...]:
    """Rename the finished temp dir to ``final``, move ``latest``, apply retention."""
    try:
        os.rename(ckpt_tmp, final)
    except OSError as exc:
        raise IoError.from_os_error(final, exc) from exc
    fsync_dir(final.parent)
    _replace_symlink(policy_dir / _LATEST, f"{_CHECKPOINTS}/{final.name}")
    _ensure_fixed_links(policy_dir, final)
    fsync_dir(policy_dir)
    removed = []
    for p in list_checkpoints(policy_dir)[:-keep] if keep > 0 else []:
        if p.resolve() != final.resolve():
            _remove_tree(p)
            removed.append(str(p))
    return tuple(removed)


def write_policy_checkpoint(
    path: str | os.PathLike[str],
    stage_cuts: Sequence[StageCuts],
    stage_bases: Sequence[StageBasis],
    metadata: PolicyMetadata,
    stage_states: Sequence[StageStates] | None = None,
    stage_vertices: Sequence[StageVertices] | None = None,
    comm: Any = None,
    *,
    state_dictionary: Mapping[str, Any] | None = None,
    keep: int = 3,
    durable: bool = True,
    check_finite: bool = False,
) -> CheckpointRecord:
    """Write a complete policy checkpoint and publish it atomically.

    Collective over ``comm``: every rank calls it; after a barrier rank 0
    alone validates and writes (the arguments of the other ranks are
    ignored, they may be None), then rank 0's outcome is broadcast and a
    final barrier is passed.  Every rank gets the same
    :class:`CheckpointRecord`, or the same error.

    The checkpoint goes to ``path/checkpoints/iter_NNNNNN`` (``NNNNNN`` =
    ``metadata.completed_iterations``) through a temp directory; then the
    ``path/latest`` symlink is switched atomically and the
    ``path/{cuts,states,vertices,basis,metadata.json,state_dictionary.json}``
    links (into ``latest``) are created if missing.  Only the newest
    ``keep`` checkpoints are retained.  A crash at any point leaves the
    previous checkpoint published and complete.

    Parameters
    ----------
    path : path-like
        The ``policy/`` directory of the output tree.
    stage_cuts : sequence of StageCuts
        One per stage, ``len == metadata.num_stages``.
    stage_bases : sequence of StageBasis
        Cached bases (any subset of the stages, possibly empty).
    metadata : PolicyMetadata
    stage_states, stage_vertices : sequences, optional
    comm : mpi4py communicator, optional
        Defaults to ``COMM_WORLD``.
    state_dictionary : mapping, optional
        Content of ``state_dictionary.json`` (SPEC §8).
    keep : int
        Checkpoints retained (default 3; 0 keeps all).
    durable : bool
        fsync files and directories (default).
    check_finite : bool
        Refuse NaN/inf intercepts and coefficients (see :func:`write_stage_cuts`).

    Returns
    -------
    CheckpointRecord
        On every rank.

    Raises
    ------
    SchemaError, SerializationError, IoError
        On every rank, as raised on rank 0; the previous checkpoint stays
        published.
    """
    comm = mpi.resolve_comm(comm)
    policy_dir = Path(path)
    mpi.barrier(comm)
    outcome: CheckpointRecord | OutputError | None = None
    if mpi.rank_of(comm) == 0:
        try:
            outcome = _write_on_root(policy_dir, stage_cuts, stage_bases, metadata, stage_states,
                                     stage_vertices, state_dictionary, keep, durable, check_finite)
        except OutputError as exc:
            outcome = exc
        except OSError as exc:
            outcome = IoError.from_os_error(policy_dir, exc)
        except Exception as exc:  # noqa: BLE001 - never leave the other ranks blocked in the broadcast
            outcome = SerializationError("policy checkpoint", f"unexpected {exc!r}")
    outcome = mpi.bcast_from_root(comm, outcome)
    mpi.barrier(comm)
    if isinstance(outcome, OutputError):
        raise mpi.mark_agreed(outcome)
    assert outcome is not None
    return outcome


def _write_on_root(policy_dir: Path, stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                   metadata: PolicyMetadata, stage_states: Sequence[StageStates] | None,
                   stage_vertices: Sequence[StageVertices] | None,
                   state_dictionary: Mapping[str, Any] | None, keep: int, durable: bool,
                   check_finite: bool) -> CheckpointRecord:
    _check_policy(stage_cuts, stage_bases, metadata, stage_states, stage_vertices)
    root = ensure_dir(policy_dir / _CHECKPOINTS)
    for stale in root.iterdir():  # leftovers of interrupted checkpoints
        if stale.name.startswith("."):
            _remove_tree(stale)
    if not metadata.created_at:
        metadata = dataclasses.replace(metadata, created_at=utc_now())
    name = _checkpoint_name(metadata.completed_iterations)
    final = root / name
    k = 1
    while final.exists():  # same iteration checkpointed again: never touch the published one
        final = root / f"{name}-{k}"
        k += 1
    tmp = root / f".{final.name}.{secrets.token_hex(6)}.tmp"
    try:
        files = _write_checkpoint_dir(tmp, stage_cuts, stage_bases, metadata, stage_states,
                                      stage_vertices, state_dictionary, durable, check_finite)
        removed = _publish(policy_dir, tmp, final, keep)
    finally:
        if tmp.exists():
            _remove_tree(tmp)
    return CheckpointRecord(policy_dir=str(policy_dir), checkpoint_dir=str(final),
                            iteration=int(metadata.completed_iterations), files=files, removed=removed)


# --------------------------------------------------------------------------
# Periodic checkpoints
# --------------------------------------------------------------------------

PolicyFn = Callable[[], Mapping[str, Any]]


class PolicyCheckpointer:
    """Periodic, on-signal and final policy checkpoints (SPEC §9).

    Collective over ``comm``: every rank makes the same calls in the same
    order.  ``after_iteration`` checkpoints every ``every`` iterations or
    when a SIGTERM/SIGINT has been received on any rank (the rank flags are
    agreed with an allreduce, so all ranks stop together); the caller then
    stops iterating (check :attr:`interrupted`) and reports the run as
    interrupted.  ``final`` checkpoints the last iteration unless it is
    already the published one.  Each checkpoint moves ``policy/latest``
    atomically and keeps the newest ``keep``; afterwards
    ``training_writer.checkpoint()`` is called on every rank (when given) so
    the training history is persisted at the same point.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory; checkpoints go to ``output_dir/policy``.
    every : int
        Checkpoint period in iterations (default 10; 0 disables periodic).
    keep : int
        Checkpoints retained (default 3).
    comm : communicator, optional
    training_writer : object, optional
        Anything with a ``checkpoint()`` method.
    install_signal_handlers : bool
        Catch SIGTERM/SIGINT (main thread only) until :meth:`close`; a
        second signal restores the previous handler and re-delivers.
    state_dictionary : mapping, optional
        Written as ``policy/state_dictionary.json`` with every checkpoint.
    durable : bool
        fsync (default).

    Examples
    --------
    >>> with PolicyCheckpointer(out, every=10) as ckpt:      # doctest: +SKIP
    ...     for it in range(1, max_iter + 1):
    ...         run_iteration(it)
    ...         ckpt.after_iteration(it, lambda: policy_kwargs(it))
    ...         if ckpt.interrupted:
    ...             break
    ...     ckpt.final(policy_kwargs(ckpt.last_completed_iteration))
    """

    def __init__(self, output_dir: str | os.PathLike[str], every: int = 10, keep: int = 3,
                 comm: Any = None, training_writer: Any = None, install_signal_handlers: bool = True,
                 state_dictionary: Mapping[str, Any] | None = None, durable: bool = True) -> None:
        if every < 0 or keep < 0:
            raise ValueError("every and keep must be >= 0")
        self.policy_dir = Path(output_dir) / "policy"
        self.every = int(every)
        self.keep = int(keep)
        self.comm = mpi.resolve_comm(comm)
        self.training_writer = training_writer
        self.state_dictionary = state_dictionary
        self.durable = durable
        self.last_completed_iteration: int | None = None
        self.last_checkpoint_iteration: int | None = None
        self.records: list[CheckpointRecord] = []
        self.signal_received: int | None = None
        self._interrupted = False
        self._previous: dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_received is not None:  # second signal: give up gracefully handling it
            prev = self._previous.get(signum, signal.SIG_DFL)
            signal.signal(signum, prev)
            signal.raise_signal(signum)
            return
        self.signal_received = signum

    @property
    def interrupted(self) -> bool:
        """True once a signal has been agreed on (after :meth:`after_iteration`): stop iterating."""
        return self._interrupted

    def after_iteration(self, iteration: int, policy_fn: PolicyFn) -> CheckpointRecord | None:
        """Record ``iteration`` as completed; checkpoint it when due or interrupted.

        Collective over ``comm`` (one allreduce every call, plus the
        checkpoint when due).  ``policy_fn()`` is called only when a
        checkpoint is written and returns the keyword arguments of
        :func:`write_policy_checkpoint` (``stage_cuts``, ``stage_bases``,
        ``metadata``, optionally ``stage_states``, ``stage_vertices``,
        ``state_dictionary``); on ranks other than 0 it may return ``{}``.

        Returns
        -------
        CheckpointRecord or None
            The record when a checkpoint was written (every rank).
        """
        self.last_completed_iteration = int(iteration)
        self._interrupted = not mpi.all_agree(self.comm, self.signal_received is None)
        due = self.every > 0 and iteration % self.every == 0
        if due or self._interrupted:
            return self.checkpoint(iteration, **dict(policy_fn()))
        return None

    def checkpoint(self, iteration: int, **policy: Any) -> CheckpointRecord:
        """Write a checkpoint of ``iteration`` now (collective; see :func:`write_policy_checkpoint`)."""
        if self.state_dictionary is not None:
            policy.setdefault("state_dictionary", self.state_dictionary)
        for key in ("stage_cuts", "stage_bases", "metadata"):
            policy.setdefault(key, None)
        record = write_policy_checkpoint(self.policy_dir, comm=self.comm, keep=self.keep,
                                         durable=self.durable, **policy)
        self.last_checkpoint_iteration = int(iteration)
        self.records.append(record)
        if self.training_writer is not None:
            self.training_writer.checkpoint()
        return record

    def final(self, **policy: Any) -> CheckpointRecord | None:
        """Checkpoint the last completed iteration at the end of training (collective).

        Skipped (returns None) when nothing was completed or that iteration
        is already the published checkpoint.
        """
        it = self.last_completed_iteration
        if it is None or it == self.last_checkpoint_iteration:
            return None
        return self.checkpoint(it, **policy)

    def close(self) -> None:
        """Restore the signal handlers that were installed before."""
        for sig, prev in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev)
        self._previous.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------
# Deterministic synthetic policy (demo, tests, benchmark)
# --------------------------------------------------------------------------


def synthetic_policy(
    state_dimension: int,
    num_stages: int,
    iteration: int,
    seed: int = 0,
    cuts_per_stage: int | None = None,
    *,
    forward_passes: int = 4,
    max_iterations: int | None = None,
    config_hash: str = "",
    system_hash: str = "",
    with_states: bool = True,
    with_vertices: bool = False,
) -> PolicyCheckpoint:
    """A deterministic, valid policy as it would stand after ``iteration`` iterations.

    Each iteration adds ``forward_passes`` cuts per stage in slots
    ``(k-1)*forward_passes + j``; the pool capacity is
    ``forward_passes * max_iterations``.  The same arguments always give
    the same arrays, and the cuts of iteration ``k`` are identical in every
    later snapshot (so consecutive checkpoints share a prefix).  Some cuts
    are inactive.  ``cuts_per_stage`` overrides the count (capacity grows
    to fit).

    Returns
    -------
    PolicyCheckpoint
        Write it with ``write_policy_checkpoint(path, **p.write_kwargs(), comm=comm)``.
    """
    d = int(state_dimension)
    max_it = max(int(max_iterations or iteration), int(iteration), 1)
    n = int(cuts_per_stage) if cuts_per_stage is not None else int(iteration) * forward_passes
    capacity = max(n, forward_passes * max_it)
    cuts: list[StageCuts] = []
    states: list[StageStates] = []
    vertices: list[StageVertices] = []
    bases: list[StageBasis] = []
    slots = np.arange(n, dtype=np.uint32)
    it_of = (slots // max(forward_passes, 1) + 1).astype(np.uint32)
    fp_of = (slots % max(forward_passes, 1)).astype(np.uint32)
    for t in range(num_stages):
        rng = np.random.default_rng([seed, t])
        coef = rng.standard_normal((n, d))
        intercept = 1000.0 * (num_stages - t) + rng.standard_normal(n)
        rng2 = np.random.default_rng([seed, t, 1])
        active = rng2.random(n) > 0.2
        cuts.append(StageCuts(
            stage_id=t, state_dimension=d, capacity=capacity, warm_start_count=0,
            cut_ids=(t * capacity + slots).astype(np.uint64), slot_index=slots, iteration=it_of,
            forward_pass_idx=fp_of, scenario_idx=(fp_of + 7 * it_of) % 1000, intercepts=intercept,
            coefficients=coef, states_at_generation=None, is_active=active,
            domination_count=(~active).astype(np.uint32) * 3,
        ))
        if with_states:
            m = min(n, forward_passes)
            states.append(StageStates(
                stage_id=t, state_dimension=d, state_ids=np.arange(m, dtype=np.uint64),
                iteration=np.full(m, iteration, np.uint32), forward_pass_idx=np.arange(m, dtype=np.uint32),
                scenario_idx=np.arange(m, dtype=np.uint32), components=np.abs(coef[:m]) * 100.0,
                dominating_cut_id=(t * capacity + np.arange(m)).astype(np.uint64),
                dominating_objective=intercept[:m].copy(),
            ))
        if with_vertices:
            m = min(n, forward_passes)
            vertices.append(StageVertices(
                stage_id=t, state_dimension=d, vertex_ids=np.arange(m, dtype=np.uint64),
                iteration=np.full(m, iteration, np.uint32), forward_pass_idx=np.arange(m, dtype=np.uint32),
                scenario_idx=np.arange(m, dtype=np.uint32), components=np.abs(coef[:m]),
                upper_bound_value=intercept[:m] + 10.0, lipschitz_constant=np.full(m, 5.0),
                stage_lipschitz=5.0,
            ))
        ncols, nrows = 3 * d + 8, 2 * d + 4 + n
        bases.append(StageBasis(
            stage_id=t, iteration=iteration, num_columns=ncols, num_rows=nrows,
            column_status=(np.arange(ncols) % 4).astype(np.uint8),
            row_status=(np.arange(nrows) % 3).astype(np.uint8), num_cut_rows=n,
        ))
    metadata = PolicyMetadata(
        completed_iterations=int(iteration), state_dimension=d, num_stages=int(num_stages),
        last_forward_pass=max(forward_passes - 1, 0),
        final_lower_bound=float(1000.0 * num_stages - 100.0 / (iteration + 1)),
        best_upper_bound=float(1000.0 * num_stages + 100.0 / (iteration + 1)),
        max_iterations=max_it, forward_passes=forward_passes, warm_start_cuts=0, rng_seed=int(seed),
        rng_state=(int(seed), int(iteration)), config_hash=config_hash, system_hash=system_hash,
        cobre_version="cobre_mpi_io", created_at="",
    )
    return PolicyCheckpoint(metadata=metadata, cuts=cuts, bases=bases, states=states, vertices=vertices)
