"""The policy checkpoint chain (SPEC §9).

- :mod:`.records`: the in-memory stage types and metadata, and their validation;
- :mod:`.codec`: encoding stage files (a NumPy FlatBuffer layout engine);
- :mod:`.decode`: decoding stage files (memory-mapped, bounds-checked);
- :mod:`.checkpoint`: checkpoint directories, ``latest``, retention and
  :class:`PolicyCheckpointer`.
"""

from __future__ import annotations

from ..layout import policy_cut_files, resolve_checkpoint_dir, stage_file_name
from .checkpoint import (
    PolicyCheckpointer,
    list_checkpoints,
    read_policy_checkpoint,
    write_policy_checkpoint,
)
from .codec import encode_stage, write_stage_basis, write_stage_cuts, write_stage_states, write_stage_vertices
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
