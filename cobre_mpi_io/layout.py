"""Where every file lives: pure path builders for the output tree (SPEC §2).

Any process can compute the path of any file from the table name and the
scenario id, without coordination.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from .schemas import table

__all__ = [
    "DATA_FILE",
    "MANIFEST_NAME",
    "POLICY_DIR",
    "SIMULATION_DIR",
    "SUCCESS_NAME",
    "TRAINING_DIR",
    "parse_partition_file",
    "partition_dir",
    "partition_file",
    "simulation_dir",
]

SIMULATION_DIR: Final = "simulation"
TRAINING_DIR: Final = "training"
POLICY_DIR: Final = "policy"
MANIFEST_NAME: Final = "_manifest.json"
SUCCESS_NAME: Final = "_SUCCESS"
DATA_FILE: Final = "data.parquet"

_PARTITION_RE: Final = re.compile(r"^(?P<dir>.+)/scenario_id=(?P<sid>\d{4,})/data\.parquet$")


def simulation_dir(output_dir: str | Path) -> Path:
    """``OUT/simulation``."""
    return Path(output_dir) / SIMULATION_DIR


def partition_dir(table_name: str, scenario_id: int) -> str:
    """``{table dir}/scenario_id={id:04d}``, relative to ``simulation/`` (POSIX)."""
    return f"{table(table_name).directory}/scenario_id={scenario_id:04d}"


def partition_file(table_name: str, scenario_id: int) -> str:
    """``{table dir}/scenario_id={id:04d}/data.parquet``, relative to ``simulation/``."""
    return f"{partition_dir(table_name, scenario_id)}/{DATA_FILE}"


def parse_partition_file(relpath: str) -> tuple[str, int] | None:
    """Inverse of :func:`partition_file`: ``(table directory, scenario id)`` or None."""
    m = _PARTITION_RE.match(relpath)
    if m is None:
        return None
    return m.group("dir"), int(m.group("sid"))
