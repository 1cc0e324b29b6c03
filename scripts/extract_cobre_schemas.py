"""Regenerate cobre_mpi_io/_cobre_schemas.py from trees the real Cobre solver wrote.

Usage (development only; the package never reads these trees)::

    python scripts/extract_cobre_schemas.py RUN_0_5_1 RUN_0_18 > cobre_mpi_io/_cobre_schemas.py

Column names, order, unit and description come from each tree's
``training/dictionaries/variables.csv``; Arrow types and nullability of the
tables the tree holds come from the Parquet files themselves (they win over
variables.csv where both exist).  ``bounds`` (not in variables.csv) comes
from ``bounds.parquet``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_CODE = {pa.int8(): "i8", pa.int32(): "i32", pa.int64(): "i64", pa.float64(): "f64", pa.bool_(): "bool",
         pa.string(): "str", pa.uint32(): "u32", pa.uint64(): "u64", pa.date32(): "date32"}
_CSV_CODE = {"string": "str"}
# table -> path in the tree (simulation entity tables: simulation/<table>/)
_PATHS = {
    "convergence": "training/convergence.parquet",
    "iteration_timing": "training/timing/iterations.parquet",
    "rank_timing": "training/timing/mpi_ranks.parquet",
    "solver_iterations": "training/solver/iterations.parquet",
    "retry_histogram": "training/solver/retry_histogram.parquet",
    "paths": "simulation/paths.parquet",
    "scenario_summary": "simulation/scenario_summary.parquet",
    "bounds": "training/dictionaries/bounds.parquet",
}
_SKIP = {"cut_selection", "in_transit", "transit_seed"}  # never written in the sample runs: path unknown


def _path(name: str) -> str:
    return _PATHS.get(name, f"simulation/{name}/")


def _sample(root: Path, path: str) -> Path | None:
    p = root / path
    if path.endswith("/"):
        files = sorted(p.glob("scenario_id=*/data.parquet"))
        return files[0] if files else None
    return p if p.is_file() else None


def extract(root: Path) -> dict[str, tuple[str, list[tuple[str, str, bool, str, str]]]]:
    tables: dict[str, tuple[str, list[tuple[str, str, bool, str, str]]]] = {}
    with open(root / "training/dictionaries/variables.csv", newline="") as f:
        for row in csv.DictReader(f):
            name = row["file"]
            if name in _SKIP:
                continue
            tables.setdefault(name, (_path(name), []))[1].append(
                (row["column"], _CSV_CODE.get(row["type"], row["type"]), row["nullable"] == "true",
                 row["unit"], row["description"]))
    tables["bounds"] = (_PATHS["bounds"], [])
    for name, (path, cols) in tables.items():
        sample = _sample(root, path)
        if sample is None:
            continue
        schema = pq.read_schema(sample)
        by_name = {c[0]: c for c in cols}
        new = []
        for fld in schema:
            if fld.name not in by_name and name != "bounds":
                raise SystemExit(f"{sample}: column {fld.name} not in variables.csv")
            unit, desc = by_name[fld.name][3:] if fld.name in by_name else ("", "")
            new.append((fld.name, _CODE[fld.type], fld.nullable, unit, desc))
        if name != "bounds" and [c[0] for c in new] != [c[0] for c in cols]:
            raise SystemExit(f"{sample}: columns differ from variables.csv")
        cols[:] = new
    return tables


def main() -> None:
    out = ['"""Column sets of the tables the real Cobre solver writes (generated; do not edit).',
           "",
           "Regenerate with ``scripts/extract_cobre_schemas.py`` from trees written by",
           "cobre-python 0.5.1 and 0.18.0 (``cobre.run.run(case, output_dir=...)``):",
           "names, order, unit and description from their ``variables.csv``, Arrow type",
           "codes and nullability from their Parquet files.",
           '"""', "", "from typing import Final", "", "# format -> table -> (path, [(column, type, nullable, unit, description)])",
           "COBRE_TABLES: Final[dict[str, dict[str, tuple[str, list[tuple[str, str, bool, str, str]]]]]] = {"]
    for fmt, root in (("cobre-0.5", Path(sys.argv[1])), ("cobre-0.18", Path(sys.argv[2]))):
        out.append(f"    {fmt!r}: {{")
        for name, (path, cols) in extract(root).items():
            out.append(f"        {name!r}: ({path!r}, [")
            out.extend(f"            {c!r}," for c in cols)
            out.append("        ]),")
        out.append("    },")
    out.append("}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
