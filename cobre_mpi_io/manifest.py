"""Manifests (SPEC §6): frozen dataclasses with ``to_dict``/``from_dict``.

``simulation/_manifest.json`` is the commit point of a simulation: it lists
every data file with rows, bytes and xxhash64, and ``_SUCCESS`` is written
only after a ``complete`` manifest.  ``training/_manifest.json`` records the
training run.  Both are written atomically; readers raise
:class:`~cobre_mpi_io.errors.ManifestError` on a corrupt or inconsistent
file.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import xxhash

from .atomic import write_bytes_atomic, write_json_atomic
from .errors import IoError, ManifestError
from .schemas import DETAIL_LEVELS, SIMULATION_TABLES

__all__ = [
    "HEX16",
    "IDENTITY_FIELDS",
    "INT_MAX",
    "MANIFEST_VERSION",
    "SHA256",
    "SIMULATION_MANIFEST_SCHEMA",
    "SIMULATION_STATUSES",
    "TERMINATION_REASONS",
    "TRAINING_MANIFEST_SCHEMA",
    "TRAINING_STATUSES",
    "Anything",
    "Bool",
    "Failure",
    "FileEntry",
    "Int",
    "MapOf",
    "Node",
    "Num",
    "Obj",
    "Opt",
    "RelPath",
    "Seq",
    "SimulationManifest",
    "Str",
    "TrainingManifest",
    "check_document",
    "combined_checksum",
    "parse_json_document",
    "read_json_document",
    "read_simulation_manifest",
    "read_training_manifest",
    "remove_success_marker",
    "simulation_manifest_text",
    "utc_now",
    "write_simulation_manifest",
    "write_success_marker",
    "write_training_manifest",
]

MANIFEST_VERSION: Final = "2.0.0"
SIMULATION_SCHEMA: Final = "https://cobre.dev/schemas/output/simulation-manifest-2.0.0.json"
TRAINING_SCHEMA: Final = "https://cobre.dev/schemas/output/training-manifest-2.0.0.json"
SIMULATION_STATUSES: Final = ("running", "complete", "failed", "partial")
TRAINING_STATUSES: Final = ("running", "complete", "failed", "converged", "interrupted")
TERMINATION_REASONS: Final = ("iteration_limit", "time_limit", "bound_stalling", "simulation")
CHECKSUM_ALGORITHM: Final = "xxhash64"


def utc_now() -> str:
    """Current time, ISO 8601 UTC with a ``Z`` suffix (second precision)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def combined_checksum(files: Mapping[str, str]) -> str:
    """``checksum.value`` of SPEC §6 from ``{relative path: xxh64 hex}``.

    xxh64 hex digest of the concatenation, over paths sorted (POSIX, relative
    to ``simulation/``), of ``path + "\\t" + filehex + "\\n"``.  Independent
    of the number of ranks and of the order files were written in.
    """
    h = xxhash.xxh64(seed=0)
    for path in sorted(files):
        h.update(f"{path}\t{files[path]}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------ schema check
# A small declarative check of the JSON documents of the output tree (manifests, metadata.json, policy
# metadata): a schema is a tree of the nodes below; ``check_document`` walks a parsed document against
# it and raises one ManifestError naming the file and the field path (``failures[2].rank: expected
# int, got str``).  Objects keep the keys they do not describe (forward compatible); every described
# key is checked.  Every ``from_dict`` of a manifest type and ``metadata.json`` go through it, so a
# document that parses is one the code can use without a TypeError later.  Field paths are built
# only when a check fails (each container adds its segment while the error unwinds), so the success
# path over 10^5 file entries does no string work.

INT_MAX: Final = 2**63 - 1
"""Largest integer a document may hold (int64, the widest integer of the Parquet files it describes)."""


class _Mismatch(Exception):
    """Internal: a field that does not match its schema; ``segments`` of its path, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        """Add the segment of the enclosing container (``.name``, ``["key"]``, ``[i]``)."""
        self.segments.append(segment)
        return self

    @property
    def path(self) -> str:
        return "".join(reversed(self.segments)).removeprefix(".")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name_segment(key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f".{key}"
    return f"[{json.dumps(key) if isinstance(key, str) else _show(key)}]"


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Mismatch("not valid UTF-8 text (lone surrogate)") from None
    return value


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) in ``lo..hi``."""

    lo: int = 0
    hi: int = INT_MAX

    def check(self, value: Any) -> int:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch(f"expected int, got {_type_name(value)}")
        if value < self.lo:
            raise _Mismatch(f"expected int >= {self.lo}, got {_show(value)}")
        if value > self.hi:
            raise _Mismatch(f"expected int <= {self.hi}, got {_show(value)}")
        return value


@dataclass(frozen=True)
class Num:
    """A finite number (int or float, not a bool), at least ``lo`` when given."""

    lo: float | None = None

    def check(self, value: Any) -> float | int:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(f"expected number, got {_type_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Mismatch(f"expected a finite number, got {value!r}")
        if isinstance(value, int) and abs(value) > INT_MAX:
            raise _Mismatch(f"number out of range: {_show(value)}")
        if self.lo is not None and value < self.lo:
            raise _Mismatch(f"expected number >= {self.lo}, got {_show(value)}")
        return value


@dataclass(frozen=True)
class Str:
    """A string: one of ``choices`` when given, matching ``pattern`` (described by ``what``) when given."""

    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    what: str = ""

    def check(self, value: Any) -> str:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, str):
            raise _Mismatch(f"expected str, got {_type_name(value)}")
        if self.choices and value not in self.choices:
            raise _Mismatch(f"expected one of {', '.join(self.choices)}; got {_show(value)}")
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise _Mismatch(f"expected {self.what or self.pattern.pattern}, got {_show(value)}")
        return _utf8(value)


_REL_PATH: Final = re.compile(r"(?!\.\.?(?:/|$))[^/\\\0]+(?:/(?!\.\.?(?:/|$))[^/\\\0]+)*")


@dataclass(frozen=True)
class RelPath:
    """A relative POSIX path inside the document's directory: non-empty components, none ``.``/``..``,
    no leading ``/``, no ``\\`` or NUL."""

    def check(self, value: Any) -> str:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, str):
            raise _Mismatch(f"expected a relative path (str), got {_type_name(value)}")
        if _REL_PATH.fullmatch(value) is None:
            raise _Mismatch(f"expected a relative path below the directory, got {_show(value)}")
        return _utf8(value)


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""

    def check(self, value: Any) -> bool:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, bool):
            raise _Mismatch(f"expected bool, got {_type_name(value)}")
        return value


@dataclass(frozen=True)
class Anything:
    """Any JSON value (free-form content, e.g. a configuration snapshot)."""

    def check(self, value: Any) -> Any:
        """``value``."""
        return value


@dataclass(frozen=True)
class Opt:
    """``null`` or ``node``."""

    node: Node

    def check(self, value: Any) -> Any:
        """``value`` (checked by ``node`` unless null), else :class:`_Mismatch`."""
        return None if value is None else self.node.check(value)


@dataclass(frozen=True)
class Seq:
    """A list of ``item`` (parsed to a tuple); its items distinct when ``unique``, non-empty when ``nonempty``."""

    item: Node
    unique: bool = False
    nonempty: bool = False

    def check(self, value: Any) -> tuple[Any, ...]:
        """The checked items as a tuple, else :class:`_Mismatch`."""
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"expected list, got {_type_name(value)}")
        if self.nonempty and not value:
            raise _Mismatch("expected a non-empty list, got []")
        check = self.item.check
        out = []
        for i, v in enumerate(value):
            try:
                out.append(check(v))
            except _Mismatch as exc:
                raise exc.at(f"[{i}]") from None
        if self.unique:
            seen: set[Any] = set()
            for i, v in enumerate(out):
                if v in seen:
                    raise _Mismatch(f"duplicate {_show(v)}").at(f"[{i}]")
                seen.add(v)
        return tuple(out)


@dataclass(frozen=True)
class Obj:
    """An object with the described ``fields`` (those in ``optional`` may be absent); other keys are kept."""

    fields: Mapping[str, Node] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    def check(self, value: Any) -> dict[str, Any]:
        """A dict of the checked fields plus the undescribed ones, else :class:`_Mismatch`."""
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {_type_name(value)}")
        out = dict(value)
        for name, node in self.fields.items():
            if name in value:
                try:
                    out[name] = node.check(value[name])
                except _Mismatch as exc:
                    raise exc.at(_name_segment(name)) from None
            elif name not in self.optional:
                raise _Mismatch("missing").at(_name_segment(name))
        return out


@dataclass(frozen=True)
class MapOf:
    """An object used as a map: every key checked by ``key``, every value by ``value``."""

    key: Node
    value: Node

    def check(self, value: Any) -> dict[str, Any]:
        """The checked map, else :class:`_Mismatch`."""
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {_type_name(value)}")
        check_key, check_value = self.key.check, self.value.check
        out: dict[str, Any] = {}
        for k, v in value.items():
            try:
                check_key(k)
                out[k] = check_value(v)
            except _Mismatch as exc:
                raise exc.at(f"[{json.dumps(k) if isinstance(k, str) else _show(k)}]") from None
        return out


Node = Int | Num | Str | RelPath | Bool | Anything | Opt | Seq | Obj | MapOf
"""A schema node: anything with ``check(value)`` returning the checked value or raising."""


def check_document(schema: Node, document: Any, where: str) -> Any:
    """Check a parsed JSON ``document`` against ``schema``; return the checked value.

    Lists come back as tuples; objects as dicts holding their undescribed keys too.

    Parameters
    ----------
    schema : Node
        The expected shape.
    document : Any
        The parsed document (or a ``to_dict`` result).
    where : str
        The file (or manifest kind) named in the error.

    Raises
    ------
    ManifestError
        Naming ``where``, the field path and what is wrong.
    """
    try:
        return schema.check(document)
    except _Mismatch as exc:
        raise ManifestError(where, f"{exc.path}: {exc.message}" if exc.segments else exc.message) from None


def _fail(where: str, path: str, message: str) -> ManifestError:
    return ManifestError(where, f"{path}: {message}")


HEX16: Final = re.compile(r"[0-9a-f]{16}")
SHA256: Final = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION: Final = Str(pattern=re.compile(r"2\.\d+\.\d+"), what="a 2.x.y format version")
_XXH64: Final = Str(pattern=HEX16, what="16 lowercase hex digits")
_PARTITION: Final = re.compile(r"scenario_id=(\d{4,})/")
IDENTITY_FIELDS: Final[Mapping[str, Node]] = {
    "run_fingerprint": Opt(Str(pattern=SHA256, what="sha256:<64 hex digits>")),
    "run_identity": Opt(Obj()),
}
"""``run_fingerprint`` and ``run_identity`` of manifests and ``metadata.json`` (optional)."""


@dataclass(frozen=True)
class FileEntry:
    """One data file: rows, bytes, xxhash64 (16 lowercase hex digits)."""

    rows: int
    bytes: int
    xxhash64: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"rows": self.rows, "bytes": self.bytes, "xxhash64": self.xxhash64}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "simulation") -> FileEntry:
        """Parse; :class:`ManifestError` naming ``where`` and the field when malformed."""
        e = check_document(_FILE_ENTRY, d, where)
        return cls(e["rows"], e["bytes"], e["xxhash64"])


@dataclass(frozen=True)
class Failure:
    """A recorded failure: the rank (-1: the run as a whole), the scenario (None for a rank-level
    failure), error kind, message and the host the rank ran on.

    ``host`` defaults to this process's host name, so a failure names the
    host of the rank that created it (it travels with the record when rank
    0 gathers them); it is None when read from a manifest older than the
    field.
    """

    rank: int
    scenario_id: int | None
    kind: str
    message: str
    host: str | None = field(default_factory=lambda: socket.gethostname())

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"rank": self.rank, "scenario_id": self.scenario_id, "kind": self.kind, "message": self.message,
                "host": self.host}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "simulation") -> Failure:
        """Parse; :class:`ManifestError` naming ``where`` and the field when malformed."""
        return cls._from_checked(check_document(_FAILURE, d, where))

    @classmethod
    def _from_checked(cls, f: Mapping[str, Any]) -> Failure:
        return cls(f["rank"], f["scenario_id"], f["kind"], f["message"], f.get("host"))


@dataclass(frozen=True)
class SimulationManifest:
    """``simulation/_manifest.json`` (SPEC §6), plus ``files``, ``failures`` and ``detail``."""

    status: str
    started_at: str
    scenarios_total: int
    completed_at: str | None = None
    scenarios_completed: int = 0
    scenarios_failed: int = 0
    partitions_written: tuple[str, ...] = ()
    checksum_value: str | None = None
    world_size: int = 1
    ranks_participated: int = 0
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    detail: str = "full"
    tables: tuple[str, ...] = ()
    version: str = MANIFEST_VERSION
    run_fingerprint: str | None = None
    run_identity: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in SIMULATION_STATUSES:
            raise ManifestError("simulation", f"unknown status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form, field order of SPEC §6."""
        return {
            "$schema": SIMULATION_SCHEMA,
            "version": self.version,
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "scenarios": {"total": self.scenarios_total, "completed": self.scenarios_completed,
                          "failed": self.scenarios_failed},
            "partitions_written": list(self.partitions_written),
            "checksum": {"algorithm": CHECKSUM_ALGORITHM, "value": self.checksum_value},
            "mpi_info": {"world_size": self.world_size, "ranks_participated": self.ranks_participated},
            "detail": self.detail,
            "tables": list(self.tables),
            **_identity_fields(self.run_fingerprint, self.run_identity),
            "failures": [f.to_dict() for f in self.failures],
            "files": {p: self.files[p].to_dict() for p in sorted(self.files)},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "simulation") -> SimulationManifest:
        """Parse the JSON form.

        Raises
        ------
        ManifestError
            Naming ``where`` (the file) and the field path when a field is
            missing, of the wrong type or out of range (:data:`SIMULATION_MANIFEST_SCHEMA`),
            or when counts, partitions, detail and tables contradict each other.
        """
        doc = check_document(SIMULATION_MANIFEST_SCHEMA, d, where)
        sc, mi = doc["scenarios"], doc["mpi_info"]
        total = sc["total"]
        for key in ("completed", "failed"):
            if sc[key] > total:
                raise _fail(where, f"scenarios.{key}", f"{sc[key]} exceeds scenarios.total {total}")
        if mi["ranks_participated"] > mi["world_size"]:
            raise _fail(where, "mpi_info.ranks_participated",
                        f"{mi['ranks_participated']} exceeds mpi_info.world_size {mi['world_size']}")
        seen: set[int] = set()
        for i, part in enumerate(doc["partitions_written"]):
            m = _PARTITION.fullmatch(part)
            assert m is not None  # checked by the schema
            sid = int(m.group(1))
            if sid >= total:
                raise _fail(where, f"partitions_written[{i}]", f"scenario {sid} outside 0..{total - 1}")
            if sid in seen:
                raise _fail(where, f"partitions_written[{i}]", f"scenario {sid} listed twice")
            seen.add(sid)
        if doc["detail"] == "summary":
            if doc["tables"]:
                raise _fail(where, "tables", "expected [] at detail 'summary' (no partitioned tables)")
            if seen:
                raise _fail(where, "partitions_written", "expected [] at detail 'summary' (no partitions)")
        elif not doc["tables"]:
            raise _fail(where, "tables", f"expected the partitioned tables of detail {doc['detail']!r}, got []")
        return cls(
            status=doc["status"],
            started_at=doc["started_at"],
            completed_at=doc["completed_at"],
            scenarios_total=total,
            scenarios_completed=sc["completed"],
            scenarios_failed=sc["failed"],
            partitions_written=doc["partitions_written"],
            checksum_value=doc["checksum"]["value"],
            world_size=mi["world_size"],
            ranks_participated=mi["ranks_participated"],
            files={p: FileEntry(e["rows"], e["bytes"], e["xxhash64"]) for p, e in doc.get("files", {}).items()},
            failures=tuple(Failure._from_checked(f) for f in doc.get("failures", ())),
            detail=doc["detail"],
            tables=doc["tables"],
            version=doc["version"],
            **_read_identity_fields(doc),
        )

    def with_files(self, files: Mapping[str, FileEntry]) -> SimulationManifest:
        """Copy with ``files`` and the matching ``checksum_value``."""
        return replace(self, files=dict(files),
                       checksum_value=combined_checksum({p: e.xxhash64 for p, e in files.items()}))


@dataclass(frozen=True)
class TrainingManifest:
    """``training/_manifest.json`` (SPEC §6)."""

    status: str
    started_at: str
    max_iterations: int
    completed_at: str | None = None
    iterations_completed: int = 0
    converged_at: int | None = None
    achieved: bool = False
    final_gap_percent: float | None = None
    termination_reason: str | None = None
    total_generated: int = 0
    total_active: int = 0
    peak_active: int = 0
    policy_value: str | None = None
    convergence_value: str | None = None
    world_size: int = 1
    forward_passes_per_iteration: int = 0
    version: str = MANIFEST_VERSION
    run_fingerprint: str | None = None
    run_identity: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in TRAINING_STATUSES:
            raise ManifestError("training", f"unknown status {self.status!r}")
        if self.termination_reason is not None and self.termination_reason not in TERMINATION_REASONS:
            raise ManifestError("training", f"unknown termination_reason {self.termination_reason!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form, field order of SPEC §6."""
        return {
            "$schema": TRAINING_SCHEMA,
            "version": self.version,
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "iterations": {"max_iterations": self.max_iterations, "completed": self.iterations_completed,
                           "converged_at": self.converged_at},
            "convergence": {"achieved": self.achieved, "final_gap_percent": self.final_gap_percent,
                            "termination_reason": self.termination_reason},
            "cuts": {"total_generated": self.total_generated, "total_active": self.total_active,
                     "peak_active": self.peak_active},
            "checksum": {"algorithm": CHECKSUM_ALGORITHM, "policy_value": self.policy_value,
                         "convergence_value": self.convergence_value},
            "mpi_info": {"world_size": self.world_size,
                         "forward_passes_per_iteration": self.forward_passes_per_iteration},
            **_identity_fields(self.run_fingerprint, self.run_identity),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "training") -> TrainingManifest:
        """Parse the JSON form.

        Raises
        ------
        ManifestError
            Naming ``where`` (the file) and the field path when a field is
            missing, of the wrong type or out of range (:data:`TRAINING_MANIFEST_SCHEMA`).
        """
        doc = check_document(TRAINING_MANIFEST_SCHEMA, d, where)
        it, cv, cu, ck, mi = (doc[k] for k in ("iterations", "convergence", "cuts", "checksum", "mpi_info"))
        gap = cv["final_gap_percent"]
        return cls(
            status=doc["status"],
            started_at=doc["started_at"],
            completed_at=doc["completed_at"],
            max_iterations=it["max_iterations"],
            iterations_completed=it["completed"],
            converged_at=it["converged_at"],
            achieved=cv["achieved"],
            final_gap_percent=None if gap is None else float(gap),
            termination_reason=cv["termination_reason"],
            total_generated=cu["total_generated"],
            total_active=cu["total_active"],
            peak_active=cu["peak_active"],
            policy_value=ck["policy_value"],
            convergence_value=ck["convergence_value"],
            world_size=mi["world_size"],
            forward_passes_per_iteration=mi["forward_passes_per_iteration"],
            version=doc["version"],
            **_read_identity_fields(doc),
        )


_FILE_ENTRY: Final = Obj({"rows": Int(), "bytes": Int(), "xxhash64": _XXH64})
_FAILURE: Final = Obj({"rank": Int(lo=-1), "scenario_id": Opt(Int()), "kind": Str(), "message": Str(),
                       "host": Opt(Str())}, optional=frozenset({"host"}))

SIMULATION_MANIFEST_SCHEMA: Final = Obj({
    "version": _VERSION,
    "status": Str(SIMULATION_STATUSES),
    "started_at": Str(),
    "completed_at": Opt(Str()),
    "scenarios": Obj({"total": Int(), "completed": Int(), "failed": Int()}),
    "partitions_written": Seq(Str(pattern=_PARTITION, what="scenario_id=NNNN/")),
    "checksum": Obj({"algorithm": Str((CHECKSUM_ALGORITHM,)), "value": Opt(_XXH64)}),
    "mpi_info": Obj({"world_size": Int(lo=1), "ranks_participated": Int()}),
    "detail": Str(DETAIL_LEVELS),
    "tables": Seq(Str(SIMULATION_TABLES), unique=True),
    "failures": Seq(_FAILURE),
    "files": MapOf(RelPath(), _FILE_ENTRY),
    **IDENTITY_FIELDS,
}, optional=frozenset({"failures", "files", *IDENTITY_FIELDS}))
"""Shape of ``simulation/_manifest.json`` (SPEC §6; ``failures``, ``files`` and the identity optional)."""

TRAINING_MANIFEST_SCHEMA: Final = Obj({
    "version": _VERSION,
    "status": Str(TRAINING_STATUSES),
    "started_at": Str(),
    "completed_at": Opt(Str()),
    "iterations": Obj({"max_iterations": Int(), "completed": Int(), "converged_at": Opt(Int())}),
    "convergence": Obj({"achieved": Bool(), "final_gap_percent": Opt(Num()),
                        "termination_reason": Opt(Str(TERMINATION_REASONS))}),
    "cuts": Obj({"total_generated": Int(), "total_active": Int(), "peak_active": Int()}),
    "checksum": Obj({"algorithm": Str((CHECKSUM_ALGORITHM,)), "policy_value": Opt(_XXH64),
                     "convergence_value": Opt(_XXH64)}),
    "mpi_info": Obj({"world_size": Int(lo=1), "forward_passes_per_iteration": Int()}),
    **IDENTITY_FIELDS,
}, optional=frozenset(IDENTITY_FIELDS))
"""Shape of ``training/_manifest.json`` (SPEC §6; the identity optional)."""


def _identity_fields(fingerprint: str | None, identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run identity keys of a manifest's JSON form (each omitted when unknown)."""
    out: dict[str, Any] = {}
    if fingerprint is not None:
        out["run_fingerprint"] = fingerprint
    if identity is not None:
        out["run_identity"] = dict(identity)
    return out


def _read_identity_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``run_fingerprint`` and ``run_identity`` of a checked document (None when absent)."""
    ident = doc.get("run_identity")
    return {"run_fingerprint": doc.get("run_fingerprint"), "run_identity": dict(ident) if ident is not None else None}


class _NotFinite(ValueError):
    """Internal: a JSON number that is not a finite double (``1e400``, ``NaN``, ``Infinity``)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str) -> Any:
    raise _NotFinite(text)


def parse_json_document(data: bytes | str, where: str) -> Any:
    """Parse JSON text of the output tree with bounded numbers.

    Non-finite numbers (``NaN``, ``Infinity``, or a literal such as
    ``1e400`` that overflows a double) and integers too long to convert are
    refused, as is nesting deeper than the interpreter can parse.

    Raises
    ------
    ManifestError
        Naming ``where`` when the text is not valid JSON or holds such a number.
    """
    try:
        return json.loads(data, parse_float=_finite_float, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise ManifestError(where, f"number {_show(str(exc))} is not a finite double") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(where, f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise ManifestError(where, "not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond int's digit limit
        raise ManifestError(where, f"not valid JSON: {exc}") from exc


def read_json_document(path: Path, manifest: str) -> Any:
    """Read and parse a JSON document of the output tree (:func:`parse_json_document`).

    Raises
    ------
    ManifestError
        Naming ``manifest`` (the file) when it is missing, not valid JSON or
        holds a non-finite number.
    IoError
        When it cannot be read.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(manifest, f"{path} does not exist") from exc
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    return parse_json_document(text, manifest if manifest == str(path) else f"{manifest}, {path}")


def simulation_manifest_text(manifest: SimulationManifest) -> str:
    """JSON text: indented, except ``files`` with one compact entry per line.

    Indenting 10^5 file entries with :func:`json.dumps` takes the pure-Python
    encoder (about 4x slower than compact); one line per file stays readable
    and diff-friendly at a fraction of the cost.
    """
    d = manifest.to_dict()
    files = d.pop("files")
    head = json.dumps(d, indent=2, ensure_ascii=False)
    assert head.endswith("\n}")
    if files:
        lines = ",\n".join(f"    {json.dumps(p)}: {json.dumps(e, separators=(', ', ': '))}" for p, e in files.items())
        body = "{\n" + lines + "\n  }"
    else:
        body = "{}"
    return head[:-2] + f',\n  "files": {body}\n}}\n'


def write_simulation_manifest(path: str | os.PathLike[str], manifest: SimulationManifest) -> None:
    """Atomically write ``manifest`` to ``path`` (``.../simulation/_manifest.json``).

    Raises
    ------
    IoError
        Naming ``path`` when the write or rename fails.
    """
    write_bytes_atomic(path, simulation_manifest_text(manifest).encode("utf-8"))


def read_simulation_manifest(path: str | os.PathLike[str]) -> SimulationManifest:
    """Read ``simulation/_manifest.json``; :class:`ManifestError` naming the file (and the field) when
    missing, corrupt or malformed, :class:`IoError` when it cannot be read."""
    return SimulationManifest.from_dict(read_json_document(Path(path), str(path)), str(path))


def write_training_manifest(path: str | os.PathLike[str], manifest: TrainingManifest) -> None:
    """Atomically write ``manifest`` to ``path`` (``.../training/_manifest.json``)."""
    write_json_atomic(path, manifest.to_dict(), entity="training manifest")


def read_training_manifest(path: str | os.PathLike[str]) -> TrainingManifest:
    """Read ``training/_manifest.json``; :class:`ManifestError` naming the file (and the field) when
    missing, corrupt or malformed, :class:`IoError` when it cannot be read."""
    return TrainingManifest.from_dict(read_json_document(Path(path), str(path)), str(path))


def write_success_marker(directory: str | os.PathLike[str]) -> None:
    """Atomically create the empty ``_SUCCESS`` marker in ``directory``."""
    write_bytes_atomic(Path(directory) / "_SUCCESS", b"")


def remove_success_marker(directory: str | os.PathLike[str]) -> None:
    """Remove ``_SUCCESS`` from ``directory`` if present."""
    p = Path(directory) / "_SUCCESS"
    try:
        p.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise IoError.from_os_error(p, exc) from exc
