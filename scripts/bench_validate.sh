#!/usr/bin/env bash
# Time `cobre-mpi-io validate` against the floor of reading and hashing every file of the same tree, in one run.
#
#   small:      2,000 small-scale scenarios (20,000 simulation files, ~200 MB, 2 training iterations)
#   production: 200 production-scale scenarios (2,000 simulation files, ~500 MB), only when PROD is given
#
# Each dataset is generated once (kept; pass other paths to reuse yours) and read once to warm the page cache.
# Then, REPEATS times and interleaved (so both see the same machine load), it times:
#   floor     one process that walks the tree (os.scandir) and reads and xxhash64-hashes every regular file
#             (os.open, readinto a reused buffer, close): the least any byte-for-byte check has to do;
#   validate  `cobre-mpi-io validate DIR` as a user runs it (a new process: imports, planning, every file);
# and prints the median wall time of each and their ratio (the issue 16 target: validate <= 3x floor),
# then the median of `validate --deep` and, with MPI_RANKS > 1, of `mpiexec -n MPI_RANKS validate`.
# Run it alone on the machine (a benchmark); on a shared machine the ratio is the steadier figure.
#
#   scripts/bench_validate.sh [SMALL_DIR] [PROD_DIR]
#   REPEATS=5 MPI_RANKS=2 THREADS=2 scripts/bench_validate.sh /tmp/val_small2000 /tmp/val_prod
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CLI="$VENV/bin/cobre-mpi-io"
PY="$VENV/bin/python"
MPIEXEC="${MPIEXEC:-$VENV/bin/mpiexec}"
SMALL="${1:-/tmp/val_small2000}"
PROD="${2:-}"
REPEATS="${REPEATS:-5}"
MPI_RANKS="${MPI_RANKS:-1}"
THREADS="${THREADS:-}"
LIMIT="${LIMIT:-256}"
DEEP="${DEEP:-1}"

ulimit -n "$LIMIT"
echo "open-file limit: $(ulimit -n); repeats: $REPEATS; $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"

make_data() {  # DIR SCALE SCENARIOS
    if [[ ! -f "$1/simulation/_manifest.json" ]]; then
        echo "generating $1 ($2, $3 scenarios) ..."
        rm -rf "$1"
        "$MPIEXEC" -n 2 "$CLI" demo --output "$1" --scale "$2" --scenarios "$3" --iterations 2 --quiet
    fi
}

FLOOR=$(mktemp --suffix=.py)
OUT=$(mktemp)
trap 'rm -f "$FLOOR" "$OUT"' EXIT
cat > "$FLOOR" <<'EOF'
import os, sys, xxhash
buf = memoryview(bytearray(64 << 20))
stack, files, size = [sys.argv[1]], 0, 0
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif e.is_file(follow_symlinks=False):
                fd = os.open(e.path, os.O_RDONLY)
                h, n = xxhash.xxh64(), 1
                while n:
                    n = os.readv(fd, [buf])
                    h.update(buf[:n])
                    size += n
                os.close(fd)
                h.hexdigest()
                files += 1
print(f"{files} files, {size / 1e6:.0f} MB")
EOF

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

wall() {  # CMD... -> prints the wall time of one run (stdout of CMD discarded)
    /usr/bin/time -f "%e" -o "$OUT" "$@" >/dev/null
    cat "$OUT"
}

time_one() {  # LABEL CMD...: median of REPEATS runs
    local label="$1"; shift
    "$@" >/dev/null
    local walls=()
    for _ in $(seq "$REPEATS"); do walls+=("$(wall "$@")"); done
    printf '%-36s wall median %6.2f s   (walls: %s)\n' "$label" "$(printf '%s\n' "${walls[@]}" | median)" \
        "${walls[*]}"
}

extra=()
[[ -n "$THREADS" ]] && extra=(--threads "$THREADS")
make_data "$SMALL" small 2000
dirs=("$SMALL")
if [[ -n "$PROD" ]]; then make_data "$PROD" production 200; dirs+=("$PROD"); fi

for dir in "${dirs[@]}"; do
    echo "== $dir: $("$PY" "$FLOOR" "$dir"), $(du -sh "$dir" | cut -f1)"
    "$CLI" validate "$dir" "${extra[@]}" | tail -1
    floors=() validates=()
    for _ in $(seq "$REPEATS"); do  # interleaved: both under the same load
        floors+=("$(wall "$PY" "$FLOOR" "$dir")")
        validates+=("$(wall "$CLI" validate "$dir" "${extra[@]}")")
    done
    f=$(printf '%s\n' "${floors[@]}" | median)
    v=$(printf '%s\n' "${validates[@]}" | median)
    printf '%-36s wall median %6.2f s   (walls: %s)\n' "floor: read + hash every file" "$f" "${floors[*]}"
    printf '%-36s wall median %6.2f s   (walls: %s)\n' "validate (1 process)" "$v" "${validates[*]}"
    awk -v v="$v" -v f="$f" 'BEGIN {printf "%-36s %6.2f x the floor\n", "validate / floor", v / f}'
    if (( DEEP )); then time_one "validate --deep (1 process)" "$CLI" validate "$dir" --deep "${extra[@]}"; fi
    if (( MPI_RANKS > 1 )); then
        time_one "mpiexec -n $MPI_RANKS validate" "$MPIEXEC" -n "$MPI_RANKS" "$CLI" validate "$dir" "${extra[@]}"
    fi
done
