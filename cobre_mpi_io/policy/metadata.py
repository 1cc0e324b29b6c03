"""A policy checkpoint's ``metadata.json`` (SPEC §9): :class:`PolicyMetadata`, the per-file digests, the schema.

Plain data (no NumPy): reading a checkpoint's metadata, as ``validate``
does for every retained checkpoint, needs none of the stage types of
:mod:`.records` (which re-exports these names).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..documents import Int, MapOf, Num, Obj, Opt, Seq, Str, check_document
from ..errors import ManifestError
from ..manifest import HEX16

__all__ = ["METADATA_SCHEMA", "POLICY_FORMAT_VERSION", "FileDigest", "PolicyMetadata", "file_digests"]

POLICY_FORMAT_VERSION = "1.1.0"  # 1.1.0: metadata.json records each file's bytes and xxhash64 (``files``)


@dataclass(frozen=True)
class FileDigest:
    """Size and xxhash64 of one checkpoint file, as its ``metadata.json`` records them (``files``).

    Attributes
    ----------
    bytes : int
    xxhash64 : str
        xxh64 (seed 0) of the file's bytes, 16 lowercase hex digits.
    """

    bytes: int
    xxhash64: str

    def to_dict(self) -> dict[str, Any]:
        """``{"bytes": ..., "xxhash64": ...}``."""
        return {"bytes": int(self.bytes), "xxhash64": self.xxhash64}


@dataclass(frozen=True)
class PolicyMetadata:
    """``policy/metadata.json`` (SPEC §9), written as JSON for people to read.

    ``best_upper_bound`` may be None (not evaluated); non-finite floats are
    written as null.  :meth:`from_dict` also reads the ``metadata.json`` the
    Cobre solver (0.5.x) writes beside its own policy: no ``version`` (read
    as ``""``), no ``last_forward_pass``, ``rng_state`` or hashes (defaults);
    its extra ``warm_start_counts`` and ``total_visited_states`` are dropped.
    ``value_scale`` (optional): stored cut values times it are costs in the
    case's cost unit (see :attr:`PolicyCheckpoint.value_scale`).
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
    value_scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys in the SPEC §9 order (then ``value_scale`` when recorded)."""

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
        } | ({} if self.value_scale is None else {"value_scale": float(self.value_scale)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "policy/metadata.json") -> PolicyMetadata:
        """Rebuild from :meth:`to_dict` output (or a parsed ``metadata.json``).

        Every field is checked against :data:`METADATA_SCHEMA`: integers in
        their uint32/uint64 ranges, bounds finite or null, text as strings,
        ``files`` well formed (:func:`file_digests` returns it).

        Raises
        ------
        ManifestError
            Naming ``source`` and the field that is missing or bad.
        """
        doc = check_document(METADATA_SCHEMA, data, source)
        # The Cobre solver's own metadata.json names its cobre_version but has no version and no
        # hashes; ours always has all three, so a version missing from ours stays an error.
        cobre_own = ("version" not in doc and "config_hash" not in doc and bool(doc.get("cobre_version")))
        if "version" not in doc and not cobre_own:
            raise ManifestError(source, "version: missing")
        return cls(
            version=doc.get("version", ""),
            cobre_version=doc.get("cobre_version", ""),
            created_at=doc.get("created_at", ""),
            completed_iterations=doc["completed_iterations"],
            last_forward_pass=doc.get("last_forward_pass", 0),
            final_lower_bound=doc.get("final_lower_bound"),
            best_upper_bound=doc.get("best_upper_bound"),
            max_iterations=doc.get("max_iterations", 0),
            forward_passes=doc.get("forward_passes", 0),
            warm_start_cuts=doc.get("warm_start_cuts", 0),
            rng_seed=doc.get("rng_seed", 0),
            rng_state=doc.get("rng_state", ()),
            state_dimension=doc["state_dimension"],
            num_stages=doc["num_stages"],
            config_hash=doc.get("config_hash", ""),
            system_hash=doc.get("system_hash", ""),
            value_scale=doc.get("value_scale"),
        )


_U32 = Int(hi=2**32 - 1)
_U64 = Int(hi=2**64 - 1)
_POLICY_FILE = re.compile(r"(cuts|states|vertices|basis)/stage_\d{3,}\.bin|state_dictionary\.json"
                          r"|policy/(cuts|basis|states)/\d{3,}\.bin|policy/manifest\.bin")  # the 2nd: cobre-0.18
METADATA_SCHEMA = Obj(
    {
        "version": Str(), "cobre_version": Str(), "created_at": Str(),
        "completed_iterations": _U32, "last_forward_pass": _U32,
        "final_lower_bound": Opt(Num()), "best_upper_bound": Opt(Num()),
        "max_iterations": _U32, "forward_passes": _U32, "warm_start_cuts": _U32,
        "rng_seed": _U64, "rng_state": Seq(_U64),
        "state_dimension": _U32, "num_stages": _U32, "config_hash": Str(), "system_hash": Str(),
        "value_scale": Num(),
        "files": MapOf(Str(pattern=_POLICY_FILE, what="a stage file path or state_dictionary.json"),
                       Obj({"bytes": Int(), "xxhash64": Str(pattern=HEX16, what="16 lowercase hex digits")})),
    },
    optional=frozenset({"version", "cobre_version", "created_at", "last_forward_pass", "final_lower_bound",
                        "best_upper_bound", "max_iterations", "forward_passes", "warm_start_cuts",
                        "rng_seed", "rng_state", "config_hash", "system_hash", "files", "value_scale"}),
)
"""Schema of a checkpoint's ``metadata.json`` (SPEC §9 plus ``files``); unknown keys are allowed."""


def file_digests(data: Mapping[str, Any], source: str = "policy/metadata.json") -> dict[str, FileDigest] | None:
    """The ``files`` map of a checkpoint's ``metadata.json``: path -> :class:`FileDigest`; None without one.

    Raises
    ------
    ManifestError
        The document (``files`` included) does not match :data:`METADATA_SCHEMA`.
    """
    files = check_document(METADATA_SCHEMA, data, source).get("files")
    if files is None:
        return None
    return {rel: FileDigest(e["bytes"], e["xxhash64"]) for rel, e in files.items()}
