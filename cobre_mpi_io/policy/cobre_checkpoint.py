"""Policy checkpoints in format ``cobre-0.18``: the rotation beside the policy directory Cobre reads.

Cobre 0.18 refuses a policy directory holding anything but ``manifest.bin``,
``cuts/``, ``basis/`` and ``states/``, so this package's checkpoint rotation
cannot live inside it.  Each checkpoint is ``OUT/policy_checkpoints/iter_NNNNNN/``
holding the Cobre policy directory ``policy/`` and this package's
``metadata.json`` (the metadata, ``"format": "cobre-0.18"`` and every file's
size and xxhash64); ``OUT/policy`` is a symlink to the newest one's
``policy/``, switched atomically (a new link renamed over the old one), so
Cobre always reads one complete policy.  The last ``keep`` checkpoints are
retained.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import ensure_dir, fsync_dir, write_json_atomic
from ..documents import check_document, read_json_document
from ..errors import IoError, ManifestError, SchemaError
from ..journal import active_journal, record_removed
from ..layout import CHECKPOINT_RE, COBRE_CHECKPOINTS_DIR, checkpoint_name
from ..manifest import utc_now
from .formats import cobre_manifest_for, write_cobre_policy
from .mapped import file_digest
from .publish import _check_policy, _remove_tree, _replace_symlink
from .records import (
    METADATA_SCHEMA,
    CheckpointRecord,
    FileDigest,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
    file_digests,
)

__all__ = ["COBRE_CHECKPOINTS_DIR", "cobre_checkpoint_digests", "write_cobre_on_root"]

POLICY_SUBDIR = "policy"


def write_cobre_on_root(policy_dir: Path, stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                        metadata: PolicyMetadata, stage_states: Sequence[StageStates] | None,
                        stage_vertices: Sequence[StageVertices] | None,
                        state_dictionary: Mapping[str, Any] | None, keep: int, durable: bool,
                        cobre_fields: Mapping[str, Any]) -> CheckpointRecord:
    """Write and publish one ``cobre-0.18`` checkpoint; rank 0 of :func:`~.checkpoint.write_policy_checkpoint`.

    Parameters
    ----------
    policy_dir : Path
        ``OUT/policy``: created as (or switched, being) a symlink into ``OUT/policy_checkpoints/``.
    stage_cuts, stage_bases, metadata
        As :func:`~.checkpoint.write_policy_checkpoint`; cuts with the Cobre >= 0.14 fields.
    stage_states, stage_vertices, state_dictionary
        Must be empty: a Cobre policy directory has no place for them.
    keep : int
        Checkpoints retained (0: all).
    durable : bool
        fsync files and directories.
    cobre_fields : mapping
        ``manifest.bin`` fields beyond ``metadata`` (see :func:`~.formats.cobre_manifest_for`), and
        optionally ``stages``: per stage id, the Cobre fields to give cuts that lack them
        (:meth:`~.convert.CobreFields.as_mapping` of a case).

    Returns
    -------
    CheckpointRecord

    Raises
    ------
    SchemaError
        States, vertices or a state dictionary given; stages inconsistent; Cobre fields missing.
    IoError
        ``policy_dir`` is a real directory (a policy Cobre wrote), or a write failed.
    """
    if stage_states or stage_vertices or state_dictionary is not None:
        raise SchemaError(str(policy_dir), "format", "a Cobre 0.18 policy directory holds no visited states, "
                          "vertices or state dictionary this package writes; give only cuts and bases")
    _check_policy(stage_cuts, stage_bases, metadata, None, None)
    if policy_dir.exists() and not policy_dir.is_symlink():
        raise IoError(policy_dir, "exists", "is a directory, not this package's link to its newest "
                      f"{COBRE_CHECKPOINTS_DIR}/ entry: move it away (a policy Cobre wrote?)")
    root = ensure_dir(policy_dir.parent / COBRE_CHECKPOINTS_DIR)
    for stale in root.iterdir():  # leftovers of interrupted checkpoints
        if stale.name.startswith("."):
            _remove_tree(stale)
    if not metadata.created_at:
        metadata = dataclasses.replace(metadata, created_at=utc_now())
    metadata = dataclasses.replace(metadata, value_scale=1.0)  # Cobre >= 0.14 stores costs
    name = checkpoint_name(metadata.completed_iterations)
    final = root / name
    k = 1
    while final.exists():
        final = root / f"{name}-{k}"
        k += 1
    tmp = root / f".{final.name}.{secrets.token_hex(6)}.tmp"
    try:
        ensure_dir(tmp)
        per_stage = {i: st for i, st in enumerate(cobre_fields.get("stages") or ())}
        if per_stage:  # fill what the cuts lack from the case's fields (CobreFields.as_mapping())
            stage_cuts = [dataclasses.replace(sc, **{k: v for k, v in per_stage[int(sc.stage_id)].items()
                                                     if getattr(sc, k) is None})
                          if sc.missing_cobre_fields() and int(sc.stage_id) in per_stage else sc
                          for sc in stage_cuts]
        manifest = cobre_manifest_for(metadata, stage_cuts, cobre_fields)
        written = write_cobre_policy(tmp / POLICY_SUBDIR, stage_cuts, stage_bases, manifest, durable=durable)
        files = {f"{POLICY_SUBDIR}/{rel}": n for rel, n in written.items()}
        digests = {rel: file_digest(tmp / rel) for rel in files}
        doc = check_document(METADATA_SCHEMA, metadata.to_dict(), "policy_checkpoints/metadata.json")
        doc["format"] = "cobre-0.18"
        doc["files"] = {rel: digests[rel].to_dict() for rel in sorted(digests)}
        files["metadata.json"] = write_json_atomic(tmp / "metadata.json", doc, entity="policy/metadata.json")
        fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            raise IoError.from_os_error(final, exc) from exc
        fsync_dir(root)
        j = active_journal(final)  # journaled before it is published
        if j is not None:
            for rel in sorted(files):
                dg = digests[rel] if rel in digests else file_digest(final / rel)  # metadata.json: a few KB
                j.record(final / rel, dg.bytes, dg.xxhash64)
            j.flush(sync=True)
        _replace_symlink(policy_dir, f"{COBRE_CHECKPOINTS_DIR}/{final.name}/{POLICY_SUBDIR}")
        fsync_dir(policy_dir.parent)
    finally:
        if tmp.exists():
            _remove_tree(tmp)
    removed = []
    found = sorted((int(m.group(1)), int(m.group(2) or 0), p) for p in root.iterdir()
                   if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir())
    for _it, _k, p in found[:-keep] if keep > 0 else []:
        if p.resolve() != final.resolve():
            gone = [Path(d) / f for d, _dirs, names in os.walk(p) for f in names]
            _remove_tree(p)
            record_removed(gone)
            removed.append(str(p))
    return CheckpointRecord(policy_dir=str(policy_dir), checkpoint_dir=str(final),
                            iteration=int(metadata.completed_iterations), files=files, removed=tuple(removed),
                            xxhash64={rel: dg.xxhash64 for rel, dg in digests.items()})


def cobre_checkpoint_digests(policy: Path) -> dict[str, FileDigest] | None:
    """The digests our ``metadata.json`` records for a ``cobre-0.18`` checkpoint's policy directory.

    ``policy`` is ``OUT/policy`` (a link to ``policy_checkpoints/iter_N/policy``) or that directory;
    None when it is not one of ours (a policy Cobre wrote records no hashes).
    """
    real = policy.resolve()
    meta = real.parent / "metadata.json"
    if real.name != POLICY_SUBDIR or real.parent.parent.name != COBRE_CHECKPOINTS_DIR or not meta.is_file():
        return None
    doc = read_json_document(meta, str(meta))
    recorded = file_digests(doc, str(meta))
    if recorded is None:
        raise ManifestError(str(meta), "records no file hashes (files)")
    return {rel.removeprefix(f"{POLICY_SUBDIR}/"): dg for rel, dg in recorded.items()}
