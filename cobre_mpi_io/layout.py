"""Where every file lives: path builders for the whole output tree (SPEC §2): simulation partitions,
training, policy checkpoints and markers.

Any process can compute the path of any file from the table name and the
scenario id, without coordination.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from .errors import ManifestError
from .schemas import DEFAULT_FORMAT, check_format, table

__all__ = [
    "CLAIM_NAME",
    "COBRE_CHECKPOINTS_DIR",
    "DATA_FILE",
    "DICTIONARY_FILES",
    "IDENTITY_NAME",
    "JOURNAL_DIR",
    "MANIFEST_NAME",
    "MANIFEST_RESERVE_NAME",
    "POLICY_DIR",
    "SIMULATION_DIR",
    "STAGE_SUBDIRS",
    "SUCCESS_NAME",
    "TRAINING_DIR",
    "checkpoint_name",
    "dictionary_files",
    "parse_partition_file",
    "partition_dir",
    "partition_file",
    "policy_cut_files",
    "resolve_checkpoint_dir",
    "simulation_dir",
    "stage_file_name",
    "stage_files",
]

SIMULATION_DIR: Final = "simulation"
TRAINING_DIR: Final = "training"
POLICY_DIR: Final = "policy"
MANIFEST_NAME: Final = "_manifest.json"
SUCCESS_NAME: Final = "_SUCCESS"
CLAIM_NAME: Final = "_claim.json"
"""At the output root while a run holds the directory (see :mod:`cobre_mpi_io.claim`)."""
IDENTITY_NAME: Final = "identity.json"
"""``OUT/_journal/identity.json``: the run's full identity, recorded with the claim before any data."""
MANIFEST_RESERVE_NAME: Final = "._manifest.json.reserve.tmp"
"""Disk space held for the manifest during a run (a temp name: readers and validate skip it)."""
DATA_FILE: Final = "data.parquet"
JOURNAL_DIR: Final = "_journal"
"""``OUT/_journal``: the run's identity (``identity.json``) and per-rank file journals (``files/``)."""

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


# ------------------------------------------------------------------ training
DICTIONARY_FILES: Final = ("codes.json", "bounds.parquet", "state_dictionary.json", "variables.csv",
                           "entities.csv")
"""The files of ``training/dictionaries/`` (SPEC §8)."""


def dictionary_files(fmt: str = DEFAULT_FORMAT) -> tuple[str, ...]:
    """The files of ``training/dictionaries/`` in format ``fmt`` (no ``state_dictionary.json`` in Cobre's)."""
    check_format(fmt)
    return DICTIONARY_FILES if fmt == DEFAULT_FORMAT else tuple(f for f in DICTIONARY_FILES
                                                                 if f != "state_dictionary.json")


# ------------------------------------------------------------------ policy
COBRE_CHECKPOINTS_DIR: Final = "policy_checkpoints"
"""``OUT/policy_checkpoints/``: the rotation of ``cobre-0.18`` checkpoints, beside ``OUT/policy``."""
CHECKPOINTS_DIR: Final = "checkpoints"
LATEST_LINK: Final = "latest"
LINKED_FILES: Final = ("metadata.json", "state_dictionary.json")
CHECKPOINT_RE: Final = re.compile(r"^iter_(\d+)(?:-(\d+))?$")
STAGE_FILE_RE: Final = re.compile(r"^stage_(\d+)\.bin$")
STAGE_SUBDIRS: Final = ("cuts", "states", "vertices", "basis")
"""The stage-file directories of a checkpoint (SPEC §2), in the order they are written."""


def stage_file_name(stage_id: int) -> str:
    """``stage_{stage_id:03d}.bin``, the name of a stage file (SPEC §2)."""
    return f"stage_{int(stage_id):03d}.bin"



def checkpoint_name(iteration: int) -> str:
    """``iter_{iteration:06d}``, the directory name of a checkpoint under ``policy/checkpoints``."""
    return f"iter_{int(iteration):06d}"

def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory ``path`` designates.

    ``path`` may be a ``policy/`` directory (its ``latest`` pointer is
    followed) or a checkpoint directory itself.

    Raises
    ------
    ManifestError
        Neither a ``latest`` pointer nor a ``metadata.json`` is found.
    """
    p = Path(path)
    latest = p / LATEST_LINK
    if latest.is_symlink() or latest.exists():
        if not latest.exists():
            raise ManifestError(str(latest), "the latest pointer is dangling")
        return latest.resolve()
    if (p / "metadata.json").is_file():
        return p.resolve()
    raise ManifestError(str(p), "no policy checkpoint here (no latest pointer, no metadata.json)")

def stage_files(directory: Path) -> list[tuple[int, Path]]:
    """``(stage id, path)`` of the ``stage_NNN.bin`` files in ``directory``, in stage order."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), directory / name) for name in os.listdir(directory)
             if (m := STAGE_FILE_RE.match(name))]
    return sorted(found)

def policy_cut_files(policy_dir: str | os.PathLike[str] | None) -> list[Path]:
    """``cuts/stage_*.bin`` of the checkpoint ``policy_dir`` designates, in stage order.

    The SHA-256 of their concatenated bytes is ``metadata.json``'s
    ``policy_hash`` (SPEC §7).  Paths are resolved (they do not change if
    ``latest`` moves while they are read).  ``[]`` when ``policy_dir`` is
    None or holds no cut files.
    """
    if policy_dir is None:
        return []
    try:
        directory = resolve_checkpoint_dir(policy_dir)
    except ManifestError:  # no checkpoint pointer: a plain directory of stage files, if any
        directory = Path(policy_dir).resolve()
    return [p for _sid, p in stage_files(directory / "cuts")]