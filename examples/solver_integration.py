"""A solver's run written through cobre_mpi_io, under mpiexec: copy this and put your LP behind it.

Run::

    mpiexec -n 2 python examples/solver_integration.py OUTPUT_DIR [CASE_DIR]

``CASE_DIR`` is a Cobre case (e.g. ``tests/data/4ree``); without it the
built-in ``System.synthetic("small")`` is used (every entity type, inflow
lags, generic constraints).  The script uses only the package's public API
(``from cobre_mpi_io import ...``) and mpi4py.  What it shows:

0. **The run** — :func:`open_run` opens the output directory once for the
   whole run (a context manager): it takes the directory's claim, refuses a
   directory that already holds a run (finished or not) or other files,
   records the run's identity (case files, configuration, library version)
   in ``OUT/_journal/identity.json`` before any data, hands out the writers
   below, and releases the claim on any exception.  Running this script twice
   into one directory is refused before anything is written; the first run
   stays valid.
1. **Training** — rank 0 records each iteration's convergence row, every rank
   its own timing row (``run.training_writer()``); the policy (Benders
   cuts built from the duals of the state constraints, and the LP bases) is
   written with ``run.write_policy``.
2. **Simulation** — every rank solves the scenarios it owns.  An LP solution
   comes out as one primal vector ``x`` and one dual vector ``y`` (here a toy
   "solver"): their layout (:class:`LpLayout`) says which range of ``x`` or
   ``y`` holds which variable for every entity, in the order of
   :meth:`System.ids`.  Each scenario's payload starts from
   :func:`empty_scenario_result` (every table and column, keys filled, values
   NaN so that a forgotten column is refused), and :meth:`System.row_slice`
   gives the rows of (table, stage, block) the vectors fill.
   ``run.simulation_writer()`` validates each payload and writes it from
   a background thread.
3. ``run.write_results`` writes dictionaries, training tables, manifests,
   ``metadata.json`` and the ``_SUCCESS`` markers, collectively.
4. :func:`validate_simulation` checks the tree; the exit status is 0 only
   when it is valid on every rank.

An error is an :class:`OutputError` naming file, table, column or scenario;
a payload error lists every problem of the payload at once.  Errors the
package raises are the same on every rank, so ``main`` prints rank 0's and
every rank exits 1 (nothing hangs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from cobre_mpi_io import (
    IterationRecord,
    OutputError,
    PolicyMetadata,
    RankTimingRecord,
    Run,
    RunConfig,
    SimulationOutput,
    SimulationScenarioResult,
    StageBasis,
    StageCuts,
    System,
    TrainingOutput,
    empty_scenario_result,
    open_run,
    validate_simulation,
)

NUM_SCENARIOS = 8
ITERATIONS = 5
FORWARD_PASSES = 2
SEED = 42
HM3_PER_M3S_HOUR = 3600.0 / 1e6  # m3/s during one hour, in hm3


# --------------------------------------------------------------------------- the LP's layout
@dataclass(frozen=True)
class LpLayout:
    """Where each variable group lives in the LP's primal (columns) and dual (rows) vectors.

    A group is one variable per entity of a table, entities in ``system.ids(table)`` order:
    ``x[cols["turbined"]]`` is the turbined flow of every hydro, by hydro id.  A solver with
    another entity order maps it once with ``system.index_of(table, its_ids)``.
    """

    cols: dict[str, slice]
    rows: dict[str, slice]
    num_columns: int
    num_rows: int

    @classmethod
    def of(cls, system: System) -> LpLayout:
        n = {t: len(system.ids(t)) for t in ("hydros", "thermals", "exchanges", "buses", "pumping_stations",
                                              "contracts", "non_controllables", "generic_violations")}
        col_groups = [("turbined", "hydros"), ("spillage", "hydros"), ("storage", "hydros"),
                      ("thermal", "thermals"), ("direct", "exchanges"), ("reverse", "exchanges"),
                      ("deficit", "buses"), ("excess", "buses"), ("pumped", "pumping_stations"),
                      ("contract", "contracts"), ("ncs", "non_controllables"), ("curtail", "non_controllables"),
                      ("generic_slack", "generic_violations")]
        row_groups = [("water_balance", "hydros"), ("load_balance", "buses")]
        (cols, num_columns), (rows, num_rows) = _ranges(col_groups, n), _ranges(row_groups, n)
        return cls(cols=cols, rows=rows, num_columns=num_columns, num_rows=num_rows)


def _ranges(groups: list[tuple[str, str]], n: dict[str, int]) -> tuple[dict[str, slice], int]:
    out, start = {}, 0
    for name, table in groups:
        out[name] = slice(start, start + n[table])
        start += n[table]
    return out, start


# --------------------------------------------------------------------------- a toy "solver"
@dataclass
class LpSolution:
    """What a solve returns: primal and dual vectors, objective, basis statuses."""

    x: np.ndarray
    y: np.ndarray
    objective: float
    column_status: np.ndarray
    row_status: np.ndarray


def _finite(a: np.ndarray, fallback: float) -> np.ndarray:
    return np.where(np.isfinite(a), a, fallback)


def solve_block(system: System, lp: LpLayout, storage: np.ndarray, inflow: np.ndarray, hours: float,
                rng: np.random.Generator) -> LpSolution:
    """Stand-in for one block's LP (replace with your solver): a feasible-looking dispatch."""
    hy = sorted(system.hydros, key=lambda e: e.id)
    x = np.zeros(lp.num_columns)
    y = np.zeros(lp.num_rows)
    qmax = _finite(np.array([h.max_turbined_m3s for h in hy]), 1000.0)
    smax = _finite(np.array([h.max_storage_hm3 for h in hy]), 1e5)
    conv = hours * HM3_PER_M3S_HOUR
    turb = np.minimum(rng.uniform(0.3, 0.8, len(hy)) * qmax, storage / conv + inflow)
    end = storage + (inflow - turb) * conv
    spill = np.maximum(end - smax, 0.0) / conv
    x[lp.cols["turbined"]], x[lp.cols["spillage"]] = turb, spill
    x[lp.cols["storage"]] = end - spill * conv
    x[lp.cols["thermal"]] = rng.uniform(0.0, 1.0, lp.cols["thermal"].stop - lp.cols["thermal"].start) * 100.0
    x[lp.cols["direct"]] = rng.uniform(0.0, 50.0, lp.cols["direct"].stop - lp.cols["direct"].start)
    x[lp.cols["pumped"]] = rng.uniform(0.0, 5.0, lp.cols["pumped"].stop - lp.cols["pumped"].start)
    x[lp.cols["contract"]] = rng.uniform(0.0, 20.0, lp.cols["contract"].stop - lp.cols["contract"].start)
    x[lp.cols["ncs"]] = rng.uniform(0.0, 30.0, lp.cols["ncs"].stop - lp.cols["ncs"].start)
    slack = lp.cols["generic_slack"]
    x[slack] = np.where(rng.uniform(0, 1, slack.stop - slack.start) < 0.1, rng.uniform(0.1, 2.0), 0.0)
    y[lp.rows["water_balance"]] = -rng.uniform(50.0, 250.0, len(hy))  # $/hm3: the water values
    y[lp.rows["load_balance"]] = rng.uniform(20.0, 300.0, len(system.buses))  # $/MWh: the spot prices
    return LpSolution(x, y, objective=float(x[lp.cols["thermal"]].sum() * hours * 80.0),
                      column_status=rng.integers(0, 3, lp.num_columns).astype(np.uint8),
                      row_status=rng.integers(0, 3, lp.num_rows).astype(np.uint8))


# --------------------------------------------------------------------------- payload from LP vectors
def scenario_payload(system: System, lp: LpLayout, scenario_id: int) -> SimulationScenarioResult:
    """Solve every (stage, block) of one scenario and copy the LP vectors into its payload."""
    rng = np.random.default_rng([SEED, scenario_id])
    p = empty_scenario_result(system, scenario_id)  # every table and column; values NaN until filled
    tb = p.tables
    hy = sorted(system.hydros, key=lambda e: e.id)
    th = sorted(system.thermals, key=lambda e: e.id)
    prod = np.array([h.productivity_mw_per_m3s for h in hy])
    t_cost = np.array([t.cost_per_mwh for t in th])
    storage = np.array([h.initial_storage_hm3 if h.initial_storage_hm3 is not None else h.min_storage_hm3
                        for h in hy])
    max_lag = int(system.ar_orders.max()) if len(hy) else 0
    history = rng.uniform(100.0, 1000.0, (max_lag + system.num_stages, len(hy)))  # inflows, m3/s
    generic_rows: list[tuple[int, int, np.ndarray, np.ndarray]] = []

    for t in range(system.num_stages):
        inflow = history[max_lag + t]
        stage_costs = dict.fromkeys(p.category_costs, 0.0)  # the 14 cost components, summed over the blocks
        for b in range(int(system.blocks_per_stage[t])):
            hours = float(system.hours_matrix[t, b])
            sol = solve_block(system, lp, storage, inflow, hours, rng)
            x, y = sol.x, sol.y

            if "hydros" in tb:
                h, r = tb["hydros"], system.row_slice("hydros", t, b)
                h["turbined_m3s"][r] = x[lp.cols["turbined"]]
                h["spillage_m3s"][r] = x[lp.cols["spillage"]]
                h["incremental_inflow_m3s"][r] = inflow
                h["inflow_m3s"][r] = inflow
                h["storage_initial_hm3"][r] = storage
                h["storage_final_hm3"][r] = x[lp.cols["storage"]]
                h["generation_mw"][r] = x[lp.cols["turbined"]] * prod
                h["productivity_mw_per_m3s"][r] = prod
                h["spillage_cost"][r] = x[lp.cols["spillage"]] * hours * 0.001
                h["water_value_per_hm3"][r] = -y[lp.rows["water_balance"]]
                h["storage_binding_code"][r] = 0  # none binding
                for c in ("turbined_slack_m3s", "outflow_slack_below_m3s", "outflow_slack_above_m3s",
                          "generation_slack_mw", "storage_violation_below_hm3", "filling_target_violation_hm3",
                          "evaporation_violation_m3s", "inflow_nonnegativity_slack_m3s"):
                    h[c][r] = 0.0  # slacks this LP does not have: 0, said explicitly
                storage = x[lp.cols["storage"]]
            if "thermals" in tb:
                g, r = tb["thermals"], system.row_slice("thermals", t, b)
                g["generation_mw"][r] = x[lp.cols["thermal"]]
                g["generation_cost"][r] = x[lp.cols["thermal"]] * hours * t_cost
                g["is_gnl"][r] = False  # gnl_* columns stay null (NaN): no GNL units here
            if "exchanges" in tb:
                e, r = tb["exchanges"], system.row_slice("exchanges", t, b)
                e["direct_flow_mw"][r] = x[lp.cols["direct"]]
                e["reverse_flow_mw"][r] = x[lp.cols["reverse"]]
                e["exchange_cost"][r] = (x[lp.cols["direct"]] + x[lp.cols["reverse"]]) * hours * 0.01
            if "buses" in tb:
                u, r = tb["buses"], system.row_slice("buses", t, b)
                u["load_mw"][r] = 500.0
                u["deficit_mw"][r] = x[lp.cols["deficit"]]
                u["excess_mw"][r] = x[lp.cols["excess"]]
                u["spot_price"][r] = y[lp.rows["load_balance"]]
            if "pumping_stations" in tb:
                q, r = tb["pumping_stations"], system.row_slice("pumping_stations", t, b)
                q["pumped_flow_m3s"][r] = x[lp.cols["pumped"]]
                q["power_consumption_mw"][r] = x[lp.cols["pumped"]] * 0.4
                q["pumping_cost"][r] = x[lp.cols["pumped"]] * 0.4 * hours * 50.0
            if "contracts" in tb:
                c_, r = tb["contracts"], system.row_slice("contracts", t, b)
                price = np.array([c.price_per_mwh for c in sorted(system.contracts, key=lambda e: e.id)])
                c_["power_mw"][r] = x[lp.cols["contract"]]
                c_["price_per_mwh"][r] = price
                c_["total_cost"][r] = x[lp.cols["contract"]] * hours * price
            if "non_controllables" in tb:
                n_, r = tb["non_controllables"], system.row_slice("non_controllables", t, b)
                n_["generation_mw"][r] = x[lp.cols["ncs"]]
                n_["available_mw"][r] = x[lp.cols["ncs"]] + x[lp.cols["curtail"]]
                n_["curtailment_mw"][r] = x[lp.cols["curtail"]]
                n_["curtailment_cost"][r] = x[lp.cols["curtail"]] * hours * 0.005
            slack = x[lp.cols["generic_slack"]]
            hit = np.flatnonzero(slack)  # generic_violations: only the rows with a violation
            generic_rows.append((t, b, system.ids("generic_violations")[hit], slack[hit]))

            # costs: one row per block; the components come from the same primal vector
            comp = dict.fromkeys(p.category_costs, 0.0)
            comp["thermal_cost"] = float((x[lp.cols["thermal"]] * hours * t_cost).sum())
            comp["generic_violation_cost"] = float(slack.sum() * 1000.0)
            comp["spillage_cost"] = float(x[lp.cols["spillage"]].sum() * hours * 0.001)
            comp["exchange_cost"] = float(((x[lp.cols["direct"]] + x[lp.cols["reverse"]]) * hours * 0.01).sum())
            _cost_row(tb["costs"], system.row_slice("costs", t, b), comp, future=0.0)
            for name, value in comp.items():
                stage_costs[name] += value
        # the stage-level row: the stage's totals and the future cost (theta) of the stage LP
        _cost_row(tb["costs"], system.row_slice("costs", t), stage_costs,
                  future=sum(stage_costs.values()) * (system.num_stages - 1 - t))
        if "inflow_lags" in tb:
            lags, r = tb["inflow_lags"], system.row_slice("inflow_lags", t)
            hydro_pos = np.repeat(np.arange(len(hy)), system.ar_orders)  # rows: hydro by id, lag 1..order
            lags["inflow_m3s"][r] = history[max_lag + t - lags["lag_index"][r], hydro_pos]

    if "generic_violations" in tb:  # replaces the empty table (no rows) of empty_scenario_result
        p.tables = {**tb, "generic_violations": {
            "stage_id": np.concatenate([np.full(ids.size, t, np.int32) for t, _b, ids, _v in generic_rows]),
            "block_id": np.concatenate([np.full(ids.size, b, np.int32) for _t, b, ids, _v in generic_rows]),
            "constraint_id": np.concatenate([ids for *_tb, ids, _v in generic_rows]).astype(np.int32),
            "slack_value": np.concatenate([v for *_r, v in generic_rows]),
            "slack_cost": np.concatenate([v * 1000.0 for *_r, v in generic_rows]),
        }}
    costs = tb["costs"]
    stage_rows = np.ma.getmaskarray(costs["block_id"])  # stage-level rows: block_id null
    p.category_costs = {name: float(costs[name][stage_rows].sum()) for name in p.category_costs}
    p.total_cost = float(costs["immediate_cost"][stage_rows].sum())
    return p


def _cost_row(costs: Mapping[str, Any], r: slice, comp: dict[str, float], future: float) -> None:
    """One costs row: the 14 components, ``immediate_cost`` (their sum), the future cost, the total."""
    for name, value in comp.items():
        costs[name][r] = value
    immediate = sum(comp.values())
    costs["immediate_cost"][r] = immediate
    costs["future_cost"][r] = future
    costs["total_cost"][r] = immediate + future
    costs["discount_factor"][r] = 1.0


# --------------------------------------------------------------------------- training and policy
def train(run: Run, lp: LpLayout) -> TrainingOutput:
    """Training phase (collective): history rows and, at the end, the policy checkpoint."""
    system, config, comm = run.system, run.config, run.comm
    rank, size = comm.Get_rank(), comm.Get_size()
    started = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    writer = run.training_writer()
    rng = np.random.default_rng([SEED, 1])  # the same on every rank: iteration rows agree
    lower = 0.0
    for k in range(1, ITERATIONS + 1):
        t0 = time.perf_counter()
        lower += 1e6 / k
        upper = lower * (1 + 0.5 / k)
        elapsed = int((time.perf_counter() - t0) * 1000)
        if rank == 0:
            writer.write_iteration(IterationRecord(
                iteration=k, lower_bound=lower, upper_bound_mean=upper, upper_bound_std=0.05 * upper,
                gap_percent=100.0 * (upper - lower) / upper, cuts_added=system.num_stages * FORWARD_PASSES,
                cuts_active=k * system.num_stages * FORWARD_PASSES, time_total_ms=elapsed,
                forward_passes=FORWARD_PASSES, lp_solves=2 * FORWARD_PASSES * system.num_stages))
        writer.write_rank_timing(RankTimingRecord(
            iteration=k, rank=rank, forward_time_ms=elapsed, lp_solves=2 * system.num_stages,
            scenarios_processed=len(range(rank, FORWARD_PASSES, size))))

    # The policy: per stage, one cut per (iteration, forward pass); a cut's coefficients are the duals of
    # the state constraints in state-dictionary order (storage of each hydro by id, then inflow lag 1 of the
    # hydros with AR order >= 1, then lag 2, ...); here the water-balance duals, lags 0.
    d, n = system.state_dimension, ITERATIONS * FORWARD_PASSES
    hydros = len(system.hydros)
    cuts, bases = [], []
    for t in range(system.num_stages):
        coef = np.zeros((n, d))
        coef[:, :hydros] = -rng.uniform(50.0, 250.0, (n, hydros))
        it = np.repeat(np.arange(1, ITERATIONS + 1), FORWARD_PASSES).astype(np.uint32)
        cuts.append(StageCuts(stage_id=t, state_dimension=d, capacity=n, warm_start_count=0,
                              cut_ids=np.arange(n, dtype=np.uint64), slot_index=np.arange(n, dtype=np.uint32),
                              iteration=it, forward_pass_idx=np.tile(np.arange(FORWARD_PASSES), ITERATIONS)
                              .astype(np.uint32), scenario_idx=np.zeros(n, np.uint32),
                              intercepts=rng.uniform(0.0, 1e6, n), coefficients=coef))
        sol = solve_block(system, lp, np.zeros(hydros), np.zeros(hydros), 1.0, rng)
        bases.append(StageBasis(stage_id=t, iteration=ITERATIONS, num_columns=lp.num_columns,
                                num_rows=lp.num_rows, column_status=sol.column_status, row_status=sol.row_status))
    meta = PolicyMetadata(completed_iterations=ITERATIONS, state_dimension=d, num_stages=system.num_stages,
                          final_lower_bound=lower, max_iterations=ITERATIONS, forward_passes=FORWARD_PASSES,
                          rng_seed=SEED, config_hash=config.config_hash, system_hash=system.system_hash)
    run.write_policy(cuts, bases, meta)  # rank 0 writes; collective
    return TrainingOutput(status="complete", started_at=started, max_iterations=ITERATIONS,
                          forward_passes=FORWARD_PASSES, writer=writer, termination_reason="iteration_limit",
                          policy_dir=run.output_dir / "policy", solver="toy-lp")


# --------------------------------------------------------------------------- the run
def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: mpiexec -n 2 python examples/solver_integration.py OUTPUT_DIR [CASE_DIR]", file=sys.stderr)
        return 2
    out = Path(argv[1])
    comm = MPI.COMM_WORLD
    system = System.from_case(argv[2]) if len(argv) == 3 else System.synthetic("small")
    config = RunConfig(seed=SEED, forward_passes=FORWARD_PASSES, max_iterations=ITERATIONS,
                       num_scenarios=NUM_SCENARIOS, detail="full")
    lp = LpLayout.of(system)

    try:
        with open_run(out, system, config, comm=comm) as run:  # claim, identity, refusal of a used directory
            training = train(run, lp)
            with run.simulation_writer() as writer:
                for sid in writer.pending_scenarios():  # the scenarios this rank owns
                    writer.write_scenario(scenario_payload(system, lp, sid))
            manifest = writer.finalize()  # collective; already done by the with block, returns the same manifest
            run.write_results(training, SimulationOutput(manifest))
    except OutputError as exc:  # the same error on every rank: rank 0 says it, every rank exits 1
        if comm.Get_rank() == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 1

    report = validate_simulation(out) if comm.Get_rank() == 0 else None
    report = comm.bcast(report, root=0)
    if comm.Get_rank() == 0:
        print(f"{out}: simulation {manifest.status}, {manifest.scenarios_completed} scenarios, "
              f"{len(manifest.files)} files on {comm.Get_size()} ranks; "
              f"validation {'passed' if report.valid else 'FAILED'}")
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0 if report.valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
