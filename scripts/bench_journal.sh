#!/usr/bin/env bash
# The run journal's benchmarks (docs/journal.md): its cost on `bench simulation` at 1 and 2 ranks (the same
# writer with the journal on and off, interleaved in one run: ratios.ours_over_ours_without_journal), and
# resume's verification cost per GB adopted. Prints one JSON object per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
B=$(mpi_venv "${MPI_KIND:-mpich}")/bin
[ -n "${MPIEXEC:-}" ] || use_mpi "${MPI_KIND:-mpich}"
SCEN=${SCEN:-16}
REPEATS=${REPEATS:-7}
OUT=${OUT:-$(mktemp -d)}
for n in 1 2; do
    mpiexec_n "$n" "$B/cobre-mpi-io" bench simulation --scale production --scenarios "$SCEN" --repeats "$REPEATS" \
        --output "$OUT/w$n" --json
done
"$B/python" scripts/bench_resume_verify.py --output "$OUT/resume" --scenarios "${RESUME_SCEN:-128}" --repeats 5
rm -rf "$OUT"
