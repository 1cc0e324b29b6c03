#!/usr/bin/env bash
# Time `cobre-mpi-io validate` on two demo outputs, warm cache, under `ulimit -n 256`:
#   production: 200 production-scale scenarios (2,000 simulation files, ~500 MB, 2 training iterations)
#   small:      2,000 small-scale scenarios (20,000 simulation files, ~190 MB, 2 training iterations)
# Each dataset is generated once (kept; pass other paths to reuse yours), validated once to warm the page
# cache, then timed REPEATS times as a plain process and, with MPI_RANKS > 1, under mpiexec; prints the
# median wall time and CPU time (user+sys, all processes) of each. Run it alone on the machine (a benchmark);
# on a shared machine the CPU time is the steadier figure.
#
#   scripts/bench_validate.sh [PROD_DIR] [SMALL_DIR]
#   REPEATS=7 MPI_RANKS=2 THREADS=2 scripts/bench_validate.sh /tmp/val_prod /tmp/val_small2000
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CLI="$VENV/bin/cobre-mpi-io"
MPIEXEC="${MPIEXEC:-$VENV/bin/mpiexec}"
PROD="${1:-/tmp/val_prod}"
SMALL="${2:-/tmp/val_small2000}"
REPEATS="${REPEATS:-5}"
MPI_RANKS="${MPI_RANKS:-2}"
THREADS="${THREADS:-}"
LIMIT="${LIMIT:-256}"

ulimit -n "$LIMIT"
echo "open-file limit: $(ulimit -n); repeats: $REPEATS; $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"

make_data() {  # DIR SCALE SCENARIOS
    if [[ ! -f "$1/simulation/_manifest.json" ]]; then
        echo "generating $1 ($2, $3 scenarios) ..."
        rm -rf "$1"
        "$MPIEXEC" -n 2 "$CLI" demo --output "$1" --scale "$2" --scenarios "$3" --iterations 2 --quiet
    fi
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

time_runs() {  # LABEL CMD...
    local label="$1"; shift
    "$@" >/dev/null  # warm the page cache (and check it runs)
    local walls=() cpus=() out
    out=$(mktemp)
    for _ in $(seq "$REPEATS"); do
        /usr/bin/time -f "%e %U %S" -o "$out" "$@" >/dev/null
        walls+=("$(awk '{print $1}' "$out")")
        cpus+=("$(awk '{print $2 + $3}' "$out")")
    done
    rm -f "$out"
    printf '%-34s wall median %6.2f s  cpu (user+sys) median %6.2f s   (walls: %s)\n' "$label" \
        "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" \
        "$(printf '%s ' "${walls[@]}")"
}

make_data "$PROD" production 200
make_data "$SMALL" small 2000

extra=()
[[ -n "$THREADS" ]] && extra=(--threads "$THREADS")
for dir in "$PROD" "$SMALL"; do
    files=$("$VENV/bin/python" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['files']))" \
            "$dir/simulation/_manifest.json")
    echo "== $dir: $files simulation files, $(du -sh "$dir" | cut -f1)"
    "$CLI" validate "$dir" "${extra[@]}" | tail -1
    time_runs "validate (1 process)" "$CLI" validate "$dir" "${extra[@]}"
    if (( MPI_RANKS > 1 )); then
        time_runs "mpiexec -n $MPI_RANKS validate" "$MPIEXEC" -n "$MPI_RANKS" "$CLI" validate "$dir" "${extra[@]}"
    fi
    time_runs "validate --deep (1 process)" "$CLI" validate "$dir" --deep "${extra[@]}"
done
