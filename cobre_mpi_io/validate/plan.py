"""Planning ``validate`` (rank 0): the structure of ``simulation/`` and ``training/``, their manifests, the file tasks.

Everything here is cheap (manifests, directory listings, ``stat``); the
files' bytes are read later by :mod:`.files`, on every rank.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ..atomic import is_temp_name
from ..documents import parse_json_document
from ..formats import recorded_format
from ..hashing import sha256_json, xxh64_hex
from ..identity import RunIdentity
from ..journal import JournalEntry
from ..layout import (
    DATA_FILE,
    MANIFEST_NAME,
    SIMULATION_DIR,
    SUCCESS_NAME,
    TRAINING_DIR,
    dictionary_files,
    parse_partition_file,
)
from ..manifest import (
    SUCCESS_STATUSES,
    FileEntry,
    SimulationManifest,
    TrainingManifest,
    combined_checksum,
    read_simulation_manifest,
    read_training_manifest,
)
from ..policy.metadata import PolicyMetadata
from ..schemas import DEFAULT_FORMAT, DETAIL_LEVELS, SIMULATION_TABLES, TABLES, format_tables
from ..training.metadata import RunMetadata, read_metadata
from .files import Reference, Task
from .report import Problem
from .tree import not_regular, temp_or_unexpected, walk

__all__ = ["BOUNDS", "CONVERGENCE", "DICTIONARIES", "ITERATIONS", "METADATA", "RANK_DIR", "UNLISTED_PARTITION", "Plan",
           "plan_simulation", "plan_training"]

_PART_RE: Final = re.compile(r"^scenario_id=(\d{4,})$")
_PARTITION_ENTRY_RE: Final = re.compile(r"^scenario_id=(\d{4,})/$")
_RANK_PART_RE: Final = re.compile(r"^part-rank-(\d{4,})\.parquet$")
_DIR_TO_TABLE: Final = {TABLES[t].directory: t for t in (*SIMULATION_TABLES, "scenario_totals")}


def _train_rel(table_name: str) -> str:
    """Path of a training table relative to ``training/`` (SPEC §5, from the schemas)."""
    return TABLES[table_name].path.removeprefix(TRAINING_DIR + "/")


CONVERGENCE: Final = _train_rel("convergence")
ITERATIONS: Final = _train_rel("iteration_timing")
RANK_DIR: Final = _train_rel("rank_timing").rstrip("/")
BOUNDS: Final = _train_rel("bounds")
DICTIONARIES: Final = BOUNDS.rsplit("/", 1)[0]
METADATA: Final = "metadata.json"


@dataclass
class Plan:
    """Rank 0's view of the tree: the problems found while planning, the file tasks and the context."""

    root: Path
    mode: str                                     # "root" | "simulation"
    bases: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    ref_tasks: list[Task] = field(default_factory=list)
    refs: dict[str, Reference] = field(default_factory=dict)
    detail: str = "full"
    format: str = DEFAULT_FORMAT                  # the run identity's output format (formats.recorded_format)
    training_format: str = DEFAULT_FORMAT         # the format of the training tables and dictionaries
    scenarios_completed: int = 0
    status: str | None = None
    training_status: str | None = None
    scenarios: int = 0
    checkpoints: int = 0
    sim_fingerprint: str | None = None
    training: TrainingManifest | None = None
    metadata: RunMetadata | None = None
    policy_required: str | None = None            # why a policy must exist
    policy_latest: str | None = None              # latest checkpoint dir, relative to policy/
    policy_metas: dict[str, PolicyMetadata] = field(default_factory=dict)
    deep: bool = False
    journal: dict[str, JournalEntry] | None = None  # OUT-relative path -> record; None: no run journal
    seen: list[str] = field(default_factory=list)   # OUT-relative path of every regular file the walks met
    unjournaled: list[str] = field(default_factory=list)  # sections with files but no record in the journal
    codes: dict[str, frozenset[int]] = field(default_factory=dict)  # codes.json (the deep value checks)

    def record(self, section: str, rel: str) -> tuple[int, str, int | None] | None:
        """The run journal's ``(bytes, xxhash64, rows)`` of ``section/rel``; None when it records none.

        Parameters
        ----------
        section : str
            ``simulation``, ``training``, ``policy`` or the output root.
        rel : str
            The file, relative to its section.
        """
        if self.journal is None:
            return None
        e = self.journal.get(f"{section}/{rel}" if section else rel)
        return None if e is None else (e.bytes, e.xxhash64, e.rows)

    def walk(self, section: str, directory: Path, classify: Callable[[str, str], tuple[bool, str | None]],
             sub: str = "", known_files: Container[str] = frozenset(),
             known_dirs: Container[str] = frozenset()) -> None:
        """Walk ``directory`` (``section/sub``): problems into the plan, regular files into :attr:`seen`.

        Parameters
        ----------
        section : str
            The section the directory belongs to.
        directory : Path
            Walked (see :func:`~.tree.walk`).
        classify : callable
            ``classify(rel, kind) -> (enter, problem)``, ``rel`` relative to ``directory``.
        sub : str
            ``directory`` relative to the section (``""``: the section's directory itself).
        known_files, known_dirs : container of str
            Regular files and directories, relative to ``directory``, that ``classify`` accepts (it is not
            asked about them; see :func:`~.tree.walk`).
        """
        files: list[str] = []
        pre = f"{sub}/" if sub else ""
        walk(directory, classify, lambda rel, msg: self.add(section, pre + rel, msg), files, known_files, known_dirs)
        top = f"{section}/{pre}" if section else pre
        self.seen.extend(top + f for f in files)

    def add(self, section: str, file: str, problem: str) -> None:
        """Record a problem found while planning.

        Parameters
        ----------
        section : str
            ``simulation``, ``training``, ``policy`` or the output root.
        file : str
            The file, relative to its section.
        problem : str
            What is wrong.
        """
        self.problems.append(Problem(file, problem, section))


def _read_manifest(kind: str, path: Path, plan: Plan, section: str) -> Any:
    """A manifest through its schema-checked reader; one problem line (never a traceback) when it fails.

    The JSON is parsed once.  When the run journal vouches for the
    manifest's bytes (its writer checked them), the per-file entries of
    ``files`` (10^4 of them at 1,000 scenarios) are taken as they are
    instead of walking each one through the schema check again.
    """
    why = not_regular(path)
    if why is not None:
        plan.add(section, MANIFEST_NAME, f"unreadable: {why}")
        return None
    reader: Callable[[Path], Any] = read_simulation_manifest if kind == "simulation" else read_training_manifest
    try:
        rec = plan.record(section, MANIFEST_NAME)
        if kind != "simulation" or rec is None:
            return reader(path)
        data = path.read_bytes()
        doc = parse_json_document(data, str(path))
        files = doc.get("files") if isinstance(doc, dict) else None
        if (len(data), xxh64_hex(data)) != rec[:2] or not isinstance(files, dict):
            return SimulationManifest.from_dict(doc, str(path))
        manifest = SimulationManifest.from_dict({**doc, "files": {}}, str(path))
        return replace(manifest, files={p: FileEntry(e["rows"], e["bytes"], e["xxhash64"]) for p, e in files.items()})
    except Exception as exc:  # noqa: BLE001 - OutputError, or any other failure of a malformed document
        detail = str(exc) if hasattr(exc, "kind") else f"malformed ({type(exc).__name__}: {exc})"
        plan.add(section, MANIFEST_NAME, f"unreadable: {detail}")
        return None


def _check_identity_fields(doc: Any, section: str, file: str, plan: Plan) -> str | None:
    """The recorded ``run_fingerprint`` (None when absent); its ``run_identity`` must hash to it."""
    fp = getattr(doc, "run_fingerprint", None)
    ident = getattr(doc, "run_identity", None)
    if fp is None and isinstance(doc, RunMetadata):
        fp = doc.extra.get("run_fingerprint")
        ident = doc.extra.get("run_identity")
    if fp is not None and not isinstance(fp, str):
        plan.add(section, file, f"run_fingerprint is not a string: {fp!r}")
        return None
    if ident is not None:
        try:
            computed = RunIdentity.from_dict(ident, f"{section}/{file}").fingerprint
        except Exception as exc:  # noqa: BLE001 - a malformed identity is one problem line
            plan.add(section, file, f"run_identity is malformed: {exc}")
        else:
            if fp is not None and computed != fp:
                plan.add(section, file, f"run_identity hashes to {computed}, not to its run_fingerprint {fp}")
    return fp


def plan_simulation(sim: Path, plan: Plan, deep: bool) -> None:
    """Plan ``simulation/``: its manifest, the tree walk, one task per listed file.

    Parameters
    ----------
    sim : Path
        The ``simulation/`` directory.
    plan : Plan
        Receives the problems, the tasks and the references' tasks.
    deep : bool
        Decode every file's key columns, not only the reference scenario's.
    """
    s = SIMULATION_DIR
    manifest: SimulationManifest | None = None
    if not (sim / MANIFEST_NAME).exists() and not (sim / MANIFEST_NAME).is_symlink():
        plan.add(s, MANIFEST_NAME, "missing (no simulation manifest: not a committed simulation)")
    else:
        manifest = _read_manifest("simulation", sim / MANIFEST_NAME, plan, s)
    if manifest is not None:
        bad = _manifest_shape_problems(manifest)
        if bad:
            plan.add(s, MANIFEST_NAME, "unreadable: malformed (" + "; ".join(bad) + ")")
            manifest = None
    if manifest is None:
        plan.walk(s, sim, lambda rel, kind: _sim_entry(rel, kind, None))
        return
    plan.status, plan.detail, plan.scenarios_completed = manifest.status, manifest.detail, \
        manifest.scenarios_completed
    plan.sim_fingerprint = _check_identity_fields(manifest, s, MANIFEST_NAME, plan)
    plan.format = recorded_format(manifest.run_identity)
    success = (sim / SUCCESS_NAME).exists()
    if manifest.status == "complete" and not success:
        plan.add(s, SUCCESS_NAME, "missing although the manifest is complete")
    if manifest.status != "complete":
        plan.add(s, MANIFEST_NAME, f"status is {manifest.status!r}, not complete")
        if success:
            plan.add(s, SUCCESS_NAME, f"present although the manifest status is {manifest.status!r}")
    if manifest.tables and manifest.scenarios_completed != len(manifest.partitions_written):
        plan.add(s, MANIFEST_NAME, "scenarios.completed differs from the number of partitions_written")
    if manifest.status == "complete" and manifest.scenarios_completed != manifest.scenarios_total:
        plan.add(s, MANIFEST_NAME, "complete but scenarios.completed != scenarios.total")
    want = combined_checksum({p: e.xxhash64 for p, e in manifest.files.items()})
    if manifest.checksum_value != want:
        plan.add(s, MANIFEST_NAME, f"checksum.value {manifest.checksum_value} does not match its files ({want})")
    table_dirs = [TABLES[tname].directory for tname in manifest.tables]
    for part in manifest.partitions_written:
        written = int(part.removeprefix("scenario_id=").rstrip("/"))
        for table_dir in table_dirs:
            rel = f"{table_dir}/scenario_id={written:04d}/{DATA_FILE}"
            if rel not in manifest.files:
                plan.add(s, rel, f"partition {part} is listed as written but this file is not in the manifest")
    # file tasks: the lowest listed scenario of each table is the reference (decoded first, on rank 0)
    tables = set(manifest.tables) | ({"scenario_totals"} if manifest.detail == "summary" else set())
    scenarios: set[int] = set()
    ref_rel: dict[str, tuple[int, str]] = {}
    parsed_files: list[tuple[str, str | None, int | None]] = []
    known_files: set[str] = set()  # the partition files of the declared tables: the walk accepts them unasked
    known_dirs: set[str] = set()
    listed: list[tuple[str, str]] = []  # problems of listed files, reported after the walk's
    for rel in sorted(manifest.files):
        parsed = parse_partition_file(rel)
        name: str | None = _DIR_TO_TABLE.get(parsed[0] if parsed else rel)
        sid: int | None = parsed[1] if parsed else None
        if name is None or name not in tables:
            why = f"listed in the manifest but not a file of any table the manifest declares (tables {sorted(tables)})"
            listed.append((rel, why))
            name = None
        elif parsed is not None:
            known_files.add(rel)
            known_dirs.add(rel.rpartition("/")[0])
        if sid is not None:
            if sid >= manifest.scenarios_total:
                listed.append((rel, f"scenario {sid} outside 0..{manifest.scenarios_total - 1}"))
            scenarios.add(sid)
        if name is not None and (name not in ref_rel or (sid or 0) < ref_rel[name][0]):
            ref_rel[name] = (sid or 0, rel)
        parsed_files.append((rel, name, sid))
    plan.walk(s, sim, lambda rel, kind: _sim_entry(rel, kind, manifest), known_files=known_files,
              known_dirs=known_dirs)
    for rel, problem in listed:
        plan.add(s, rel, problem)
    plan.scenarios = len(scenarios)
    fmt_tables, fingerprint, files = format_tables(plan.format), plan.sim_fingerprint, manifest.files
    for rel, name, sid in parsed_files:
        if name is None and not (sim / rel).resolve().is_relative_to(sim.resolve()):
            continue  # never read outside the tree
        e = files[rel]
        is_ref = name is not None and ref_rel[name][1] == rel
        task = Task("parquet", s, rel, table=name, rows=e.rows, size=e.bytes, xxhash64=e.xxhash64,
                    fingerprint=fingerprint, decode=deep or is_ref, keep=is_ref, scenario=sid,
                    fmt=plan.format if name in fmt_tables else DEFAULT_FORMAT,
                    journal=plan.record(s, rel), deep=deep and name is not None)
        (plan.ref_tasks if is_ref else plan.tasks).append(task)


def _manifest_shape_problems(m: SimulationManifest) -> list[str]:
    """What the manifest reader may not catch yet: unknown detail or tables, malformed partitions."""
    bad: list[str] = []
    if not isinstance(m.detail, str) or m.detail not in DETAIL_LEVELS:
        bad.append(f"detail: expected one of {', '.join(DETAIL_LEVELS)}; got {m.detail!r}")
    tables = m.tables
    if not all(isinstance(t, str) and t in SIMULATION_TABLES for t in tables):
        bad.append(f"tables: unknown table in {list(tables)!r}")
    elif len(set(tables)) != len(tables):
        bad.append("tables: a table is listed twice")
    elif m.detail == "summary" and tables:
        bad.append("tables: expected [] at detail 'summary'")
    elif m.detail in ("full", "stage") and not tables:
        bad.append(f"tables: expected the partitioned tables of detail {m.detail!r}, got []")
    elif m.detail in ("full", "stage") and "costs" not in tables:
        bad.append("tables: every detail level but summary writes costs")
    seen: set[str] = set()
    for i, part in enumerate(m.partitions_written):
        if not isinstance(part, str) or _PARTITION_ENTRY_RE.match(part) is None:
            bad.append(f"partitions_written[{i}]: expected scenario_id=NNNN/, got {part!r}")
            break
        if part in seen:
            bad.append(f"partitions_written[{i}]: {part} listed twice")
            break
        seen.add(part)
    for rel in m.files:
        parts = rel.split("/")
        if rel.startswith("/") or "\\" in rel or "" in parts or "." in parts or ".." in parts:
            bad.append(f"files: {rel!r} is not a relative path below simulation/")
            break
    return bad


_SIM_PARENT_DIRS: Final = {d.rsplit("/", k)[0] for d in _DIR_TO_TABLE if "/" in d
                           for k in range(1, d.count("/") + 1)}


UNLISTED_PARTITION: Final = "data file not listed in the manifest"
"""The problem of a partition the simulation manifest does not list (its bytes are still checked against the journal)."""


def _sim_entry(rel: str, kind: str, manifest: SimulationManifest | None) -> tuple[bool, str | None]:
    """Is ``rel`` (below ``simulation/``) part of the output? ``(enter, problem)``."""
    name = rel.rsplit("/", 1)[-1]
    parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
    if kind == "dir":
        if rel in _DIR_TO_TABLE or rel in _SIM_PARENT_DIRS:
            return True, None
        if parent in _DIR_TO_TABLE and _PART_RE.match(name):
            return True, None
        return False, temp_or_unexpected(rel, kind)
    if is_temp_name(name):
        return False, temp_or_unexpected(rel, kind)
    if manifest is None:
        return False, None  # nothing to compare with; links, specials and temps are still reported
    if rel in manifest.files or rel in (MANIFEST_NAME, SUCCESS_NAME):
        return False, None
    if name.endswith(".parquet"):
        return False, UNLISTED_PARTITION
    return False, temp_or_unexpected(rel, kind)


def plan_training(train: Path, plan: Plan) -> None:
    """Plan ``training/``: manifest, ``metadata.json``, the tree walk, the Parquet tasks."""
    t = TRAINING_DIR
    tm: TrainingManifest | None = None
    if not (train / MANIFEST_NAME).exists():
        plan.add(t, MANIFEST_NAME, "missing although training/ exists (training did not finish writing its "
                                   "results, or they were removed)")
    else:
        tm = _read_manifest("training", train / MANIFEST_NAME, plan, t)
    plan.training = tm
    final = tm is not None and tm.status != "running"
    fp: str | None = None
    if tm is not None:
        plan.training_status = tm.status
        fp = _check_identity_fields(tm, t, MANIFEST_NAME, plan)
        success = (train / SUCCESS_NAME).exists()
        if tm.status == "running":
            plan.add(t, MANIFEST_NAME, "status is 'running': a run is in progress or died")
        elif tm.status not in SUCCESS_STATUSES:
            plan.add(t, MANIFEST_NAME, f"status is {tm.status!r}, not complete or converged")
        if tm.status in SUCCESS_STATUSES and not success:
            plan.add(t, SUCCESS_NAME, f"missing although the manifest is {tm.status}")
        if tm.status not in SUCCESS_STATUSES and success:
            plan.add(t, SUCCESS_NAME, f"present although the manifest status is {tm.status!r}")
        if tm.iterations_completed > tm.max_iterations:
            plan.add(t, MANIFEST_NAME, f"iterations.completed {tm.iterations_completed} exceeds "
                                       f"max_iterations {tm.max_iterations}")
        if tm.policy_value is not None:
            plan.policy_required = "training/_manifest.json records a policy checksum"
    # metadata.json
    md: RunMetadata | None = None
    why = not_regular(train / METADATA)
    if why is not None:
        plan.add(t, METADATA, f"unreadable: {why}")
    elif (train / METADATA).exists():
        try:
            md = read_metadata(train / METADATA)
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            plan.add(t, METADATA, f"unreadable: {exc}" if hasattr(exc, "kind")
                     else f"unreadable: malformed ({type(exc).__name__}: {exc})")
    elif final:
        plan.add(t, METADATA, "missing although the training manifest is final")
    plan.metadata = md
    if md is not None:
        mfp = _check_identity_fields(md, t, METADATA, plan)
        if fp is not None and mfp is not None and mfp != fp:
            plan.add(t, METADATA, f"run_fingerprint {mfp} differs from training/_manifest.json's {fp}")
        fp = fp or mfp
        di = md.data_integrity
        snapshot = md.configuration_snapshot
        if di.get("config_hash") is not None and snapshot:
            try:
                want = sha256_json(dict(snapshot))
            except (TypeError, ValueError):
                want = None
            if want is not None and di["config_hash"] != want:
                plan.add(t, METADATA, f"data_integrity.config_hash {di['config_hash']} is not the hash of "
                                       f"configuration_snapshot ({want})")
        if di.get("input_hash_source") == "system_description" and di.get("system_hash") is not None \
                and di.get("input_hash") != di.get("system_hash"):
            plan.add(t, METADATA, "data_integrity.input_hash differs from system_hash although its source is "
                                   "the system description")
        if di.get("policy_hash") is not None and plan.policy_required is None:
            plan.policy_required = "training/metadata.json records a policy_hash"
        nranks = md.environment.get("num_ranks")
        if tm is not None and isinstance(nranks, int) and nranks != tm.world_size:
            plan.add(t, METADATA, f"environment.num_ranks {nranks} differs from the training manifest's "
                                   f"world_size {tm.world_size}")
    if plan.sim_fingerprint is not None and fp is not None and fp != plan.sim_fingerprint:
        plan.add(t, MANIFEST_NAME, f"run_fingerprint {fp} differs from simulation/_manifest.json's "
                                   f"{plan.sim_fingerprint}: training and simulation are from different runs")
    world = tm.world_size if tm is not None else None
    tfmt = recorded_format(tm.run_identity if tm is not None else md.extra.get("run_identity") if md is not None
                           else None)  # the output format of the training tables and dictionaries
    plan.training_format = tfmt

    def classify(rel: str, kind: str) -> tuple[bool, str | None]:
        name = rel.rsplit("/", 1)[-1]
        if kind == "dir":
            if rel in ("timing", RANK_DIR, DICTIONARIES):
                return True, None
            return False, temp_or_unexpected(rel, kind)
        if is_temp_name(name):
            return False, temp_or_unexpected(rel, kind)
        if rel in (MANIFEST_NAME, SUCCESS_NAME, METADATA, CONVERGENCE, ITERATIONS):
            return False, None
        if rel.startswith(DICTIONARIES + "/") and name in dictionary_files(tfmt):
            return False, None
        m = _RANK_PART_RE.match(name)
        if rel.startswith(RANK_DIR + "/") and m:
            r = int(m.group(1))
            if world is not None and r >= world:
                return False, f"timing part of rank {r}, but the run has {world} rank(s) (left by another run)"
            return False, None
        return False, temp_or_unexpected(rel, kind)

    plan.walk(t, train, classify)
    # files: required when the manifest is final; checked whenever present
    wanted = [(CONVERGENCE, "convergence", True), (ITERATIONS, "iteration_timing", False)]
    tfmts = {"convergence": tfmt, "iteration_timing": tfmt}  # rank timing parts: the spec's in every format
    if world is not None:
        wanted += [(f"{RANK_DIR}/part-rank-{r:04d}.parquet", "rank_timing", False) for r in range(world)]
    for rel, tname, sha in wanted:
        if (train / rel).exists() or (train / rel).is_symlink():
            plan.tasks.append(Task("parquet", t, rel, table=tname, fingerprint=fp, keep=True, sha256=sha,
                                   fmt=tfmts.get(tname, DEFAULT_FORMAT), journal=plan.record(t, rel),
                                   deep=plan.deep))
        elif final:
            plan.add(t, rel, "missing although the training manifest is final")
    if (train / BOUNDS).exists():
        # The dictionaries' writer does not stamp the run fingerprint yet: a foreign one is reported, a
        # missing one tolerated (make it required once write_dictionaries passes the identity's footer).
        plan.tasks.append(Task("parquet", t, BOUNDS, table="bounds", fingerprint=fp, fmt=tfmt,
                               journal=plan.record(t, BOUNDS), deep=plan.deep))
    if final:
        for name in dictionary_files(tfmt):
            rel = f"{DICTIONARIES}/{name}"
            if not (train / rel).exists() and name != "bounds.parquet":
                plan.add(t, rel, "missing although the training manifest is final")
