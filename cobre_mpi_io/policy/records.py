"""In-memory policy records (SPEC §9): the columnar stage types and their validation.

The checkpoint's ``metadata.json`` (:class:`PolicyMetadata`, :class:`FileDigest`)
lives in :mod:`.metadata`, which needs no NumPy; its names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import SchemaError
from ..layout import STAGE_SUBDIRS, stage_file_name
from .metadata import METADATA_SCHEMA, POLICY_FORMAT_VERSION, FileDigest, PolicyMetadata, file_digests

if TYPE_CHECKING:
    from .formats import CobreStageStates

F64 = npt.NDArray[np.float64]

__all__ = [
    "COBRE_STAGE_FIELDS",
    "METADATA_SCHEMA",
    "POLICY_FORMAT_VERSION",
    "STAGE_SUBDIRS",
    "CheckpointRecord",
    "EntityManifest",
    "FileDigest",
    "PolicyCheckpoint",
    "PolicyMetadata",
    "StageBasis",
    "StageCuts",
    "StageStates",
    "StageVertices",
    "file_digests",
]

_MAX_FLATBUFFER = 2**31 - 1



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


def _as_matrix(value: Any, n: int, d: int, file: str, column: str, contiguous: bool = True) -> F64:
    """Coerce to a little-endian float64 ``(n, d)`` array with contiguous rows, or raise SchemaError.

    A C-contiguous array, or one whose rows are contiguous but spaced apart
    (:func:`~cobre_mpi_io.policy.codec.allocate_coefficients`, a view of a
    mapped stage file), is kept as it is; anything else is copied.
    ``contiguous=False`` keeps any little-endian float64 array as it is.
    """
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape != (n, d):
        raise SchemaError(file, column, f"must have shape ({n}, {d}), got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise SchemaError(file, column, f"must be numeric, got {arr.dtype}")
    if arr.dtype == np.dtype("<f8") and (not contiguous or arr.strides[1] == 8 or d <= 1):
        return arr
    return np.ascontiguousarray(arr, dtype="<f8")


def _check_finite(arr: np.ndarray, file: str, column: str, rows: int = 4096) -> None:
    """SchemaError if ``arr`` holds NaN/inf (checked in row chunks to bound memory)."""
    for start in range(0, arr.shape[0], rows):
        if not np.isfinite(arr[start:start + rows]).all():
            raise SchemaError(file, column, "holds NaN or infinite values")


def _i32(value: Any, file: str, column: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(file, column, f"must be an integer, got {value!r}") from exc
    if not -(2**31) <= v < 2**31:
        raise SchemaError(file, column, f"{v} outside int32 range")
    return v


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
        None: not recorded (the Cobre solver's own files hold empty vectors).
    is_active : array of bool, optional (default all True)
    domination_count : array of uint32, optional (default 0)
    active_cut_indices : array of uint32, optional
        Slot indices of the active cuts; derived from ``is_active`` (sorted)
        when omitted. Must be exactly the slots whose ``is_active`` is set.
    cost_scale_factor : float, optional
        Cobre >= 0.14 only (None elsewhere): the cost scale factor the solver
        trained with, recorded in each cuts file. The values themselves are
        in the unit :attr:`PolicyCheckpoint.value_scale` states.
    node_id, graph_stage_id : int, optional
        Cobre >= 0.14 only: the policy-graph node and stage of this pool.
    priced_state_date : int, optional
        Cobre >= 0.14 only: YYYYMMDD, or ``INT32_MIN`` for none.
    entity_manifest : EntityManifest, optional
        Cobre >= 0.14 only: what each state component is.
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
    cost_scale_factor: float | None = None
    node_id: int | None = None
    graph_stage_id: int | None = None
    priced_state_date: int | None = None
    entity_manifest: EntityManifest | None = None

    @property
    def n_cuts(self) -> int:
        """Number of cuts (the populated count)."""
        return int(np.asarray(self.cut_ids).shape[0])

    @property
    def populated_count(self) -> int:
        """Populated slots of the pool, ``n_cuts``."""
        return self.n_cuts

    def validate(self, *, check_finite: bool = True, contiguous: bool = True) -> StageCuts:
        """Coerce arrays in place and check shapes, ranges and consistency.

        ``contiguous=False`` leaves float64 matrices that are strided views
        as they are (the readers); the writers need C-contiguous rows.

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
        self.coefficients = _as_matrix(self.coefficients, n, d, file, "coefficients", contiguous)
        if self.states_at_generation is not None:
            self.states_at_generation = _as_matrix(self.states_at_generation, n, d, file,
                                                   "states_at_generation", contiguous)
        if n and int(self.slot_index.max()) >= self.capacity:
            raise SchemaError(file, "slot_index",
                              f"slot {int(self.slot_index.max())} outside 0..{self.capacity - 1}")
        slots = self.slot_index
        increasing = n < 2 or bool((slots[1:] > slots[:-1]).all())  # the usual case: no sort needed
        if not increasing and bool((np.diff(np.sort(slots)) == 0).any()):
            raise SchemaError(file, "slot_index", "slot indices are not unique")
        active_slots = slots[self.is_active] if increasing else np.sort(slots[self.is_active])
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
        if self.cost_scale_factor is not None:
            try:
                self.cost_scale_factor = float(self.cost_scale_factor)
            except (TypeError, ValueError) as exc:
                raise SchemaError(file, "cost_scale_factor", f"must be a number, got {self.cost_scale_factor!r}") \
                    from exc
            if not (math.isfinite(self.cost_scale_factor) and self.cost_scale_factor > 0):
                raise SchemaError(file, "cost_scale_factor", f"{self.cost_scale_factor} is not a positive number")
        for name in ("node_id", "graph_stage_id", "priced_state_date"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _i32(value, file, name))
        if self.entity_manifest is not None:
            if not isinstance(self.entity_manifest, EntityManifest):
                raise SchemaError(file, "entity_manifest", "must be an EntityManifest")
            self.entity_manifest.validate(file)
            if self.entity_manifest.n_slots != d:
                raise SchemaError(file, "entity_manifest",
                                  f"{self.entity_manifest.n_slots} entries, state_dimension is {d}")
        return self

    def missing_cobre_fields(self) -> list[str]:
        """The Cobre >= 0.14 fields this stage lacks (what ``format="cobre-0.18"`` needs), in order."""
        return [name for name in COBRE_STAGE_FIELDS if getattr(self, name) is None]


COBRE_STAGE_FIELDS = ("cost_scale_factor", "node_id", "graph_stage_id", "priced_state_date", "entity_manifest")
"""The :class:`StageCuts` fields only Cobre >= 0.14 files carry (and need)."""


@dataclass(eq=False)
class EntityManifest:
    """What each state component of a Cobre >= 0.14 stage is (its ``entity_manifest``), columnar.

    One row per state component (``state_dimension`` rows), as Cobre's
    ``EntitySlot`` table: ``entity_type`` (uint8), ``entity_id`` (int32),
    ``subindex`` (uint32), ``was_active`` (bool), ``reference_date``,
    ``interval_start``, ``interval_end`` (int32 YYYYMMDD, ``INT32_MIN``:
    none).
    """

    entity_type: Any
    entity_id: Any
    subindex: Any
    was_active: Any
    reference_date: Any
    interval_start: Any
    interval_end: Any

    @property
    def n_slots(self) -> int:
        """Number of rows (state components)."""
        return int(np.asarray(self.entity_type).shape[0])

    def validate(self, file: str = "entity_manifest") -> EntityManifest:
        """Coerce the arrays in place; :class:`SchemaError` naming ``file`` and the field."""
        self.entity_type = _as_array(self.entity_type, "u1", None, file, "entity_manifest.entity_type")
        n = self.entity_type.shape[0]
        self.entity_id = _as_array(self.entity_id, "<i4", n, file, "entity_manifest.entity_id")
        self.subindex = _as_array(self.subindex, "<u4", n, file, "entity_manifest.subindex")
        self.was_active = _as_array(self.was_active, np.bool_, n, file, "entity_manifest.was_active")
        for name in ("reference_date", "interval_start", "interval_end"):
            setattr(self, name, _as_array(getattr(self, name), "<i4", n, file, f"entity_manifest.{name}"))
        return self

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per row, as Cobre's loader returns them."""
        names = ("entity_type", "entity_id", "subindex", "was_active", "reference_date", "interval_start",
                 "interval_end")
        cols = [np.asarray(getattr(self, n)).tolist() for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _validate_points(obj: Any, kind: str, id_field: str, extra: Sequence[tuple[str, str]],
                     contiguous: bool = True) -> str:
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
    obj.components = _as_matrix(obj.components, n, d, file, "components", contiguous)
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

    def validate(self, *, contiguous: bool = True) -> StageStates:
        """Coerce arrays in place and check shapes; :class:`SchemaError` naming the field.

        ``contiguous=False``: see :meth:`StageCuts.validate`.
        """
        _validate_points(self, "states", "state_ids", (("dominating_cut_id", "<u8"), ("dominating_objective", "<f8")),
                         contiguous)
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

    def validate(self, *, contiguous: bool = True) -> StageVertices:
        """Coerce arrays in place and check shapes; :class:`SchemaError` naming the field.

        ``contiguous=False``: see :meth:`StageCuts.validate`.
        """
        file = _validate_points(self, "vertices", "vertex_ids",
                                (("upper_bound_value", "<f8"), ("lipschitz_constant", "<f8")), contiguous)
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
    files : dict
        Path relative to the checkpoint -> :class:`FileDigest`, as its
        ``metadata.json`` records them (empty for a checkpoint without them,
        such as the Cobre solver's own).
    format : str
        What it was read from: ``spec``, ``cobre-0.5`` or ``cobre-0.18``
        (see :mod:`cobre_mpi_io.policy.formats`).
    value_scale : float or None
        The units of the cut values: stored intercepts and coefficients
        times ``value_scale`` are costs in the case's cost unit.  1.0 for
        Cobre >= 0.14 (it stores costs); Cobre 0.5.x's cost scale factor
        (from ``training/scaling_report.json`` beside the policy); what our
        ``metadata.json`` records.  None: not recorded anywhere (never
        guessed).
    cobre_manifest : dict or None
        Cobre >= 0.14's ``manifest.bin``, decoded (policy graph, season
        manifest, training record), for a ``cobre-0.18`` policy.
    cobre_states : list of CobreStageStates
        Cobre >= 0.14's ``states/`` files (they have another shape than
        :attr:`states`).
    """

    metadata: PolicyMetadata
    cuts: list[StageCuts]
    bases: list[StageBasis] = field(default_factory=list)
    states: list[StageStates] = field(default_factory=list)
    vertices: list[StageVertices] = field(default_factory=list)
    state_dictionary: dict[str, Any] | None = None
    path: Path | None = None
    files: dict[str, FileDigest] = field(default_factory=dict)
    format: str = "spec"
    value_scale: float | None = None
    cobre_manifest: dict[str, Any] | None = None
    cobre_states: list[CobreStageStates] = field(default_factory=list)

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
    xxhash64 : dict
        Path relative to the checkpoint directory -> xxhash64 (16 hex
        digits) of every file ``metadata.json`` records (all but itself).
    """

    policy_dir: str
    checkpoint_dir: str
    iteration: int
    files: dict[str, int]
    removed: tuple[str, ...] = ()
    xxhash64: dict[str, str] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of the written files."""
        return sum(self.files.values())


