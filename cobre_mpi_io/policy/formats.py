"""Policy directories of every format in use: detection, Cobre >= 0.14 directories, units.

Three formats, told apart by what the directory holds (never guessed from
values):

``spec``
    This package's checkpoints (SPEC §9): ``metadata.json`` with a
    ``version``, ``cuts/stage_NNN.bin`` without file identifier, usually
    behind ``policy/latest``.
``cobre-0.5``
    Cobre 0.5.x: the spec's wire layout and file names, a ``metadata.json``
    of Cobre's own (``cobre_version``, no ``version``).  Cut values are
    stored divided by the cost scale factor, which Cobre records only in
    ``training/scaling_report.json`` beside the policy directory.
``cobre-0.18``
    Cobre >= 0.14 (measured on 0.18.0): ``manifest.bin`` instead of
    ``metadata.json``, files ``cuts/NNN.bin``, ``basis/NNN.bin``,
    ``states/NNN.bin`` numbered by policy-graph pool, every file carrying the
    ``CBVF`` identifier, cut values in cost units ($), the solver's cost
    scale factor recorded in each cuts file.  Cobre refuses a policy
    directory holding anything else.

Units: :attr:`PolicyCheckpoint.value_scale` is what stored intercepts and
coefficients are multiplied by to give costs in the case's cost unit: 1 for
``cobre-0.18``; the ``cost_scale_factor`` of ``training/scaling_report.json``
for ``cobre-0.5`` (None when that file is not beside the policy); what
``metadata.json`` records (``value_scale``) for ``spec`` (None when it
records nothing).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import ensure_dir, fsync_dir, write_bytes_atomic
from ..documents import read_json_document
from ..errors import IoError, ManifestError, SchemaError, SerializationError
from .cobre_manifest import decode_manifest, encode_manifest
from .codec import _encode, _write_flatbuffer, write_stage_basis, write_stage_cuts
from .decode import _decode, read_stage_basis, read_stage_cuts
from .layouts import _SPECS
from .mapped import _map
from .records import (
    EntityManifest,
    FileDigest,
    PolicyCheckpoint,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    _i32,
    _u32,
)

__all__ = [
    "COBRE_MANIFEST",
    "COBRE_SOFTWARE",
    "POLICY_DIR_FORMATS",
    "CobreStageStates",
    "cobre_manifest_for",
    "detect_policy_format",
    "pool_file_name",
    "read_cobre_policy",
    "read_cobre_stage_states",
    "restore_cobre_fields",
    "scaling_report_value_scale",
    "stash_cobre_fields",
    "write_cobre_policy",
]

POLICY_DIR_FORMATS = ("spec", "cobre-0.5", "cobre-0.18")
COBRE_MANIFEST = "manifest.bin"
COBRE_SUBDIRS = ("cuts", "basis", "states")
"""What a Cobre >= 0.14 policy directory may hold besides ``manifest.bin`` (it refuses anything else)."""
_POOL_FILE_RE = re.compile(r"^(\d{3,})\.bin$")


COBRE_SOFTWARE = ("cobre", "0.18.0")
"""What a ``cobre-0.18`` manifest.bin must name as its producer: Cobre 0.18 loads only a policy whose
manifest names the running software and version ("a policy loads only in the software and version
that wrote it"), so a policy this package writes names them too (``policy info`` cannot tell it from
Cobre's own)."""


def cobre_manifest_for(metadata: PolicyMetadata, stage_cuts: Sequence[StageCuts],
                       fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``manifest.bin`` content for a policy of ``metadata`` and ``stage_cuts``.

    Parameters
    ----------
    metadata : PolicyMetadata
        Gives the training record (iterations, bounds, seed, ...).
    stage_cuts : sequence of StageCuts
        Gives the per-stage ``warm_start_counts``.
    fields : mapping
        What only Cobre knows: ``graph_manifest``, ``season_manifest`` and
        ``producer`` extras (``training_block_mode``,
        ``training_block_mode_per_stage``, ``cost_scale_factor``), as
        :func:`~cobre_mpi_io.policy.convert.cobre_fields_from_case` returns
        them.  ``graph_manifest`` defaults to the linear graph (node = pool =
        stage).

    Returns
    -------
    dict
        Shaped as :func:`~cobre_mpi_io.policy.cobre_manifest.decode_manifest` returns it.
    """
    from ..manifest import utc_now

    m = metadata
    n = int(m.num_stages)
    graph = fields.get("graph_manifest") or {
        "n_pools": n, "nodes": [{"id": i, "stage_id": i, "pool_id": i} for i in range(n)],
        "edges": [{"source_id": i, "target_id": i + 1, "probability": 1.0} for i in range(n - 1)]}
    producer = {
        "completed_iterations": m.completed_iterations,
        "final_lower_bound": m.final_lower_bound if m.final_lower_bound is not None else float("nan"),
        "best_upper_bound": m.best_upper_bound if m.best_upper_bound is not None else float("nan"),
        "max_iterations": m.max_iterations, "forward_passes": m.forward_passes,
        "warm_start_cuts": m.warm_start_cuts, "warm_start_counts": [int(sc.warm_start_count) for sc in stage_cuts],
        "rng_seed": m.rng_seed, "total_visited_states": 0, "lower_bound_history": [],
        "training_block_mode": "parallel", "training_block_mode_per_stage": [],
        "cost_scale_factor": float(stage_cuts[0].cost_scale_factor or 0.0) if stage_cuts else 0.0,
        **dict(fields.get("producer") or {}),
    }
    return {"software": COBRE_SOFTWARE[0], "software_version": COBRE_SOFTWARE[1],
            "created_at": m.created_at or utc_now(), "num_stages": n, "graph_manifest": graph,
            "season_manifest": fields.get("season_manifest") or {"cycle_code": 255, "n_seasons": 0,
                                                                 "hydro_orders": []},
            "producer": producer}


@dataclass(eq=False)
class CobreStageStates:
    """The visited states of one stage in a Cobre >= 0.14 policy (``states/NNN.bin``).

    Cobre 0.18 records only the states themselves (no ids, iterations or
    dominating cuts, unlike :class:`StageStates`).

    Parameters
    ----------
    stage_id, state_dimension : int
    states : array of float64, shape (n_states, state_dimension)
    reserved_5 : int
        The file's field 5 (int32), -1 in every file measured; its meaning is
        not documented: kept and written back as it is.
    """

    stage_id: int
    state_dimension: int
    states: Any
    reserved_5: int = -1

    @property
    def n_states(self) -> int:
        """Number of visited states."""
        return int(np.asarray(self.states).shape[0])

    def validate(self) -> CobreStageStates:
        """Coerce in place and check the shape; :class:`SchemaError` naming the field."""
        file = f"states/{int(self.stage_id):03d}.bin"
        self.stage_id = _u32(self.stage_id, file, "stage_id")
        self.state_dimension = d = _u32(self.state_dimension, file, "state_dimension")
        arr = np.asarray(self.states)
        if arr.ndim != 2 or arr.shape[1] != d:
            raise SchemaError(file, "states", f"must have shape (n, {d}), got {arr.shape}")
        self.states = np.ascontiguousarray(arr, dtype="<f8")
        self.reserved_5 = _i32(self.reserved_5, file, "reserved_5")
        return self

    # the wire fields (see cobre_mpi_io/policy/layouts.py)
    @property
    def count(self) -> int:
        """``n_states``, as the file records it."""
        return self.n_states

    @property
    def data(self) -> Any:
        """The states, row by row, as one vector."""
        return np.asarray(self.states).reshape(-1)

    @property
    def reserved_4(self) -> Any:
        """The file's field 4: always written empty."""
        return np.zeros(0, dtype="u1")



def stash_cobre_fields(manifest: Mapping[str, Any] | None, stage_cuts: Sequence[StageCuts]) -> dict[str, Any]:
    """What a ``spec`` ``metadata.json`` keeps (key ``cobre``) of a Cobre >= 0.14 policy converted to spec.

    The manifest and each stage's Cobre fields, as JSON, so converting back
    to ``cobre-0.18`` needs no case.  ``{}`` when there is nothing to keep.
    """
    if manifest is None or any(sc.missing_cobre_fields() for sc in stage_cuts):
        return {}
    stages = []
    for sc in stage_cuts:
        assert sc.entity_manifest is not None
        stages.append({"stage_id": int(sc.stage_id), "cost_scale_factor": sc.cost_scale_factor,
                       "node_id": sc.node_id, "graph_stage_id": sc.graph_stage_id,
                       "priced_state_date": sc.priced_state_date, "entity_manifest": sc.entity_manifest.to_rows()})
    return {"cobre": {"manifest": dict(manifest), "stages": stages}}


def restore_cobre_fields(stash: Any, stage_cuts: Sequence[StageCuts], source: str) -> dict[str, Any] | None:
    """Put back what :func:`stash_cobre_fields` kept onto ``stage_cuts`` (in place); returns the manifest.

    Parameters
    ----------
    stash : object
        The ``cobre`` value of a ``metadata.json`` (None: nothing kept).
    stage_cuts : sequence of StageCuts
        The stages read from the same checkpoint; their Cobre fields are set.
    source : str
        The ``metadata.json`` named in errors.

    Returns
    -------
    dict or None
        The kept ``manifest.bin`` content; None when ``stash`` is None.

    Raises
    ------
    ManifestError
        ``stash`` is malformed or does not match the stages (naming ``source``).
    """
    if stash is None:
        return None
    try:
        by_stage = {int(st["stage_id"]): st for st in stash["stages"]}
        for sc in stage_cuts:
            st = by_stage[int(sc.stage_id)]
            rows = st["entity_manifest"]
            names = ("entity_type", "entity_id", "subindex", "was_active", "reference_date", "interval_start",
                     "interval_end")
            sc.entity_manifest = EntityManifest(*([r[n] for r in rows] for n in names))
            sc.cost_scale_factor = st["cost_scale_factor"]
            sc.node_id, sc.graph_stage_id = st["node_id"], st["graph_stage_id"]
            sc.priced_state_date = st["priced_state_date"]
            sc.validate(check_finite=False, contiguous=False)
        manifest = stash["manifest"]
        if not isinstance(manifest, dict):
            raise TypeError("manifest is not an object")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ManifestError(source, f"cobre: the Cobre 0.18 fields kept here are malformed ({exc!r})") from exc
    except SchemaError as exc:
        raise ManifestError(source, f"cobre: the Cobre 0.18 fields kept here do not fit the stages ({exc})") from exc
    return manifest


def pool_file_name(pool_id: int) -> str:
    """``NNN.bin``: the name of a Cobre >= 0.14 stage file, numbered by policy-graph pool."""
    return f"{int(pool_id):03d}.bin"


def detect_policy_format(path: str | os.PathLike[str]) -> str:
    """The format of the policy directory ``path`` (``spec``, ``cobre-0.5`` or ``cobre-0.18``).

    ``cobre-0.18``: ``manifest.bin`` is there.  Otherwise the checkpoint's
    ``metadata.json`` decides: ``version`` present -> ``spec``;
    ``cobre_version`` without ``version`` -> ``cobre-0.5``.

    Raises
    ------
    ManifestError
        None of these (naming the directory).
    """
    p = Path(path)
    if (p / COBRE_MANIFEST).is_file():
        return "cobre-0.18"
    from ..layout import resolve_checkpoint_dir

    ckpt = resolve_checkpoint_dir(p)
    meta = ckpt / "metadata.json"
    doc = read_json_document(meta, str(meta))
    if "version" in doc:
        return "spec"
    if doc.get("cobre_version"):
        return "cobre-0.5"
    raise ManifestError(str(meta), "neither this package's (version) nor Cobre's (cobre_version) policy metadata")


def scaling_report_value_scale(policy_dir: str | os.PathLike[str]) -> float | None:
    """``cost_scale_factor`` of ``training/scaling_report.json`` beside a Cobre 0.5.x ``policy_dir``.

    Cobre 0.5.x stores cut values divided by it and records it only there.
    None when the file is not there.

    Raises
    ------
    ManifestError
        The file is there but holds no positive ``cost_scale_factor``.
    """
    report = Path(policy_dir).resolve().parent / "training" / "scaling_report.json"
    if not report.is_file():
        return None
    doc = read_json_document(report, str(report))
    value = doc.get("cost_scale_factor")
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ManifestError(str(report), f"cost_scale_factor: {value!r} is not a positive number")
    return float(value)


def _pool_files(directory: Path) -> dict[int, Path]:
    if not directory.is_dir():
        return {}
    out = {}
    for name in os.listdir(directory):
        m = _POOL_FILE_RE.match(name)
        if m is None:
            raise ManifestError(str(directory / name), "not a pool file (NNN.bin) of a Cobre >= 0.14 policy")
        out[int(m.group(1))] = directory / name
    return out


def read_cobre_policy(path: str | os.PathLike[str], *, expected_state_dimension: int | None = None,
                      expected_num_stages: int | None = None,
                      expected: Mapping[str, FileDigest] | None = None) -> PolicyCheckpoint:
    """Read a Cobre >= 0.14 policy directory (``manifest.bin``, ``cuts/NNN.bin``, ``basis/NNN.bin``).

    Every file is decoded bounded and checked as the spec readers do; each
    pool file must hold the stage the manifest's policy graph gives its
    pool, and every stage must have one cuts file.

    Parameters
    ----------
    path : path-like
        The policy directory.
    expected_state_dimension, expected_num_stages : int, optional
        The running system's values; a mismatch is a :class:`SchemaError`.
    expected : mapping, optional
        Path relative to ``path`` -> :class:`FileDigest` (what this package
        records for its own ``cobre-0.18`` checkpoints): every file is
        checked against it before decoding, and no file may be missing or
        extra (:class:`ManifestError`).

    Returns
    -------
    PolicyCheckpoint
        ``format="cobre-0.18"``, ``value_scale=1.0`` (Cobre >= 0.14 stores
        costs), ``cobre_manifest`` the decoded ``manifest.bin`` and
        ``metadata`` the spec fields it carries.

    Raises
    ------
    SerializationError
        A file is not a valid FlatBuffer of its kind (``CBVF`` missing, an
        offset outside the file, an unknown field, ...).
    ManifestError
        The directory holds something Cobre does not write, a pool missing
        from the graph, or a stage without cuts.
    SchemaError
        A file holds another stage than its pool's, dimensions disagree.
    IoError
        A file cannot be read.
    """
    root = Path(path)
    man_path = root / COBRE_MANIFEST
    exp = dict(expected) if expected is not None else {}
    manifest = decode_manifest(bytes(_map(man_path, exp.get(COBRE_MANIFEST))), str(man_path))
    for entry in sorted(os.listdir(root)):
        if entry != COBRE_MANIFEST and entry not in COBRE_SUBDIRS:
            raise ManifestError(str(root / entry), "is not part of a Cobre >= 0.14 policy directory "
                                "(manifest.bin, cuts/, basis/, states/)")
    num_stages = int(manifest["num_stages"])
    if expected_num_stages is not None and num_stages != expected_num_stages:
        raise SchemaError(str(man_path), "num_stages",
                          f"the policy has {num_stages} stages, the system has {expected_num_stages}")
    pool_stage = {int(n["pool_id"]): int(n["stage_id"]) for n in manifest["graph_manifest"]["nodes"]}
    files = {sub: _pool_files(root / sub) for sub in COBRE_SUBDIRS}
    for sub in COBRE_SUBDIRS:
        for pool, p in files[sub].items():
            if pool not in pool_stage:
                raise ManifestError(str(p), f"pool {pool} is not a node of manifest.bin's policy graph")
    if expected is not None:
        present = {COBRE_MANIFEST} | {f"{sub}/{p.name}" for sub in COBRE_SUBDIRS for p in files[sub].values()}
        for rel in sorted(set(exp) ^ present):
            raise ManifestError(str(root / rel), "is recorded but missing" if rel in exp
                                else "is not recorded (a stray or foreign file)")
    d = expected_state_dimension
    cuts: list[StageCuts] = []
    for pool, p in sorted(files["cuts"].items(), key=lambda kv: pool_stage[kv[0]]):
        sc = read_stage_cuts(p, stage_id=pool_stage[pool], state_dimension=d, expected=exp.get(f"cuts/{p.name}"))
        if sc.cost_scale_factor is None:
            raise SchemaError(str(p), "format", "a cuts file without Cobre's CBVF identifier in a Cobre "
                              ">= 0.14 policy directory")
        d = sc.state_dimension
        cuts.append(sc)
    stages = [sc.stage_id for sc in cuts]
    if sorted(set(stages)) != list(range(num_stages)) or len(stages) != num_stages:
        missing = sorted(set(range(num_stages)) - set(stages))
        raise ManifestError(str(root / "cuts"), f"{len(stages)} cuts files for {num_stages} stages"
                            + (f" (stage {missing[0]} has none)" if missing else ""))
    bases = [read_stage_basis(p, stage_id=pool_stage[pool], expected=exp.get(f"basis/{p.name}"))
             for pool, p in sorted(files["basis"].items(), key=lambda kv: pool_stage[kv[0]])]
    states = [read_cobre_stage_states(p, stage_id=pool_stage[pool], state_dimension=d,
                                      expected=exp.get(f"states/{p.name}"))
              for pool, p in sorted(files["states"].items(), key=lambda kv: pool_stage[kv[0]])]
    producer = manifest["producer"]
    meta = PolicyMetadata(
        completed_iterations=producer["completed_iterations"], state_dimension=int(d or 0),
        num_stages=num_stages, final_lower_bound=producer["final_lower_bound"],
        best_upper_bound=producer["best_upper_bound"], max_iterations=producer["max_iterations"],
        forward_passes=producer["forward_passes"], warm_start_cuts=producer["warm_start_cuts"],
        rng_seed=producer["rng_seed"], cobre_version=manifest["software_version"],
        created_at=manifest["created_at"], version="")
    return PolicyCheckpoint(metadata=meta, cuts=cuts, bases=bases, path=root.resolve(), format="cobre-0.18",
                            value_scale=1.0, cobre_manifest=manifest, cobre_states=states)


def read_cobre_stage_states(path: str | os.PathLike[str], *, stage_id: int | None = None,
                            state_dimension: int | None = None,
                            expected: FileDigest | None = None) -> CobreStageStates:
    """Read a Cobre >= 0.14 ``states/NNN.bin`` (memory-mapped, bounded and checked like every stage file).

    Parameters
    ----------
    path : path-like
        The file.
    stage_id, state_dimension : int, optional
        What the file must hold (:class:`SchemaError` otherwise).
    expected : FileDigest, optional
        Size and xxhash64 the file must have (checked before decoding).

    Returns
    -------
    CobreStageStates
        ``states`` is a zero-copy ``(count, state_dimension)`` view of the file.

    Raises
    ------
    SerializationError
        Not a valid Cobre ``StageStates`` FlatBuffer: no ``CBVF``, an offset
        outside the file, ``count x state_dimension`` not the data's length,
        or a non-empty field 4 (its content is undocumented).
    SchemaError
        Another stage or dimension than expected.
    ManifestError, IoError
        ``expected`` differs; the file cannot be read.
    """
    p = Path(path)
    v = _decode(_map(p, expected), "states", str(p), "cobre-0.18")
    if v["reserved_4"].size:
        raise SerializationError(str(p), "field 4 of a Cobre StageStates is not empty: its content is "
                                 "undocumented and not read by this version")
    n, d = int(v["count"]), int(v["state_dimension"])
    data = v["data"]
    if data.shape[0] != n * d:
        raise SerializationError(str(p), f"{data.shape[0]} values for count {n} x state_dimension {d}")
    st = CobreStageStates(stage_id=int(v["stage_id"]), state_dimension=d,
                          states=data.reshape(n, d) if d else np.zeros((n, 0)), reserved_5=int(v["reserved_5"]))
    if stage_id is not None and st.stage_id != stage_id:
        raise SchemaError(str(p), "stage_id", f"the file holds stage {st.stage_id}, the policy graph says {stage_id}")
    if state_dimension is not None and d != state_dimension:
        raise SchemaError(str(p), "state_dimension", f"{d}, the cuts have {state_dimension}")
    return st


def write_cobre_policy(path: str | os.PathLike[str], stage_cuts: Sequence[StageCuts],
                       stage_bases: Sequence[StageBasis], manifest: Mapping[str, Any], *,
                       stage_states: Sequence[CobreStageStates] = (), durable: bool = True,
                       replace: bool = False) -> dict[str, int]:
    """Write a Cobre >= 0.14 policy directory at ``path``, atomically (all of it or nothing).

    The files are written into a temp directory beside ``path``, which is
    then renamed to ``path``: ``manifest.bin`` and ``cuts/NNN.bin`` /
    ``basis/NNN.bin`` numbered by the pool the manifest's policy graph
    gives each stage -- exactly what Cobre 0.18 writes and accepts, nothing
    else.  Not collective.

    Parameters
    ----------
    path : path-like
        The policy directory to create.
    stage_cuts : sequence of StageCuts
        One per stage, each with the Cobre >= 0.14 fields set (values in
        cost units, as Cobre >= 0.14 stores them).
    stage_bases : sequence of StageBasis
        Any subset of the stages.
    manifest : mapping
        The ``manifest.bin`` content, shaped as
        :func:`~cobre_mpi_io.policy.cobre_manifest.decode_manifest` returns it.
    stage_states : sequence of CobreStageStates
        Visited states (``states/NNN.bin``), any subset of the stages.
    durable : bool
        fsync files and directories (default).
    replace : bool
        Replace an existing directory at ``path`` (moved aside, then removed
        once the new one is in place).  Default: refuse.

    Returns
    -------
    dict
        Path relative to ``path`` -> bytes written.

    Raises
    ------
    SchemaError
        Stages missing or repeated, a stage lacking the Cobre fields.
    IoError
        ``path`` exists (without ``replace``), or a write failed (nothing
        changed at ``path``).
    """
    final = Path(path)
    if final.exists() and not replace:
        raise IoError(final, "exists", "already exists (refusing to overwrite a policy directory)")
    num_stages = int(manifest["num_stages"])
    stage_pool = {int(n["stage_id"]): int(n["pool_id"]) for n in manifest["graph_manifest"]["nodes"]}
    ids = [int(sc.stage_id) for sc in stage_cuts]
    if sorted(ids) != list(range(num_stages)):
        raise SchemaError(str(final / "cuts"), "stage_id", f"stages {sorted(ids)}, manifest.bin has {num_stages}")
    for sid in ids + [int(b.stage_id) for b in stage_bases] + [int(st.stage_id) for st in stage_states]:
        if sid not in stage_pool:
            raise SchemaError(str(final / COBRE_MANIFEST), "graph_manifest", f"no node for stage {sid}")
    ensure_dir(final.parent)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
    files: dict[str, int] = {}
    old: Path | None = None
    try:
        for sc in stage_cuts:
            rel = f"cuts/{pool_file_name(stage_pool[int(sc.stage_id)])}"
            files[rel] = write_stage_cuts(tmp / rel, sc, durable=durable, format="cobre-0.18")
        ensure_dir(tmp / "basis")
        for bs in stage_bases:
            rel = f"basis/{pool_file_name(stage_pool[int(bs.stage_id)])}"
            files[rel] = write_stage_basis(tmp / rel, bs, durable=durable, format="cobre-0.18")
        for st in stage_states:
            st.validate()
            rel = f"states/{pool_file_name(stage_pool[int(st.stage_id)])}"
            files[rel] = _write_flatbuffer(tmp / rel, _encode(st, _SPECS[("cobre-0.18", "states")], 0, rel),
                                           durable)
        files[COBRE_MANIFEST] = write_bytes_atomic(tmp / COBRE_MANIFEST, encode_manifest(manifest),
                                                   durable=durable)
        if durable:
            for sub in ("cuts", "basis", "states"):
                if (tmp / sub).is_dir():
                    fsync_dir(tmp / sub)
            fsync_dir(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.{secrets.token_hex(6)}.old.tmp")
            os.rename(final, old)
        os.rename(tmp, final)
        if durable:
            fsync_dir(final.parent)
    except OSError as exc:
        if old is not None and not final.exists():
            os.rename(old, final)
            old = None
        if isinstance(exc, IoError):
            raise
        raise IoError.from_os_error(final, exc) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return files
