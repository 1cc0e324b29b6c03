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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import xxhash

from .atomic import write_bytes_atomic, write_json_atomic
from .errors import IoError, ManifestError

__all__ = [
    "MANIFEST_VERSION",
    "SIMULATION_STATUSES",
    "TERMINATION_REASONS",
    "TRAINING_STATUSES",
    "Failure",
    "FileEntry",
    "SimulationManifest",
    "TrainingManifest",
    "combined_checksum",
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


def _need(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ManifestError(where, f"missing field {key!r}")
    v = d[key]
    if not isinstance(v, kind) or (kind in (int, (int, type(None))) and isinstance(v, bool)):
        raise ManifestError(where, f"field {key!r} has the wrong type ({type(v).__name__})")
    return v


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
        """Parse; :class:`ManifestError` when malformed."""
        if not isinstance(d, Mapping):
            raise ManifestError(where, "file entry is not an object")
        h = _need(d, "xxhash64", str, where)
        if len(h) != 16 or any(c not in "0123456789abcdef" for c in h):
            raise ManifestError(where, f"bad xxhash64 {h!r}")
        return cls(_need(d, "rows", int, where), _need(d, "bytes", int, where), h)


@dataclass(frozen=True)
class Failure:
    """A recorded failure: the rank, the scenario (None for a rank-level failure), error kind and message."""

    rank: int
    scenario_id: int | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"rank": self.rank, "scenario_id": self.scenario_id, "kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Failure:
        """Parse; :class:`ManifestError` when malformed."""
        if not isinstance(d, Mapping):
            raise ManifestError("simulation", "failure entry is not an object")
        return cls(_need(d, "rank", int, "simulation"), d.get("scenario_id"), str(d.get("kind", "")),
                   str(d.get("message", "")))


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
            "failures": [f.to_dict() for f in self.failures],
            "files": {p: self.files[p].to_dict() for p in sorted(self.files)},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SimulationManifest:
        """Parse the JSON form; :class:`ManifestError` when malformed."""
        w = "simulation"
        if not isinstance(d, Mapping):
            raise ManifestError(w, "manifest is not a JSON object")
        sc = _need(d, "scenarios", Mapping, w)
        ck = _need(d, "checksum", Mapping, w)
        mi = _need(d, "mpi_info", Mapping, w)
        if ck.get("algorithm") != CHECKSUM_ALGORITHM:
            raise ManifestError(w, f"unknown checksum algorithm {ck.get('algorithm')!r}")
        files = _need(d, "files", Mapping, w) if "files" in d else {}
        parts = _need(d, "partitions_written", list, w)
        if not all(isinstance(p, str) for p in parts):
            raise ManifestError(w, "partitions_written holds a non-string")
        return cls(
            status=_need(d, "status", str, w),
            started_at=_need(d, "started_at", str, w),
            completed_at=_need(d, "completed_at", (str, type(None)), w),
            scenarios_total=_need(sc, "total", int, w),
            scenarios_completed=_need(sc, "completed", int, w),
            scenarios_failed=_need(sc, "failed", int, w),
            partitions_written=tuple(parts),
            checksum_value=_need(ck, "value", (str, type(None)), w),
            world_size=_need(mi, "world_size", int, w),
            ranks_participated=_need(mi, "ranks_participated", int, w),
            files={str(p): FileEntry.from_dict(e, w) for p, e in files.items()},
            failures=tuple(Failure.from_dict(f) for f in d.get("failures", [])),
            detail=str(d.get("detail", "full")),
            tables=tuple(d.get("tables", ())),
            version=_need(d, "version", str, w),
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
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingManifest:
        """Parse the JSON form; :class:`ManifestError` when malformed."""
        w = "training"
        if not isinstance(d, Mapping):
            raise ManifestError(w, "manifest is not a JSON object")
        it = _need(d, "iterations", Mapping, w)
        cv = _need(d, "convergence", Mapping, w)
        cu = _need(d, "cuts", Mapping, w)
        ck = _need(d, "checksum", Mapping, w)
        mi = _need(d, "mpi_info", Mapping, w)
        gap = cv.get("final_gap_percent")
        return cls(
            status=_need(d, "status", str, w),
            started_at=_need(d, "started_at", str, w),
            completed_at=_need(d, "completed_at", (str, type(None)), w),
            max_iterations=_need(it, "max_iterations", int, w),
            iterations_completed=_need(it, "completed", int, w),
            converged_at=_need(it, "converged_at", (int, type(None)), w),
            achieved=bool(_need(cv, "achieved", bool, w)),
            final_gap_percent=None if gap is None else float(gap),
            termination_reason=_need(cv, "termination_reason", (str, type(None)), w),
            total_generated=_need(cu, "total_generated", int, w),
            total_active=_need(cu, "total_active", int, w),
            peak_active=_need(cu, "peak_active", int, w),
            policy_value=_need(ck, "policy_value", (str, type(None)), w),
            convergence_value=_need(ck, "convergence_value", (str, type(None)), w),
            world_size=_need(mi, "world_size", int, w),
            forward_passes_per_iteration=_need(mi, "forward_passes_per_iteration", int, w),
            version=_need(d, "version", str, w),
        )


def read_json_document(path: Path, manifest: str) -> Any:
    """Parse a JSON document of the output tree: :class:`ManifestError` (naming ``manifest``) when it is
    missing or not valid JSON, :class:`IoError` when it cannot be read."""
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(manifest, f"{path} does not exist") from exc
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(manifest, f"{path} is not valid JSON: {exc}") from exc


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
    """Read ``simulation/_manifest.json``; :class:`ManifestError` when missing, corrupt or malformed."""
    return SimulationManifest.from_dict(read_json_document(Path(path), "simulation"))


def write_training_manifest(path: str | os.PathLike[str], manifest: TrainingManifest) -> None:
    """Atomically write ``manifest`` to ``path`` (``.../training/_manifest.json``)."""
    write_json_atomic(path, manifest.to_dict(), entity="training manifest")


def read_training_manifest(path: str | os.PathLike[str]) -> TrainingManifest:
    """Read ``training/_manifest.json``; :class:`ManifestError` when missing, corrupt or malformed."""
    return TrainingManifest.from_dict(read_json_document(Path(path), "training"))


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
