"""The demo: a synthetic Cobre run written through the package, under ``mpiexec``.

``cobre-mpi-io demo --output DIR`` builds the system (built-in or
``--case``), and every rank generates the synthetic results of the
scenarios it owns and streams them through
:class:`~cobre_mpi_io.simulation.SimulationParquetWriter`.  The bytes of
every file depend only on (case, seed, scenario).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import mpi
from .simulation import SimulationConfig, SimulationParquetWriter
from .synthetic_simulation import synthetic_result
from .system import System

__all__ = ["add_demo_arguments", "demo_main", "load_system", "case_num_scenarios"]


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``cobre-mpi-io demo``."""
    p.add_argument("--output", "-o", required=True, type=Path, help="output directory (created)")
    p.add_argument("--case", type=Path, default=None, help="Cobre case directory (default: built-in system)")
    p.add_argument("--scale", choices=("small", "production"), default="small",
                   help="built-in system scale (ignored with --case)")
    p.add_argument("--scenarios", type=int, default=None,
                   help="number of scenarios (default: the case's simulation.num_scenarios, else 16)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--detail", choices=("full", "stage", "summary"), default="full")
    p.add_argument("--assignment", choices=("round-robin", "block"), default="round-robin")
    p.add_argument("--queue-capacity", type=int, default=64)
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --output (write only the missing scenarios)")
    p.add_argument("--fail-rank", type=int, default=None, help="(testing) this rank raises ...")
    p.add_argument("--fail-after", type=int, default=0, help="(testing) ... after writing this many scenarios")
    p.add_argument("--slow", type=float, default=0.0,
                   help="(testing) seconds to sleep per scenario, to make a run last")
    p.add_argument("--quiet", action="store_true", help="no summary on stdout")


def load_system(case: Path | None, scale: str) -> System:
    """The case's system, or the built-in one of ``scale``."""
    return System.from_case(case) if case is not None else System.synthetic(scale)


def case_num_scenarios(case: Path | None) -> int | None:
    """``simulation.num_scenarios`` of the case's ``config.json``, if any."""
    if case is None or not (case / "config.json").exists():
        return None
    try:
        n = json.loads((case / "config.json").read_text())["simulation"]["num_scenarios"]
        return int(n)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None


def run_simulation(args: argparse.Namespace, system: System, comm: Any) -> Any:
    """Simulation phase of the demo: returns the manifest (collective)."""
    rank = mpi.rank_of(comm)
    n = args.scenarios or case_num_scenarios(args.case) or 16
    cfg = SimulationConfig(num_scenarios=n, detail=args.detail, assignment=args.assignment,
                           queue_capacity=args.queue_capacity, resume=args.resume)
    with SimulationParquetWriter(args.output, system, cfg, comm) as writer:
        for k, sid in enumerate(writer.pending_scenarios()):
            if args.fail_rank == rank and k >= args.fail_after:
                raise RuntimeError(f"injected failure on rank {rank} after {k} scenario(s) (--fail-rank)")
            writer.write_scenario(synthetic_result(system, sid, args.seed))
            if args.slow:
                time.sleep(args.slow)
    return writer.finalize()


def demo_main(args: argparse.Namespace) -> int:
    """Run the demo; collective over ``MPI.COMM_WORLD``."""
    comm = mpi.resolve_comm(None)
    rank = mpi.rank_of(comm)
    system = mpi.run_agreed(comm, lambda: load_system(args.case, args.scale), str(args.case or args.scale))
    assert system is not None
    t0 = time.perf_counter()
    manifest = run_simulation(args, system, comm)
    if rank == 0 and not args.quiet:
        total_bytes = sum(e.bytes for e in manifest.files.values())
        print(json.dumps({
            "output": str(args.output), "system": system.name, "world_size": mpi.size_of(comm),
            "simulation": {"status": manifest.status, "scenarios": manifest.scenarios_completed,
                           "files": len(manifest.files), "bytes": total_bytes,
                           "checksum": manifest.checksum_value},
            "seconds": round(time.perf_counter() - t0, 3),
        }, indent=2))
        sys.stdout.flush()
    return 0
