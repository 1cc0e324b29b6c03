#!/usr/bin/env bash
# Time `cobre-mpi-io report` (text, --json, --html) on a small-scale and a production-scale run, and
# compare the three out-of-core engines the analyses could use (duckdb, polars, pyarrow.dataset).
#
#   scripts/bench_report.sh [SMALL_OUT] [PRODUCTION_OUT]       (defaults /tmp/rep_small, /tmp/rep_prod)
#   REPEATS=5       runs per measurement (the median is printed; every run is in the JSON line)
#   ENGINES=0       skip the engine comparison
#
# A missing run is generated first (2 ranks): 2,000 small-scale scenarios, 200 production-scale scenarios.
# Each measurement is a fresh process (imports included): wall time from start to exit, CPU time (user +
# sys, all threads), the children's peak RSS and the 1-minute load average at the end. Run it on a quiet
# machine: on a shared one, wall times spread widely (CPU times much less).
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${1:-/tmp/rep_small}
PROD=${2:-/tmp/rep_prod}
REPEATS=${REPEATS:-5}
ENGINES=${ENGINES:-1}
PY=.venv/bin/python
CLI=.venv/bin/cobre-mpi-io

if [ ! -f "$SMALL/simulation/_manifest.json" ]; then
    echo "== generating $SMALL: 2,000 small-scale scenarios"
    .venv/bin/mpiexec -n 2 "$CLI" demo --output "$SMALL" --scenarios 2000 --iterations 5 --quiet
fi
if [ ! -f "$PROD/simulation/_manifest.json" ]; then
    echo "== generating $PROD: 200 production-scale scenarios"
    .venv/bin/mpiexec -n 2 "$CLI" demo --output "$PROD" --scale production --scenarios 200 --iterations 5 --quiet
fi

# time REPEATS runs of a command; one JSON line: label, median, min, max seconds, peak RSS MB, every run
measure() {
    local label=$1; shift
    "$PY" - "$label" "$REPEATS" "$@" <<'EOF'
import json, os, resource, statistics, subprocess, sys, time
label, n, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
runs, cpus = [], []
for _ in range(n):
    t, c = time.perf_counter(), cpu()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate()
    runs.append(round(time.perf_counter() - t, 3))
    cpus.append(round(cpu() - c, 3))
    if p.returncode != 0:
        sys.exit(f"{label}: exit {p.returncode}: {err.decode()[-500:]}")
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
load = os.getloadavg()[0]
print(json.dumps({"label": label, "median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs),
                  "median_cpu_s": statistics.median(cpus), "peak_rss_mb": round(rss, 1), "load1": round(load, 1),
                  "runs": runs}))
EOF
}

for d in "$SMALL" "$PROD"; do
    name=$(basename "$d")
    files=$(find "$d/simulation" -name data.parquet | wc -l)
    echo "== report on $d ($files partition files), median of $REPEATS"
    measure "$name text" "$CLI" report "$d"
    measure "$name --json" "$CLI" report "$d" --json
    out_html=$(mktemp --suffix=.html)
    measure "$name --html" "$CLI" report "$d" --html "$out_html"
    echo "   html: $(stat -c %s "$out_html") bytes; json: $("$CLI" report "$d" --json | wc -c) bytes;" \
         "text: $("$CLI" report "$d" | wc -l) lines"
    rm -f "$out_html"
done

if [ "$ENGINES" = 1 ]; then
    for d in "$SMALL" "$PROD"; do
        echo "== engines on $d (the same analyses in each; fresh process, imports included), median of $REPEATS"
        for e in duckdb polars pyarrow; do
            measure "$(basename "$d") $e" "$PY" scripts/bench_report_engines.py "$e" "$d"
        done
        echo "   results agree: $(for e in duckdb polars pyarrow; do "$PY" scripts/bench_report_engines.py "$e" "$d" \
             | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["results"], sort_keys=True))'; done \
             | sort -u | wc -l | sed 's/^1$/yes (identical to 6 significant digits)/;s/^[02-9]$/NO/')"
    done
fi
