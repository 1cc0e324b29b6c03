#!/usr/bin/env bash
# Set up (a local .venv with the package, the MPICH wheel and the test tools) and run every test:
# the serial suite, then the MPI tests under mpiexec with 2 and 3 ranks (3 exposes uneven round-robin).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[mpich,test,lint]'
export PATH="$PWD/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1

echo "== lint: ruff, mypy --strict"
ruff check cobre_mpi_io tests
mypy cobre_mpi_io

echo "== serial suite"
python -m pytest -q -p no:cacheprovider tests
for n in 2 3; do
    echo "== MPI tests under mpiexec -n $n"
    mpiexec -n "$n" python -m pytest -q -p no:cacheprovider --with-mpi -m mpi tests
done
