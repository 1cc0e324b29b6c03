#!/usr/bin/env bash
# Set up (a local .venv with the package and the MPICH wheel) and run the demo under mpiexec -n 4.
# Usage: scripts/demo.sh [OUTPUT_DIR] [extra demo options, e.g. --case ../shared/cases/4ree]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[mpich]'
out=${1:-out}
shift || true
.venv/bin/mpiexec -n 4 .venv/bin/cobre-mpi-io demo --output "$out" "$@"
.venv/bin/cobre-mpi-io validate "$out"
