"""The policy checkpoint protocol (SPEC §9): checkpoint directories, ``latest``, retention, periodic checkpoints.


In memory a stage is **columnar**: one NumPy array per field, the cut
coefficients one ``(n_cuts, state_dimension)`` array.  On disk each stage is
one FlatBuffer per file, schema ``cobre_mpi_io/fbs/policy.fbs`` (namespace
``cobre.policy``, fields in the corpus order, no file identifier)::

    <checkpoint>/cuts/stage_NNN.bin      root StageCuts
    <checkpoint>/states/stage_NNN.bin    root StageStates   (when given)
    <checkpoint>/vertices/stage_NNN.bin  root StageVertices (when given)
    <checkpoint>/basis/stage_NNN.bin     root StageBasis
    <checkpoint>/metadata.json           PolicyMetadata, for people to read
    <checkpoint>/state_dictionary.json   (when given)


``policy/checkpoints/``, fsynced, renamed to ``iter_NNNNNN`` and then
published by atomically replacing the symlink ``policy/latest`` (a new
symlink renamed over the old one).  ``policy/{cuts,states,vertices,basis,
metadata.json,state_dictionary.json}`` are fixed symlinks into ``latest``,
so the SPEC §2 paths (``OUT/policy/cuts/stage_000.bin``) always show one
complete checkpoint and switch as one.  A crash at any point leaves the
previous ``latest`` intact; stray temp directories are removed by the next
checkpoint.  The last ``keep`` (default 3) checkpoints are retained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from .. import mpi
from ..atomic import ensure_dir, fsync_dir, write_json_atomic
from ..claim import acquire_run
from ..documents import check_document, read_json_document
from ..errors import IoError, ManifestError, SchemaError
from ..identity import RunIdentity
from ..journal import active_journal, open_journal, read_journal, record_removed, verify_entry
from ..layout import (
    CHECKPOINT_RE,
    CHECKPOINTS_DIR,
    LATEST_LINK,
    TRAINING_DIR,
    checkpoint_name,
    resolve_checkpoint_dir,
    stage_file_name,
    stage_files,
)
from ..manifest import utc_now, withdraw_training_completion
from ..progress import format_bytes
from .codec import write_stage_basis, write_stage_cuts, write_stage_states, write_stage_vertices
from .decode import read_stage_basis, read_stage_cuts, read_stage_states, read_stage_vertices
from .formats import COBRE_MANIFEST, read_cobre_policy, restore_cobre_fields, scaling_report_value_scale
from .mapped import file_digest
from .publish import _check_policy, _ensure_fixed_links, _files_below, _remove_tree, _replace_symlink
from .records import (
    METADATA_SCHEMA,
    STAGE_SUBDIRS,
    CheckpointRecord,
    FileDigest,
    PolicyCheckpoint,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
    file_digests,
)

F64 = npt.NDArray[np.float64]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Whole checkpoints
# --------------------------------------------------------------------------


def list_checkpoints(policy_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints under ``policy_dir/checkpoints``, oldest iteration first."""
    root = Path(policy_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), int(m.group(2) or 0), p) for p in root.iterdir()
             if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _it, _k, p in sorted(found)]


def read_policy_checkpoint(
    path: str | os.PathLike[str],
    *,
    expected_state_dimension: int | None = None,
    expected_num_stages: int | None = None,
    config_hash: str | None = None,
    system_hash: str | None = None,
    verify: bool = True,
) -> PolicyCheckpoint:
    """Load a policy checkpoint, memory-mapped and zero-copy where possible.

    Not collective (any rank may read).  Every stage file is decoded with
    the checks of :mod:`cobre_mpi_io.policy.decode` (bounded by the file,
    the root table of the kind its directory says, the ``stage_id`` of its
    name, the checkpoint's ``state_dimension``, content that validates).

    Parameters
    ----------
    path : path-like
        ``OUT/policy`` (follows ``latest``) or a checkpoint directory.
    expected_state_dimension, expected_num_stages : int, optional
        The running system's values; a mismatch is a hard error.
    config_hash, system_hash : str, optional
        For a resume: must equal the hashes recorded in ``metadata.json``.
    verify : bool
        Check every file against the size and xxhash64 ``metadata.json``
        records (``files``), and that no file is missing or extra, before
        decoding it (default).  This reads every byte once: about 0.03 s
        per 250 MB production stage from the page cache here, at disk
        speed otherwise.  ``False`` is the trusted fast path: structural
        checks only, and only the pages actually used are read.  A Cobre
        solver checkpoint records no hashes and is read unverified.

    Returns
    -------
    PolicyCheckpoint
        Its ``format`` says what was read (``spec``, ``cobre-0.5``,
        ``cobre-0.18``; see :mod:`cobre_mpi_io.policy.formats`) and its
        ``value_scale`` the units of the cut values (None when not recorded).
        A Cobre >= 0.14 directory (``manifest.bin``) is read with
        :func:`~cobre_mpi_io.policy.formats.read_cobre_policy`; its
        ``config_hash``/``system_hash`` are empty (a resume check refuses it).

    Raises
    ------
    SchemaError
        State dimension or stage count differ from the expected values or
        between ``metadata.json`` and the stage files; a stage file holds
        another stage or content that does not validate.
    ManifestError
        Missing/corrupt ``metadata.json``, a config/system hash mismatch,
        or (``verify``) a file whose size or xxhash64 differs from the one
        recorded, a recorded file missing, a file not recorded, or no
        hashes recorded at all.
    SerializationError
        A stage file is not a valid FlatBuffer of its kind.
    IoError
        A file cannot be read.
    """
    if (Path(path) / COBRE_MANIFEST).is_file():
        from .cobre_checkpoint import cobre_checkpoint_digests

        cobre = read_cobre_policy(path, expected_state_dimension=expected_state_dimension,
                                  expected_num_stages=expected_num_stages,
                                  expected=cobre_checkpoint_digests(Path(path)) if verify else None)
        if config_hash is not None or system_hash is not None:
            raise ManifestError(str(path), "a Cobre >= 0.14 policy records no config_hash/system_hash: "
                                "cannot resume one of this package's runs from it")
        return cobre
    ckpt = resolve_checkpoint_dir(path)
    meta_path = ckpt / "metadata.json"
    doc = read_json_document(meta_path, str(meta_path))
    meta = PolicyMetadata.from_dict(doc, str(meta_path))
    recorded = file_digests(doc, str(meta_path))
    file = "policy/metadata.json"
    if expected_state_dimension is not None and meta.state_dimension != expected_state_dimension:
        raise SchemaError(file, "state_dimension",
                          f"checkpoint has {meta.state_dimension}, the system has {expected_state_dimension}")
    if expected_num_stages is not None and meta.num_stages != expected_num_stages:
        raise SchemaError(file, "num_stages",
                          f"checkpoint has {meta.num_stages} stages, the system has {expected_num_stages}")
    if config_hash is not None and meta.config_hash != config_hash:
        raise ManifestError("policy", f"config_hash {meta.config_hash!r} differs from {config_hash!r}: "
                            "cannot resume with a different configuration")
    if system_hash is not None and meta.system_hash != system_hash:
        raise ManifestError("policy", f"system_hash {meta.system_hash!r} differs from {system_hash!r}: "
                            "cannot resume with a different system")
    found = {sub: stage_files(ckpt / sub) for sub in STAGE_SUBDIRS}
    if len(found["cuts"]) != meta.num_stages:
        raise SchemaError("policy/cuts", "num_stages",
                          f"{len(found['cuts'])} stage files, metadata.json says {meta.num_stages}")
    cut_ids = {sid for sid, _p in found["cuts"]}
    for sub in STAGE_SUBDIRS[1:]:
        for sid, p in found[sub]:
            if sid not in cut_ids:
                raise SchemaError(f"{sub}/{p.name}", "stage_id", "no cuts file for this stage")
    sd_path = ckpt / "state_dictionary.json"
    expected = _expected_digests(meta_path, meta, recorded, found, sd_path) if verify else {}
    d = meta.state_dimension

    def exp(sub: str, p: Path) -> FileDigest | None:
        return expected.get(f"{sub}/{p.name}")

    cuts = [read_stage_cuts(p, stage_id=sid, state_dimension=d, expected=exp("cuts", p))
            for sid, p in found["cuts"]]
    states = [read_stage_states(p, stage_id=sid, state_dimension=d, expected=exp("states", p))
              for sid, p in found["states"]]
    vertices = [read_stage_vertices(p, stage_id=sid, state_dimension=d, expected=exp("vertices", p))
                for sid, p in found["vertices"]]
    bases = [read_stage_basis(p, stage_id=sid, expected=exp("basis", p)) for sid, p in found["basis"]]
    state_dictionary = None
    if sd_path.is_file():
        want = expected.get(sd_path.name)
        if want is not None and file_digest(sd_path) != want:
            raise ManifestError(str(sd_path), "size or xxhash64 differs from the one metadata.json records: "
                                "the file is corrupt")
        state_dictionary = read_json_document(sd_path, str(sd_path))
    cobre_own = not meta.version
    value_scale = scaling_report_value_scale(path) if cobre_own else meta.value_scale
    manifest = restore_cobre_fields(doc.get("cobre"), cuts, str(meta_path)) if not cobre_own else None
    return PolicyCheckpoint(metadata=meta, cuts=cuts, bases=bases, states=states, vertices=vertices,
                            state_dictionary=state_dictionary, path=ckpt, files=recorded or {},
                            format="cobre-0.5" if cobre_own else "spec", value_scale=value_scale,
                            cobre_manifest=manifest)


def _expected_digests(meta_path: Path, meta: PolicyMetadata, recorded: dict[str, FileDigest] | None,
                      found: Mapping[str, list[tuple[int, Path]]], sd_path: Path) -> dict[str, FileDigest]:
    """The digests to verify: exactly the files present, all recorded (ManifestError otherwise)."""
    if recorded is None:
        if not meta.version:  # the Cobre solver's own checkpoint: nothing recorded to check against
            return {}
        raise ManifestError(str(meta_path), "records no file hashes (files); read it with verify=False "
                            "to skip the check")
    present = {f"{sub}/{p.name}" for sub, items in found.items() for _sid, p in items}
    if sd_path.is_file():
        present.add(sd_path.name)
    for rel in sorted(set(recorded) - present):
        raise ManifestError(str(meta_path), f"records {rel}, which is missing")
    for rel in sorted(present - set(recorded)):
        raise ManifestError(str(meta_path), f"does not record {rel} (a stray or foreign file)")
    return recorded


def _write_checkpoint_dir(
    ckpt: Path,
    stage_cuts: Sequence[StageCuts],
    stage_bases: Sequence[StageBasis],
    metadata: PolicyMetadata,
    stage_states: Sequence[StageStates] | None,
    stage_vertices: Sequence[StageVertices] | None,
    state_dictionary: Mapping[str, Any] | None,
    durable: bool,
    check_finite: bool,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, FileDigest]]:
    """Write the checkpoint's files into ``ckpt``; returns their sizes and digests.

    ``extra``: more top-level keys of ``metadata.json`` (``cobre``: see
    :func:`~cobre_mpi_io.policy.convert.convert_policy`).

    Each file is hashed right after it is written (xxhash64,
    :func:`~cobre_mpi_io.policy.mapped.file_digest`: one pass over a
    read-only map of the page cache, no copy, about 30 ms per 250 MB stage;
    cheaper in CPU than hashing the ~30,000 streamed pieces one by one, and
    than a helper thread, measured); ``metadata.json``, written last,
    records them (``files``).
    """
    files: dict[str, int] = {}
    digests: dict[str, FileDigest] = {}
    meta_doc = check_document(METADATA_SCHEMA, metadata.to_dict(), "policy/metadata.json")
    meta_doc.update(extra or {})
    for sub in STAGE_SUBDIRS:
        ensure_dir(ckpt / sub)

    def done(rel: str, nbytes: int) -> None:
        files[rel] = nbytes
        digests[rel] = file_digest(ckpt / rel)
        if digests[rel].bytes != nbytes:
            raise IoError(ckpt / rel, "changed", f"{digests[rel].bytes} bytes on disk, {nbytes} written")

    for sc in stage_cuts:
        rel = f"cuts/{stage_file_name(sc.stage_id)}"
        done(rel, write_stage_cuts(ckpt / rel, sc, durable=durable, check_finite=check_finite))
    for st in stage_states or ():
        rel = f"states/{stage_file_name(st.stage_id)}"
        done(rel, write_stage_states(ckpt / rel, st, durable=durable))
    for vx in stage_vertices or ():
        rel = f"vertices/{stage_file_name(vx.stage_id)}"
        done(rel, write_stage_vertices(ckpt / rel, vx, durable=durable))
    for bs in stage_bases:
        rel = f"basis/{stage_file_name(bs.stage_id)}"
        done(rel, write_stage_basis(ckpt / rel, bs, durable=durable))
    if state_dictionary is not None:
        done("state_dictionary.json", write_json_atomic(ckpt / "state_dictionary.json", dict(state_dictionary),
                                                        entity="policy/state_dictionary.json"))
    meta_doc["files"] = {rel: digests[rel].to_dict() for rel in sorted(digests)}
    files["metadata.json"] = write_json_atomic(ckpt / "metadata.json", meta_doc, entity="policy/metadata.json")
    for sub in STAGE_SUBDIRS:
        fsync_dir(ckpt / sub)
    fsync_dir(ckpt)
    return files, digests


def _record_checkpoint(final: Path, files: Mapping[str, int], digests: Mapping[str, FileDigest]) -> None:
    """Record the renamed checkpoint's files in the run's journal (:mod:`cobre_mpi_io.journal`), synced."""
    j = active_journal(final)
    if j is None:
        return
    for rel in sorted(files):
        dg = digests[rel] if rel in digests else file_digest(final / rel)  # metadata.json: a few KB
        j.record(final / rel, dg.bytes, dg.xxhash64)
    j.flush(sync=True)


_INTACT: set[str] = set()  # checkpoints (real paths) this process wrote or found intact against the run journal


def _intact(checkpoint: Path) -> bool:
    """Whether an older checkpoint's files are the bytes the run journal records (True when none is recorded).

    A resumed run does not adopt an earlier attempt's checkpoint on trust: one whose files were damaged
    since (a FIFO, a flipped bit) is removed at the next publication instead of staying under ``_SUCCESS``.
    Each checkpoint is hashed at most once per process.
    """
    key = os.path.realpath(checkpoint)
    j = active_journal(checkpoint)
    if key in _INTACT or j is None:
        return True
    out = os.path.realpath(j.output_dir)
    prefix = Path(key).relative_to(out).as_posix() + "/"
    if all(verify_entry(out, e) for path, e in read_journal(out).items() if path.startswith(prefix)):
        _INTACT.add(key)
        return True
    return False


def _publish(policy_dir: Path, ckpt_tmp: Path, final: Path, keep: int,
             record: Callable[[], None] | None = None) -> tuple[str, ...]:
    """Rename the finished temp dir to ``final``, ``record`` it, move ``latest``, apply retention."""
    try:
        os.rename(ckpt_tmp, final)
    except OSError as exc:
        raise IoError.from_os_error(final, exc) from exc
    fsync_dir(final.parent)
    if record is not None:  # journaled before it is published
        record()
    _replace_symlink(policy_dir / LATEST_LINK, f"{CHECKPOINTS_DIR}/{final.name}")
    _ensure_fixed_links(policy_dir, final)
    fsync_dir(policy_dir)
    _INTACT.add(os.path.realpath(final))
    removed = []
    found = list_checkpoints(policy_dir)
    retired = set(found[:-keep]) if keep > 0 else set()
    for p in found:
        if p.resolve() != final.resolve() and (p in retired or not _intact(p)):
            gone = _files_below(p)
            _remove_tree(p)
            record_removed(gone)
            removed.append(str(p))
    return tuple(removed)


def write_policy_checkpoint(
    path: str | os.PathLike[str],
    stage_cuts: Sequence[StageCuts],
    stage_bases: Sequence[StageBasis],
    metadata: PolicyMetadata,
    stage_states: Sequence[StageStates] | None = None,
    stage_vertices: Sequence[StageVertices] | None = None,
    comm: mpi.Comm | None = None,
    *,
    state_dictionary: Mapping[str, Any] | None = None,
    keep: int = 3,
    durable: bool = True,
    check_finite: bool = False,
    format: str = "spec",
    cobre_fields: Mapping[str, Any] | None = None,
) -> CheckpointRecord:
    """Write a complete policy checkpoint and publish it atomically.

    Collective over ``comm``: every rank calls it; after a barrier rank 0
    alone validates and writes (the arguments of the other ranks are
    ignored, they may be None), then rank 0's outcome is broadcast and a
    final barrier is passed.  Every rank gets the same
    :class:`CheckpointRecord`, or the same error.

    The checkpoint goes to ``path/checkpoints/iter_NNNNNN`` (``NNNNNN`` =
    ``metadata.completed_iterations``) through a temp directory; then the
    ``path/latest`` symlink is switched atomically and the
    ``path/{cuts,states,vertices,basis,metadata.json,state_dictionary.json}``
    links (into ``latest``) are created if missing.  Only the newest
    ``keep`` checkpoints are retained.  A crash at any point leaves the
    previous checkpoint published and complete.

    Parameters
    ----------
    path : path-like
        The ``policy/`` directory of the output tree.
    stage_cuts : sequence of StageCuts
        One per stage, ``len == metadata.num_stages``.
    stage_bases : sequence of StageBasis
        Cached bases (any subset of the stages, possibly empty).
    metadata : PolicyMetadata
    stage_states, stage_vertices : sequences, optional
    comm : mpi4py communicator, optional
        Defaults to ``COMM_WORLD``.
    state_dictionary : mapping, optional
        Content of ``state_dictionary.json`` (SPEC §8).
    keep : int
        Checkpoints retained (default 3; 0 keeps all).
    durable : bool
        fsync files and directories (default).
    check_finite : bool
        Refuse NaN/inf intercepts and coefficients (see :func:`write_stage_cuts`).
    format : {"spec", "cobre-0.18"}
        ``spec`` (default): the layout above.  ``cobre-0.18``: ``path`` is
        exactly what Cobre 0.18 writes and warm-starts from (``manifest.bin``,
        ``cuts/NNN.bin``, ``basis/NNN.bin``; Cobre refuses anything else in
        it), so the rotation lives beside it: each checkpoint is
        ``OUT/policy_checkpoints/iter_NNNNNN/`` holding the Cobre policy
        directory ``policy/`` and our ``metadata.json`` (with the files'
        hashes), and ``OUT/policy`` is a symlink to the newest one's
        ``policy/``, switched atomically.  The cuts need the Cobre >= 0.14
        fields (:meth:`StageCuts.missing_cobre_fields`), values in cost
        units; states, vertices and the state dictionary have no place there
        and are refused.
    cobre_fields : mapping, optional
        ``cobre-0.18`` only: what ``manifest.bin`` records beyond ``metadata``
        (``graph_manifest``, ``season_manifest``, ``producer`` extras), as
        :func:`~cobre_mpi_io.policy.convert.cobre_fields_from_case` gives them
        (``.manifest``; ``.as_mapping()`` adds ``stages``, the per-stage
        Cobre fields given to cuts that lack them); default: the linear
        graph, no season manifest.

    Returns
    -------
    CheckpointRecord
        On every rank.

    Raises
    ------
    SchemaError, SerializationError, IoError
        On every rank, as raised on rank 0; the previous checkpoint stays
        published.
    ManifestError
        ``metadata`` holds a value ``metadata.json`` cannot (an integer
        outside uint32/uint64, a non-finite bound is written as null).
    """
    comm = mpi.resolve_comm(comm)
    policy_dir = Path(path)
    lease = acquire_run(comm, policy_dir.parent, resume=False)  # shares the run's claim (standalone: takes it)
    try:
        journal = open_journal(comm, policy_dir.parent)  # the checkpoint's files are recorded in the run's journal
    except BaseException:
        lease.release()
        raise
    try:
        if format == "cobre-0.18":
            from .cobre_checkpoint import write_cobre_on_root

            return mpi.run_on_root(comm, lambda: write_cobre_on_root(
                policy_dir, stage_cuts, stage_bases, metadata, stage_states, stage_vertices, state_dictionary,
                keep, durable, cobre_fields or {}), str(policy_dir))
        if format != "spec":
            raise SchemaError(str(policy_dir), "format", f"{format!r}: spec or cobre-0.18")
        return mpi.run_on_root(comm, lambda: _write_on_root(
            policy_dir, stage_cuts, stage_bases, metadata, stage_states, stage_vertices, state_dictionary,
            keep, durable, check_finite), str(policy_dir))
    finally:
        journal.release()
        lease.release()


def _write_on_root(policy_dir: Path, stage_cuts: Sequence[StageCuts], stage_bases: Sequence[StageBasis],
                   metadata: PolicyMetadata, stage_states: Sequence[StageStates] | None,
                   stage_vertices: Sequence[StageVertices] | None,
                   state_dictionary: Mapping[str, Any] | None, keep: int, durable: bool,
                   check_finite: bool) -> CheckpointRecord:
    _check_policy(stage_cuts, stage_bases, metadata, stage_states, stage_vertices)
    # the training run's marker and final status go before its policy changes (a resumed run that trains again)
    withdraw_training_completion(policy_dir.parent / TRAINING_DIR)
    root = ensure_dir(policy_dir / CHECKPOINTS_DIR)
    for stale in root.iterdir():  # leftovers of interrupted checkpoints
        if stale.name.startswith("."):
            _remove_tree(stale)
    if not metadata.created_at:
        metadata = dataclasses.replace(metadata, created_at=utc_now())
    name = checkpoint_name(metadata.completed_iterations)
    final = root / name
    k = 1
    while final.exists():  # same iteration checkpointed again: never touch the published one
        final = root / f"{name}-{k}"
        k += 1
    tmp = root / f".{final.name}.{secrets.token_hex(6)}.tmp"
    try:
        files, digests = _write_checkpoint_dir(tmp, stage_cuts, stage_bases, metadata, stage_states,
                                               stage_vertices, state_dictionary, durable, check_finite)
        removed = _publish(policy_dir, tmp, final, keep, record=lambda: _record_checkpoint(final, files, digests))
    finally:
        if tmp.exists():
            _remove_tree(tmp)
    return CheckpointRecord(policy_dir=str(policy_dir), checkpoint_dir=str(final),
                            iteration=int(metadata.completed_iterations), files=files, removed=removed,
                            xxhash64={rel: dg.xxhash64 for rel, dg in digests.items()})


# --------------------------------------------------------------------------
# Periodic checkpoints
# --------------------------------------------------------------------------

PolicyFn = Callable[[], Mapping[str, Any]]


class PolicyCheckpointer:
    """Periodic, on-signal and final policy checkpoints (SPEC §9).

    Collective over ``comm``: every rank makes the same calls in the same
    order.  ``after_iteration`` checkpoints every ``every`` iterations or
    when a SIGTERM/SIGINT has been received on any rank (the rank flags are
    agreed with an allreduce, so all ranks stop together); the caller then
    stops iterating (check :attr:`interrupted`) and reports the run as
    interrupted.  ``final`` checkpoints the last iteration unless it is
    already the published one.  Each checkpoint moves ``policy/latest``
    atomically and keeps the newest ``keep``; afterwards
    ``training_writer.checkpoint()`` is called on every rank (when given) so
    the training history is persisted at the same point.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory; checkpoints go to ``output_dir/policy``.
    every : int
        Checkpoint period in iterations (default 10; 0 disables periodic).
    keep : int
        Checkpoints retained (default 3).
    comm : communicator, optional
    training_writer : object, optional
        Anything with a ``checkpoint()`` method.
    install_signal_handlers : bool
        Catch SIGTERM/SIGINT (main thread only) until :meth:`close`; a
        second signal restores the previous handler and re-delivers.
    state_dictionary : mapping, optional
        Written as ``policy/state_dictionary.json`` with every checkpoint.
    durable : bool
        fsync (default).
    identity : RunIdentity, optional
        The run's identity, checked against what the output directory
        records (construction is collective: it takes or shares the run's
        claim, see :mod:`cobre_mpi_io.claim`).
    break_claim : bool
        Break a claim whose holder cannot be proved dead.
    format : {"spec", "cobre-0.18"}
        ``cobre-0.18``: ``output_dir/policy`` is a policy directory Cobre 0.18
        warm-starts from, the rotation lives in
        ``output_dir/policy_checkpoints/`` (see :func:`write_policy_checkpoint`).
    cobre_fields : mapping, optional
        ``cobre-0.18`` only: the ``manifest.bin`` fields beyond the metadata
        (see :func:`write_policy_checkpoint`).

    Examples
    --------
    >>> with PolicyCheckpointer(out, every=10) as ckpt:      # doctest: +SKIP
    ...     for it in range(1, max_iter + 1):
    ...         run_iteration(it)
    ...         ckpt.after_iteration(it, lambda: policy_kwargs(it))
    ...         if ckpt.interrupted:
    ...             break
    ...     ckpt.final(policy_kwargs(ckpt.last_completed_iteration))
    """

    def __init__(self, output_dir: str | os.PathLike[str], every: int = 10, keep: int = 3,
                 comm: mpi.Comm | None = None, training_writer: Any = None, install_signal_handlers: bool = True,
                 state_dictionary: Mapping[str, Any] | None = None, durable: bool = True,
                 identity: RunIdentity | None = None, break_claim: bool = False, format: str = "spec",
                 cobre_fields: Mapping[str, Any] | None = None) -> None:
        if format not in ("spec", "cobre-0.18"):
            raise SchemaError("policy checkpointer", "format", f"{format!r}: spec or cobre-0.18")
        if every < 0 or keep < 0:
            raise SchemaError("policy checkpointer", "every" if every < 0 else "keep", "must be >= 0")
        self.policy_dir = Path(output_dir) / "policy"
        self.every = int(every)
        self.keep = int(keep)
        self.comm = mpi.resolve_comm(comm)
        self._lease = acquire_run(self.comm, Path(output_dir), identity, break_claim=break_claim,
                                  resume=False)  # standalone: a finished run is refused
        self.training_writer = training_writer
        self.state_dictionary = state_dictionary
        self.durable = durable
        self.format = format
        self.cobre_fields = cobre_fields
        self.last_completed_iteration: int | None = None
        self.last_checkpoint_iteration: int | None = None
        self.records: list[CheckpointRecord] = []
        self.signal_received: int | None = None
        self._interrupted = False
        self._previous: dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_received is not None:  # second signal: give up gracefully handling it
            prev = self._previous.get(signum, signal.SIG_DFL)
            signal.signal(signum, prev)
            signal.raise_signal(signum)
            return
        self.signal_received = signum

    @property
    def interrupted(self) -> bool:
        """True once a signal has been agreed on (after :meth:`after_iteration`): stop iterating."""
        return self._interrupted

    def after_iteration(self, iteration: int, policy_fn: PolicyFn) -> CheckpointRecord | None:
        """Record ``iteration`` as completed; checkpoint it when due or interrupted.

        Collective over ``comm`` (one allreduce every call, plus the
        checkpoint when due).  ``policy_fn()`` is called only when a
        checkpoint is written and returns the keyword arguments of
        :func:`write_policy_checkpoint` (``stage_cuts``, ``stage_bases``,
        ``metadata``, optionally ``stage_states``, ``stage_vertices``,
        ``state_dictionary``); on ranks other than 0 it may return ``{}``.

        Returns
        -------
        CheckpointRecord or None
            The record when a checkpoint was written (every rank).
        """
        self.last_completed_iteration = int(iteration)
        self._interrupted = not mpi.all_agree(self.comm, self.signal_received is None)
        due = self.every > 0 and iteration % self.every == 0
        if due or self._interrupted:
            return self.checkpoint(iteration, **dict(policy_fn()))
        return None

    def checkpoint(self, iteration: int, **policy: Any) -> CheckpointRecord:
        """Write a checkpoint of ``iteration`` now (collective; see :func:`write_policy_checkpoint`)."""
        if self.state_dictionary is not None and self.format == "spec":
            policy.setdefault("state_dictionary", self.state_dictionary)
        if self.format != "spec":
            policy.setdefault("format", self.format)
            policy.setdefault("cobre_fields", self.cobre_fields)
        for key in ("stage_cuts", "stage_bases", "metadata"):
            policy.setdefault(key, None)
        record = write_policy_checkpoint(self.policy_dir, comm=self.comm, keep=self.keep,
                                         durable=self.durable, **policy)
        self.last_checkpoint_iteration = int(iteration)
        self.records.append(record)
        if mpi.rank_of(self.comm) == 0:
            _log.info("checkpoint %s written (%d stages, %s)", Path(record.checkpoint_dir).name,
                      sum(1 for f in record.files if f.startswith("cuts/")),
                      format_bytes(sum(record.files.values())))
        if self.training_writer is not None:
            self.training_writer.checkpoint()
        return record

    def final(self, **policy: Any) -> CheckpointRecord | None:
        """Checkpoint the last completed iteration at the end of training (collective).

        Skipped (returns None) when nothing was completed or that iteration
        is already the published checkpoint.
        """
        it = self.last_completed_iteration
        if it is None or it == self.last_checkpoint_iteration:
            return None
        return self.checkpoint(it, **policy)

    def close(self) -> None:
        """Restore the signal handlers that were installed before and release the run's claim."""
        self._lease.release()
        for sig, prev in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev)
        self._previous.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


