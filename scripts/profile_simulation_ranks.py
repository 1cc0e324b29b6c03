"""Where the simulation writer's time goes at N ranks: wall and CPU (all threads) per phase, medians.

    mpiexec -n 1 python scripts/profile_simulation_ranks.py 16 3 /tmp/prof
    mpiexec -n 2 python scripts/profile_simulation_ranks.py 16 3 /tmp/prof

Arguments: scenarios, repeats, scratch directory (emptied between runs). On the same production-scale
payloads, per rank: build (validation + Arrow tables: the producer's work), encode (pyarrow write_table
into memory with the writer's settings: the I/O thread's CPU), ours (the whole SimulationParquetWriter
run, durability commit) and ours_none (durability none). Rank 0 prints one JSON line: for each phase the
median over repeats of the slowest rank's wall time and of the CPU time summed over ranks
(getrusage(RUSAGE_SELF): every thread). See docs/performance.md.
"""
import io, json, os, resource, shutil, statistics, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from mpi4py import MPI
from cobre_mpi_io import System
from cobre_mpi_io import mpi
from cobre_mpi_io.parquet import ParquetConfig
from cobre_mpi_io.schemas import table
from cobre_mpi_io.simulation.payload import validate_result
from cobre_mpi_io.simulation.tables import build_table
from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter, tables_for_detail
from cobre_mpi_io.testing.simulation import synthetic_result

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
n, repeats, root = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
system = System.synthetic("production")
owned = mpi.owned_scenarios(n, rank, size)
payloads = [synthetic_result(system, s, 7) for s in owned]
names = tables_for_detail(system, "full")
cfg = ParquetConfig()

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def measure(fn):
    comm.Barrier()
    w0, c0 = time.perf_counter(), cpu()
    fn()
    w, c = time.perf_counter() - w0, cpu() - c0
    comm.Barrier()
    wall_all = time.perf_counter() - w0
    return w, c, wall_all

def build():
    out = []
    for r in payloads:
        vr = validate_result(r, system)
        for name in names:
            out.append((name, build_table(name, vr.tables[name], system)))
    return out

tables = build()
def encode():
    for name, t in tables:
        buf = io.BytesIO()
        pq.write_table(t, buf, compression=cfg.compression, compression_level=cfg.compression_level,
                       row_group_size=cfg.row_group_size, use_dictionary=table(name).key_columns,
                       dictionary_pagesize_limit=cfg.dictionary_page_limit, write_statistics=True)

def ours(durability="commit"):
    d = root / "ours"
    with SimulationParquetWriter(d, system, SimulationConfig(num_scenarios=n, durability=durability), comm) as w:
        for r in payloads:
            w.write_scenario(r)

def ours_none():
    ours("none")

def clean():
    if rank == 0:
        shutil.rmtree(root / "ours", ignore_errors=True)
        os.sync()
    comm.Barrier()

res = {"build": [], "encode": [], "ours": [], "ours_none": []}
for _ in range(repeats):
    res["build"].append(measure(build))
    res["encode"].append(measure(encode))
    clean()
    res["ours"].append(measure(ours))
    clean()
    res["ours_none"].append(measure(ours_none))
    clean()
gathered = comm.gather(res, root=0)
if rank == 0:
    summary = {"world_size": size, "scenarios": n, "repeats": repeats, "load": os.getloadavg()[0]}
    for k in res:
        summary[k] = {
            "wall_max_over_ranks": statistics.median(max(g[k][i][2] for g in gathered) for i in range(repeats)),
            "cpu_sum_over_ranks": statistics.median(sum(g[k][i][1] for g in gathered) for i in range(repeats)),
            "cpu_per_rank": [statistics.median(x[1] for x in g[k]) for g in gathered],
            "wall_per_rank": [statistics.median(x[0] for x in g[k]) for g in gathered],
        }
    print(json.dumps(summary))
