"""Policy conversion between formats, and the summary ``cobre-mpi-io policy info`` prints.

:func:`convert_policy` reads any policy directory this package reads
(:func:`~cobre_mpi_io.policy.read_policy_checkpoint`: ``spec``,
``cobre-0.5``, ``cobre-0.18``) and writes it in a writable format
(``spec`` or ``cobre-0.18``), atomically: a temp directory beside the
destination, renamed into place when complete.

Units are carried, never guessed: a ``cobre-0.18`` policy stores costs, so
values are multiplied by the source's ``value_scale`` (Cobre 0.5.x: its cost
scale factor, 1000 by default, read from ``training/scaling_report.json``
beside the policy or given with ``value_scale=``); a ``spec`` policy keeps the
values as stored and records their ``value_scale`` in ``metadata.json``.

What Cobre >= 0.14 records and older policies lack -- the policy graph, the
season manifest, each stage's entity manifest, priced-state dates, the cost
scale factor and the training block mode -- comes from ``case``: a Cobre 0.18
case directory (read as documented on :func:`cobre_fields_from_case`) or a
Cobre 0.18 policy or run directory of the same case (copied from it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import fsync_dir
from ..documents import read_json_document
from ..errors import IoError, ManifestError, SchemaError
from ..manifest import utc_now
from .codec import POLICY_FORMATS, allocate_coefficients
from .formats import (
    COBRE_MANIFEST,
    cobre_manifest_for,
    read_cobre_policy,
    stash_cobre_fields,
    write_cobre_policy,
)
from .layouts import INT32_MIN
from .records import COBRE_STAGE_FIELDS, POLICY_FORMAT_VERSION, EntityManifest, PolicyCheckpoint, StageCuts

_log = logging.getLogger(__name__)

__all__ = ["CobreFields", "cobre_fields_from_case", "convert_policy", "policy_info"]

_DEFAULT_COST_SCALE = 1_000_000.0  # Cobre 0.18's config.modeling.cost_scale_factor default (its JSON Schema)
_DEFAULT_BLOCK_MODE = "parallel"  # stages.json stages[].block_mode default (its JSON Schema)
_STORAGE_ENTITY_TYPE = 0  # EntitySlot.entity_type of a hydro storage state (measured on Cobre 0.18 files)


@dataclasses.dataclass
class CobreFields:
    """What a Cobre >= 0.14 policy records beyond the cuts: per stage and for ``manifest.bin``.

    Attributes
    ----------
    stages : list of dict
        Per stage id: ``cost_scale_factor``, ``node_id``, ``graph_stage_id``,
        ``priced_state_date``, ``entity_manifest`` (an :class:`EntityManifest`).
    manifest : dict
        ``graph_manifest``, ``season_manifest`` and the ``producer`` keys
        ``training_block_mode``, ``training_block_mode_per_stage``,
        ``cost_scale_factor``.
    source : str
        Where they came from (named in errors and in ``policy info``).
    """

    stages: list[dict[str, Any]]
    manifest: dict[str, Any]
    source: str

    def as_mapping(self) -> dict[str, Any]:
        """``cobre_fields`` for :class:`~cobre_mpi_io.policy.PolicyCheckpointer` / ``write_policy_checkpoint``.

        The manifest fields plus ``stages``, so cuts without the Cobre
        fields (a solver that does not know them) get the case's.
        """
        return {**self.manifest, "stages": self.stages}


def _date_int(text: str, file: str, field: str) -> int:
    try:
        d = date.fromisoformat(str(text))
    except ValueError as exc:
        raise SchemaError(file, field, f"{text!r} is not a YYYY-MM-DD date") from exc
    return d.year * 10000 + d.month * 100 + d.day


def cobre_fields_from_case(case: str | os.PathLike[str], num_stages: int, state_dimension: int) -> CobreFields:
    """The Cobre >= 0.14 policy fields of a case, for a policy of ``num_stages`` x ``state_dimension``.

    ``case`` is either a Cobre 0.18 policy or run directory of the same case
    (everything is copied from it), or a Cobre 0.18 case directory, read as
    Cobre 0.18 fills these fields (each rule checked on Cobre's own files):

    - policy graph (``stages.json``, ``policy_graph.type`` ``finite_horizon``
      only): node = pool = stage, an edge of probability 1 to the next stage;
    - ``priced_state_date``: the stage's ``end_date`` as YYYYMMDD;
    - entity manifest: one storage slot per hydro of ``system/hydros.json``
      in id order (the state of a case without inflow lags);
    - ``cost_scale_factor``: ``config.json`` ``modeling.cost_scale_factor``,
      default 1e6; block mode: ``stages[].block_mode``, default ``parallel``;
    - season manifest: absent (``cycle_code`` 255).

    Parameters
    ----------
    case : path-like
        A Cobre 0.18 case directory, or a Cobre 0.18 policy (or run) directory of the same case.
    num_stages : int
        Stages of the policy being converted (the case must have as many).
    state_dimension : int
        State dimension of the policy being converted.

    Returns
    -------
    CobreFields

    Raises
    ------
    SchemaError
        The case does not fit the policy (stage count, a state that is not
        one storage per hydro -- inflow lags --, another policy graph, mixed
        block modes), naming the file and field.
    ManifestError, IoError
        A file cannot be read or parsed.
    """
    root = Path(case)
    for policy in (root, root / "policy"):
        if (policy / COBRE_MANIFEST).is_file():
            return _fields_from_policy(policy, num_stages, state_dimension)
    stages_file = root / "stages.json"
    if not stages_file.is_file():
        raise ManifestError(str(root), "neither a Cobre 0.18 case (stages.json) nor a Cobre 0.18 policy "
                            "(manifest.bin)")
    stages_doc = read_json_document(stages_file, str(stages_file))
    graph = stages_doc.get("policy_graph", {}) or {}
    if graph.get("type", "finite_horizon") != "finite_horizon":
        raise SchemaError(str(stages_file), "policy_graph.type", f"{graph.get('type')!r}: only finite_horizon "
                          "graphs are derived from a case; give a Cobre 0.18 policy of this case instead")
    stages = sorted(stages_doc.get("stages", []), key=lambda s: int(s["id"]))
    if [int(s["id"]) for s in stages] != list(range(num_stages)):
        raise SchemaError(str(stages_file), "stages", f"{len(stages)} stages (ids "
                          f"{[s.get('id') for s in stages][:5]}...), the policy has {num_stages}")
    modes = {s.get("block_mode", _DEFAULT_BLOCK_MODE) for s in stages}
    if len(modes) != 1:
        raise SchemaError(str(stages_file), "stages.block_mode", f"mixed block modes {sorted(modes)}: how Cobre "
                          "records them is not known here; give a Cobre 0.18 policy of this case instead")
    hydros_file = root / "system" / "hydros.json"
    hydros = read_json_document(hydros_file, str(hydros_file)).get("hydros", []) if hydros_file.is_file() else []
    ids = sorted(int(h["id"]) for h in hydros)
    if len(ids) != state_dimension:
        raise SchemaError(str(hydros_file), "hydros", f"{len(ids)} hydros, the policy's state has "
                          f"{state_dimension} components: the state is not one storage per hydro (inflow "
                          "lags?); give a Cobre 0.18 policy of this case instead")
    config_file = root / "config.json"
    config = read_json_document(config_file, str(config_file)) if config_file.is_file() else {}
    scale = (config.get("modeling") or {}).get("cost_scale_factor") or _DEFAULT_COST_SCALE
    none = np.full(len(ids), INT32_MIN, dtype="<i4")
    per_stage = []
    for s in stages:
        sid = int(s["id"])
        per_stage.append({
            "cost_scale_factor": float(scale), "node_id": sid, "graph_stage_id": sid,
            "priced_state_date": _date_int(s["end_date"], str(stages_file), f"stages[{sid}].end_date"),
            "entity_manifest": EntityManifest(
                entity_type=np.full(len(ids), _STORAGE_ENTITY_TYPE, dtype="u1"),
                entity_id=np.asarray(ids, dtype="<i4"), subindex=np.zeros(len(ids), dtype="<u4"),
                was_active=np.ones(len(ids), dtype=bool), reference_date=none.copy(),
                interval_start=none.copy(), interval_end=none.copy()),
        })
    manifest = {
        "graph_manifest": {
            "n_pools": num_stages,
            "nodes": [{"id": i, "stage_id": i, "pool_id": i} for i in range(num_stages)],
            "edges": [{"source_id": i, "target_id": i + 1, "probability": 1.0} for i in range(num_stages - 1)],
        },
        "season_manifest": {"cycle_code": 255, "n_seasons": 0, "hydro_orders": []},
        "producer": {"training_block_mode": modes.pop(), "training_block_mode_per_stage": [],
                     "cost_scale_factor": float(scale)},
    }
    return CobreFields(per_stage, manifest, str(root))


def _fields_from_policy(policy: Path, num_stages: int, state_dimension: int) -> CobreFields:
    ck = read_cobre_policy(policy, expected_num_stages=num_stages, expected_state_dimension=state_dimension)
    assert ck.cobre_manifest is not None
    per_stage = [{name: getattr(sc, name) for name in COBRE_STAGE_FIELDS} for sc in ck.cuts]
    man = ck.cobre_manifest
    producer = man["producer"]
    manifest = {"graph_manifest": man["graph_manifest"], "season_manifest": man["season_manifest"],
                "producer": {k: producer[k] for k in ("training_block_mode", "training_block_mode_per_stage",
                                                       "cost_scale_factor")}}
    return CobreFields(per_stage, manifest, str(policy))


def _scaled(sc: StageCuts, factor: float) -> StageCuts:
    if factor == 1.0:
        return sc
    coefficients = allocate_coefficients(*np.shape(sc.coefficients))  # written with one segment per 512 rows
    np.multiply(sc.coefficients, factor, out=coefficients)
    return dataclasses.replace(sc, intercepts=np.asarray(sc.intercepts, dtype="<f8") * factor,
                               coefficients=coefficients)


def _resolve_scale(ck: PolicyCheckpoint, value_scale: float | None, src: str) -> float | None:
    if value_scale is not None:
        if not value_scale > 0:
            raise SchemaError(src, "value_scale", f"{value_scale} is not a positive number")
        if ck.value_scale is not None and ck.value_scale != value_scale:
            raise SchemaError(src, "value_scale", f"the policy records {ck.value_scale}, {value_scale} was given")
        return float(value_scale)
    return ck.value_scale


def convert_policy(src: str | os.PathLike[str], dst: str | os.PathLike[str], format: str, *,
                   case: str | os.PathLike[str] | None = None, value_scale: float | None = None,
                   durable: bool = True) -> PolicyCheckpoint:
    """Read the policy at ``src`` (any readable format) and write it at ``dst`` in ``format``.

    Not collective.  ``dst`` must not exist; it is created atomically (a
    temp directory renamed into place when complete).

    Parameters
    ----------
    src : path-like
        A policy directory: ours (``OUT/policy`` or a checkpoint), Cobre
        0.5.x's or Cobre >= 0.14's.
    dst : path-like
        The directory to create.  ``spec``: a checkpoint directory
        (``metadata.json``, ``cuts/stage_NNN.bin``, ``basis/``) that
        :func:`~cobre_mpi_io.policy.read_policy_checkpoint` reads (from a
        Cobre >= 0.14 source, ``metadata.json`` keeps its manifest and
        per-stage fields under ``cobre``, so converting back needs no case);
        ``cobre-0.18``: a policy directory Cobre 0.18 warm-starts from.
    format : {"spec", "cobre-0.18"}
    case : path-like, optional
        Needed for ``cobre-0.18`` from a source that is not Cobre >= 0.14:
        where the fields Cobre >= 0.14 records come from (see
        :func:`cobre_fields_from_case`).
    value_scale : float, optional
        The units of the source's values when the source does not record
        them (a bare Cobre 0.5.x policy directory: its cost scale factor,
        1000 unless its case set another).  Must agree with what the source
        records, if anything.
    durable : bool
        fsync (default).

    Returns
    -------
    PolicyCheckpoint
        What was written, as read back from ``dst``.

    Raises
    ------
    SchemaError
        Unknown ``format``; units unknown for ``cobre-0.18`` (no
        ``value_scale`` recorded or given); ``case`` missing or not fitting.
    IoError
        ``dst`` exists or a write failed (nothing is left at ``dst``).
    ManifestError, SerializationError
        The source cannot be read.
    """
    from .checkpoint import _write_checkpoint_dir, read_policy_checkpoint

    if format not in POLICY_FORMATS:
        raise SchemaError(str(dst), "format", f"{format!r}: policy convert writes {' or '.join(POLICY_FORMATS)}")
    target = Path(dst)
    if target.exists() or target.is_symlink():
        raise IoError(target, "exists", "already exists (policy convert never overwrites)")
    ck = read_policy_checkpoint(src, verify=True)
    scale = _resolve_scale(ck, value_scale, str(src))
    m = ck.metadata
    if format == "cobre-0.18":
        if scale is None:
            where = ("Cobre 0.5.x records its cost scale factor only in training/scaling_report.json beside "
                     "the policy; --value-scale 1000 is its default" if ck.format == "cobre-0.5"
                     else "its metadata.json records no value_scale")
            raise SchemaError(str(src), "value_scale", f"the units of this {ck.format} policy's cut values are "
                              f"not recorded ({where}): give value_scale (--value-scale X: stored values "
                              "times X are costs)")
        fields: CobreFields | None = None
        if any(sc.missing_cobre_fields() for sc in ck.cuts) or ck.cobre_manifest is None:
            if case is None:
                raise SchemaError(str(src), "case", f"a {ck.format} policy lacks what Cobre >= 0.14 records "
                                  "(policy graph, entity manifests, ...): give the Cobre 0.18 case (--case)")
            fields = cobre_fields_from_case(case, m.num_stages, m.state_dimension)
        cuts = []
        for sc in ck.cuts:
            out = _scaled(sc, scale)
            if fields is not None:
                out = dataclasses.replace(out, **fields.stages[int(sc.stage_id)])
            cuts.append(out)
        manifest = (ck.cobre_manifest if fields is None and ck.cobre_manifest is not None
                    else cobre_manifest_for(m, cuts, fields.manifest if fields is not None else {}))
        write_cobre_policy(target, cuts, ck.bases, manifest, stage_states=ck.cobre_states, durable=durable)
        return read_policy_checkpoint(target)
    if ck.cobre_states:
        _log.warning("%s: Cobre's visited states (states/, %d stages) have no place in format spec: not written",
                     src, len(ck.cobre_states))
    meta = dataclasses.replace(m, version=POLICY_FORMAT_VERSION, value_scale=scale,
                               created_at=m.created_at or utc_now())
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_checkpoint_dir(tmp, ck.cuts, ck.bases, meta, ck.states or None, ck.vertices or None,
                              ck.state_dictionary, durable, False,
                              extra=stash_cobre_fields(ck.cobre_manifest, ck.cuts))
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise IoError.from_os_error(target, exc) from exc
        if durable:
            fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_policy_checkpoint(target)


def policy_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``cobre-mpi-io policy info`` prints: format, stages, cuts, dimensions, units, producer.

    Reads (and so checks) every file, without hash verification for the
    formats that record none.

    Returns
    -------
    dict
        ``path``, ``format``, ``producer`` (software and version),
        ``num_stages``, ``state_dimension``, ``completed_iterations``,
        ``final_lower_bound``, ``value_scale`` and ``units`` (a sentence),
        ``cuts`` (total), ``active_cuts``, and ``stages`` (per stage: id,
        cuts, active, capacity, and for Cobre >= 0.14 its pool file's node
        and ``cost_scale_factor``).
    """
    from .checkpoint import read_policy_checkpoint

    ck = read_policy_checkpoint(path)
    m = ck.metadata
    if ck.cobre_manifest is not None:
        producer = f"{ck.cobre_manifest['software']} {ck.cobre_manifest['software_version']}"
    elif ck.format == "cobre-0.5":
        producer = f"cobre {m.cobre_version}"
    else:
        producer = f"cobre_mpi_io (policy format {m.version})" + (f", cobre_version {m.cobre_version!r}"
                                                                   if m.cobre_version else "")
    if ck.value_scale is None:
        units = "not recorded (the stored values times an unknown cost scale factor are costs)"
    elif ck.value_scale == 1.0:
        units = "costs (value_scale 1)"
    else:
        units = f"costs divided by {ck.value_scale:g} (value_scale {ck.value_scale:g})"
    stages = []
    for sc in ck.cuts:
        row: dict[str, Any] = {"stage_id": int(sc.stage_id), "cuts": sc.n_cuts,
                               "active": int(np.asarray(sc.is_active).sum()), "capacity": int(sc.capacity)}
        if sc.cost_scale_factor is not None:
            row |= {"node_id": sc.node_id, "cost_scale_factor": sc.cost_scale_factor}
        stages.append(row)
    return {
        "path": str(Path(path)), "format": ck.format, "producer": producer, "num_stages": m.num_stages,
        "state_dimension": m.state_dimension, "completed_iterations": m.completed_iterations,
        "final_lower_bound": m.final_lower_bound, "value_scale": ck.value_scale, "units": units,
        "cuts": sum(s["cuts"] for s in stages), "active_cuts": sum(s["active"] for s in stages),
        "bases": len(ck.bases), "stages": stages,
    }
