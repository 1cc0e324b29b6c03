"""Which run an output directory holds, who wrote it, and exactly which files the analyses read.

:meth:`RunDirectory.open` recognizes three kinds of trees:

- a run this package wrote (``training/_manifest.json`` or
  ``simulation/_manifest.json``): the simulation partitions analysed are
  **exactly the files its record lists** -- the run journal
  (``_journal/files/*.jsonl``, :func:`cobre_mpi_io.journal.read_journal`)
  when there is one, else the simulation manifest's ``files``.  A partition
  or file found in a table directory that no record lists is *unlisted*: it
  is not read, and the report warns naming it.  A listed file whose bytes no
  longer match the journal's record (size and xxhash64) is an error naming
  it: the report never computes statistics over changed data.  A run
  that was never finalized (manifest ``running``, no file list) has no record
  to go by: every partition found is read, and a note says so;
- a tree the real Cobre solver wrote (no ``_manifest.json``; ``metadata.json``
  names ``software`` / ``software_version`` (0.18) or ``cobre_version``
  (0.5.x)): every ``scenario_id=NNNN/data.parquet`` found is read, and the
  producer and version are reported;
- anything else with a ``training/`` or ``simulation/`` directory: read as
  found, producer ``unknown``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..documents import read_json_document
from ..errors import IoError, SchemaError
from ..journal import JournalEntry, read_journal, verify_entry
from ..layout import DATA_FILE, JOURNAL_DIR, MANIFEST_NAME, SIMULATION_DIR, TRAINING_DIR
from ..schemas import table

__all__ = ["ANALYSED_TABLES", "PRODUCER_SELF", "RunDirectory", "as_run"]

ANALYSED_TABLES: Final = ("costs", "buses", "hydros", "thermals")
"""The simulation tables the analyses read."""
PRODUCER_SELF: Final = "cobre_mpi_io"
_PARTITION_DIR: Final = re.compile(r"^scenario_id=(\d{4,})$")


def _read_doc(path: Path, name: str) -> Any | None:
    """A JSON document of the tree (None when absent; ManifestError when not valid JSON)."""
    if not path.exists():
        return None
    return read_json_document(path, name)


def _producer(metadata: Any) -> tuple[str | None, str | None]:
    """``(software, version)`` named by a Cobre ``metadata.json`` (0.18: ``software``; 0.5.x: ``cobre_version``)."""
    if not isinstance(metadata, dict):
        return None, None
    if isinstance(metadata.get("software"), str):
        v = metadata.get("software_version")
        return metadata["software"], v if isinstance(v, str) else None
    if isinstance(metadata.get("cobre_version"), str):
        return "cobre", metadata["cobre_version"]
    return None, None


def _scan_table(sim: Path, name: str) -> tuple[list[Path], list[str]]:
    """``(partition files, other entries)`` of one table directory (temp names ignored)."""
    d = sim / table(name).directory
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise IoError.from_os_error(d, exc) from exc
    files: list[Path] = []
    other: list[str] = []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir() and _PARTITION_DIR.match(e.name):
            f = Path(e.path) / DATA_FILE
            if f.is_file():
                files.append(f)
            else:
                other.append(f"{table(name).directory}/{e.name}/")
        else:
            other.append(f"{table(name).directory}/{e.name}")
    return files, other


@dataclass
class RunDirectory:
    """An output directory opened for analysis: producer, the files to read, and what was left out.

    Build it with :meth:`open`; every analysis function of
    :mod:`cobre_mpi_io.report` accepts one (or a path, opened on the fly).
    The simulation analyses are computed once and cached on the object
    (:func:`cobre_mpi_io.report.analysis.run_results`), so a notebook
    calling several functions on one ``RunDirectory`` scans the partitions once.

    Attributes
    ----------
    path : Path
        The output directory.
    producer : str
        ``"cobre_mpi_io"``, ``"cobre"`` (the real solver) or ``"unknown"``.
    producer_version : str or None
        The producer's version (this package's, from the manifest; Cobre's
        from ``metadata.json``).
    producer_source : str
        Where the producer was read (``"simulation/_manifest.json"``,
        ``"simulation/metadata.json software/software_version"``, ...).
    listed_by : str
        ``"journal"``, ``"manifest"`` (only the files the run's record
        lists are read) or ``"directory"`` (every partition found).
    partitions : dict
        Table name -> the ``data.parquet`` files to read, in scenario order.
    unlisted : tuple of str
        Output-directory-relative paths found in the analysed table
        directories that no record lists (not read).
    warnings : list of str
        What a reader must know about the files read (unlisted files,
        bytes that differ from their record, no record at all).
    training_manifest, simulation_manifest : dict or None
        The package's manifests (None on a Cobre tree).
    training_metadata, simulation_metadata : dict or None
        ``training/metadata.json`` and ``simulation/metadata.json`` (the
        latter only Cobre writes).
    """

    path: Path
    producer: str
    producer_version: str | None
    producer_source: str
    listed_by: str
    partitions: dict[str, list[Path]]
    unlisted: tuple[str, ...]
    warnings: list[str]
    training_manifest: Any = None
    simulation_manifest: Any = None
    training_metadata: Any = None
    simulation_metadata: Any = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, out: str | os.PathLike[str]) -> RunDirectory:
        """Open the output directory ``out``: find its producer and the files to analyse.

        Parameters
        ----------
        out : path-like
            The run's output directory (holds ``training/`` and/or ``simulation/``).

        Returns
        -------
        RunDirectory

        Raises
        ------
        IoError
            ``out`` is not a directory, or holds neither ``training/`` nor ``simulation/``.
        ManifestError
            A manifest or ``metadata.json`` that is not valid JSON (named).
        SchemaError
            A listed partition whose bytes differ from the run journal's record (named).
        """
        path = Path(out)
        if not path.is_dir():
            raise IoError(path, "not found", "not an output directory (it should hold training/ and simulation/)")
        sim, tr = path / SIMULATION_DIR, path / TRAINING_DIR
        if not sim.is_dir() and not tr.is_dir():
            raise IoError(path, "not found", "no training/ or simulation/ here: not a cobre_mpi_io output directory (nor a Cobre one)")
        tman = _read_doc(tr / MANIFEST_NAME, f"{TRAINING_DIR}/{MANIFEST_NAME}")
        sman = _read_doc(sim / MANIFEST_NAME, f"{SIMULATION_DIR}/{MANIFEST_NAME}")
        tmeta = _read_doc(tr / "metadata.json", f"{TRAINING_DIR}/metadata.json")
        smeta = _read_doc(sim / "metadata.json", f"{SIMULATION_DIR}/metadata.json")
        scanned = {name: _scan_table(sim, name) for name in ANALYSED_TABLES}
        found = {name: files for name, (files, _o) in scanned.items()}
        warnings: list[str] = []
        if tman is not None or sman is not None:
            from .._version import __version__

            src = f"{SIMULATION_DIR}/{MANIFEST_NAME}" if sman is not None else f"{TRAINING_DIR}/{MANIFEST_NAME}"
            run = cls(path, PRODUCER_SELF, __version__, src, "directory", found, (), warnings,
                      tman, sman, tmeta, smeta)
            run._select_listed(scanned)
            return run
        for doc, where in ((smeta, SIMULATION_DIR), (tmeta, TRAINING_DIR)):
            software, version = _producer(doc)
            if software is not None:
                key = "software/software_version" if isinstance(doc, dict) and "software" in doc else "cobre_version"
                return cls(path, software, version, f"{where}/metadata.json {key}", "directory", found, (),
                           warnings, None, None, tmeta, smeta)
        warnings.append("no _manifest.json and no metadata.json naming a producer: every partition found is read")
        return cls(path, "unknown", None, "none", "directory", found, (), warnings, None, None, tmeta, smeta)

    # ------------------------------------------------------------------ the package's own runs
    def _select_listed(self, scanned: Mapping[str, tuple[list[Path], list[str]]]) -> None:
        """Keep only the partitions the journal (else the manifest) lists; record the rest as unlisted."""
        out = self.path
        listed: set[str] | None = None
        fingerprint = next((m.get("run_fingerprint") for m in (self.simulation_manifest, self.training_manifest)
                            if isinstance(m, dict) and isinstance(m.get("run_fingerprint"), str)), None)
        journal = _journal_entries(out, fingerprint)
        if journal is not None:
            listed = {rel for rel in journal if rel.startswith(f"{SIMULATION_DIR}/")}
            self.listed_by = "journal"
        else:
            files = self.simulation_manifest.get("files") if isinstance(self.simulation_manifest, dict) else None
            if isinstance(files, dict) and files:
                listed = {f"{SIMULATION_DIR}/{k}" for k in files}
                self.listed_by = "manifest"
        if listed is None:
            if any(f for f, _o in scanned.values()):
                self.warnings.append("the simulation was not finalized (no file list in its manifest, no journal): "
                                     "every partition found is read")
            return
        unlisted: list[str] = []
        bad: list[str] = []
        seen: set[str] = set()
        for name, (files, other) in scanned.items():
            keep = []
            for f in files:
                rel = f.relative_to(out).as_posix()
                if rel not in listed:
                    unlisted.append(rel)
                    continue
                seen.add(rel)
                if journal is not None and not verify_entry(out, journal[rel]):
                    bad.append(rel)
                keep.append(f)
            self.partitions[name] = keep
            unlisted += [f"{SIMULATION_DIR}/{o}" for o in other]
        self.unlisted = tuple(unlisted)
        what = "journal" if self.listed_by == "journal" else f"{SIMULATION_DIR}/{MANIFEST_NAME}"
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise SchemaError(bad[0], None, f"the bytes of {len(bad)} file(s) differ from the run journal's record "
                                            f"(size or xxhash64): {shown}; the files changed after they were "
                                            "written, run `cobre-mpi-io validate`")
        if unlisted:
            shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
            self.warnings.append(f"{len(unlisted)} file(s) in the simulation tables that the {what} does not list "
                                 f"were NOT analysed: {shown}")
        tables = {table(n).directory for n in ANALYSED_TABLES}
        gone = sorted(r for r in listed - seen if r.split("/")[1] in tables and r.endswith(f"/{DATA_FILE}"))
        if gone:
            shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            self.warnings.append(f"{len(gone)} partition(s) the {what} lists are missing: {shown}; "
                                 "the results cover the partitions present")

    # ------------------------------------------------------------------ accessors
    @property
    def is_cobre(self) -> bool:
        """The tree was written by the real Cobre solver (no ``_manifest.json``)."""
        return self.producer == "cobre"

    @property
    def output_format(self) -> str:
        """The output format of this package's run (its run identity's, :func:`~cobre_mpi_io.formats.recorded_format`)."""
        from ..formats import recorded_format

        man = next((m for m in (self.simulation_manifest, self.training_manifest) if isinstance(m, dict)), None)
        return recorded_format(man.get("run_identity") if man is not None else None)

    @property
    def spec_columns(self) -> bool:
        """The tables have exactly the spec's columns: this package's run in format ``spec``."""
        return self.producer == PRODUCER_SELF and self.output_format == "spec"

    @property
    def producer_label(self) -> str:
        """``"cobre 0.18.0"``, ``"cobre_mpi_io 0.1.0"``, ``"unknown"``."""
        return f"{self.producer} {self.producer_version}" if self.producer_version else self.producer

    def detail(self) -> str | None:
        """The simulation detail level (the manifest's; ``None`` when unknown)."""
        d = self.simulation_manifest.get("detail") if isinstance(self.simulation_manifest, dict) else None
        return d if isinstance(d, str) else None


def _journal_entries(out: Path, fingerprint: str | None) -> dict[str, JournalEntry] | None:
    """The run journal's records of this run (None when the run has no journal)."""
    if not (out / JOURNAL_DIR).is_dir():
        return None
    return read_journal(out, fingerprint) or None


def as_run(run: RunDirectory | str | os.PathLike[str]) -> RunDirectory:
    """``run`` itself, or the :class:`RunDirectory` of the path ``run``.

    Parameters
    ----------
    run : RunDirectory or path-like
        An opened run or its output directory.

    Returns
    -------
    RunDirectory
    """
    return run if isinstance(run, RunDirectory) else RunDirectory.open(run)
