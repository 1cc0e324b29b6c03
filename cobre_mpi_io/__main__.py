"""``python -m cobre_mpi_io``: the same command line as ``cobre-mpi-io``."""

from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
