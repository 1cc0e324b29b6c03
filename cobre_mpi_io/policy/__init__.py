"""The policy checkpoint chain (SPEC §9).

- :mod:`.records`: the in-memory stage types and their validation;
- :mod:`.metadata`: a checkpoint's ``metadata.json`` (plain data, no NumPy);
- :mod:`.codec`: encoding stage files (a NumPy FlatBuffer layout engine);
- :mod:`.decode`: decoding stage files (memory-mapped, bounds-checked);
- :mod:`.checkpoint`: checkpoint directories, ``latest``, retention and
  :class:`PolicyCheckpointer`.

Importing the package is cheap: each name is imported on first access
(PEP 562), so ``import cobre_mpi_io.policy.records`` (what ``validate``
needs) does not load the encoder, the decoder or the checkpointer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..layout import policy_cut_files, resolve_checkpoint_dir, stage_file_name
    from .checkpoint import (
        PolicyCheckpointer,
        list_checkpoints,
        read_policy_checkpoint,
        write_policy_checkpoint,
    )
    from .codec import (
        allocate_coefficients,
        encode_stage,
        write_stage_basis,
        write_stage_cuts,
        write_stage_states,
        write_stage_vertices,
    )
    from .decode import (
        decode_stage_basis,
        decode_stage_cuts,
        decode_stage_states,
        decode_stage_vertices,
        read_stage_basis,
        read_stage_cuts,
        read_stage_states,
        read_stage_vertices,
    )
    from .mapped import file_digest
    from .records import (
        POLICY_FORMAT_VERSION,
        STAGE_SUBDIRS,
        CheckpointRecord,
        FileDigest,
        PolicyCheckpoint,
        PolicyMetadata,
        StageBasis,
        StageCuts,
        StageStates,
        StageVertices,
    )

_LAZY: Final[dict[str, str]] = {
    "CheckpointRecord": ".records",
    "FileDigest": ".metadata",
    "POLICY_FORMAT_VERSION": ".metadata",
    "PolicyCheckpoint": ".records",
    "PolicyCheckpointer": ".checkpoint",
    "PolicyMetadata": ".metadata",
    "STAGE_SUBDIRS": "..layout",
    "StageBasis": ".records",
    "StageCuts": ".records",
    "StageStates": ".records",
    "StageVertices": ".records",
    "allocate_coefficients": ".codec",
    "decode_stage_basis": ".decode",
    "decode_stage_cuts": ".decode",
    "decode_stage_states": ".decode",
    "decode_stage_vertices": ".decode",
    "encode_stage": ".codec",
    "file_digest": ".mapped",
    "list_checkpoints": ".checkpoint",
    "policy_cut_files": "..layout",
    "read_policy_checkpoint": ".checkpoint",
    "read_stage_basis": ".decode",
    "read_stage_cuts": ".decode",
    "read_stage_states": ".decode",
    "read_stage_vertices": ".decode",
    "resolve_checkpoint_dir": "..layout",
    "stage_file_name": "..layout",
    "write_policy_checkpoint": ".checkpoint",
    "write_stage_basis": ".codec",
    "write_stage_cuts": ".codec",
    "write_stage_states": ".codec",
    "write_stage_vertices": ".codec",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = [
    "POLICY_FORMAT_VERSION",
    "STAGE_SUBDIRS",
    "CheckpointRecord",
    "FileDigest",
    "PolicyCheckpoint",
    "PolicyCheckpointer",
    "PolicyMetadata",
    "StageBasis",
    "StageCuts",
    "StageStates",
    "StageVertices",
    "allocate_coefficients",
    "decode_stage_basis",
    "decode_stage_cuts",
    "decode_stage_states",
    "decode_stage_vertices",
    "encode_stage",
    "file_digest",
    "list_checkpoints",
    "policy_cut_files",
    "read_policy_checkpoint",
    "read_stage_basis",
    "read_stage_cuts",
    "read_stage_states",
    "read_stage_vertices",
    "resolve_checkpoint_dir",
    "stage_file_name",
    "write_policy_checkpoint",
    "write_stage_basis",
    "write_stage_cuts",
    "write_stage_states",
    "write_stage_vertices",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
