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
import json
import os
import platform
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .. import mpi
from .._version import __version__
from ..documents import (
    INT_MAX,
    Anything,
    Bool,
    Int,
    MapOf,
    Node,
    Num,
    Obj,
    Opt,
    Seq,
    Str,
    check_document,
    read_json_document,
)
from ..errors import IoError, ManifestError
from ..hashing import sha256_file, sha256_files, sha256_json, update_from_file
from ..journal import write_json_recorded
from ..layout import policy_cut_files
from ..manifest import IDENTITY_FIELDS, SHA256
from ..schemas import DETAIL_LEVELS, FORMATS

if TYPE_CHECKING:
    from ..system.model import System

__all__ = [
    "METADATA_SCHEMA",
    "METADATA_SECTIONS",
    "PER_RANK_KEYS",
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
PER_RANK_KEYS: Final = ("omp_num_threads", "omp_num_threads_raw", "host_cpus", "host_memory_bytes",
                        "python_version", "cobre_mpi_io_version")
"""Values of :func:`local_environment` that ``environment.differs_across_ranks`` lists per rank when
they are not the same on every rank."""

def _when_present(fields: Mapping[str, Node]) -> Obj:
    """An object whose ``fields`` are all optional but typed when present (SPEC §7: fill what can be detected)."""
    return Obj(fields, optional=frozenset(fields))


_HASH: Final = Opt(Str(pattern=SHA256, what="sha256:<64 hex digits>"))
_COUNT_FIELDS: Final = ("num_stages", "num_hydros", "num_thermals", "num_buses", "num_lines", "num_pumping_stations",
                        "num_contracts", "num_non_controllables", "num_batteries", "num_generic_constraints",
                        "state_dimension")
METADATA_SCHEMA: Final = Obj({
    "version": Str(pattern=re.compile(r"2\.\d+\.\d+"), what="a 2.x.y format version"),
    "run_info": _when_present({
        "run_id": Str(), "started_at": Opt(Str()), "completed_at": Opt(Str()), "duration_seconds": Opt(Num()),
        "cobre_version": Opt(Str()), "solver": Opt(Str()), "solver_version": Opt(Str()), "hostname": Opt(Str()),
        "user": Opt(Str()),
    }),
    "configuration_snapshot": _when_present({
        "seed": Opt(Int(lo=-INT_MAX - 1)), "forward_passes": Int(), "stopping_rules": Seq(Obj()),
        "stopping_mode": Str(), "cut_selection": Anything(), "upper_bound_evaluation": Bool(),
        "policy_mode": Str(), "max_iterations": Int(), "num_scenarios": Int(),
        "detail": Str(DETAIL_LEVELS), "format": Str(FORMATS),
    }),
    "problem_dimensions": _when_present({
        **{k: Int() for k in _COUNT_FIELDS}, "num_blocks_per_stage": Seq(Int()), "lp_dimensions": Opt(Obj()),
    }),
    "performance_summary": _when_present({
        "total_lp_solves": Int(), "avg_lp_time_us": Opt(Num(lo=0)), "median_lp_time_us": Opt(Num(lo=0)),
        "p99_lp_time_us": Opt(Num(lo=0)), "lp_time_source": Str(), "peak_memory_mb": Num(lo=0),
        "total_communication_time_seconds": Num(lo=0), "io_write_time_seconds": Num(lo=0),
    }),
    "data_integrity": _when_present({
        "input_hash": _HASH, "input_hash_source": Str(("case_files", "system_description")), "config_hash": _HASH,
        "system_hash": _HASH, "policy_hash": _HASH, "convergence_hash": _HASH, **IDENTITY_FIELDS,
    }),
    "environment": _when_present({
        "mpi_implementation": Opt(Str()), "mpi_version": Opt(Str()), "mpi_library": Opt(Str()),
        "mpi_standard": Opt(Str()), "num_ranks": Int(lo=1), "num_hosts": Int(lo=1),
        "hosts": MapOf(Str(), Seq(Int(), unique=True, nonempty=True)), "cpus_per_rank": Num(lo=0),
        "memory_per_rank_gb": Opt(Num(lo=0)), "numa_binding": Str(("bound", "none")),
        "omp_num_threads": Opt(Int()), "differs_across_ranks": MapOf(Str(), Seq(Anything())),
    }),
}, optional=frozenset({"version"}))
"""Shape of ``metadata.json``: the six sections are required objects; the fields the writer fills are
typed when present (hashes ``sha256:<hex>``, counts non-negative integers, numbers finite; the run
identity in ``data_integrity``)."""


def _check_environment(env: Mapping[str, Any], where: str) -> None:
    """``hosts`` must place every rank ``0..num_ranks-1`` on exactly one host, ``num_hosts`` of them."""
    hosts = env.get("hosts")
    if hosts is None:
        return
    n = env.get("num_ranks")
    ranks = sorted(r for rs in hosts.values() for r in rs)
    if n is not None and ranks != list(range(n)):
        raise ManifestError(where, f"environment.hosts: ranks {ranks[:8]}{'...' if len(ranks) > 8 else ''} are not "
                                   f"each of 0..{n - 1} once")
    if env.get("num_hosts") is not None and env["num_hosts"] != len(hosts):
        raise ManifestError(where, f"environment.num_hosts: {env['num_hosts']} but hosts names {len(hosts)}")


@dataclass(frozen=True)
class RunMetadata:
    """The six sections of ``metadata.json`` (SPEC §7), each a JSON-ready mapping.

    The run identity is recorded in ``data_integrity`` (``run_fingerprint``,
    ``"sha256:<hex>"``, and ``run_identity``, the
    :meth:`RunIdentity.to_dict <cobre_mpi_io.identity.RunIdentity.to_dict>`
    form); :attr:`run_fingerprint` and :attr:`run_identity` read them.
    ``extra`` holds other top-level keys.
    """

    run_info: Mapping[str, Any]
    configuration_snapshot: Mapping[str, Any]
    problem_dimensions: Mapping[str, Any]
    performance_summary: Mapping[str, Any]
    data_integrity: Mapping[str, Any]
    environment: Mapping[str, Any]
    version: str = "2.0.0"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_fingerprint(self) -> str | None:
        """``data_integrity.run_fingerprint`` (None when not recorded)."""
        value = self.data_integrity.get("run_fingerprint")
        return value if isinstance(value, str) else None

    @property
    def run_identity(self) -> Mapping[str, Any] | None:
        """``data_integrity.run_identity`` (None when not recorded)."""
        value = self.data_integrity.get("run_identity")
        return value if isinstance(value, Mapping) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``version`` then the sections in SPEC order (then ``extra``)."""
        d: dict[str, Any] = {"version": self.version}
        for s in METADATA_SECTIONS:
            d[s] = dict(getattr(self, s))
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "metadata") -> RunMetadata:
        """Parse the JSON form.

        Raises
        ------
        ManifestError
            Naming ``where`` (the file) and the field path when a section is
            missing or a field has the wrong type or value (:data:`METADATA_SCHEMA`).
        """
        doc = check_document(METADATA_SCHEMA, d, where)
        _check_environment(doc["environment"], where)
        known = {*METADATA_SECTIONS, "version"}
        # the sections as written (lists stay lists), now known to be well formed
        return cls(**{s: dict(d[s]) for s in METADATA_SECTIONS}, version=doc.get("version", "2.0.0"),
                   extra={k: v for k, v in d.items() if k not in known})


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
    write_json_recorded(path, doc, entity="metadata.json")


def read_metadata(path: str | os.PathLike[str]) -> RunMetadata:
    """Read ``metadata.json`` through the one schema-checked reader.

    Raises
    ------
    ManifestError
        Naming the file (and the field) when missing, not JSON, holding a
        non-finite number, or malformed.
    IoError
        When it cannot be read.
    """
    return RunMetadata.from_dict(read_json_document(Path(path), str(path)), str(path))


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
    """What this process can see of itself: host, CPU affinity, memory, OpenMP threads, versions."""
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        omp_threads: int | None = int(omp) if omp is not None else None
    except ValueError:
        omp_threads = None
    if omp_threads is not None and not 0 <= omp_threads <= INT_MAX:
        omp_threads = None
    return {"hostname": socket.gethostname(), "affinity": _affinity(), "host_cpus": os.cpu_count() or 1,
            "host_memory_bytes": _host_memory_bytes(), "omp_num_threads": omp_threads,
            "omp_num_threads_raw": omp, "python_version": platform.python_version(),
            "cobre_mpi_io_version": __version__}


def _clean_text(value: Any) -> Any:
    """A string from the MPI library without NUL bytes (Open MPI's ends in one) or surrounding blanks."""
    return value.replace("\x00", "").strip() if isinstance(value, str) else value


def detect_environment(comm: Any = None) -> dict[str, Any]:
    """The ``environment`` section, detected from the MPI library and every rank.

    Collective over ``comm`` (one allgather of :func:`local_environment`);
    every rank gets the same dict.

    ``hosts`` maps each host name to the ranks that ran on it (ascending;
    hosts in order of their first rank), ``num_hosts`` counts them.
    ``cpus_per_rank`` is the smallest, over hosts, of the CPUs usable by the
    ranks of a host (union of their affinity masks) divided by the number of
    ranks on it; ``memory_per_rank_gb`` likewise with the host's physical
    memory (GiB); ``numa_binding`` is ``"bound"`` when every rank's affinity
    mask is a proper subset of its host's CPUs and the masks on a host do not
    overlap, ``"none"`` otherwise; ``omp_num_threads`` from ``OMP_NUM_THREADS``
    when every rank has the same value (``null`` when unset, or when the
    ranks differ).  ``differs_across_ranks`` lists, for each of
    :data:`PER_RANK_KEYS` whose value is not the same on every rank, the
    value of each rank (index = rank); it is empty on a uniform job.
    ``mpi_library`` is the first line of the library's version string,
    without NUL bytes.
    """
    c = mpi.resolve_comm(comm)
    try:
        info: dict[str, Any] = mpi.mpi_library_info()
    except Exception as exc:  # noqa: BLE001 - library introspection is best-effort
        info = {"mpi_implementation": None, "mpi_version": None, "library_version": str(exc)}
    envs = mpi.allgather(c, local_environment())
    hosts: dict[str, list[dict[str, Any]]] = {}
    host_ranks: dict[str, list[int]] = {}
    for rank, e in enumerate(envs):
        hosts.setdefault(e["hostname"], []).append(e)
        host_ranks.setdefault(e["hostname"], []).append(rank)
    differs = {k: [e.get(k) for e in envs] for k in PER_RANK_KEYS
               if len({json.dumps(e.get(k), sort_keys=True) for e in envs}) > 1}
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
    omp = None if "omp_num_threads" in differs else envs[0]["omp_num_threads"]
    cpr = min(cpus)
    return {
        "mpi_implementation": _clean_text(info.get("mpi_implementation")),
        "mpi_version": _clean_text(info.get("mpi_version")),
        "mpi_library": _clean_text(info.get("library_version")),
        "mpi_standard": _clean_text(info.get("mpi_standard")),
        "num_ranks": mpi.size_of(c),
        "num_hosts": len(hosts),
        "hosts": host_ranks,
        "cpus_per_rank": int(cpr) if float(cpr).is_integer() else round(cpr, 2),
        "memory_per_rank_gb": round(min(mems), 2) if mems else None,
        "numa_binding": "bound" if bound else "none",
        "omp_num_threads": omp,
        "differs_across_ranks": differs,
    }
