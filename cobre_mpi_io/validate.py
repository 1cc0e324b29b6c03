"""``cobre-mpi-io validate DIR``: check a simulation output against the spec and its manifest.

Works without MPI. Checks, each problem reported on one line naming the file:

- the manifest reads and is consistent (status, counts, ``_SUCCESS``);
- every file of the manifest exists, has the recorded size and xxhash64,
  its Parquet footer reads, its schema is exactly the spec's and its row
  count is the recorded one; no data file is missing from the manifest;
- every partition of ``partitions_written`` has every table;
- row counts agree across the tables of each scenario (SPEC §4 formulas,
  with T, the blocks and the entities inferred from the ``costs`` partition
  and the key columns);
- ``checksum.value`` recomputes from the file hashes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .atomic import is_temp_name
from .errors import ManifestError, OutputError
from .hashing import xxh64_file
from .layout import MANIFEST_NAME, SIMULATION_DIR, SUCCESS_NAME, parse_partition_file
from .manifest import SimulationManifest, combined_checksum, read_simulation_manifest
from .schemas import SIMULATION_TABLES, TABLES

__all__ = ["Problem", "ValidationReport", "add_validate_arguments", "validate_main", "validate_simulation"]

_DIR_TO_TABLE = {TABLES[t].directory: t for t in SIMULATION_TABLES}
_DIR_TO_TABLE["scenario_totals.parquet"] = "scenario_totals"


@dataclass(frozen=True)
class Problem:
    """One validation problem: the file (relative to ``simulation/``) and what is wrong."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_simulation`."""

    directory: str
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    scenarios_checked: int = 0
    status: str | None = None

    @property
    def valid(self) -> bool:
        """No problem found."""
        return not self.problems

    def add(self, file: str, problem: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(file, problem))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"directory": self.directory, "valid": self.valid, "status": self.status,
                "files_checked": self.files_checked, "scenarios_checked": self.scenarios_checked,
                "problems": [{"file": p.file, "problem": p.problem} for p in self.problems]}


def _sim_dir(path: Path) -> Path:
    if (path / SIMULATION_DIR).is_dir():
        return path / SIMULATION_DIR
    return path


def _check_file(sim: Path, rel: str, entry: Any, report: ValidationReport) -> Any:
    """Check one file; returns its ParquetFile metadata table name pair or None."""
    path = sim / rel
    if not path.exists():
        report.add(rel, "listed in the manifest but missing")
        return None
    size, digest = xxh64_file(path)
    if size != entry.bytes:
        report.add(rel, f"size {size} differs from the manifest ({entry.bytes})")
    if digest != entry.xxhash64:
        report.add(rel, f"xxhash64 {digest} differs from the manifest ({entry.xxhash64})")
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except Exception as exc:  # noqa: BLE001 - any unreadable footer is a problem
        report.add(rel, f"Parquet footer does not read: {exc}")
        return None
    if pf.metadata.num_rows != entry.rows:
        report.add(rel, f"{pf.metadata.num_rows} rows where the manifest records {entry.rows}")
    parsed = parse_partition_file(rel)
    tname = _DIR_TO_TABLE.get(parsed[0] if parsed else rel)
    if tname is None:
        report.add(rel, "not a file of any spec table")
        return None
    expected = TABLES[tname].arrow_schema
    if schema.names != expected.names:
        report.add(rel, f"columns {schema.names} differ from the spec's {expected.names}")
    else:
        for f, e in zip(schema, expected):
            if f.type != e.type or f.nullable != e.nullable:
                report.add(rel, f"column {f.name!r} is {f.type}{'' if f.nullable else ' not null'}, "
                                f"the spec says {e.type}{'' if e.nullable else ' not null'}")
    return pf


def _row_consistency(sim: Path, manifest: SimulationManifest, pfs: dict[str, Any], report: ValidationReport) -> None:
    per_scenario: dict[int, dict[str, str]] = defaultdict(dict)
    for rel in pfs:
        parsed = parse_partition_file(rel)
        if parsed and parsed[0] in _DIR_TO_TABLE:
            per_scenario[parsed[1]][_DIR_TO_TABLE[parsed[0]]] = rel
    entity_counts: dict[str, set[int]] = defaultdict(set)
    for sid in sorted(per_scenario):
        files = per_scenario[sid]
        report.scenarios_checked += 1
        costs_rel = files.get("costs")
        if costs_rel is None:
            continue
        try:
            costs = pq.read_table(sim / costs_rel, columns=["stage_id", "block_id"])
        except Exception:  # noqa: BLE001, S112 - already reported by _check_file
            continue
        n_stages = len(pc.unique(costs["stage_id"]))
        n_blocks = costs.num_rows - costs["block_id"].null_count
        stage_rows = costs["block_id"].null_count
        if stage_rows != n_stages:
            report.add(costs_rel, f"{stage_rows} stage-level rows for {n_stages} stages (SPEC §4: one per stage)")
        stage_level = manifest.detail == "stage"
        for tname, rel in files.items():
            t = TABLES[tname]
            if tname in ("costs", "generic_violations") or t.entity_column is None:
                continue
            try:
                cols = [t.entity_column] + (["lag_index"] if tname == "inflow_lags" else [])
                tbl = pq.read_table(sim / rel, columns=cols)
            except Exception:  # noqa: BLE001, S112 - unreadable file: already reported by _check_file
                continue
            ents = pc.unique(tbl[t.entity_column])
            n_ent = len(ents)
            entity_counts[tname].add(n_ent)
            if tname == "inflow_lags":
                g = tbl.group_by(t.entity_column).aggregate([("lag_index", "max")])
                want = n_stages * int(pc.sum(g["lag_index_max"]).as_py() or 0)
                formula = "T × sum of AR orders"
            elif stage_level:
                want, formula = n_stages * n_ent, "T × entities (stage detail)"
            else:
                want, formula = n_blocks * n_ent, "blocks × entities"
            if tbl.num_rows != want:
                report.add(rel, f"{tbl.num_rows} rows where {formula} = {want} (scenario {sid})")
        expected_tables = set(manifest.tables)
        missing = expected_tables - set(files)
        if missing and f"scenario_id={sid:04d}/" in manifest.partitions_written:
            report.add(f"scenario_id={sid:04d}/", f"partition lacks tables {sorted(missing)}")
    for tname, counts in entity_counts.items():
        if len(counts) > 1:
            report.add(TABLES[tname].directory + "/", f"entity count differs across scenarios: {sorted(counts)}")


def validate_simulation(path: str | os.PathLike[str]) -> ValidationReport:
    """Validate ``path`` (the output root or its ``simulation/`` directory).

    Returns
    -------
    ValidationReport
        ``valid`` is True when no problem was found.
    """
    sim = _sim_dir(Path(path))
    report = ValidationReport(str(sim))
    if not sim.is_dir():
        report.add(str(sim), "directory does not exist")
        return report
    try:
        manifest = read_simulation_manifest(sim / MANIFEST_NAME)
    except (ManifestError, OutputError) as exc:
        report.add(MANIFEST_NAME, str(exc))
        return report
    report.status = manifest.status
    success = (sim / SUCCESS_NAME).exists()
    if manifest.status == "complete" and not success:
        report.add(SUCCESS_NAME, "missing although the manifest is complete")
    if manifest.status != "complete":
        report.add(MANIFEST_NAME, f"status is {manifest.status!r}, not complete")
        if success:
            report.add(SUCCESS_NAME, f"present although the manifest status is {manifest.status!r}")
    if manifest.scenarios_completed != (len(manifest.partitions_written) if manifest.tables
                                        else manifest.scenarios_completed):
        report.add(MANIFEST_NAME, "scenarios.completed differs from the number of partitions_written")
    if manifest.status == "complete" and manifest.scenarios_completed != manifest.scenarios_total:
        report.add(MANIFEST_NAME, "complete but scenarios.completed != scenarios.total")
    want = combined_checksum({p: e.xxhash64 for p, e in manifest.files.items()})
    if manifest.checksum_value != want:
        report.add(MANIFEST_NAME, f"checksum.value {manifest.checksum_value} does not match its files ({want})")
    pfs: dict[str, Any] = {}
    for rel in sorted(manifest.files):
        report.files_checked += 1
        pf = _check_file(sim, rel, manifest.files[rel], report)
        if pf is not None:
            pfs[rel] = pf
    for part in manifest.partitions_written:
        sid = int(part.removeprefix("scenario_id=").rstrip("/"))
        for tname in manifest.tables:
            rel = f"{TABLES[tname].directory}/scenario_id={sid:04d}/data.parquet"
            if rel not in manifest.files:
                report.add(rel, f"partition {part} is listed as written but this file is not in the manifest")
    for dirpath, _dirs, names in os.walk(sim):
        for name in names:
            rel = Path(dirpath, name).relative_to(sim).as_posix()
            if is_temp_name(name):
                report.add(rel, "stray temp file (an interrupted write; --resume removes it)")
            elif name.endswith(".parquet") and rel not in manifest.files:
                report.add(rel, "data file not listed in the manifest")
    _row_consistency(sim, manifest, pfs, report)
    return report


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``cobre-mpi-io validate``."""
    p.add_argument("directory", type=Path, help="output directory (or its simulation/ subdirectory)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def validate_main(args: argparse.Namespace) -> int:
    """Run ``validate``; exit code 0 when valid, 1 otherwise."""
    report = validate_simulation(args.directory)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for p in report.problems:
            print(str(p))
        verdict = "valid" if report.valid else f"INVALID ({len(report.problems)} problem(s))"
        print(f"{report.directory}: {verdict}; {report.files_checked} files, "
              f"{report.scenarios_checked} scenarios checked, status {report.status}")
    return 0 if report.valid else 1
