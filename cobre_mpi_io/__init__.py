"""cobre_mpi_io: the MPI-aware output layer of the Cobre SDDP solver.

Importing the package does not initialize MPI: :mod:`mpi4py` is imported
by :mod:`cobre_mpi_io.mpi` only when a collective first needs a
communicator.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .checkpoint import (  # noqa: E402
    PolicyCheckpointer,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
    read_policy_checkpoint,
    write_policy_checkpoint,
)
from .dictionaries import write_dictionaries  # noqa: E402
from .errors import IoError, ManifestError, OutputError, SchemaError, SerializationError  # noqa: E402
from .manifest import (  # noqa: E402
    SimulationManifest,
    TrainingManifest,
    read_simulation_manifest,
    read_training_manifest,
    write_simulation_manifest,
    write_training_manifest,
)
from .metadata import write_metadata  # noqa: E402
from .parquet import ParquetConfig  # noqa: E402
from .payload import SimulationScenarioResult  # noqa: E402
from .results import RunConfig, SimulationOutput, TrainingOutput, write_results  # noqa: E402
from .simulation import SimulationConfig, SimulationParquetWriter  # noqa: E402
from .system import System  # noqa: E402
from .training import IterationRecord, RankTimingRecord, TrainingParquetWriter  # noqa: E402
from .validate import validate_simulation  # noqa: E402

__all__ = [
    "__version__",
    "OutputError", "IoError", "SerializationError", "SchemaError", "ManifestError",
    "System", "SimulationScenarioResult", "SimulationConfig", "ParquetConfig", "SimulationParquetWriter",
    "SimulationManifest", "TrainingManifest", "write_simulation_manifest", "read_simulation_manifest",
    "write_training_manifest", "read_training_manifest",
    "TrainingParquetWriter", "IterationRecord", "RankTimingRecord",
    "write_metadata", "write_dictionaries",
    "RunConfig", "TrainingOutput", "SimulationOutput", "write_results",
    "StageCuts", "StageStates", "StageVertices", "StageBasis", "PolicyMetadata",
    "write_policy_checkpoint", "read_policy_checkpoint", "PolicyCheckpointer",
    "validate_simulation",
]
