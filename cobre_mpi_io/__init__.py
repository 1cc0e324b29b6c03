"""cobre_mpi_io: the MPI-aware output layer of the Cobre SDDP solver.

Importing the package does not initialize MPI: :mod:`mpi4py` is imported
by :mod:`cobre_mpi_io.mpi` only when a collective first needs a
communicator.
"""

from __future__ import annotations

from ._version import __version__
from .config import RunConfig
from .errors import IoError, ManifestError, OutputError, SchemaError, SerializationError
from .identity import RunIdentity
from .manifest import (
    SimulationManifest,
    TrainingManifest,
    read_simulation_manifest,
    read_training_manifest,
    write_simulation_manifest,
    write_training_manifest,
)
from .parquet import ParquetConfig
from .policy import (
    PolicyCheckpointer,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
    read_policy_checkpoint,
    read_stage_basis,
    read_stage_cuts,
    write_policy_checkpoint,
    write_stage_basis,
    write_stage_cuts,
)
from .results import SimulationOutput, TrainingOutput, write_results
from .run import Run, open_run
from .simulation import (
    SimulationConfig,
    SimulationParquetWriter,
    SimulationScenarioResult,
    empty_scenario_result,
)
from .system import System
from .training import (
    IterationRecord,
    RankTimingRecord,
    TrainingParquetWriter,
    state_dictionary,
    write_dictionaries,
    write_metadata,
)
from .validate import validate_output, validate_simulation

__all__ = [
    "IoError",
    "IterationRecord",
    "ManifestError",
    "OutputError",
    "ParquetConfig",
    "PolicyCheckpointer",
    "PolicyMetadata",
    "RankTimingRecord",
    "Run",
    "RunConfig",
    "RunIdentity",
    "SchemaError",
    "SerializationError",
    "SimulationConfig",
    "SimulationManifest",
    "SimulationOutput",
    "SimulationParquetWriter",
    "SimulationScenarioResult",
    "StageBasis",
    "StageCuts",
    "StageStates",
    "StageVertices",
    "System",
    "TrainingManifest",
    "TrainingOutput",
    "TrainingParquetWriter",
    "__version__",
    "empty_scenario_result",
    "open_run",
    "read_policy_checkpoint",
    "read_simulation_manifest",
    "read_stage_basis",
    "read_stage_cuts",
    "read_training_manifest",
    "state_dictionary",
    "validate_output",
    "validate_simulation",
    "write_dictionaries",
    "write_metadata",
    "write_policy_checkpoint",
    "write_results",
    "write_simulation_manifest",
    "write_stage_basis",
    "write_stage_cuts",
    "write_training_manifest",
]
