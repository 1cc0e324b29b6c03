"""Resume's verification cost: seconds per GB adopted (issue 14; reported in docs/journal.md).

Writes a complete simulation run (production scale) into OUTPUT, then times
what ``--resume`` does before writing anything: read the run's journal and
verify every partition against its record (size, then xxh64 of every byte:
:func:`cobre_mpi_io.simulation.recovery.scan_scenarios`), with the files in
the page cache ("hot") and evicted from it ("cold": ``os.sync`` then
``posix_fadvise(DONTNEED)`` on every file, no root needed). Medians over
``--repeats``; prints one JSON object.

    python scripts/bench_resume_verify.py --output /tmp/x --scenarios 128 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from mpi4py import MPI

from cobre_mpi_io.journal import read_journal
from cobre_mpi_io.simulation.recovery import scan_scenarios
from cobre_mpi_io.simulation.writer import (
    SimulationConfig,
    SimulationParquetWriter,
    rows_for_detail,
    tables_for_detail,
)
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result


def _evict(root: Path) -> None:
    os.sync()
    for p in root.rglob("*.parquet"):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--scenarios", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    system = System.synthetic("production")
    shutil.rmtree(args.output, ignore_errors=True)
    cfg = SimulationConfig(num_scenarios=args.scenarios)
    with SimulationParquetWriter(args.output, system, cfg, MPI.COMM_SELF) as w:
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(system, sid, 7))
    fp = w.identity.fingerprint
    sim = args.output / "simulation"
    tables = tables_for_detail(system, "full")
    expected = {t: rows_for_detail(system, t, "full") for t in tables}

    def scan() -> tuple[float, int, int]:
        t0 = time.perf_counter()
        res = scan_scenarios(sim, range(args.scenarios), tables, read_journal(args.output, fp), expected,
                             expected_fingerprint=fp)
        dt = time.perf_counter() - t0
        assert len(res.done) == args.scenarios
        return dt, len(res.files), sum(r.bytes for r in res.files)

    hot, cold = [], []
    files = nbytes = 0
    for _ in range(args.repeats):
        _evict(sim)
        dt, files, nbytes = scan()
        cold.append(dt)
        hot.append(scan()[0])
    gb = nbytes / 1e9
    print(json.dumps({
        "scenarios": args.scenarios, "files": files, "bytes": nbytes, "repeats": args.repeats,
        "hot_seconds": statistics.median(hot), "cold_seconds": statistics.median(cold),
        "hot_seconds_per_gb": statistics.median(hot) / gb, "cold_seconds_per_gb": statistics.median(cold) / gb,
        "hot_all": hot, "cold_all": cold,
    }, indent=2))
    shutil.rmtree(args.output, ignore_errors=True)


if __name__ == "__main__":
    main()
