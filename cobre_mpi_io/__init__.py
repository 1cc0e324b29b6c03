"""cobre_mpi_io: the MPI-aware output layer of the Cobre SDDP solver.

Importing the package is cheap: each public name is imported on first
access (PEP 562), so ``import cobre_mpi_io`` loads neither pyarrow nor
numpy until a name that needs them is used.  It does not initialize MPI:
:mod:`mpi4py` is imported by :mod:`cobre_mpi_io.mpi` only when a
collective first needs a communicator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._lazy import lazy_exports
from ._version import __version__

if TYPE_CHECKING:
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

_LAZY: Final[dict[str, str]] = {
    "IoError": ".errors",
    "IterationRecord": ".training",
    "ManifestError": ".errors",
    "OutputError": ".errors",
    "ParquetConfig": ".parquet",
    "PolicyCheckpointer": ".policy",
    "PolicyMetadata": ".policy",
    "RankTimingRecord": ".training",
    "Run": ".run",
    "RunConfig": ".config",
    "RunIdentity": ".identity",
    "SchemaError": ".errors",
    "SerializationError": ".errors",
    "SimulationConfig": ".simulation",
    "SimulationManifest": ".manifest",
    "SimulationOutput": ".results",
    "SimulationParquetWriter": ".simulation",
    "SimulationScenarioResult": ".simulation",
    "StageBasis": ".policy",
    "StageCuts": ".policy",
    "StageStates": ".policy",
    "StageVertices": ".policy",
    "System": ".system",
    "TrainingManifest": ".manifest",
    "TrainingOutput": ".results",
    "TrainingParquetWriter": ".training",
    "empty_scenario_result": ".simulation",
    "open_run": ".run",
    "read_policy_checkpoint": ".policy",
    "read_simulation_manifest": ".manifest",
    "read_stage_basis": ".policy",
    "read_stage_cuts": ".policy",
    "read_training_manifest": ".manifest",
    "state_dictionary": ".training",
    "validate_output": ".validate",
    "validate_simulation": ".validate",
    "write_dictionaries": ".training",
    "write_metadata": ".training",
    "write_policy_checkpoint": ".policy",
    "write_results": ".results",
    "write_simulation_manifest": ".manifest",
    "write_stage_basis": ".policy",
    "write_stage_cuts": ".policy",
    "write_training_manifest": ".manifest",
}
"""Public name -> the submodule (relative to this package) that defines it."""

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
