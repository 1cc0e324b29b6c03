#!/usr/bin/env bash
# Set up (idempotently) the venv that runs the real Cobre solver for the tests against it:
#   scripts/cobre_venv.sh          cobre-python 0.5.1 in .venv-cobre/   (tests/test_cobre_real.py)
#   scripts/cobre_venv.sh 0.18.0   cobre-python 0.18.0 in .venv-cobre18/ (tests/test_cobre_real018.py)
# ($COBRE_VENV overrides the directory.) cobre-python (a PyPI wheel) needs Python >= 3.12, newer than
# what the package itself needs, so it lives in its own venv. Prints the venv's python path on stdout
# (the only line on stdout; progress goes to stderr). Fails loudly when no Python >= 3.12 is found.
# Interpreter search order: $COBRE_BASE_PYTHON, pyenv's versions (newest first), python3.13/3.12/python3
# on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-0.5.1}
case "$version" in
    0.5.1) default_venv="$root/.venv-cobre" ;;
    0.18.0) default_venv="$root/.venv-cobre18" ;;
    *) echo "cobre_venv.sh: unknown cobre-python version $version (0.5.1 or 0.18.0)" >&2; exit 2 ;;
esac
venv=${COBRE_VENV:-"$default_venv"}
pin="cobre-python==$version"

ok_python() {  # $1: an interpreter; true when it runs and is >= 3.12
    [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local cand
    if [ -n "${COBRE_BASE_PYTHON:-}" ]; then
        ok_python "$COBRE_BASE_PYTHON" && { echo "$COBRE_BASE_PYTHON"; return 0; }
        echo "cobre_venv.sh: COBRE_BASE_PYTHON=$COBRE_BASE_PYTHON is not a Python >= 3.12" >&2
        return 1
    fi
    local pyenv_root=${PYENV_ROOT:-"$HOME/.pyenv"}
    if [ -d "$pyenv_root/versions" ]; then
        # newest first: 3.13.0 before 3.12.1 (version sort, descending)
        for cand in $(ls -1 "$pyenv_root/versions" | sort -rV); do
            ok_python "$pyenv_root/versions/$cand/bin/python3" && { echo "$pyenv_root/versions/$cand/bin/python3"; return 0; }
        done
    fi
    for cand in python3.13 python3.12 python3; do
        cand=$(command -v "$cand" 2>/dev/null) || continue
        ok_python "$cand" && { echo "$cand"; return 0; }
    done
    return 1
}

if [ -x "$venv/bin/python" ] && ok_python "$venv/bin/python" \
    && "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("cobre-python") != sys.argv[1])' "$version" 2>/dev/null; then
    echo "$venv/bin/python"
    exit 0
fi

if ! base=$(find_python); then
    echo "cobre_venv.sh: ERROR: no Python >= 3.12 found (looked at \$COBRE_BASE_PYTHON, ${PYENV_ROOT:-$HOME/.pyenv}/versions/*, python3.13, python3.12, python3 on PATH); $pin needs one" >&2
    exit 1
fi
echo "cobre_venv.sh: creating $venv with $base ($("$base" --version 2>&1))" >&2
if [ ! -x "$venv/bin/python" ] || ! ok_python "$venv/bin/python"; then
    rm -rf "$venv"
    "$base" -m venv "$venv"
fi
# no bytecode compiled up front: a handful of processes use this venv (VENV_COMPILE=0)
(cd "$root" && . scripts/mpi_launcher.sh && VENV_COMPILE=0 venv_install "$venv/bin/python" "$pin") >&2
"$venv/bin/python" -c 'import cobre' >&2
echo "$venv/bin/python"
