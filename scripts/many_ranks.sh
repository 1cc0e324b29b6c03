#!/usr/bin/env bash
# Many ranks on one machine: the demo at N ranks (default 64; oversubscribed on a small machine), under MPICH
# and Open MPI; validates the run, compares its simulation checksum with a 1-rank run of the same arguments,
# and prints the wall time of both and the finalize time when the demo's JSON summary reports one.
#   scripts/many_ranks.sh [N]        MPI_KINDS="mpich" or "openmpi" for one MPI; SCEN, ITER to change the size
# The demo's summary has no finalize time (yet); BENCH_FINALIZE=1 also times finalize at N ranks with
# `cobre-mpi-io bench finalize` (SCEN scenarios x 10 tables of real records, medians of 3).
# Neither MPI needs more than the launcher settings at 64 ranks here: Hydra as is, Open MPI with
# --oversubscribe (in MPIEXEC_PREFLAGS; it then also yields instead of spinning while waiting).
# Exit status 0 when every run completed, validated and matched the 1-rank checksum.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi_launcher.sh
N=${1:-64}
MPI_KINDS=${MPI_KINDS:-mpich openmpi}
SCEN=${SCEN:-128}
ITER=${ITER:-2}
TIMEOUT=${MANY_RANKS_TIMEOUT:-900}
ARGS=(--scenarios "$SCEN" --iterations "$ITER")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
passed=0
failed=0

summary_field() {  # summary_field FILE: "checksum wall_seconds finalize_seconds" from the demo's JSON summary
    "$PY" - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
doc = json.loads(text[text.index("{"):text.rindex("}") + 1])
def find(d, key):
    if isinstance(d, dict):
        for k, v in d.items():
            if key in k and isinstance(v, (int, float)):
                return v
            hit = find(v, key)
            if hit is not None:
                return hit
    return None
fin = find(doc, "finalize")
print(doc.get("simulation", {}).get("checksum", ""), doc.get("seconds", "?"), "-" if fin is None else fin)
PY
}
manifest_checksum() {
    "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['checksum']['value'])" "$1/simulation/_manifest.json"
}

for kind in $MPI_KINDS; do
    [ -x "$(mpi_venv "$kind")/bin/mpiexec" ] || mpi_setup_venv "$kind" ""
    use_mpi "$kind"
    PY=$MPI_VENV/bin/python
    for n in 1 "$N"; do
        out=$work/$kind-$n
        t0=$(date +%s.%N)
        if ! timeout -k 10 "$TIMEOUT" bash -c '. scripts/mpi_launcher.sh; n=$1; shift; mpiexec_n "$n" "$@"' _ \
                "$n" "$PY" -m cobre_mpi_io demo --output "$out" "${ARGS[@]}" > "$out.json" 2> "$out.err"; then
            echo "FAIL $kind/$n-ranks (demo failed: $(tail -c 400 "$out.err"))"
            status=1; failed=$((failed + 1))
            continue
        fi
        wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        read -r sum demo_s fin < <(summary_field "$out.json")
        [ -n "$sum" ] || sum=$(manifest_checksum "$out")
        if ! "$MPI_VENV/bin/cobre-mpi-io" validate "$out" > "$out.validate" 2>&1; then
            echo "FAIL $kind/$n-ranks (validate: $(head -c 400 "$out.validate"))"
            status=1; failed=$((failed + 1))
            continue
        fi
        if [ "$n" = 1 ]; then
            ref=$sum
            echo "ok   $kind/1-rank: wall ${wall}s (demo ${demo_s}s), finalize ${fin}s, checksum $sum"
        elif [ "$sum" = "$ref" ]; then
            passed=$((passed + 1))
            echo "PASS $kind/$n-ranks: wall ${wall}s (demo ${demo_s}s), finalize ${fin}s, checksum $sum == 1-rank run, valid"
            if [ "${BENCH_FINALIZE:-0}" = 1 ]; then
                bash -c '. scripts/mpi_launcher.sh; n=$1; shift; mpiexec_n "$n" "$@"' _ "$n" \
                    "$MPI_VENV/bin/cobre-mpi-io" bench finalize --scenarios "$SCEN" --tables 10 --repeats 3 \
                    --output "$work/bf-$kind" --json > "$work/bf-$kind.json" 2> "$work/bf-$kind.err" \
                    && "$PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print("     %s/%s-ranks bench finalize (%d records): total %.3fs = gather %.3fs + assembly %.3fs + write %.3fs" % (sys.argv[2], d["world_size"], d["records"], d["total_seconds"], d["gather_seconds"], d["assembly_seconds"], d["write_seconds"]))' "$work/bf-$kind.json" "$kind" \
                    || echo "     $kind/$n-ranks bench finalize failed: $(tail -c 300 "$work/bf-$kind.err")"
            fi
        else
            echo "FAIL $kind/$n-ranks (checksum $sum != 1-rank $ref)"
            status=1; failed=$((failed + 1))
        fi
    done
done
echo "$passed passed, $failed failed"
exit $status
