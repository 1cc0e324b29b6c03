"""The identity of a run: what must be equal for two writes to belong to one output tree.

A :class:`RunIdentity` is the system (its canonical hash), the bytes of every
case input file (:func:`case_inputs`: every ``.json``, ``.parquet`` and
``.csv`` file of the case directory, whether or not :class:`System` parses
it), the run configuration (its hash, which covers every option that changes
content: seed, iterations, forward passes, scenarios, detail, ...), the
simulation detail level, the scenario count and the library version.  It
does not depend on the number of ranks or on the scenario assignment, so a
run resumed at another world size keeps its identity.  Its
:attr:`~RunIdentity.fingerprint` is recorded

- in ``OUT/_journal/identity.json`` (:func:`record_identity`), written
  durably by rank 0 when the run first takes the claim, before any data,
  with the size and xxhash64 of every case input file;
- in the simulation and training manifests and ``metadata.json``
  (``run_fingerprint`` and ``run_identity``), and
- in the key-value metadata of every Parquet footer the run writes
  (:data:`FOOTER_KEY`), so each file carries the identity of the run that
  wrote it even when every manifest is gone.

Every later writer of the directory (a resume, in any phase) is compared with
``identity.json`` (:func:`read_recorded_identity`, :func:`check_same_identity`)
and refused with a :class:`~cobre_mpi_io.errors.ManifestError` naming the
differing setting, case file or field and both values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import xxhash

from ._version import __version__
from .atomic import fsync_dir, open_regular, read_regular, require_regular, write_json_atomic
from .documents import Int, MapOf, Obj, Opt, RelPath, Str, check_document, read_json_document
from .errors import IoError, ManifestError, OutputError
from .hashing import sha256_json
from .layout import IDENTITY_NAME, JOURNAL_DIR

__all__ = [
    "CASE_INPUT_SUFFIXES",
    "FOOTER_KEY",
    "IDENTITY_FORMAT",
    "RecordedIdentity",
    "RunIdentity",
    "case_inputs",
    "check_same_identity",
    "identity_path",
    "inputs_hash",
    "read_file_fingerprint",
    "read_recorded_identity",
    "record_identity",
]

FOOTER_KEY: Final = "cobre_mpi_io.run_fingerprint"
"""Parquet footer key-value metadata key holding :attr:`RunIdentity.fingerprint`."""

IDENTITY_FORMAT: Final = "2"
"""Version of the identity scheme (2: case input files and library version are part of it)."""

_FIELDS: Final = ("system_hash", "config_hash", "detail", "num_scenarios", "format_version", "inputs_hash",
                  "library_version")
_OPTIONAL: Final = {"format_version": None, "inputs_hash": "", "library_version": ""}

CASE_INPUT_SUFFIXES: Final = (".json", ".parquet", ".csv")
"""The files of a case directory that belong to the run's identity (hidden files and directories aside)."""


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
    inputs_hash : str
        :func:`inputs_hash` of the case input files (``""`` for a system
        built in code, which ``system_hash`` describes whole).
    library_version : str
        The cobre_mpi_io version writing the run.
    config : mapping, optional
        The configuration ``config_hash`` was computed from (recorded so that a
        refusal can name the setting that differs, e.g. the seed); not part
        of the fingerprint, which ``config_hash`` already covers.
    inputs : mapping, optional
        ``{relative path: {"bytes": n, "xxhash64": hex}}`` of the case input
        files ``inputs_hash`` covers (recorded in ``identity.json`` so that a
        refusal names the file that changed); not part of the fingerprint.
    inputs_source : str, optional
        The case directory the inputs were read from (informational).
    """

    system_hash: str
    config_hash: str
    detail: str
    num_scenarios: int
    format_version: str = IDENTITY_FORMAT
    inputs_hash: str = ""
    library_version: str = __version__
    config: Mapping[str, Any] | None = field(default=None, compare=False)
    inputs: Mapping[str, Mapping[str, Any]] | None = field(default=None, compare=False)
    inputs_source: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``run_identity`` of manifests and ``metadata.json``; the input files are not listed)."""
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
            if value is None and name in _OPTIONAL:
                if _OPTIONAL[name] is not None:
                    kw[name] = _OPTIONAL[name]
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


def _refuse(where: str, what: str) -> ManifestError:
    return ManifestError(where, f"written by another run: {what}; resume only with the case and arguments of "
                                "the original run, or use an empty output directory (nothing was changed)")


def _show_file(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "absent"
    return f"{entry.get('bytes')} bytes, xxhash64 {entry.get('xxhash64')}"


_DOCUMENT_MAX_BYTES: Final = 256 << 10  # a JSON case file kept in identity.json to name an edited field
_DOCUMENTS_MAX_BYTES: Final = 2 << 20  # all of them


def _case_documents(identity: RunIdentity) -> dict[str, str]:
    """The text of the case's small JSON input files whose bytes are the ones ``identity`` records."""
    if not identity.inputs or not identity.inputs_source:
        return {}
    out: dict[str, str] = {}
    total = 0
    for rel, rec in identity.inputs.items():
        size = int(rec["bytes"])
        if not rel.lower().endswith(".json") or size > _DOCUMENT_MAX_BYTES or total + size > _DOCUMENTS_MAX_BYTES:
            continue
        try:
            data = read_regular(Path(identity.inputs_source) / rel, root=identity.inputs_source)
            text = data.decode("utf-8")
        except (OutputError, UnicodeDecodeError):
            continue  # only a help for the message: a file that does not read is named without its field
        if xxhash.xxh64_hexdigest(data) == rec["xxhash64"]:
            out[rel] = text
            total += size
    return out


def _show_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_difference(a: Any, b: Any, at: str = "") -> str | None:
    """Where two JSON values first differ and how (``stages[3].blocks[0].hours is 744 there and 720 ...``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            key = f"{at}.{k}" if at else str(k)
            if k not in b:
                return f"{key} is {_show_value(a[k])} there and absent in this run"
            if k not in a:
                return f"{key} is absent there and {_show_value(b[k])} in this run"
            found = _first_difference(a[k], b[k], key)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _first_difference(x, y, f"{at}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{at or 'the document'} has {len(a)} items there and {len(b)} in this run"
        return None
    if a != b or type(a) is not type(b):
        return f"{at or 'the document'} is {_show_value(a)} there and {_show_value(b)} in this run"
    return None


def _edited_field(rel: str, documents: Mapping[str, str], source: str | None) -> str | None:
    """The first field of case file ``rel`` that differs from the recorded text, when both parse as JSON."""
    if rel not in documents or not source:
        return None
    try:
        now = json.loads(read_regular(Path(source) / rel, root=source))
        then = json.loads(documents[rel])
    except (OutputError, ValueError):
        return None
    return _first_difference(then, now)


def _check_inputs(expected: RunIdentity, found: Mapping[str, Mapping[str, Any]], where: str,
                  documents: Mapping[str, str]) -> None:
    """Name the first case input file that differs (added, removed or changed), and its field when it can."""
    inputs = expected.inputs or {}
    for rel in sorted(set(inputs) | set(found)):
        a, b = found.get(rel), inputs.get(rel)
        if a is None or b is None or (a.get("bytes"), a.get("xxhash64")) != (b.get("bytes"), b.get("xxhash64")):
            change = ("is new in this run's case" if a is None else "is missing from this run's case" if b is None
                      else "differs")
            edited = _edited_field(rel, documents, expected.inputs_source) if a is not None and b is not None \
                else None
            detail = f": {edited}" if edited else ""
            raise _refuse(where, f"the case input file {rel} {change}{detail} ({_show_file(a)} there, "
                                 f"{_show_file(b)} in this run)")


def check_same_identity(expected: RunIdentity, found: RecordedIdentity | RunIdentity | Mapping[str, Any] | str | None,
                        where: str) -> None:
    """Raise :class:`ManifestError` unless ``found`` is the identity ``expected``.

    Parameters
    ----------
    expected : RunIdentity
        The identity of the run being written.
    found : RecordedIdentity, RunIdentity, mapping, str or None
        What the output directory records: ``identity.json``
        (:func:`read_recorded_identity`), an identity (or its dict), or only
        a fingerprint (a Parquet footer).  ``None`` (nothing recorded) is a
        mismatch too: a directory of unknown origin is never adopted.
    where : str
        The file the recorded identity was read from (named in the error).

    Raises
    ------
    ManifestError
        Naming the first difference and both values: the library version, a
        case input file (added, removed or changed bytes), a setting of the
        configuration (e.g. the seed), or another identity field.
    """
    if isinstance(found, str):
        if found != expected.fingerprint:
            raise ManifestError(where, f"written by another run: run fingerprint {found} differs from this "
                                       f"run's {expected.fingerprint} (another system, case file, configuration, "
                                       "seed, detail, scenario count or library version); use an empty output "
                                       "directory")
        return
    if found is None:
        raise ManifestError(where, "records no run identity (written by an older version or another tool); "
                                   "it cannot be resumed by this run: use an empty output directory")
    if isinstance(found, RecordedIdentity):
        other = found.identity
    else:
        other = found if isinstance(found, RunIdentity) else RunIdentity.from_dict(found, where)
    if other.library_version != expected.library_version:
        by = f"cobre_mpi_io {other.library_version}" if other.library_version else \
            "an earlier cobre_mpi_io (its identity records no version)"
        raise _refuse(where, f"it was written by {by} and this is cobre_mpi_io {expected.library_version} (a run is "
                             "resumed by the version that started it)")
    if other.inputs_hash != expected.inputs_hash and other.inputs and expected.inputs:
        _check_inputs(expected, other.inputs, where, found.documents if isinstance(found, RecordedIdentity) else {})
    for name in _FIELDS:
        a, b = getattr(other, name), getattr(expected, name)
        if a != b and name == "config_hash" and other.config is not None and expected.config is not None:
            keys = sorted(set(other.config) | set(expected.config), key=str)
            diff = [k for k in keys if other.config.get(k) != expected.config.get(k)]
            if diff:
                k = diff[0]
                raise _refuse(where, f"the configuration's {k} is {other.config.get(k)!r} there and "
                                     f"{expected.config.get(k)!r} in this run")
        if a != b:
            what = {"system_hash": "the system (case) differs: system_hash",
                    "config_hash": "the configuration differs: config_hash",
                    "inputs_hash": "the case input files differ: inputs_hash"}.get(name, name)
            raise _refuse(where, f"{what} is {a!r} there and {b!r} in this run")


# ------------------------------------------------------------------ case input files
_INPUTS_CACHE: dict[str, tuple[tuple[Any, ...], dict[str, dict[str, Any]]]] = {}


def _case_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(CASE_INPUT_SUFFIXES):
                continue
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError as exc:
                raise IoError.from_os_error(p, exc) from exc
            found.append((p.relative_to(root).as_posix(), p, st))
    return sorted(found, key=lambda t: t[0])


def case_inputs(case_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Size and xxhash64 of every input file of a case directory.

    Every ``.json``, ``.parquet`` and ``.csv`` file below ``case_dir``
    (hidden files and directories aside) counts, whether or not
    :class:`~cobre_mpi_io.system.System` parses it: a solver reads the
    cascade, the discount rate, the per-stage scenario counts, the inflow
    scheme, ... from them.  Each file is opened without blocking and must be a
    regular file.  The result is cached while no file's size, time or inode
    changes.

    Parameters
    ----------
    case_dir : path-like
        The case directory.

    Returns
    -------
    dict
        ``{relative POSIX path: {"bytes": int, "xxhash64": "16 hex"}}``, sorted by path.

    Raises
    ------
    IoError
        A file cannot be read, or is a FIFO, device or directory.
    """
    root = Path(case_dir)
    files = _case_files(root)
    signature = tuple((rel, st.st_size, st.st_mtime_ns, st.st_ino) for rel, _p, st in files)
    key = os.path.realpath(root)
    cached = _INPUTS_CACHE.get(key)
    if cached is not None and cached[0] == signature:
        return {rel: dict(v) for rel, v in cached[1].items()}
    out: dict[str, dict[str, Any]] = {}
    for rel, p, _st in files:
        h = xxhash.xxh64(seed=0)
        size = 0
        with open_regular(p, root=root) as fh:
            try:
                while chunk := fh.read(8 << 20):
                    h.update(chunk)
                    size += len(chunk)
            except OSError as exc:
                raise IoError.from_os_error(p, exc) from exc
        out[rel] = {"bytes": size, "xxhash64": h.hexdigest()}
    _INPUTS_CACHE[key] = (signature, out)
    return {rel: dict(v) for rel, v in out.items()}


def inputs_hash(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of :func:`case_inputs`' result (``""`` when there are none)."""
    if not inputs:
        return ""
    return sha256_json({rel: {"bytes": v["bytes"], "xxhash64": v["xxhash64"]} for rel, v in inputs.items()})


# ------------------------------------------------------------------ identity.json
RECORD_FORMAT: Final = "1"

_HEX16 = Str(pattern=re.compile(r"[0-9a-f]{16}"), what="16 lowercase hex digits")
_RECORD_SCHEMA: Final = Obj({
    "format": Str((RECORD_FORMAT,)),
    "fingerprint": Str(),
    "run_identity": Obj(),
    "inputs": Obj({"source": Opt(Str()), "files": MapOf(RelPath(), Obj({"bytes": Int(), "xxhash64": _HEX16})),
                   "documents": MapOf(RelPath(), Str())}, optional=frozenset({"documents"})),
    "library_version": Str(),
    "recorded_at": Str(),
})


@dataclass(frozen=True)
class RecordedIdentity:
    """``OUT/_journal/identity.json``: the identity a run recorded before writing anything.

    Attributes
    ----------
    identity : RunIdentity
        The recorded identity, with its configuration and its case input files.
    recorded_at : str
        When it was recorded (UTC, ISO 8601).
    path : str
        The file it was read from.
    documents : Mapping[str, str]
        The text of the case's small JSON input files as they were when the run
        started (only those whose bytes still hash to the record), so that a
        refusal can name the field of an edited file.
    """

    identity: RunIdentity
    recorded_at: str
    path: str
    documents: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """The recorded run fingerprint."""
        return self.identity.fingerprint

    @property
    def library_version(self) -> str:
        """The cobre_mpi_io version that started the run."""
        return self.identity.library_version


def identity_path(output_dir: str | os.PathLike[str]) -> Path:
    """``OUT/_journal/identity.json``."""
    return Path(output_dir) / JOURNAL_DIR / IDENTITY_NAME


def read_recorded_identity(output_dir: str | os.PathLike[str]) -> RecordedIdentity | None:
    """The identity recorded in ``OUT/_journal/identity.json``, or None when there is none.

    Parameters
    ----------
    output_dir : path-like
        The run's output root.

    Returns
    -------
    RecordedIdentity or None
        None when the file does not exist.

    Raises
    ------
    ManifestError
        The file is not valid JSON, has the wrong shape, or its fingerprint is
        not the one of the identity it records (it was edited).
    IoError
        It cannot be read, or is not a regular file (a FIFO is refused, never waited on).
    """
    path = identity_path(output_dir)
    if not path.exists() and not path.is_symlink():
        return None
    where = str(path)
    doc = check_document(_RECORD_SCHEMA, read_json_document(path, where), where)
    ident = RunIdentity.from_dict(doc["run_identity"], f"{where}: run_identity")
    files = {rel: dict(v) for rel, v in doc["inputs"]["files"].items()}
    ident = RunIdentity(**{name: getattr(ident, name) for name in _FIELDS}, config=ident.config, inputs=files,
                        inputs_source=doc["inputs"]["source"])
    if ident.fingerprint != doc["fingerprint"]:
        raise ManifestError(where, f"fingerprint {doc['fingerprint']} is not the one of the identity it records "
                                   f"({ident.fingerprint}): the file was edited")
    if files and inputs_hash(files) != ident.inputs_hash:
        raise ManifestError(where, "inputs.files do not hash to run_identity.inputs_hash: the file was edited")
    documents = {rel: text for rel, text in doc["inputs"].get("documents", {}).items()
                 if rel in files and xxhash.xxh64_hexdigest(text.encode("utf-8")) == files[rel]["xxhash64"]}
    return RecordedIdentity(ident, doc["recorded_at"], where, documents)


def record_identity(output_dir: str | os.PathLike[str], identity: RunIdentity) -> Path:
    """Write ``OUT/_journal/identity.json`` atomically and durably (rank 0, when the run takes the claim).

    Parameters
    ----------
    output_dir : path-like
        The run's output root.
    identity : RunIdentity
        The run's identity, with its case input files when it has them.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    IoError
        It cannot be written (nothing is left at its path then).
    """
    path = identity_path(output_dir)
    doc: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "fingerprint": identity.fingerprint,
        "run_identity": identity.to_dict(),
        "inputs": {"source": identity.inputs_source, "files": {rel: {"bytes": int(v["bytes"]),
                                                                    "xxhash64": str(v["xxhash64"])}
                                                              for rel, v in (identity.inputs or {}).items()}},
        "library_version": identity.library_version,
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    documents = _case_documents(identity)
    if documents:
        doc["inputs"]["documents"] = documents
    write_json_atomic(path, doc, entity=str(path))  # the file and _journal/ fsynced
    fsync_dir(Path(output_dir))  # and the entry of _journal/ in OUT, so a power loss keeps the record
    return path


def read_file_fingerprint(path: str | os.PathLike[str]) -> str | None:
    """The run fingerprint in a Parquet file's footer (``None`` when absent).

    Reads only the footer; the file is closed on return.

    Raises
    ------
    IoError
        The file cannot be opened, is not a regular file (a FIFO is refused,
        never waited on) or its footer is not Parquet.
    """
    import pyarrow.parquet as pq  # here, not at module level: validate and claims never need it

    try:
        require_regular(path)  # a FIFO or device would block the Parquet reader
        meta = pq.read_metadata(Path(path)).metadata
    except IoError:
        raise
    except OSError as exc:
        raise IoError.from_os_error(Path(path), exc) from exc
    except Exception as exc:
        raise IoError(Path(path), "footer", f"not a readable Parquet file: {exc}") from exc
    if not meta:
        return None
    value = meta.get(FOOTER_KEY.encode())
    return value.decode("utf-8", "replace") if value is not None else None
