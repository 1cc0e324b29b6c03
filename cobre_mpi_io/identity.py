"""The identity of a run: what must be equal for two writes to belong to one output tree.

A :class:`RunIdentity` is the system (its canonical hash), the run
configuration (its hash, which covers the seed), the simulation detail level
and the scenario count.  It does not depend on the number of ranks or on the
scenario assignment, so a run resumed at another world size keeps its
identity.  Its :attr:`~RunIdentity.fingerprint` is recorded

- in the simulation and training manifests and ``metadata.json``
  (``run_fingerprint`` and ``run_identity``), and
- in the key-value metadata of every Parquet footer the run writes
  (:data:`FOOTER_KEY`), so each file carries the identity of the run that
  wrote it even when every manifest is gone.

Resuming (or a second writer) with a different identity is refused with a
:class:`~cobre_mpi_io.errors.ManifestError` naming the differing field and
both values (:func:`check_same_identity`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from .errors import IoError, ManifestError
from .hashing import sha256_json

__all__ = [
    "FOOTER_KEY",
    "IDENTITY_FORMAT",
    "RunIdentity",
    "check_same_identity",
    "read_file_fingerprint",
]

FOOTER_KEY: Final = "cobre_mpi_io.run_fingerprint"
"""Parquet footer key-value metadata key holding :attr:`RunIdentity.fingerprint`."""

IDENTITY_FORMAT: Final = "1"

_FIELDS: Final = ("system_hash", "config_hash", "detail", "num_scenarios", "format_version")


@dataclass(frozen=True)
class RunIdentity:
    """Identity of a run (see the module docstring).

    Attributes
    ----------
    system_hash : str
        :attr:`System.system_hash <cobre_mpi_io.system.System.system_hash>`.
    config_hash : str
        :attr:`RunConfig.config_hash <cobre_mpi_io.config.RunConfig.config_hash>`
        (covers the seed), or ``""`` when the caller gave no configuration.
    detail : str
        Simulation detail level.
    num_scenarios : int
        Simulation scenarios (0: no simulation).
    format_version : str
        Version of this identity scheme.
    config : mapping, optional
        The configuration ``config_hash`` was computed from (recorded so that a
        refusal can name the setting that differs, e.g. the seed); not part
        of the fingerprint, which ``config_hash`` already covers.
    """

    system_hash: str
    config_hash: str
    detail: str
    num_scenarios: int
    format_version: str = IDENTITY_FORMAT
    config: Mapping[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``run_identity`` of manifests and ``metadata.json``)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        if self.config is not None:
            d["config"] = dict(self.config)
        return d

    @classmethod
    def from_dict(cls, doc: Any, where: str = "run_identity") -> RunIdentity:
        """Parse :meth:`to_dict` output; :class:`ManifestError` naming the field on a bad shape."""
        if not isinstance(doc, Mapping):
            raise ManifestError(where, f"expected an object, got {type(doc).__name__}")
        unknown = sorted(set(doc) - set(_FIELDS) - {"config"})
        if unknown:
            raise ManifestError(where, f"unknown field(s) {unknown}")
        kw: dict[str, Any] = {}
        for name in _FIELDS:
            value = doc.get(name)
            want: type = int if name == "num_scenarios" else str
            if value is None and name == "format_version":
                continue
            if isinstance(value, bool) or not isinstance(value, want):
                raise ManifestError(where, f"{name}: expected {want.__name__}, got {value!r}")
            kw[name] = value
        config = doc.get("config")
        if config is not None and not isinstance(config, Mapping):
            raise ManifestError(where, f"config: expected an object, got {config!r}")
        return cls(**kw, config=config)

    @property
    def fingerprint(self) -> str:
        """``"sha256:<hex>"`` of the canonical JSON of the identity fields (not ``config``)."""
        return sha256_json({name: getattr(self, name) for name in _FIELDS})

    def footer_metadata(self) -> dict[bytes, bytes]:
        """Parquet key-value metadata carrying the fingerprint."""
        return {FOOTER_KEY.encode(): self.fingerprint.encode()}


def check_same_identity(expected: RunIdentity, found: RunIdentity | Mapping[str, Any] | str | None,
                        where: str) -> None:
    """Raise :class:`ManifestError` unless ``found`` is the identity ``expected``.

    Parameters
    ----------
    expected : RunIdentity
        The identity of the run being written.
    found : RunIdentity, mapping, str or None
        What the output directory records: an identity (or its dict), or only
        a fingerprint (a Parquet footer).  ``None`` (nothing recorded) is a
        mismatch too: a directory of unknown origin is never adopted.
    where : str
        The file the recorded identity was read from (named in the error).

    Raises
    ------
    ManifestError
        Naming the first differing field and both values.
    """
    if isinstance(found, str):
        if found != expected.fingerprint:
            raise ManifestError(where, f"written by another run: run fingerprint {found} differs from this "
                                       f"run's {expected.fingerprint} (another system, configuration, seed, "
                                       "detail or scenario count); use an empty output directory")
        return
    if found is None:
        raise ManifestError(where, "records no run identity (written by an older version or another tool); "
                                   "it cannot be resumed by this run: use an empty output directory")
    other = found if isinstance(found, RunIdentity) else RunIdentity.from_dict(found, where)
    for name in _FIELDS:
        a, b = getattr(other, name), getattr(expected, name)
        if a != b and name == "config_hash" and other.config is not None and expected.config is not None:
            keys = sorted(set(other.config) | set(expected.config), key=str)
            diff = [k for k in keys if other.config.get(k) != expected.config.get(k)]
            if diff:
                k = diff[0]
                raise ManifestError(where, f"written by another run: the configuration's {k} is "
                                           f"{other.config.get(k)!r} there and {expected.config.get(k)!r} in "
                                           "this run; resume only with the arguments of the original run, or use "
                                           "an empty output directory")
        if a != b:
            what = {"system_hash": "the system (case) differs: system_hash",
                    "config_hash": "the configuration differs: config_hash"}.get(name, name)
            raise ManifestError(where, f"written by another run: {what} is {a!r} there and {b!r} in this run; "
                                       "resume only with the arguments of the original run, or use an empty "
                                       "output directory")


def read_file_fingerprint(path: str | os.PathLike[str]) -> str | None:
    """The run fingerprint in a Parquet file's footer (``None`` when absent).

    Reads only the footer; the file is closed on return.

    Raises
    ------
    IoError
        The file cannot be opened or its footer is not Parquet.
    """
    try:
        meta = pq.read_metadata(Path(path)).metadata
    except OSError as exc:
        raise IoError.from_os_error(Path(path), exc) from exc
    except Exception as exc:
        raise IoError(Path(path), "footer", f"not a readable Parquet file: {exc}") from exc
    if not meta:
        return None
    value = meta.get(FOOTER_KEY.encode())
    return value.decode("utf-8", "replace") if value is not None else None
