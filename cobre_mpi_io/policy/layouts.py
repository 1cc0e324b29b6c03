"""The wire layouts of the policy stage files, as data: one :class:`_Root` per (format, kind).

Defined once, read by the encoder (:mod:`.codec`) and the bounded decoder
(:mod:`.decode`).  ``spec`` is SPEC §9 (``cobre_mpi_io/fbs/policy.fbs``, which
Cobre 0.5.x files share); ``cobre-0.18`` is Cobre >= 0.14's layout, which Cobre
publishes no ``.fbs`` for: its slots and types were read off files Cobre 0.18.0
wrote and checked against its own writer and loader (see ``docs/policy.md``).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["COBRE_IDENTIFIER", "INT32_MIN"]


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
    """A vector of tables, all sharing one vtable and one fixed inline layout.

    ``owner`` names the attribute of the record holding the element arrays
    (None: the record itself); ``absent`` lists slots of the element table
    this package does not know and refuses when a file sets them.
    """

    slot: int
    n_slots: int
    scalars: tuple[_Scalar, ...]
    matrices: tuple[_Matrix, ...] = ()
    owner: str | None = None
    absent: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Root:
    """One root table: its scalars, its vectors of tables, its vectors of scalars, its file identifier."""

    n_slots: int
    scalars: tuple[_Scalar, ...]
    children: tuple[_Child, ...]
    tails: tuple[_Scalar, ...]  # vectors of scalars: name -> 1-D array, dtype = element type
    identifier: bytes = b""  # 4 bytes after the root offset (FlatBuffers file_identifier), or none

    @property
    def child(self) -> _Child | None:
        """The first vector of tables (the one holding the per-element matrices), if any."""
        return self.children[0] if self.children else None


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


def _root_layout(spec: _Root) -> tuple[dict[int, int], int]:
    """Field offsets and inline size of the root table :func:`_encode` writes for ``spec``."""
    fields = [(s.slot, _size(s.dtype)) for s in spec.scalars]
    fields += [(t.slot, 4) for t in spec.tails]
    fields += [(c.slot, 4) for c in spec.children]
    return _inline_layout(fields)


def _root_vtable(spec: _Root) -> bytes:
    """The root vtable :func:`_encode` writes for ``spec`` (unpadded): the layout signature of our files."""
    offsets, size = _root_layout(spec)
    return _vtable(spec.n_slots, offsets, size)[:4 + 2 * spec.n_slots]


_CUT_SPEC = _Root(
    n_slots=7,
    scalars=(
        _Scalar(0, "stage_id", "<u4"),
        _Scalar(1, "state_dimension", "<u4"),
        _Scalar(2, "capacity", "<u4"),
        _Scalar(3, "warm_start_count", "<u4"),
        _Scalar(6, "populated_count", "<u4"),
    ),
    children=(_Child(
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
    ),),
    tails=(_Scalar(5, "active_cut_indices", "<u4"),),
)

_STATES_SPEC = _Root(
    n_slots=3,
    scalars=(_Scalar(0, "stage_id", "<u4"), _Scalar(1, "state_dimension", "<u4")),
    children=(_Child(
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
    ),),
    tails=(),
)

_VERTICES_SPEC = _Root(
    n_slots=4,
    scalars=(_Scalar(0, "stage_id", "<u4"), _Scalar(1, "state_dimension", "<u4"),
             _Scalar(3, "stage_lipschitz", "<f8")),
    children=(_Child(
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
    ),),
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
    children=(),
    tails=(_Scalar(4, "column_status", "u1"), _Scalar(5, "row_status", "u1")),
)

# --------------------------------------------------------------------------
# Cobre >= 0.14 (measured on 0.18.0): the same kinds, another wire layout
# --------------------------------------------------------------------------
# Cobre publishes no .fbs for these; the slots and types below were read off files
# Cobre 0.18.0 wrote and checked against its own writer (cobre.write_policy_checkpoint
# refuses values outside these types) and loader (cobre.results.load_policy): see
# docs/policy.md.  Every file starts with the file identifier "CBVF".

COBRE_IDENTIFIER = b"CBVF"
INT32_MIN = -(2**31)

_CUT_SPEC_COBRE = _Root(
    n_slots=12,
    scalars=(
        _Scalar(0, "stage_id", "<u4"),
        _Scalar(1, "state_dimension", "<u4"),
        _Scalar(2, "capacity", "<u4"),
        _Scalar(3, "warm_start_count", "<u4"),
        _Scalar(6, "populated_count", "<u4"),
        _Scalar(8, "cost_scale_factor", "<f8", 0.0),
        _Scalar(9, "node_id", "<i4"),
        _Scalar(10, "graph_stage_id", "<i4"),
        _Scalar(11, "priced_state_date", "<i4", INT32_MIN),
    ),
    children=(
        _Child(
            slot=4,
            n_slots=7,
            scalars=(
                _Scalar(0, "cut_ids", "<u8"),
                _Scalar(1, "slot_index", "<u4"),
                _Scalar(2, "iteration", "<u4"),
                _Scalar(3, "forward_pass_idx", "<u4"),
                _Scalar(4, "intercepts", "<f8"),
                _Scalar(6, "is_active", "u1", True),
            ),
            matrices=(_Matrix(5, "coefficients"),),
        ),
        _Child(
            slot=7,
            n_slots=9,
            owner="entity_manifest",
            scalars=(
                _Scalar(0, "entity_type", "u1"),
                _Scalar(1, "entity_id", "<i4"),
                _Scalar(2, "subindex", "<u4"),
                _Scalar(3, "was_active", "u1"),
                _Scalar(6, "reference_date", "<i4", INT32_MIN),
                _Scalar(7, "interval_start", "<i4", INT32_MIN),
                _Scalar(8, "interval_end", "<i4", INT32_MIN),
            ),
            absent=(4, 5),  # never written by Cobre 0.18 on the cases measured: their type is unknown
        ),
    ),
    tails=(_Scalar(5, "active_cut_indices", "<u4"),),
    identifier=COBRE_IDENTIFIER,
)

_BASIS_SPEC_COBRE = dataclasses.replace(_BASIS_SPEC, identifier=COBRE_IDENTIFIER)

_STATES_SPEC_COBRE = _Root(
    n_slots=6,
    scalars=(
        _Scalar(0, "stage_id", "<u4"),
        _Scalar(1, "state_dimension", "<u4"),
        _Scalar(2, "count", "<u4"),
        _Scalar(5, "reserved_5", "<i4", -1),  # always -1 in the files measured: meaning unknown, kept as is
    ),
    children=(),
    # slot 3: the visited states, count x state_dimension doubles row by row; slot 4: a vector always
    # empty in the files measured (element type unknown): read only when empty, written empty
    tails=(_Scalar(3, "data", "<f8"), _Scalar(4, "reserved_4", "u1")),
    identifier=COBRE_IDENTIFIER,
)

_SPECS: dict[tuple[str, str], _Root] = {
    ("spec", "cuts"): _CUT_SPEC, ("spec", "states"): _STATES_SPEC, ("spec", "vertices"): _VERTICES_SPEC,
    ("spec", "basis"): _BASIS_SPEC,
    ("cobre-0.18", "cuts"): _CUT_SPEC_COBRE, ("cobre-0.18", "basis"): _BASIS_SPEC_COBRE,
    ("cobre-0.18", "states"): _STATES_SPEC_COBRE,
}
"""The wire layout of each (format, kind): Cobre 0.5.x files have the spec layout."""
