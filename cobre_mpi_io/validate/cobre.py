"""Validate a tree the real Cobre solver wrote (0.5.x or >= 0.14), which has no ``_manifest.json``.

:func:`detect_cobre_tree` recognizes such a tree: no manifest, journal or
claim of ours, and a ``metadata.json`` (training or simulation) whose
producer is Cobre — ``software``/``software_version`` (Cobre >= 0.14) or a
top-level ``cobre_version`` (0.5.x) — or else a policy directory Cobre
wrote (``manifest.bin``, or a ``metadata.json`` with ``cobre_version``).

:func:`validate_cobre_tree` checks what can be checked without a manifest:

- every file reads: Parquet files decode whole, JSON parses, CSV parses,
  the policy directory decodes with the policy readers
  (:func:`~cobre_mpi_io.policy.checkpoint.read_policy_checkpoint`);
- the schema of every Parquet file whose table that Cobre version is known to
  write (:func:`~cobre_mpi_io.schemas.format_tables`, ``cobre-0.5`` or
  ``cobre-0.18``; Cobre 0.14-0.17 are checked against 0.18's) is exactly that
  table's (names, order, types, nullability);
- partitions agree across tables: every ``simulation/<table>/`` has the same
  scenarios, one ``data.parquet`` each, holding (0.18) only its own
  ``scenario_id``; ``paths.parquet`` and ``scenario_summary.parquet`` list the
  same scenarios; ``metadata.json``'s completed scenario and iteration counts
  match the partitions and ``convergence.parquet``; ``_SUCCESS`` is there when
  the metadata says ``complete``.

The report says which producer and version it saw (:class:`CobreValidationReport`).

pyarrow is imported by the functions that read Parquet: detecting that a tree
is not Cobre's (every run of ``validate`` asks) does not load it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .. import mpi
from ..layout import (
    CLAIM_NAME,
    JOURNAL_DIR,
    MANIFEST_NAME,
    POLICY_DIR,
    SIMULATION_DIR,
    SUCCESS_NAME,
    TRAINING_DIR,
)
from ..schemas import TableSchema, format_tables
from .report import ValidationReport

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CobreTree", "CobreValidationReport", "detect_cobre_tree", "validate_cobre_output", "validate_cobre_tree"]

_PARTITION: Final = re.compile(r"^scenario_id=(\d+)$")
_VERSION: Final = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class CobreTree:
    """What :func:`detect_cobre_tree` saw: the producer, its version and the schema set it is checked with.

    Attributes
    ----------
    producer : str
        ``"cobre"``.
    version : str
        The producer's version (``"0.18.0"``, ``"0.5.1"``), or ``"unknown"``.
    format : str or None
        ``"cobre-0.5"`` or ``"cobre-0.18"``; None when no schema set is
        known for the version (files are then checked for readability only).
    source : str
        The file the producer and version were read from.
    """

    producer: str
    version: str
    format: str | None
    source: str


@dataclass
class CobreValidationReport(ValidationReport):
    """A :class:`ValidationReport` of a Cobre tree: it also says the producer and version seen."""

    producer: str = "cobre"
    version: str = "unknown"
    format: str | None = None

    def verdict(self) -> str:
        """The base verdict, preceded by the producer and version and the schemas used."""
        schemas = f"schemas {self.format}" if self.format else "no known schemas for this version"
        return f"written by {self.producer} {self.version} ({schemas}); " + super().verdict()

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the base one plus ``producer``, ``version`` and ``format``."""
        return {"producer": self.producer, "version": self.version, "format": self.format, **super().to_dict()}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _format_of(version: str) -> str | None:
    m = _VERSION.match(version)
    if m is None:
        return None
    major, minor = int(m.group(1)), int(m.group(2))
    if (major, minor) == (0, 5):
        return "cobre-0.5"
    if major == 0 and minor >= 14:
        return "cobre-0.18"
    return None


def detect_cobre_tree(path: str | os.PathLike[str]) -> CobreTree | None:
    """The producer of ``path`` when the real Cobre solver wrote it, else None (one of our trees, or none).

    Parameters
    ----------
    path : path-like
        An output root.

    Returns
    -------
    CobreTree or None
        None when the tree has a ``_manifest.json``, journal or claim of
        ours, or nothing says Cobre wrote it.
    """
    root = Path(path)
    if any((root / p).exists() for p in (MANIFEST_NAME, JOURNAL_DIR, CLAIM_NAME, f"{SIMULATION_DIR}/{MANIFEST_NAME}",
                                          f"{TRAINING_DIR}/{MANIFEST_NAME}")):
        return None
    for rel in (f"{TRAINING_DIR}/metadata.json", f"{SIMULATION_DIR}/metadata.json", f"{POLICY_DIR}/metadata.json"):
        doc = _json(root / rel)
        if not isinstance(doc, dict):
            continue
        if doc.get("software") == "cobre" and isinstance(doc.get("software_version"), str):
            v = doc["software_version"]
            return CobreTree("cobre", v, _format_of(v), rel)
        if isinstance(doc.get("cobre_version"), str) and "version" not in doc and "run_info" not in doc:
            v = doc["cobre_version"]
            return CobreTree("cobre", v, _format_of(v), rel)
    if (root / POLICY_DIR / "manifest.bin").is_file():
        return CobreTree("cobre", "unknown (>= 0.14: policy/manifest.bin)", "cobre-0.18", f"{POLICY_DIR}/manifest.bin")
    return None


def _section(rel: str) -> tuple[str, str]:
    head, _, rest = rel.partition("/")
    return (head, rest) if head in (SIMULATION_DIR, TRAINING_DIR, POLICY_DIR) and rest else ("", rel)


class _Checker:
    def __init__(self, root: Path, tree: CobreTree) -> None:
        self.root = root
        self.tree = tree
        self.report = CobreValidationReport(str(root), producer=tree.producer, version=tree.version,
                                            format=tree.format)
        self.tables: dict[str, TableSchema] = format_tables(tree.format) if tree.format else {}
        # exact file paths and partitioned directories of the known tables
        self.by_path = {t.path: t for t in self.tables.values() if not t.path.endswith("/")}
        if "solver_iterations" in self.tables:
            self.by_path["simulation/solver/iterations.parquet"] = self.tables["solver_iterations"]
        if "retry_histogram" in self.tables:
            self.by_path["simulation/solver/retry_histogram.parquet"] = self.tables["retry_histogram"]
        self.by_dir = {t.path.rstrip("/"): t for t in self.tables.values() if t.path.endswith("/")}
        self.pending: list[tuple[str, TableSchema | None, int | None]] = []
        self.threads = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))

    def add(self, rel: str, problem: str) -> None:
        section, file = _section(rel)
        self.report.add(file, problem, section)

    # --------------------------------------------------------------- files
    def parquet(self, rel: str, schema: TableSchema | None, scenario_id: int | None = None) -> None:
        """Queue one Parquet file for :meth:`run_parquet` (read whole, schema, partition's scenario id)."""
        self.pending.append((rel, schema, scenario_id))

    def run_parquet(self) -> None:
        """Check the queued Parquet files on a thread pool; problems in queue order."""
        def one(task: tuple[str, TableSchema | None, int | None]) -> list[str]:
            return _check_parquet(self.root / task[0], task[1], self.tree.format, task[2])

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for (rel, _s, _i), problems in zip(self.pending, pool.map(one, self.pending), strict=True):
                self.report.files_checked += 1
                for problem in problems:
                    self.add(rel, problem)
        self.pending.clear()

    def text(self, rel: str) -> None:
        self.report.files_checked += 1
        path = self.root / rel
        try:
            if rel.endswith(".json"):
                json.loads(path.read_text())
            elif rel.endswith(".csv"):
                with open(path, newline="") as f:
                    rows = list(csv.reader(f))
                if not rows or any(len(r) != len(rows[0]) for r in rows):
                    self.add(rel, "CSV rows do not all have the header's number of fields")
            else:
                path.read_bytes()
        except (OSError, ValueError) as exc:
            self.add(rel, f"unreadable: {exc}")

    # ------------------------------------------------------------ sections
    def walk(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            if rel_dir == POLICY_DIR or rel_dir.startswith(POLICY_DIR + "/"):
                continue  # the policy readers check it
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir != "." else name
                p = self.root / rel
                if p.is_symlink() or not p.is_file():
                    self.add(rel, "not a regular file (Cobre writes none)")
                elif name.endswith(".parquet"):
                    if not _PARTITION.match(Path(rel_dir).name):  # partitions: in simulation()
                        self.parquet(rel, self.by_path.get(rel))
                elif name != SUCCESS_NAME:
                    self.text(rel)

    def simulation(self) -> None:
        sim = self.root / SIMULATION_DIR
        if not sim.is_dir():
            return
        scenarios: dict[str, set[int]] = {}
        for d in sorted(p for p in sim.rglob("scenario_id=*") if p.is_dir()):
            table_dir = d.parent.relative_to(self.root).as_posix()
            m = _PARTITION.match(d.name)
            if m is None:
                self.add(d.relative_to(self.root).as_posix(), "malformed partition directory name")
                continue
            sid = int(m.group(1))
            scenarios.setdefault(table_dir, set()).add(sid)
            entries = sorted(e.name for e in d.iterdir())
            if entries != ["data.parquet"]:
                self.add(d.relative_to(self.root).as_posix(), f"holds {entries}, Cobre writes one data.parquet")
            if "data.parquet" not in entries:
                continue
            self.parquet(f"{d.relative_to(self.root).as_posix()}/data.parquet", self.by_dir.get(table_dir), sid)
        self.run_parquet()
        all_ids = set().union(*scenarios.values()) if scenarios else set()
        for table_dir, ids in sorted(scenarios.items()):
            if ids != all_ids:
                missing = sorted(all_ids - ids)
                self.add(table_dir, f"{len(missing)} scenario(s) the other tables have are missing "
                                    f"(first {missing[:5]})")
        self.report.scenarios_checked = len(all_ids)
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for rel in ("simulation/paths.parquet", "simulation/scenario_summary.parquet"):
            if (self.root / rel).is_file() and all_ids:
                try:
                    with pq.ParquetFile(self.root / rel) as pf:
                        ids = set(pc.unique(pf.read(columns=["scenario_id"]).column("scenario_id")).to_pylist())
                except (OSError, pa.ArrowException, KeyError, ValueError):
                    continue  # reported by walk()
                if ids != all_ids:
                    self.add(rel, f"lists {len(ids)} scenarios, the partitions hold {len(all_ids)}")
        meta = _json(sim / "metadata.json")
        if isinstance(meta, dict):
            self.report.status = meta.get("status") if isinstance(meta.get("status"), str) else None
            done = (meta.get("scenarios") or {}).get("completed") if isinstance(meta.get("scenarios"), dict) else None
            if isinstance(done, int) and scenarios and done != len(all_ids):
                self.add("simulation/metadata.json", f"records {done} completed scenarios, the partitions "
                                                     f"hold {len(all_ids)}")
            if meta.get("status") == "complete" and not (sim / SUCCESS_NAME).is_file():
                self.add("simulation/_SUCCESS", "missing while metadata.json says complete")

    def training(self) -> None:
        tr = self.root / TRAINING_DIR
        if not tr.is_dir():
            return
        meta = _json(tr / "metadata.json")
        if not isinstance(meta, dict):
            if not (tr / "metadata.json").is_file():
                self.add("training/metadata.json", "missing")
            return
        self.report.training_status = meta.get("status") if isinstance(meta.get("status"), str) else None
        done = (meta.get("iterations") or {}).get("completed") if isinstance(meta.get("iterations"), dict) else None
        conv = tr / "convergence.parquet"
        if isinstance(done, int) and conv.is_file():
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                rows = pq.ParquetFile(conv).metadata.num_rows
            except (OSError, pa.ArrowException, ValueError):
                rows = None  # reported by walk()
            if rows is not None and rows != done:
                self.add("training/convergence.parquet", f"{rows} rows where metadata.json records {done} "
                                                         "completed iterations")
        if meta.get("status") == "complete" and not (tr / SUCCESS_NAME).is_file():
            self.add("training/_SUCCESS", "missing while metadata.json says complete")

    def policy(self) -> None:
        pol = self.root / POLICY_DIR
        if not pol.is_dir():
            return
        from ..policy.checkpoint import read_policy_checkpoint

        try:
            ck = read_policy_checkpoint(pol)
        except Exception as exc:  # noqa: BLE001 - any failure of the reader is the finding
            self.report.add(".", f"the policy does not read: {type(exc).__name__}: {exc}", POLICY_DIR)
            return
        self.report.checkpoints_checked += 1
        self.report.files_checked += len(getattr(ck, "files", {}) or {})
        if self.tree.format is not None and ck.format != self.tree.format:
            self.report.add(".", f"a {ck.format} policy in a tree {self.tree.producer} {self.tree.version} wrote",
                            POLICY_DIR)


def _check_parquet(path: Path, schema: TableSchema | None, fmt: str | None, scenario_id: int | None) -> list[str]:
    """Problems of one Parquet file: it reads whole, has ``schema``, holds only ``scenario_id`` (partitions)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:  # one file alone: no dataset discovery (ParquetFile, not read_table)
        with pq.ParquetFile(path) as pf:
            tbl = pf.read(use_threads=False)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return [f"unreadable Parquet file: {exc}"]
    out = []
    if schema is not None:
        got = tbl.schema.remove_metadata()
        if not got.equals(schema.arrow_schema):
            out.append(f"schema differs from {fmt}'s {schema.name}: {_schema_diff(got, schema.arrow_schema)}")
    if scenario_id is not None and "scenario_id" in tbl.column_names and tbl.num_rows:
        ids = pc.unique(tbl.column("scenario_id")).to_pylist()
        if ids != [scenario_id]:
            out.append(f"scenario_id column holds {sorted(ids)[:5]}, not its partition's {scenario_id}")
    return out


def _schema_diff(got: pa.Schema, want: pa.Schema) -> str:
    gn, wn = got.names, want.names
    if gn != wn:
        extra, missing = [n for n in gn if n not in wn], [n for n in wn if n not in gn]
        if extra or missing:
            return f"missing columns {missing}, extra columns {extra}"
        return "columns out of order"
    for g, w in zip(got, want, strict=True):
        if g.type != w.type:
            return f"column {g.name} is {g.type}, not {w.type}"
        if g.nullable != w.nullable:
            return f"column {g.name} is {'nullable' if g.nullable else 'not nullable'}, Cobre's is the opposite"
    return "metadata differs"  # pragma: no cover - equals() compares no more than the above


def validate_cobre_tree(path: str | os.PathLike[str], tree: CobreTree | None = None) -> CobreValidationReport:
    """Validate a tree the real Cobre solver wrote (see the module documentation).

    Parameters
    ----------
    path : path-like
        The output root.
    tree : CobreTree, optional
        What :func:`detect_cobre_tree` found (detected when omitted).

    Returns
    -------
    CobreValidationReport
        Never raises for what it finds: every finding is a problem. A tree
        nothing says Cobre wrote is one problem.
    """
    root = Path(path)
    tree = tree or detect_cobre_tree(root)
    if tree is None:
        rep = CobreValidationReport(str(root), version="unknown")
        rep.add(".", "not a tree the Cobre solver wrote (no metadata.json naming Cobre)", "")
        return rep
    chk = _Checker(root, tree)
    if tree.format is None:
        chk.report.add(tree.source, f"Cobre {tree.version}: no known table schemas for this version; files were "
                                    "checked for readability only", _section(tree.source)[0])
    chk.walk()
    chk.run_parquet()
    chk.simulation()
    chk.training()
    chk.policy()
    return chk.report


def validate_cobre_output(path: str | os.PathLike[str], comm: Any = None) -> ValidationReport | None:
    """The report of a Cobre-written tree, or None when ``path`` is not one (then validate as ours).

    Collective over ``comm`` when given: rank 0 detects and validates, every
    rank gets the same answer.
    """
    size = mpi.size_of(comm) if comm is not None else 1
    rank = mpi.rank_of(comm) if comm is not None else 0
    report: ValidationReport | None = None
    if rank == 0:
        try:
            tree = detect_cobre_tree(path)
            report = validate_cobre_tree(path, tree) if tree is not None else None
        except Exception as exc:  # noqa: BLE001 - never raise (and never leave MPI peers waiting)
            report = CobreValidationReport(str(path))
            report.add(".", f"validate failed unexpectedly: {type(exc).__name__}: {exc}", "")
    if size > 1:
        report = mpi.bcast_from_root(comm, report)
    return report
