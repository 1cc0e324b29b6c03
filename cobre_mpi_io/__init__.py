"""cobre_mpi_io: the MPI-aware output layer of the Cobre SDDP solver."""

from __future__ import annotations

from .errors import IoError, ManifestError, OutputError, SchemaError, SerializationError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "OutputError",
    "IoError",
    "SerializationError",
    "SchemaError",
    "ManifestError",
]
