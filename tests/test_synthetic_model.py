"""The demo's synthetic solver hangs together (issue 16 item 4): one cost model drives the training
bounds and the simulation, and deficits are occasional.

A demo run under mpiexec, read back as a user would: the simulated mean stage-0 ``total_cost`` (the
cost from stage 0 onward) is within a factor of 2 of the final lower bound, the scenario total near
it too, and a deficit is neither in every stage of every scenario nor most of the cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from cobre_mpi_io.system.model import System
from cobre_mpi_io.testing.simulation import expected_stage_costs, expected_total_cost, synthetic_result
from cobre_mpi_io.testing.training import synthetic_training

pytestmark = pytest.mark.timeout(120)

DATA = Path(__file__).parent / "data"


def _check_run(out: Path) -> None:
    lb = pq.read_table(out / "training" / "convergence.parquet").column("lower_bound").to_pylist()[-1]
    costs = ds.dataset(out / "simulation" / "costs", format="parquet", partitioning="hive").to_table(
        columns=["scenario_id", "stage_id", "block_id", "total_cost", "immediate_cost", "deficit_cost"])
    stage = costs.filter(pc.is_null(costs.column("block_id")))
    s0 = stage.filter(pc.equal(stage.column("stage_id"), 0)).column("total_cost").to_numpy()
    assert 0.5 <= s0.mean() / lb <= 2.0, (s0.mean(), lb)
    per_scenario = np.bincount(stage.column("scenario_id").to_numpy(), stage.column("immediate_cost").to_numpy())
    assert 0.5 <= per_scenario.mean() / lb <= 2.0
    # deficits are occasional: not in every stage of every scenario, and not most of the cost
    deficit = stage.column("deficit_cost").to_numpy()
    share = deficit.sum() / stage.column("immediate_cost").to_numpy().sum()
    assert share < 0.5, share
    st = stage.column("stage_id").to_numpy()
    p = np.array([(deficit[st == s] > 0).mean() for s in np.unique(st)])
    assert p.min() < 0.5 and p.mean() < 0.5, p
    buses = ds.dataset(out / "simulation" / "buses", format="parquet", partitioning="hive")
    if buses.files:
        price = buses.to_table(columns=["spot_price"]).column("spot_price").to_numpy()
        assert np.median(price) < 1000.0  # the price is mostly a thermal's cost, not the deficit cost


@pytest.mark.mpi_agnostic("the synthetic cost model; the launcher only starts the demo")
def test_demo_costs_hang_together(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "24", "--iterations", "8", "--quiet", n=2)
    _check_run(out)


def test_case_costs_hang_together(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_cli("demo", "--output", str(out), "--case", str(DATA / "4ree"), "--scenarios", "12", "--iterations", "6",
            "--quiet")
    _check_run(out)


def test_one_cost_model() -> None:
    system = System.synthetic("small")
    stage_costs = expected_stage_costs(system, 7)
    assert stage_costs.shape == (system.num_stages,) and (stage_costs > 0).all()
    assert expected_total_cost(system, 7) == pytest.approx(stage_costs.sum())
    # the lower bound approaches the model's expected cost from below, the upper bound from above
    lb = synthetic_training(system, 30, 1, 4, seed=7).iterations[-1]
    assert lb.lower_bound == pytest.approx(stage_costs.sum(), rel=0.02)
    assert lb.upper_bound_mean is not None and lb.upper_bound_mean >= lb.lower_bound
    # the simulated future cost of stage t is the expected cost of the later stages
    r = synthetic_result(system, 3, 7)
    c = r.tables["costs"]
    rows = np.ma.getmaskarray(c["block_id"])
    np.testing.assert_allclose(c["future_cost"][rows], [stage_costs[t + 1:].sum() for t in range(system.num_stages)])
    np.testing.assert_allclose(c["total_cost"], c["immediate_cost"] + c["future_cost"])
