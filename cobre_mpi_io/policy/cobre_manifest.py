"""``policy/manifest.bin`` of Cobre >= 0.14 (format_version 3): its schema as data, a bounded reader, a writer.

Cobre publishes no ``.fbs`` for this file.  The slots and types below were
read off files Cobre 0.18.0 wrote and checked against its own writer
(``cobre.write_policy_checkpoint`` refuses values outside these types) and
loader (``cobre.results.load_policy``), see ``docs/policy.md``.  The
document is small (hundreds of bytes to a few KB), so it is written with
``flatbuffers.Builder`` and read by a generic, bounds-checked table walker:
every offset and length is checked against the file before it is followed,
a table with more fields than its schema is refused, and a string must be
UTF-8.  The result is a plain dict shaped like ``cobre.results.load_policy``'s
``metadata`` (``graph_manifest``, ``producer`` and ``season_manifest``
grouped as Cobre groups them).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np

from ..errors import SerializationError

__all__ = ["MANIFEST_FORMAT_VERSION", "decode_manifest", "encode_manifest"]

MANIFEST_FORMAT_VERSION = 3
_IDENTIFIER = b"CBVF"
_MAX_DEPTH = 4


@dataclass(frozen=True)
class _F:
    """One field: ``kind`` is a scalar type, ``"str"``, or ``"table"`` (``table`` gives its fields)."""

    slot: int
    name: str
    kind: str
    vector: bool = False
    table: tuple[_F, ...] = ()
    group: str = ""  # where the loader's dict puts it: "" top level, else a sub-dict


_SCALARS = {"u8": ("<B", 1), "bool": ("<B", 1), "i32": ("<i", 4), "u32": ("<I", 4), "u64": ("<Q", 8),
            "f64": ("<d", 8)}

_NODE = (_F(0, "id", "i32"), _F(1, "stage_id", "i32"), _F(2, "pool_id", "u32"))
_EDGE = (_F(0, "source_id", "i32"), _F(1, "target_id", "i32"), _F(2, "probability", "f64"))
_HYDRO_ORDERS = (_F(0, "hydro_id", "i32"), _F(1, "orders", "u32", vector=True))
_SEASON = (_F(0, "cycle_code", "u8"), _F(1, "n_seasons", "u32"),
           _F(2, "hydro_orders", "table", vector=True, table=_HYDRO_ORDERS))

MANIFEST_SCHEMA: tuple[_F, ...] = (
    _F(0, "format_version", "u32"),
    _F(1, "software_version", "str"),
    _F(2, "created_at", "str"),
    _F(3, "num_stages", "u32"),
    _F(4, "n_pools", "u32", group="graph_manifest"),
    _F(5, "nodes", "table", vector=True, table=_NODE, group="graph_manifest"),
    _F(6, "edges", "table", vector=True, table=_EDGE, group="graph_manifest"),
    _F(7, "completed_iterations", "u32", group="producer"),
    _F(8, "final_lower_bound", "f64", group="producer"),
    _F(9, "best_upper_bound", "f64", group="producer"),
    _F(10, "max_iterations", "u32", group="producer"),
    _F(11, "forward_passes", "u32", group="producer"),
    _F(12, "warm_start_cuts", "u32", group="producer"),
    _F(13, "warm_start_counts", "u32", vector=True, group="producer"),
    _F(14, "rng_seed", "u64", group="producer"),
    _F(15, "total_visited_states", "u64", group="producer"),
    _F(16, "training_block_mode", "str", group="producer"),
    _F(17, "training_block_mode_per_stage", "str", vector=True, group="producer"),
    _F(18, "cost_scale_factor", "f64", group="producer"),
    _F(19, "season_manifest", "table", table=_SEASON),
    _F(20, "software", "str"),
    _F(21, "lower_bound_history", "f64", vector=True, group="producer"),
)
"""The root table of ``manifest.bin``: (slot, name, type), grouped as Cobre's loader groups them."""


# --------------------------------------------------------------------------
# Reading: a bounded walk
# --------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.size = len(data)

    def fail(self, message: str) -> SerializationError:
        return SerializationError(self.source, f"not a valid Cobre manifest.bin: {message}")

    def read(self, fmt: str, pos: int, what: str) -> Any:
        n = struct.calcsize(fmt)
        if pos < 0 or pos + n > self.size:
            raise self.fail(f"{what} at byte {pos} lies outside the file ({self.size} bytes)")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos: int, fields: tuple[_F, ...], what: str, depth: int = 0) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise self.fail(f"{what}: tables nested too deep")
        vt = pos - self.read("<i", pos, f"the {what} table")
        vsize = self.read("<H", vt, f"the {what} vtable")
        tsize = self.read("<H", vt + 2, f"the {what} vtable")
        if vsize < 4 or vsize % 2 or tsize < 4 or vt + vsize > self.size or pos + tsize > self.size:
            raise self.fail(f"the {what} vtable has impossible sizes")
        n_slots = (vsize - 4) // 2
        known = max(f.slot for f in fields) + 1
        if n_slots > known:
            raise self.fail(f"a {what} table has {n_slots} fields, this reader knows {known}")
        out: dict[str, Any] = {}
        for f in fields:
            off = self.read("<H", vt + 4 + 2 * f.slot, "a vtable entry") if f.slot < n_slots else 0
            width = 4 if (f.vector or f.kind in ("str", "table")) else _SCALARS[f.kind][1]
            if off and (off < 4 or off + width > tsize):
                raise self.fail(f"field {f.name} lies outside its {what} table")
            if not off:
                out[f.name] = ([] if f.vector else "" if f.kind == "str" else None if f.kind == "table"
                               else (False if f.kind == "bool" else 0))
                continue
            at = pos + off
            if f.vector:
                out[f.name] = self.vector(at, f, depth)
            elif f.kind == "str":
                out[f.name] = self.string(at + self.read("<I", at, f.name), f.name)
            elif f.kind == "table":
                out[f.name] = self.table(at + self.read("<I", at, f.name), f.table, f.name, depth + 1)
            else:
                value = self.read(_SCALARS[f.kind][0], at, f.name)
                out[f.name] = bool(value) if f.kind == "bool" else value
        return out

    def string(self, pos: int, what: str) -> str:
        n = self.read("<I", pos, f"the {what} string")
        if pos + 4 + n > self.size:
            raise self.fail(f"the {what} string of {n} bytes runs past the end of the file")
        try:
            return self.data[pos + 4:pos + 4 + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"the {what} string is not UTF-8") from exc

    def vector(self, at: int, f: _F, depth: int) -> list[Any]:
        vec = at + self.read("<I", at, f.name)
        n = self.read("<I", vec, f"the {f.name} vector")
        width = 4 if f.kind in ("str", "table") else _SCALARS[f.kind][1]
        if vec + 4 + n * width > self.size:
            raise self.fail(f"the {f.name} vector of {n} elements runs past the end of the file")
        first = vec + 4
        if f.kind in ("str", "table"):
            out: list[Any] = []
            for i in range(n):
                el = first + 4 * i
                target = el + self.read("<I", el, f.name)
                out.append(self.string(target, f.name) if f.kind == "str"
                           else self.table(target, f.table, f.name, depth + 1))
            return out
        values: list[Any] = np.frombuffer(self.data, dtype=_SCALARS[f.kind][0], count=n, offset=first).tolist()
        return values


def decode_manifest(data: bytes, source: str = "manifest.bin") -> dict[str, Any]:
    """Decode a Cobre >= 0.14 ``manifest.bin`` into a dict shaped like Cobre's loader's ``metadata``.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        Named in errors.

    Returns
    -------
    dict
        ``format_version``, ``software``, ``software_version``,
        ``created_at``, ``num_stages``, ``graph_manifest`` (``n_pools``,
        ``nodes``, ``edges``), ``season_manifest`` and ``producer`` (the
        training record: iterations, bounds, seed, ``cost_scale_factor``,
        ``lower_bound_history``, ...).

    Raises
    ------
    SerializationError
        No ``CBVF`` identifier, an offset or length outside the file, an
        unknown field, a string that is not UTF-8, or a
        ``format_version`` this reader does not know.
    """
    r = _Reader(bytes(data), source)
    if r.size < 12 or r.data[4:8] != _IDENTIFIER:
        raise r.fail(f'missing the FlatBuffers file identifier "{_IDENTIFIER.decode()}"')
    flat = r.table(r.read("<I", 0, "the root offset"), MANIFEST_SCHEMA, "manifest")
    if flat["format_version"] != MANIFEST_FORMAT_VERSION:
        raise r.fail(f"format_version {flat['format_version']}, this reader knows {MANIFEST_FORMAT_VERSION}")
    if flat["season_manifest"] is None:
        flat["season_manifest"] = {"cycle_code": 255, "n_seasons": 0, "hydro_orders": []}
    out: dict[str, Any] = {}
    for f in MANIFEST_SCHEMA:
        if f.group:
            out.setdefault(f.group, {})[f.name] = flat[f.name]
        else:
            out[f.name] = flat[f.name]
    return out


# --------------------------------------------------------------------------
# Writing: flatbuffers.Builder, every field written (as Cobre does)
# --------------------------------------------------------------------------


def _build(b: flatbuffers.Builder, fields: tuple[_F, ...], values: Mapping[str, Any], what: str) -> int:
    """Build the table of ``fields`` from ``values``; returns its offset."""
    refs: dict[str, int] = {}
    for f in fields:  # children first: a table's strings, vectors and sub-tables precede it
        value = values.get(f.name)
        if f.kind == "str" and not f.vector:
            refs[f.name] = b.CreateString(str(value or ""))
        elif f.kind == "table" and not f.vector:
            refs[f.name] = _build(b, f.table, value or {}, f.name)
        elif f.vector:
            items = list(value or [])
            if f.kind in ("str", "table"):
                elems = [b.CreateString(str(v)) if f.kind == "str" else _build(b, f.table, v, f.name)
                         for v in items]
                b.StartVector(4, len(elems), 4)
                for e in reversed(elems):
                    b.PrependUOffsetTRelative(e)
                refs[f.name] = b.EndVector()
            else:
                fmt = _SCALARS[f.kind][0]
                refs[f.name] = b.CreateNumpyVector(np.asarray(items, dtype=fmt))
    b.StartObject(max(f.slot for f in fields) + 1)
    for f in fields:
        if f.name in refs:
            b.PrependUOffsetTRelativeSlot(f.slot, refs[f.name], 0)
            continue
        value = values.get(f.name, 0)
        try:
            if f.kind == "f64":
                b.PrependFloat64Slot(f.slot, float(value), 0.0)
            elif f.kind in ("u8", "bool"):
                b.PrependUint8Slot(f.slot, int(value), 0)
            elif f.kind == "i32":
                b.PrependInt32Slot(f.slot, int(value), 0)
            elif f.kind == "u32":
                b.PrependUint32Slot(f.slot, int(value), 0)
            else:
                b.PrependUint64Slot(f.slot, int(value), 0)
        except (struct.error, TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"manifest.bin {what}", f"{f.name}={value!r} is not a {f.kind}") from exc
    end: int = b.EndObject()
    return end


def encode_manifest(metadata: Mapping[str, Any]) -> bytes:
    """The bytes of a ``manifest.bin`` holding ``metadata`` (the shape :func:`decode_manifest` returns).

    Every field is written, defaults included (as Cobre writes them);
    missing keys are written as 0 / empty; ``format_version`` is always
    :data:`MANIFEST_FORMAT_VERSION`.

    Raises
    ------
    SerializationError
        A value that does not fit its field's type.
    """
    flat: dict[str, Any] = {}
    for f in MANIFEST_SCHEMA:
        src = metadata.get(f.group, {}) if f.group else metadata
        if f.name in src:
            flat[f.name] = src[f.name]
    flat["format_version"] = MANIFEST_FORMAT_VERSION
    if not flat.get("season_manifest"):
        flat["season_manifest"] = {"cycle_code": 255, "n_seasons": 0, "hydro_orders": []}
    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)
    root = _build(b, MANIFEST_SCHEMA, flat, "manifest")
    b.Finish(root, file_identifier=_IDENTIFIER)
    return bytes(b.Output())
