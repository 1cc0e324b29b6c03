#!/usr/bin/env bash
# Set up and run every test, under MPICH and under Open MPI (the PyPI wheels, one venv each; see
# scripts/mpi_launcher.sh): lint once, the serial suite under MPICH (on pytest-xdist workers), and under
# each MPI the MPI tests with 2 and 3 ranks (3 exposes uneven round-robin).
# Under both MPIs: every MPI test (marker "mpi", in-process collectives, at 2 and 3 ranks) and every
# serial test that starts MPI jobs through the launcher (MPIEXEC / MPIEXEC_NUMPROC_FLAG / MPIEXEC_PREFLAGS)
# and checks what the launcher does: marker "launcher", set per test by tests/conftest.py -- argv and
# hostfiles, a rank killed (-9) or raising (fail-fast, exit codes), SIGTERM and Slurm's time-limit signal,
# rank 0's messages and progress forwarded (usage errors, "[rank N]", --quiet, the bar), the example at 2
# ranks. Once, under MPICH: the rest, including the tests marked mpi_agnostic("why") -- they start jobs but
# check bytes, resume, validate or a case, which do not depend on the MPI.
#   MPI_KINDS="mpich"    restricts the run to one MPI (default: "mpich openmpi").
#   USE_UV=0             installs the venvs with pip instead of uv (scripts/mpi_launcher.sh: venv_install).
#   PYTEST_WORKERS=N     xdist workers of the serial suites (default 4: the suite waits on subprocesses,
#                        sleeps and fsync, so twice the 2 cores of the machine it was tuned on keeps them busy).
# Venvs it creates (about 1.7 GB): .venv-uv (the installer), .venv (MPICH, test, lint, docs), .venv-openmpi (Open MPI, test), and for the
# real Cobre solver .venv-cobre (cobre-python 0.5.1) and .venv-cobre18 (0.18.0), which need a Python >= 3.12
# (scripts/cobre_venv.sh). Everything but .venv is installed in the background while lint runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
MPI_KINDS=${MPI_KINDS:-mpich openmpi}
WORKERS=${PYTEST_WORKERS:-4}
# Bytecode caches on (some environments set PYTHONDONTWRITEBYTECODE=1): the suite starts hundreds of Python
# processes (CLI runs, MPI ranks, pytest on every rank), each compiling the package and pytest's rewritten
# test modules from source without them: test_reliability.py and test_cli.py took 226 s of CPU that way and
# 182 s with the caches (one run each, 2 workers). The package is compiled once, below, before the xdist
# workers race to do it; __pycache__/ is in .gitignore.
unset PYTHONDONTWRITEBYTECODE
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# Open MPI's session directories (ompi.<pid>) in this run's own directory, not the shared /tmp: one left by a
# launcher a test kills makes a later launcher given the same pid fail before any rank starts (exit 213);
# tests/conftest.py removes those of dead launchers after every test.
export PRTE_MCA_prte_tmpdir_base="$logs/ompi"
mkdir -p "$PRTE_MCA_prte_tmpdir_base"
start=$SECONDS
stamp() { printf '== [%d:%02d] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }

# The venvs are installed with uv (USE_UV=0: with pip): see venv_install in scripts/mpi_launcher.sh.
export USE_UV=${USE_UV:-1}
if [ "$USE_UV" = 1 ]; then
    uv_path >/dev/null  # once, before the background installs below share it
fi
# Background set-up: installing mostly waits on the network and the disk, so it overlaps with lint.
declare -A setup_pid=()
for kind in $MPI_KINDS; do
    [ "$kind" = mpich ] && continue
    mpi_setup_venv "$kind" test >"$logs/venv-$kind.log" 2>&1 &
    setup_pid[$kind]=$!
done
# The real Cobre solver for tests/test_cobre_real.py (0.5.1) and tests/test_cobre_real018.py, test_formats.py (0.18.0):
# cobre-python needs Python >= 3.12, so each release has its own venv; a missing one skips those tests
# locally, and fails here under CI.
cobre_venv() {  # $1: variable to export, $2: cobre-python version (scripts/cobre_venv.sh picks the venv)
    if [ -z "${!1:-}" ]; then
        bash scripts/cobre_venv.sh "$2" >"$logs/$1" 2>"$logs/$1.err" || true
    fi
}
cobre_venv COBRE_PYTHON 0.5.1 &
cobre_pid=$!
cobre_venv COBRE18_PYTHON 0.18.0 &
cobre18_pid=$!

stamp "venv .venv (MPICH, test, lint, docs)"
mpi_setup_venv mpich test,lint,docs
.venv/bin/python -m compileall -q -j 0 cobre_mpi_io >/dev/null

stamp "lint: ruff, mypy --strict"
.venv/bin/ruff check cobre_mpi_io tests examples
.venv/bin/mypy cobre_mpi_io

wait "$cobre_pid" "$cobre18_pid"
for var in COBRE_PYTHON COBRE18_PYTHON; do
    [ -n "${!var:-}" ] && continue
    if [ -s "$logs/$var" ]; then
        export "$var=$(tail -n 1 "$logs/$var")"
    elif [ "${CI:-}" = true ]; then
        cat "$logs/$var.err" >&2
        echo "ERROR: scripts/cobre_venv.sh failed for $var (CI=true)" >&2
        exit 1
    else
        echo "warning: no Cobre venv for $var ($(tail -n 1 "$logs/$var.err")): its real-Cobre tests skip" >&2
    fi
done

read -r first _ <<< "$MPI_KINDS"
for kind in $MPI_KINDS; do
    if [ -n "${setup_pid[$kind]:-}" ]; then
        wait "${setup_pid[$kind]}" || { cat "$logs/venv-$kind.log" >&2; echo "ERROR: venv for $kind failed" >&2; exit 1; }
    fi
    use_mpi "$kind"
    (
        export PATH="$MPI_VENV/bin:$PATH"
        # --basetemp: this run's own temp root, removed at the end (pytest's default, /tmp/pytest-of-USER, is
        # shared with every other pytest session of the user and keeps the last 3 sessions' files).
        # The whole serial suite under the first MPI; under the others only the launcher tests (above).
        # --maxschedchunk 2: each worker takes two tests at a time (xdist's default hands each a quarter of
        # its share up front, so the slow tests tests/conftest.py puts first would queue on one worker).
        if [ "$kind" = "$first" ]; then
            stamp "[$kind] serial suite on $WORKERS workers (launcher: $MPIEXEC $MPIEXEC_NUMPROC_FLAG N $MPIEXEC_PREFLAGS)"
            python -m pytest -q -rs -p no:cacheprovider --color=no -n "$WORKERS" --maxschedchunk 2 --durations 15 --basetemp "$logs/tmp-$kind" tests
        else
            stamp "[$kind] launcher tests (start MPI jobs, check the launcher), on $WORKERS workers (launcher: $MPIEXEC $MPIEXEC_NUMPROC_FLAG N $MPIEXEC_PREFLAGS)"
            python -m pytest -q -rs -p no:cacheprovider --color=no -n "$WORKERS" --maxschedchunk 2 --basetemp "$logs/tmp-$kind" \
                -m launcher tests
        fi
        # Only the modules that hold MPI tests: every rank collects what it is given, and collecting the whole
        # suite to run its ~30 MPI tests took 37 s against 30 s for those 9 modules (2 ranks, MPICH, here).
        mapfile -t mpi_modules < <(grep -l 'mark\.mpi' tests/test_*.py)
        for n in 2 3; do
            stamp "[$kind] MPI tests on $n ranks"
            mpiexec_n "$n" python -m pytest -q -rs -p no:cacheprovider --color=no --with-mpi -m mpi "${mpi_modules[@]}"
        done
    )
done
stamp "all tests passed"
