"""Planning ``validate`` for ``policy/``: ``latest`` and the fixed links, every retained checkpoint, the stage-file tasks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..documents import read_json_document
from ..hashing import xxh64_hex
from ..layout import (
    CHECKPOINT_RE,
    CHECKPOINTS_DIR,
    LATEST_LINK,
    LINKED_FILES,
    POLICY_DIR,
    STAGE_FILE_RE,
    STAGE_SUBDIRS,
    TRAINING_DIR,
    stage_file_name,
)
from ..policy.metadata import PolicyMetadata
from .files import Task
from .plan import DICTIONARIES, Plan
from .tree import not_regular, temp_or_unexpected, walk

__all__ = ["plan_policy"]


def plan_policy(pol: Path, plan: Plan) -> None:
    """Plan ``policy/``: ``latest``, the fixed links, every checkpoint, one task per stage file."""
    p = POLICY_DIR
    latest = pol / LATEST_LINK
    latest_name: str | None = None
    if not latest.is_symlink():
        plan.add(p, LATEST_LINK, "missing: no published checkpoint" if not latest.exists()
                 else "not a symbolic link to a checkpoint")
    else:
        target = os.readlink(latest)
        m = re.fullmatch(rf"{CHECKPOINTS_DIR}/([^/]+)", target)
        if m is None or CHECKPOINT_RE.match(m.group(1)) is None:
            plan.add(p, LATEST_LINK, f"points to {target!r}, not to {CHECKPOINTS_DIR}/iter_NNNNNN")
        elif not (pol / target).is_dir() or (pol / target).is_symlink():
            plan.add(p, LATEST_LINK, f"dangling: {target} is not a checkpoint directory")
        else:
            latest_name = m.group(1)
    plan.policy_latest = f"{CHECKPOINTS_DIR}/{latest_name}" if latest_name else None
    ckpts: list[str] = []

    def classify_top(rel: str, kind: str) -> tuple[bool, str | None]:
        name = rel.rsplit("/", 1)[-1]
        if rel == CHECKPOINTS_DIR and kind == "dir":
            return True, None
        if rel == LATEST_LINK:
            return False, None  # checked above
        if "/" in rel:  # inside checkpoints/
            if kind == "dir" and CHECKPOINT_RE.match(name):
                ckpts.append(rel)
                return False, None
            if name.startswith("."):
                return False, "stray temp directory (an interrupted checkpoint; the next checkpoint removes it)"
            return False, temp_or_unexpected(rel, kind)
        if name == "state_dictionary.json" and kind == "file":
            return False, None  # the dictionaries' copy (SPEC §8)
        if name in STAGE_SUBDIRS + LINKED_FILES:
            return False, f"expected a symbolic link to {LATEST_LINK}/{name}, found a {kind}"
        return False, temp_or_unexpected(rel, kind)

    def report_top(rel: str, msg: str) -> None:
        if rel == LATEST_LINK or (rel in STAGE_SUBDIRS + LINKED_FILES and msg.startswith("symbolic link")):
            return  # the expected links, checked below
        plan.add(p, rel, msg)

    files: list[str] = []
    walk(pol, classify_top, report_top, files)
    plan.seen.extend(f"{p}/{f}" for f in files)
    for name in STAGE_SUBDIRS + LINKED_FILES:
        link = pol / name
        want = f"{LATEST_LINK}/{name}"
        present_in_latest = latest_name is not None and (pol / CHECKPOINTS_DIR / latest_name / name).exists()
        if link.is_symlink():
            if os.readlink(link) != want:
                plan.add(p, name, f"points to {os.readlink(link)!r}, not to {want!r}")
            elif not link.exists():
                plan.add(p, name, f"dangling link into {LATEST_LINK}/")
        elif present_in_latest and not os.path.lexists(link):
            plan.add(p, name, f"missing: the link to {want} (the fixed path of SPEC §2)")
    copy, original = pol / "state_dictionary.json", pol.parent / TRAINING_DIR / DICTIONARIES / "state_dictionary.json"
    if copy.is_file() and not copy.is_symlink() and original.is_file() and not original.is_symlink():
        try:
            same = copy.read_bytes() == original.read_bytes()
        except OSError as exc:
            plan.add(p, copy.name, f"cannot be read: {exc}")
        else:
            if not same:
                plan.add(p, copy.name, f"differs from training/{DICTIONARIES}/state_dictionary.json (SPEC §8: "
                                       "the same file)")
    for rel in sorted(ckpts):
        _plan_checkpoint(pol, rel, plan)
    plan.checkpoints = len(ckpts)
    if plan.policy_latest is not None and plan.policy_latest in plan.policy_metas:
        meta = plan.policy_metas[plan.policy_latest]
        cut_files = tuple(f"{plan.policy_latest}/cuts/{stage_file_name(s)}" for s in range(meta.num_stages)
                          if (pol / plan.policy_latest / "cuts" / stage_file_name(s)).is_file())
        plan.tasks.append(Task("concat", p, plan.policy_latest + "/cuts", files=cut_files, keep=True))


def _recorded_files(raw: Any) -> dict[str, tuple[int | None, str]] | None:
    """``files`` of a checkpoint's metadata.json: path -> (bytes, xxhash64); None when it records none.

    Policy format 1.1.0 writes ``{"cuts/stage_000.bin": {"bytes": ..., "xxhash64": ...}, ...}``; a
    malformed entry is left to the metadata reader (it reports the document).
    """
    files = raw.get("files") if isinstance(raw, Mapping) else None
    if not isinstance(files, Mapping):
        return None
    out: dict[str, tuple[int | None, str]] = {}
    for rel, v in files.items():
        h = v.get("xxhash64") if isinstance(v, Mapping) else v
        n = v.get("bytes") if isinstance(v, Mapping) else None
        if isinstance(rel, str) and isinstance(h, str):
            out[rel] = (n if isinstance(n, int) and not isinstance(n, bool) else None, h)
    return out


def _plan_checkpoint(pol: Path, rel: str, plan: Plan) -> None:
    p = POLICY_DIR
    ckpt = pol / rel
    meta_rel = f"{rel}/metadata.json"
    why = not_regular(ckpt / "metadata.json")
    try:
        if why is not None:
            raise ValueError(why)
        raw = read_json_document(ckpt / "metadata.json", f"{p}/{meta_rel}")
        meta = PolicyMetadata.from_dict(raw, f"{p}/{meta_rel}")
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        plan.add(p, meta_rel, f"unreadable: {exc}")
        raw, meta = None, None
    recorded = _recorded_files(raw)
    stage_dirs: dict[str, set[int]] = {k: set() for k in STAGE_SUBDIRS}

    def classify(sub: str, kind: str) -> tuple[bool, str | None]:
        name = sub.rsplit("/", 1)[-1]
        if kind == "dir":
            if sub in STAGE_SUBDIRS:
                return True, None
            return False, temp_or_unexpected(sub, kind)
        if sub in ("metadata.json", "state_dictionary.json"):
            return False, None
        m = STAGE_FILE_RE.match(name)
        if "/" in sub and m and sub.split("/")[0] in STAGE_SUBDIRS and name == stage_file_name(int(m.group(1))):
            stage_dirs[sub.split("/")[0]].add(int(m.group(1)))
            return False, None
        return False, temp_or_unexpected(sub, kind)

    plan.walk(p, ckpt, classify, rel)
    if meta is None:
        return
    plan.policy_metas[rel] = meta
    md = plan.metadata
    if md is not None:
        for key in ("config_hash", "system_hash"):
            mine, theirs = getattr(meta, key), md.data_integrity.get(key)
            if mine and theirs and mine != theirs:
                plan.add(p, meta_rel, f"{key} {mine} differs from training/metadata.json's {theirs}")
    stages = set(range(meta.num_stages))
    missing = sorted(stages - stage_dirs["cuts"])
    if missing:
        plan.add(p, f"{rel}/cuts", f"no cut file for stage(s) {_ranges(missing)} of the {meta.num_stages} "
                                   "that metadata.json declares")
    for kind, ids in stage_dirs.items():
        extra = sorted(ids - stages)
        if extra:
            plan.add(p, f"{rel}/{kind}", f"stage file(s) {_ranges(extra)} beyond the {meta.num_stages} stages "
                                         "of metadata.json")
        for sid in sorted(ids):
            srel = f"{kind}/{stage_file_name(sid)}"
            size, digest = recorded.pop(srel, (None, None)) if recorded is not None else (None, None)
            if recorded is not None and digest is None:
                plan.add(p, f"{rel}/{srel}", "not recorded in metadata.json's files (a file this checkpoint "
                                             "did not write)")
            plan.tasks.append(Task("stage", p, f"{rel}/{srel}", size=size, xxhash64=digest, stage_id=sid,
                                   state_dimension=meta.state_dimension if kind != "basis" else -1,
                                   journal=plan.record(p, f"{rel}/{srel}"), deep=plan.deep))
    if recorded is None:
        return
    sd = recorded.pop("state_dictionary.json", None)
    if sd is not None and (ckpt / "state_dictionary.json").is_file():
        try:
            data = (ckpt / "state_dictionary.json").read_bytes()
        except OSError as exc:
            plan.add(p, f"{rel}/state_dictionary.json", f"cannot be read: {exc}")
        else:
            if (sd[0] is not None and len(data) != sd[0]) or xxh64_hex(data) != sd[1]:
                plan.add(p, f"{rel}/state_dictionary.json", "size or xxhash64 differs from metadata.json's files")
    elif sd is not None:
        plan.add(p, f"{rel}/state_dictionary.json", "recorded in metadata.json's files but missing")
    for srel in sorted(recorded):
        plan.add(p, f"{rel}/{srel}", "recorded in metadata.json's files but missing")


def _ranges(ids: Sequence[int]) -> str:
    out: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)
