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
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import xxhash

from .atomic import fsync_dir
from .documents import (
    Bool,
    Int,
    MapOf,
    Node,
    Num,
    Obj,
    Opt,
    RelPath,
    Seq,
    Str,
    check_document,
    field_error,
    read_json_document,
)
from .errors import IoError, ManifestError
from .journal import JournalEntry, record_removed, write_bytes_recorded, write_json_recorded
from .schemas import DETAIL_LEVELS, SIMULATION_TABLES

__all__ = [
    "HEX16",
    "IDENTITY_FIELDS",
    "MANIFEST_VERSION",
    "SHA256",
    "SIMULATION_MANIFEST_SCHEMA",
    "SIMULATION_STATUSES",
    "SUCCESS_STATUSES",
    "TERMINATION_REASONS",
    "TRAINING_MANIFEST_SCHEMA",
    "TRAINING_STATUSES",
    "Failure",
    "FileEntry",
    "SimulationManifest",
    "TrainingManifest",
    "combined_checksum",
    "read_simulation_manifest",
    "read_training_manifest",
    "remove_success_marker",
    "simulation_manifest_text",
    "utc_now",
    "withdraw_training_completion",
    "write_simulation_manifest",
    "write_success_marker",
    "write_training_manifest",
]

MANIFEST_VERSION: Final = "2.0.0"
SIMULATION_SCHEMA: Final = "https://cobre.dev/schemas/output/simulation-manifest-2.0.0.json"
TRAINING_SCHEMA: Final = "https://cobre.dev/schemas/output/training-manifest-2.0.0.json"
SIMULATION_STATUSES: Final = ("running", "complete", "failed", "partial")
TRAINING_STATUSES: Final = ("running", "complete", "failed", "converged", "interrupted")
SUCCESS_STATUSES: Final = ("complete", "converged")
"""Training statuses for which ``training/_SUCCESS`` is written."""
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
    return xxhash.xxh64_hexdigest("".join([f"{path}\t{files[path]}\n" for path in sorted(files)]).encode(), seed=0)


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
                raise field_error(where, f"scenarios.{key}", f"{sc[key]} exceeds scenarios.total {total}")
        if mi["ranks_participated"] > mi["world_size"]:
            raise field_error(where, "mpi_info.ranks_participated",
                        f"{mi['ranks_participated']} exceeds mpi_info.world_size {mi['world_size']}")
        seen: set[int] = set()
        for i, part in enumerate(doc["partitions_written"]):
            m = _PARTITION.fullmatch(part)
            assert m is not None  # checked by the schema
            sid = int(m.group(1))
            if sid >= total:
                raise field_error(where, f"partitions_written[{i}]", f"scenario {sid} outside 0..{total - 1}")
            if sid in seen:
                raise field_error(where, f"partitions_written[{i}]", f"scenario {sid} listed twice")
            seen.add(sid)
        if doc["detail"] == "summary":
            if doc["tables"]:
                raise field_error(where, "tables", "expected [] at detail 'summary' (no partitioned tables)")
            if seen:
                raise field_error(where, "partitions_written", "expected [] at detail 'summary' (no partitions)")
        elif not doc["tables"]:
            raise field_error(where, "tables", f"expected the partitioned tables of detail {doc['detail']!r}, got []")
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
    files: Mapping[str, JournalEntry] = field(default_factory=dict)
    """Every file of the training run (training tables and timing parts, dictionaries, ``metadata.json``,
    the published policy checkpoint), keyed by path relative to the output directory ``OUT``; written from
    the run's journal at the end of :func:`~cobre_mpi_io.results.write_results`."""

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
            **({"files": {p: {k: v for k, v in self.files[p].to_dict().items() if k != "path"}
                          for p in sorted(self.files)}} if self.files else {}),
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
            files={p: JournalEntry(p, e["bytes"], e["xxhash64"], e["rows"]) for p, e in doc.get("files", {}).items()},
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
    "files": MapOf(RelPath(), Obj({"bytes": Int(), "xxhash64": _XXH64, "rows": Opt(Int())})),
}, optional=frozenset({*IDENTITY_FIELDS, "files"}))
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
    write_bytes_recorded(path, simulation_manifest_text(manifest).encode("utf-8"))


def read_simulation_manifest(path: str | os.PathLike[str]) -> SimulationManifest:
    """Read ``simulation/_manifest.json``; :class:`ManifestError` naming the file (and the field) when
    missing, corrupt or malformed, :class:`IoError` when it cannot be read."""
    return SimulationManifest.from_dict(read_json_document(Path(path), str(path)), str(path))


def write_training_manifest(path: str | os.PathLike[str], manifest: TrainingManifest) -> None:
    """Atomically and durably write ``manifest`` to ``path`` (``.../training/_manifest.json``), recorded in the
    run's journal."""
    write_json_recorded(path, manifest.to_dict(), entity="training manifest")


def read_training_manifest(path: str | os.PathLike[str]) -> TrainingManifest:
    """Read ``training/_manifest.json``; :class:`ManifestError` naming the file (and the field) when
    missing, corrupt or malformed, :class:`IoError` when it cannot be read."""
    return TrainingManifest.from_dict(read_json_document(Path(path), str(path)), str(path))


def write_success_marker(directory: str | os.PathLike[str]) -> None:
    """Atomically and durably create the empty ``_SUCCESS`` marker in ``directory`` (recorded in the run's journal)."""
    write_bytes_recorded(Path(directory) / "_SUCCESS", b"")


def remove_success_marker(directory: str | os.PathLike[str]) -> bool:
    """Withdraw ``_SUCCESS`` from ``directory`` durably: unlink, fsync the directory, record the removal.

    Called before anything the marker stands over is rewritten, so that no
    marker ever stands over a tree in change, even after a crash.

    Returns
    -------
    bool
        Whether a marker was there.

    Raises
    ------
    IoError
        The marker cannot be removed.
    """
    p = Path(directory) / "_SUCCESS"
    try:
        p.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise IoError.from_os_error(p, exc) from exc
    fsync_dir(p.parent)
    record_removed([p])
    return True


def withdraw_training_completion(training_dir: str | os.PathLike[str]) -> bool:
    """Before anything of a training run is rewritten: withdraw ``_SUCCESS`` and a final status, durably.

    Removes ``training/_SUCCESS`` and, when ``training/_manifest.json`` says
    ``complete`` or ``converged``, rewrites it as ``running`` (no completion
    time), so that after a crash during re-training nothing claims the run
    complete. A manifest that does not read is left as it is (it claims
    nothing a reader would trust).

    Parameters
    ----------
    training_dir : path-like
        ``OUT/training``.

    Returns
    -------
    bool
        Whether a marker or a final status was withdrawn.

    Raises
    ------
    IoError
        The marker or the manifest cannot be removed or rewritten.
    """
    d = Path(training_dir)
    withdrawn = remove_success_marker(d)
    path = d / "_manifest.json"
    if not path.exists():
        return withdrawn
    try:
        m = read_training_manifest(path)
    except ManifestError:
        return withdrawn
    if m.status in SUCCESS_STATUSES:
        write_training_manifest(path, replace(m, status="running", completed_at=None))
        withdrawn = True
    return withdrawn
