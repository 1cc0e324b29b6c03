"""Publishing a checkpoint: atomic symlink switches, tree removal, and the consistency of what is given."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import IoError, SchemaError
from ..layout import LATEST_LINK, LINKED_FILES, stage_file_name
from .records import STAGE_SUBDIRS, PolicyMetadata, StageBasis, StageCuts, StageStates, StageVertices, _u32

__all__: list[str] = []


def _replace_symlink(link: Path, target: str) -> None:
    """Atomically point ``link`` at ``target`` (new symlink renamed over the old one)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}.tmp")
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise IoError.from_os_error(link, exc) from exc


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _check_policy(stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                  metadata: PolicyMetadata, stage_states: Sequence[StageStates] | None,
                  stage_vertices: Sequence[StageVertices] | None) -> None:
    file = "policy/metadata.json"
    if len(stage_cuts) != metadata.num_stages:
        raise SchemaError(file, "num_stages", f"{len(stage_cuts)} stages of cuts, metadata says "
                          f"{metadata.num_stages}")
    groups: list[tuple[str, Sequence[Any]]] = [("cuts", stage_cuts), ("basis", stage_bases),
                                               ("states", stage_states or ()),
                                               ("vertices", stage_vertices or ())]
    cut_ids = set()
    for kind, items in groups:
        seen: set[int] = set()
        for it in items:
            sid = _u32(it.stage_id, kind, "stage_id")
            if sid in seen:
                raise SchemaError(f"{kind}/{stage_file_name(sid)}", "stage_id", "stage given twice")
            seen.add(sid)
            dim = getattr(it, "state_dimension", None)
            if dim is not None and int(dim) != metadata.state_dimension:
                raise SchemaError(f"{kind}/{stage_file_name(sid)}", "state_dimension",
                                  f"{dim} != metadata state_dimension {metadata.state_dimension}")
        if kind == "cuts":
            cut_ids = seen
        elif not seen <= cut_ids:
            extra = min(seen - cut_ids)
            raise SchemaError(f"{kind}/{stage_file_name(extra)}", "stage_id", "no cuts for this stage")


def _ensure_fixed_links(policy_dir: Path, published: Path) -> None:
    """Create ``policy/{cuts,...,metadata.json}`` -> ``latest/...`` (they never change).

    ``state_dictionary.json`` is linked only while the published checkpoint has one.
    """
    for name in STAGE_SUBDIRS + LINKED_FILES:
        link = policy_dir / name
        want = f"{LATEST_LINK}/{name}"
        if not (published / name).exists():
            if link.is_symlink():
                link.unlink()
            continue
        if link.is_symlink() and os.readlink(link) == want:
            continue
        if link.exists() and not link.is_symlink():
            raise IoError(link, "exists", "expected a symlink into latest/; remove the stale entry")
        _replace_symlink(link, want)


def _files_below(directory: Path) -> list[Path]:
    return [Path(d) / f for d, _dirs, names in os.walk(directory) for f in names]
