"""``training/metadata.json`` (SPEC §7): run metadata and the hashes behind it.

:class:`RunMetadata` is a frozen dataclass with one mapping per section
(``run_info``, ``configuration_snapshot``, ``problem_dimensions``,
``performance_summary``, ``data_integrity``, ``environment``); the builder
functions below fill each section from the run, and :func:`write_metadata`
writes it atomically.

Hashes are ``"sha256:<hex>"``:

- ``input_hash``: the case input files when the system was loaded from a case
  directory (:func:`hash_case_files`: every ``*.json``/``*.parquet`` below
  the case, sorted by POSIX relative path, hashing ``path + "\\0" +
  len + "\\0" + bytes`` for each), otherwise :attr:`System.system_hash`
  (canonical JSON of the system description); ``input_hash_source`` says
  which;
- ``config_hash``: canonical JSON (sorted keys, no spaces) of the
  configuration snapshot;
- ``policy_hash``: concatenated bytes of ``policy/cuts/stage_*.bin`` in stage
  order, ``null`` when there are no cut files;
- ``convergence_hash``: bytes of ``training/convergence.parquet``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .. import mpi
from ..atomic import write_json_atomic
from ..errors import IoError, ManifestError
from ..hashing import sha256_file, sha256_files, sha256_json, update_from_file
from ..layout import policy_cut_files
from ..manifest import read_json_document
from ..system.model import System

__all__ = [
    "METADATA_SECTIONS",
    "RunMetadata",
    "detect_environment",
    "hash_case_files",
    "input_hash",
    "local_environment",
    "policy_cut_files",
    "problem_dimensions",
    "read_metadata",
    "sha256_file",
    "sha256_files",
    "sha256_json",
    "write_metadata",
]

METADATA_SECTIONS: Final = ("run_info", "configuration_snapshot", "problem_dimensions", "performance_summary",
                            "data_integrity", "environment")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class RunMetadata:
    """The six sections of ``metadata.json`` (SPEC §7), each a JSON-ready mapping."""

    run_info: Mapping[str, Any]
    configuration_snapshot: Mapping[str, Any]
    problem_dimensions: Mapping[str, Any]
    performance_summary: Mapping[str, Any]
    data_integrity: Mapping[str, Any]
    environment: Mapping[str, Any]
    version: str = "2.0.0"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``version`` then the sections in SPEC order."""
        d: dict[str, Any] = {"version": self.version}
        for s in METADATA_SECTIONS:
            d[s] = dict(getattr(self, s))
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunMetadata:
        """Parse the JSON form; :class:`ManifestError` when a section is missing."""
        if not isinstance(d, Mapping):
            raise ManifestError("metadata", "metadata is not a JSON object")
        for s in METADATA_SECTIONS:
            if not isinstance(d.get(s), Mapping):
                raise ManifestError("metadata", f"missing section {s!r}")
        extra = {k: v for k, v in d.items() if k not in METADATA_SECTIONS and k != "version"}
        return cls(**{s: dict(d[s]) for s in METADATA_SECTIONS}, version=str(d.get("version", "2.0.0")),
                   extra=extra)


def write_metadata(path: str | os.PathLike[str], metadata: RunMetadata | Mapping[str, Any]) -> None:
    """Atomically write ``metadata`` to ``path`` (``.../training/metadata.json``).

    Not collective: rank 0 calls it in :func:`~cobre_mpi_io.results.write_results`.

    Raises
    ------
    SerializationError
        If a value is not JSON (NaN, infinity, unknown type); nothing is written.
    IoError
        When the write or rename fails.
    """
    doc = metadata.to_dict() if isinstance(metadata, RunMetadata) else dict(metadata)
    write_json_atomic(path, doc, entity="metadata.json")


def read_metadata(path: str | os.PathLike[str]) -> RunMetadata:
    """Read ``metadata.json``; :class:`ManifestError` when missing or malformed."""
    return RunMetadata.from_dict(read_json_document(Path(path), "metadata"))


# ------------------------------------------------------------------ hashing
# sha256_file / sha256_files / sha256_json live in hashing.py and policy_cut_files in
# checkpoint.py; they are re-exported here for the metadata's callers.


def hash_case_files(case_dir: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a case's input files (see module docs for the framing)."""
    root = Path(case_dir)
    files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".parquet")),
                   key=lambda p: p.relative_to(root).as_posix())
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix().encode()
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise IoError.from_os_error(p, exc) from exc
        h.update(rel + b"\0" + str(size).encode() + b"\0")
        update_from_file(h, p)
    return "sha256:" + h.hexdigest()


def input_hash(system: System) -> tuple[str, str]:
    """``(hash, source)``: the case files' hash when ``system`` came from a case directory, else its system hash."""
    src = Path(system.source) if system.source and not system.source.startswith(("code", "synthetic")) else None
    if src is not None and src.is_dir():
        return hash_case_files(src), "case_files"
    return system.system_hash, "system_description"


# --------------------------------------------------------------- sections
def problem_dimensions(system: System, lp_dimensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``problem_dimensions`` section for ``system`` (``lp_dimensions`` as given, else null)."""
    return {
        "num_stages": system.num_stages,
        "num_blocks_per_stage": [int(b) for b in system.blocks_per_stage],
        "num_hydros": len(system.hydros),
        "num_thermals": len(system.thermals),
        "num_buses": len(system.buses),
        "num_lines": len(system.lines),
        "num_pumping_stations": len(system.pumping_stations),
        "num_contracts": len(system.contracts),
        "num_non_controllables": len(system.non_controllables),
        "num_batteries": len(system.batteries),
        "num_generic_constraints": len(system.generic_constraints),
        "state_dimension": system.state_dimension,
        "lp_dimensions": dict(lp_dimensions) if lp_dimensions is not None else None,
    }


def _host_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _affinity() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def local_environment() -> dict[str, Any]:
    """What this process can see of itself: host, CPU affinity, memory, OpenMP threads."""
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        omp_threads: int | None = int(omp) if omp is not None else None
    except ValueError:
        omp_threads = None
    return {"hostname": socket.gethostname(), "affinity": _affinity(), "host_cpus": os.cpu_count() or 1,
            "host_memory_bytes": _host_memory_bytes(), "omp_num_threads": omp_threads,
            "omp_num_threads_raw": omp}


def detect_environment(comm: Any = None) -> dict[str, Any]:
    """The ``environment`` section, detected from the MPI library and every rank.

    Collective over ``comm`` (one allgather); every rank gets the same dict.

    ``cpus_per_rank`` is the smallest, over hosts, of the CPUs usable by the
    ranks of a host (union of their affinity masks) divided by the number of
    ranks on it; ``memory_per_rank_gb`` likewise with the host's physical
    memory (GiB); ``numa_binding`` is ``"bound"`` when every rank's affinity
    mask is a proper subset of its host's CPUs and the masks on a host do not
    overlap, ``"none"`` otherwise; ``omp_num_threads`` from ``OMP_NUM_THREADS``
    (``null`` when unset).
    """
    c = mpi.resolve_comm(comm)
    try:
        info: dict[str, Any] = mpi.mpi_library_info()
    except Exception as exc:  # noqa: BLE001 - library introspection is best-effort
        info = {"mpi_implementation": None, "mpi_version": None, "library_version": str(exc)}
    envs = mpi.allgather(c, local_environment())
    hosts: dict[str, list[dict[str, Any]]] = {}
    for e in envs:
        hosts.setdefault(e["hostname"], []).append(e)
    cpus: list[float] = []
    mems: list[float] = []
    bound = True
    for ranks in hosts.values():
        union: set[int] = set()
        overlap = False
        for e in ranks:
            if union & set(e["affinity"]):
                overlap = True
            union |= set(e["affinity"])
            if len(e["affinity"]) >= e["host_cpus"]:
                bound = False
        if overlap:
            bound = False
        cpus.append(len(union) / len(ranks))
        if ranks[0]["host_memory_bytes"]:
            mems.append(ranks[0]["host_memory_bytes"] / len(ranks) / 2**30)
    omp = envs[0]["omp_num_threads"]
    cpr = min(cpus)
    return {
        "mpi_implementation": info.get("mpi_implementation"),
        "mpi_version": info.get("mpi_version"),
        "mpi_library": info.get("library_version"),
        "mpi_standard": info.get("mpi_standard"),
        "num_ranks": mpi.size_of(c),
        "num_hosts": len(hosts),
        "cpus_per_rank": int(cpr) if float(cpr).is_integer() else round(cpr, 2),
        "memory_per_rank_gb": round(min(mems), 2) if mems else None,
        "numa_binding": "bound" if bound else "none",
        "omp_num_threads": omp,
    }
