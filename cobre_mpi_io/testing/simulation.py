"""Plausible, deterministic synthetic simulation results (for the demo and benchmarks).

:func:`synthetic_result` builds the payload of one scenario from the system,
a seed and the scenario id only, so the bytes of every file depend on
(case, seed, scenario), never on the number of ranks or the order of
arrival.  The numbers are self-consistent:

- water balance per hydro and block: ``storage_final = storage_initial +
  (inflow + pumped in - pumped out - turbined - spillage - evaporation) ×
  hours × 3600 / 1e6``, storage kept within its bounds (spillage takes the
  excess);
- load balance per bus and block: ``load + excess - deficit`` equals
  generation + imports - exports - pumping + line injections, with line
  losses ``(losses_percent/100) × (direct + reverse)`` lost at the receiving end;
- ``immediate_cost`` is the sum of its 14 components, stage-level rows
  aggregate the block rows plus the stage-only penalties, and
  ``total_cost = immediate_cost + future_cost``;
- entities that do not operate in a stage (entry/exit stages) produce nothing;
- dispatch per bus and block: the hydros turbine a random share of their
  capacity (within the water above minimum storage), the thermals cover what
  is missing in merit order (cheapest first), then the hydros draw more on
  their stored water; only what is left is a deficit, priced at the bus's
  deficit cost (so deficits are occasional: dry scenarios, empty reservoirs).
  The spot price is the deficit cost, else the most expensive thermal
  dispatched above its minimum, else a water value;
- one cost model: the ``future_cost`` of stage ``t`` is the expected cost of
  the later stages (:func:`expected_stage_costs`, sample scenarios of this
  same model), and the synthetic training's bounds converge to their sum
  (:func:`expected_total_cost`), so the simulated stage-0 ``total_cost``
  averages near the final lower bound.

The loop is over (stage, block), vectorized over entities.
"""

from __future__ import annotations

import numpy as np

from ..schemas import COST_COMPONENTS
from ..simulation.payload import SimulationScenarioResult
from ..system.entities import OPERATIVE_STATE
from ..system.model import System

__all__ = ["COST_MODEL_SAMPLES", "expected_stage_costs", "expected_total_cost", "synthetic_result",
           "system_seed"]

_M3S_TO_HM3_PER_HOUR = 3600.0 / 1e6


def system_seed(system: System) -> int:
    """A stable integer derived from the system description (the 'case' part of the seed)."""
    return int(system.system_hash.removeprefix("sha256:")[:12], 16)


def _arr(seq: list[float] | list[int], dtype: str = "float64") -> np.ndarray:
    return np.asarray(seq, dtype=dtype)


def _finite(x: np.ndarray, fallback: float) -> np.ndarray:
    return np.where(np.isfinite(x), x, fallback)


def _stage_block_ids(n: int, stage: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 ``stage_id`` and ``block_id`` columns of ``n`` rows."""
    return np.full(n, stage, np.int32), np.full(n, block, np.int32)


def synthetic_result(system: System, scenario_id: int, seed: int = 0) -> SimulationScenarioResult:
    """The synthetic result of ``scenario_id`` (deterministic in system, seed, scenario).

    Parameters
    ----------
    system : System
        The system: its stages, blocks and entities shape every table, and
        its hash (:func:`system_seed`) is part of the random seed.
    scenario_id : int
        The scenario, ``>= 0``; also part of the random seed.
    seed : int, default 0
        The run's seed.

    Returns
    -------
    SimulationScenarioResult
        Block- and stage-level rows of ``costs`` and of every other
        simulation table the system has, with the scenario's discounted
        total cost and its 14 cost-component totals.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, scenario_id, system_seed(system)]))
    return _synthetic(system, scenario_id, rng, _cost_to_go(expected_stage_costs(system, seed)))


COST_MODEL_SAMPLES = 12
"""Sample scenarios :func:`expected_stage_costs` averages (a seed stream apart from the simulated ones)."""
_EXPECTED: dict[tuple[str, int], np.ndarray] = {}


def expected_stage_costs(system: System, seed: int = 0) -> np.ndarray:
    """The expected immediate cost of each stage under the synthetic model (the "true" value function).

    The mean, over :data:`COST_MODEL_SAMPLES` sample scenarios drawn from
    their own seed stream, of the stage-level ``immediate_cost`` that
    :func:`synthetic_result` produces.  One cost model drives both sides of a
    demo run: the simulated ``future_cost`` of stage ``t`` is the sum of
    these over the later stages, and the synthetic training's bounds
    converge to their sum (:func:`expected_total_cost`).  Cached per
    (system, seed).

    Parameters
    ----------
    system : System
        The system.
    seed : int, default 0
        The run's seed.

    Returns
    -------
    numpy.ndarray
        float64, one value ($) per stage.
    """
    key = (system.system_hash, int(seed))
    got = _EXPECTED.get(key)
    if got is None:
        zero = np.zeros(system.num_stages)
        acc = np.zeros(system.num_stages)
        for i in range(COST_MODEL_SAMPLES):
            rng = np.random.default_rng(np.random.SeedSequence([seed, i, system_seed(system), 1]))
            costs = _synthetic(system, i, rng, zero).tables["costs"]
            stage_rows = np.ma.getmaskarray(costs["block_id"])
            acc[costs["stage_id"][stage_rows]] += costs["immediate_cost"][stage_rows]
        got = _EXPECTED[key] = acc / COST_MODEL_SAMPLES
    return got.copy()


def expected_total_cost(system: System, seed: int = 0) -> float:
    """The expected cost from stage 0 to the horizon under the synthetic model ($, undiscounted).

    The optimum the synthetic training's lower bound approaches: the sum of
    :func:`expected_stage_costs`.
    """
    return float(expected_stage_costs(system, seed).sum())


def _cost_to_go(stage_costs: np.ndarray) -> np.ndarray:
    """``out[t]`` = sum of ``stage_costs`` over the stages after ``t``."""
    return np.concatenate((np.cumsum(stage_costs[::-1])[::-1][1:], [0.0]))


def _synthetic(system: System, scenario_id: int, rng: np.random.Generator,
               cost_to_go: np.ndarray) -> SimulationScenarioResult:
    """The synthetic result drawn from ``rng``; ``cost_to_go[t]`` is stage ``t``'s ``future_cost``."""
    T = system.num_stages
    nb = system.blocks_per_stage
    hm = system.hours_matrix

    hy = sorted(system.hydros, key=lambda e: e.id)
    th = sorted(system.thermals, key=lambda e: e.id)
    bu = sorted(system.buses, key=lambda e: e.id)
    ln = sorted(system.lines, key=lambda e: e.id)
    ps = sorted(system.pumping_stations, key=lambda e: e.id)
    ct = sorted(system.contracts, key=lambda e: e.id)
    nc = sorted(system.non_controllables, key=lambda e: e.id)
    gc = sorted(system.generic_constraints, key=lambda e: e.id)
    nH, nT, nB, nL, nP, nC, nN = len(hy), len(th), len(bu), len(ln), len(ps), len(ct), len(nc)
    bus_index = {b.id: i for i, b in enumerate(bu)}
    hydro_index = {h.id: i for i, h in enumerate(hy)}

    # static arrays
    h_min_s = _arr([h.min_storage_hm3 for h in hy])
    h_max_s = _finite(_arr([h.max_storage_hm3 for h in hy]), 1e5)
    h_s0 = _arr([h.initial_storage_hm3 if h.initial_storage_hm3 is not None else 0.6 * m
                 for h, m in zip(hy, h_max_s)])
    h_qmax = _finite(_arr([h.max_turbined_m3s for h in hy]), 1000.0)
    h_prod = _arr([h.productivity_mw_per_m3s for h in hy])
    h_mean = _arr([h.mean_inflow_m3s if h.mean_inflow_m3s is not None else 0.45 * q for h, q in zip(hy, h_qmax)])
    h_bus = np.array([bus_index[h.bus_id] for h in hy], np.int64)  # type: ignore[index]
    t_min = _arr([t.min_mw for t in th])
    t_max = _finite(_arr([t.max_mw for t in th]), 500.0)
    t_cost = _arr([t.cost_per_mwh for t in th])
    t_bus = np.array([bus_index[t.bus_id] for t in th], np.int64)  # type: ignore[index]
    l_src = np.array([bus_index[x.source_bus_id] for x in ln], np.int64)
    l_dst = np.array([bus_index[x.target_bus_id] for x in ln], np.int64)
    l_dir = _finite(_arr([x.direct_mw for x in ln]), 1000.0)
    l_rev = _finite(_arr([x.reverse_mw for x in ln]), 1000.0)
    l_loss = system.losses_fraction
    p_src = np.array([hydro_index[p.source_hydro_id] for p in ps], np.int64)
    p_dst = np.array([hydro_index[p.destination_hydro_id] for p in ps], np.int64)
    p_max = _finite(_arr([p.max_m3s for p in ps]), 100.0)
    p_pow = _arr([p.power_per_m3s for p in ps])
    p_bus = np.array([bus_index[p.bus_id] for p in ps], np.int64)  # type: ignore[index]
    c_min = _arr([c.min_mw for c in ct])
    c_max = _finite(_arr([c.max_mw for c in ct]), 100.0)
    c_price = _arr([c.price_per_mwh for c in ct])
    c_sign = _arr([1.0 if c.type == "import" else -1.0 for c in ct])
    c_bus = np.array([bus_index[c.bus_id] for c in ct], np.int64)  # type: ignore[index]
    n_max = _finite(_arr([n.max_generation_mw for n in nc]), 100.0)
    n_bus = np.array([bus_index[n.bus_id] for n in nc], np.int64)  # type: ignore[index]
    b_def = _arr([b.deficit_cost for b in bu])
    op = OPERATIVE_STATE["operating"]
    on_h = system.operative_states("hydros") == op
    on_t = system.operative_states("thermals") == op
    on_l = system.operative_states("exchanges") == op
    on_p = system.operative_states("pumping_stations") == op
    on_c = system.operative_states("contracts") == op
    on_n = system.operative_states("non_controllables") == op

    # inflow history: AR(1)-like around the mean, with pre-study lags
    max_ar = int(system.ar_orders.max()) if nH else 0
    season = 1.0 + 0.35 * np.sin(2 * np.pi * (np.arange(-max_ar, T) % 12) / 12.0)
    noise = rng.lognormal(0.0, 0.25, size=(max_ar + T, nH))
    inflow_hist = h_mean[None, :] * season[:, None] * noise  # row k = stage k - max_ar
    # load per bus: scaled to the installed capacity, so the system is mostly balanced
    cap_bus = (np.bincount(h_bus, weights=h_qmax * h_prod * 0.5, minlength=nB)
               + np.bincount(t_bus, weights=t_max * 0.6, minlength=nB)
               + np.bincount(n_bus, weights=n_max * 0.3, minlength=nB))
    # a bus with no generation (a fictitious node) has no load; lines to it carry nothing (l_room)
    # thermals sorted by (bus, cost): the merit order of each bus; t_first[bus] = its first position
    t_order = np.lexsort((t_cost, t_bus)) if nT else np.zeros(0, np.int64)
    t_bus_sorted = t_bus[t_order]
    t_first = np.searchsorted(t_bus_sorted, np.arange(nB))
    # a line carries at most a share of the smaller of the two buses it joins
    l_room = 0.5 * np.minimum(cap_bus[l_src], cap_bus[l_dst]) if nL else np.zeros(0)

    rows_total = int(nb.sum())
    out_h: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "hydro_id", "turbined_m3s", "spillage_m3s", "evaporation_m3s",
        "incremental_inflow_m3s", "inflow_m3s", "storage_initial_hm3", "storage_final_hm3", "generation_mw",
        "productivity_mw_per_m3s", "spillage_cost", "water_value_per_hm3", "storage_binding_code",
        "turbined_slack_m3s", "outflow_slack_below_m3s", "outflow_slack_above_m3s", "generation_slack_mw",
        "storage_violation_below_hm3", "filling_target_violation_hm3", "evaporation_violation_m3s",
        "inflow_nonnegativity_slack_m3s")}
    out_t: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "thermal_id", "generation_mw", "generation_cost", "is_gnl",
        "gnl_committed_mw", "gnl_decision_mw")}
    out_l: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "line_id", "direct_flow_mw", "reverse_flow_mw", "exchange_cost")}
    out_b: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "bus_id", "load_mw", "deficit_mw", "excess_mw", "spot_price")}
    out_p: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "pumping_station_id", "pumped_flow_m3s", "power_consumption_mw", "pumping_cost")}
    out_c: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "contract_id", "power_mw", "price_per_mwh", "total_cost")}
    out_n: dict[str, list[np.ndarray]] = {k: [] for k in (
        "stage_id", "block_id", "non_controllable_id", "generation_mw", "available_mw", "curtailment_mw",
        "curtailment_cost")}
    out_g: dict[str, list[np.ndarray]] = {k: [] for k in ("stage_id", "block_id", "constraint_id", "slack_value",
                                                          "slack_cost")}
    cost_rows: list[tuple[int, int | None, dict[str, float]]] = []
    lag_rows: dict[str, list[np.ndarray]] = {"stage_id": [], "hydro_id": [], "lag_index": [], "inflow_m3s": []}

    ids = {k: np.array([e.id for e in v], np.int32) for k, v in
           (("h", hy), ("t", th), ("l", ln), ("b", bu), ("p", ps), ("c", ct), ("n", nc), ("g", gc))}
    storage = h_s0.copy()
    for t in range(T):
        inflow = inflow_hist[t + max_ar] * on_h[t]
        if max_ar:  # one row per (hydro, lag 1..AR order), hydros in id order
            orders = system.ar_orders
            h_idx = np.repeat(np.arange(nH), orders)
            lags = np.concatenate([np.arange(1, int(o) + 1) for o in orders])
            lag_rows["stage_id"].append(np.full(h_idx.size, t, np.int32))
            lag_rows["hydro_id"].append(ids["h"][h_idx])
            lag_rows["lag_index"].append(lags.astype(np.int32))
            lag_rows["inflow_m3s"].append(inflow_hist[t + max_ar - lags, h_idx])
        stage_block_costs: list[dict[str, float]] = []
        for b in range(int(nb[t])):
            hours = float(hm[t, b])
            conv = hours * _M3S_TO_HM3_PER_HOUR
            # pumping
            pflow = rng.uniform(0.0, 0.3, nP) * p_max * on_p[t]
            ppow = pflow * p_pow
            pump_in = np.bincount(p_dst, weights=pflow, minlength=nH)
            pump_out = np.bincount(p_src, weights=pflow, minlength=nH)
            # hydro plan: a random share of the inflow and of 3 % of the stored water, within the turbines
            # and the water above minimum storage
            evap = 0.01 * inflow
            s_init = storage.copy()
            net = inflow + pump_in - pump_out - evap
            cap_q = np.minimum(h_qmax, np.maximum((s_init - h_min_s) / conv + net, 0.0)) * on_h[t]
            plan = np.maximum(net, 0.0) + 0.03 * np.maximum(s_init - h_min_s, 0.0) / conv
            turb = np.minimum(rng.uniform(0.6, 1.0, nH) * plan, cap_q)
            # contracts, non-controllables, lines (one direction at a time, a share of the smaller bus)
            cpow = np.where(on_c[t], c_min + rng.uniform(0, 1, nC) * (c_max - c_min), 0.0)
            avail = rng.uniform(0.2, 1.0, nN) * n_max * on_n[t]
            curt = avail * rng.uniform(0.0, 0.1, nN) * (rng.uniform(0, 1, nN) < 0.3)
            ngen = avail - curt
            frac = rng.uniform(-0.3, 0.3, nL) * on_l[t]
            direct = np.where(frac > 0, frac * np.minimum(l_dir, l_room), 0.0)
            reverse = np.where(frac < 0, -frac * np.minimum(l_rev, l_room), 0.0)
            inj = (np.bincount(l_dst, weights=direct * (1 - l_loss), minlength=nB)
                   - np.bincount(l_src, weights=direct, minlength=nB)
                   + np.bincount(l_src, weights=reverse * (1 - l_loss), minlength=nB)
                   - np.bincount(l_dst, weights=reverse, minlength=nB))
            load = cap_bus * rng.uniform(0.8, 1.05, nB) * (1.12 if b == 0 else 1.0)
            tmin_on = t_min * on_t[t]
            other = (np.bincount(h_bus, weights=turb * h_prod, minlength=nB)
                     + np.bincount(t_bus, weights=tmin_on, minlength=nB)
                     + np.bincount(n_bus, weights=ngen, minlength=nB)
                     + np.bincount(c_bus, weights=cpow * c_sign, minlength=nB)
                     - np.bincount(p_bus, weights=ppow, minlength=nB) + inj)
            need = np.maximum(load - other, 0.0)
            # thermals in merit order per bus (cheapest first) cover what is missing
            room = ((t_max - t_min) * on_t[t])[t_order]
            before = np.concatenate(([0.0], np.cumsum(room)))[:-1]
            before = before - before[t_first[t_bus_sorted]] if nT else before
            extra = np.zeros(nT)
            extra[t_order] = np.clip(need[t_bus_sorted] - before, 0.0, room)
            tgen = tmin_on + extra
            need = np.maximum(need - np.bincount(t_bus, weights=extra, minlength=nB), 0.0)
            # then the hydros draw on their stored water, up to what the turbines and the water allow
            spare = (cap_q - turb) * h_prod
            spare_bus = np.bincount(h_bus, weights=spare, minlength=nB)
            share = np.where(spare_bus > 0, np.minimum(1.0, need / np.where(spare_bus > 0, spare_bus, 1.0)), 0.0)
            turb = turb + share[h_bus] * (cap_q - turb)
            # water balance; what turbining cannot fix (pumping out, evaporation) is a storage violation slack
            s_end = s_init + (net - turb) * conv
            below = np.maximum(h_min_s - s_end, 0.0)
            s_end = s_end + below
            spill = np.maximum(s_end - h_max_s, 0.0) / conv
            s_end = s_init + (net + below / conv - turb - spill) * conv
            storage = s_end
            gen = turb * h_prod
            binding = np.where(s_end >= h_max_s - 1e-9, 2, np.where(s_end <= h_min_s + 1e-9, 1, 0)).astype(np.int8)
            wv = 200.0 * (1.0 - s_end / h_max_s) + 1.0
            s, bb = _stage_block_ids(nH, t, b)
            for k2, v in (("stage_id", s), ("block_id", bb), ("hydro_id", ids["h"]), ("turbined_m3s", turb),
                          ("spillage_m3s", spill), ("evaporation_m3s", evap), ("incremental_inflow_m3s", inflow),
                          ("inflow_m3s", inflow), ("storage_initial_hm3", s_init), ("storage_final_hm3", s_end),
                          ("generation_mw", gen), ("productivity_mw_per_m3s", h_prod),
                          ("spillage_cost", spill * hours * 0.001), ("water_value_per_hm3", wv),
                          ("storage_binding_code", binding), ("turbined_slack_m3s", np.zeros(nH)),
                          ("outflow_slack_below_m3s", np.zeros(nH)), ("outflow_slack_above_m3s", np.zeros(nH)),
                          ("generation_slack_mw", np.zeros(nH)), ("storage_violation_below_hm3", below),
                          ("filling_target_violation_hm3", np.zeros(nH)), ("evaporation_violation_m3s", np.zeros(nH)),
                          ("inflow_nonnegativity_slack_m3s", np.zeros(nH))):
                out_h[k2].append(v)
            tcost = tgen * hours * t_cost
            supply = (np.bincount(h_bus, weights=gen, minlength=nB) + np.bincount(t_bus, weights=tgen, minlength=nB)
                      + np.bincount(n_bus, weights=ngen, minlength=nB)
                      + np.bincount(c_bus, weights=cpow * c_sign, minlength=nB)
                      - np.bincount(p_bus, weights=ppow, minlength=nB) + inj)
            resid = supply - load
            excess = np.maximum(resid, 0.0)
            deficit = np.maximum(-resid, 0.0)
            deficit = np.where(deficit > 1e-9 * np.maximum(load, 1.0), deficit, 0.0)  # round-off is no deficit
            excess = np.maximum(supply - load + deficit, 0.0)
            # spot price: the deficit cost, else the most expensive thermal dispatched above its minimum,
            # else the hydros' water value
            marginal = np.full(nB, -np.inf)
            np.maximum.at(marginal, t_bus[extra > 1e-9], t_cost[extra > 1e-9])
            water = np.bincount(h_bus, weights=wv, minlength=nB) / np.maximum(np.bincount(h_bus, minlength=nB), 1)
            price = np.where(deficit > 0, b_def, np.where(np.isfinite(marginal), marginal, 0.1 * water + 5.0))
            s, bb = _stage_block_ids(nT, t, b)
            for k2, v in (("stage_id", s), ("block_id", bb), ("thermal_id", ids["t"]), ("generation_mw", tgen),
                          ("generation_cost", tcost), ("is_gnl", np.zeros(nT, bool)),
                          ("gnl_committed_mw", np.full(nT, np.nan)), ("gnl_decision_mw", np.full(nT, np.nan))):
                out_t[k2].append(v)
            s, bb = _stage_block_ids(nL, t, b)
            exch_cost = (direct + reverse) * hours * 0.01
            for k2, v in (("stage_id", s), ("block_id", bb), ("line_id", ids["l"]), ("direct_flow_mw", direct),
                          ("reverse_flow_mw", reverse), ("exchange_cost", exch_cost)):
                out_l[k2].append(v)
            s, bb = _stage_block_ids(nB, t, b)
            for k2, v in (("stage_id", s), ("block_id", bb), ("bus_id", ids["b"]), ("load_mw", load),
                          ("deficit_mw", deficit), ("excess_mw", excess), ("spot_price", price)):
                out_b[k2].append(v)
            s, bb = _stage_block_ids(nP, t, b)
            pcost = ppow * hours * 50.0
            for k2, v in (("stage_id", s), ("block_id", bb), ("pumping_station_id", ids["p"]),
                          ("pumped_flow_m3s", pflow), ("power_consumption_mw", ppow), ("pumping_cost", pcost)):
                out_p[k2].append(v)
            s, bb = _stage_block_ids(nC, t, b)
            ccost = cpow * hours * c_price * c_sign
            for k2, v in (("stage_id", s), ("block_id", bb), ("contract_id", ids["c"]), ("power_mw", cpow),
                          ("price_per_mwh", c_price), ("total_cost", ccost)):
                out_c[k2].append(v)
            s, bb = _stage_block_ids(nN, t, b)
            ncost = curt * hours * 0.005
            for k2, v in (("stage_id", s), ("block_id", bb), ("non_controllable_id", ids["n"]),
                          ("generation_mw", ngen), ("available_mw", avail), ("curtailment_mw", curt),
                          ("curtailment_cost", ncost)):
                out_n[k2].append(v)
            viol = rng.uniform(0, 1, len(gc)) < 0.05
            k = int(viol.sum())
            gslack = rng.uniform(0.1, 10.0, k)
            gcost = gslack * 1000.0
            s, bb = _stage_block_ids(k, t, b)
            for k2, v in (("stage_id", s), ("block_id", bb), ("constraint_id", ids["g"][viol]),
                          ("slack_value", gslack), ("slack_cost", gcost)):
                out_g[k2].append(v)
            comp = dict.fromkeys(COST_COMPONENTS, 0.0)
            comp["thermal_cost"] = float(tcost.sum())
            comp["contract_cost"] = float(ccost.sum())
            comp["deficit_cost"] = float((deficit * hours * b_def).sum())
            comp["excess_cost"] = float((excess * hours * 0.01).sum())
            comp["hydro_violation_cost"] = float((below / conv).sum() * hours * 0.5)
            comp["generic_violation_cost"] = float(gcost.sum())
            comp["spillage_cost"] = float((spill * hours * 0.001).sum())
            comp["curtailment_cost"] = float(ncost.sum())
            comp["exchange_cost"] = float(exch_cost.sum())
            comp["pumping_cost"] = float(pcost.sum())
            stage_block_costs.append(comp)
        stage_comp = {c: sum(d[c] for d in stage_block_costs) for c in COST_COMPONENTS}
        stage_comp["storage_violation_cost"] = float(rng.uniform(0, 1) < 0.1) * float(rng.uniform(0, 5e4))
        stage_comp["filling_target_cost"] = 0.0
        cost_rows.append((t, None, stage_comp))
        for b, comp in enumerate(stage_block_costs):
            cost_rows.append((t, b, comp))

    # costs table: per stage, the stage-level row then one row per block
    n_cost = len(cost_rows)
    discount = np.ones(n_cost)
    stage_col = np.array([r[0] for r in cost_rows], np.int32)
    block_vals = np.array([-1 if r[1] is None else r[1] for r in cost_rows], np.int32)
    block_col = np.ma.MaskedArray(np.where(block_vals < 0, 0, block_vals), mask=block_vals < 0)
    comp_cols = {c: np.array([r[2][c] for r in cost_rows]) for c in COST_COMPONENTS}
    immediate = np.sum([comp_cols[c] for c in COST_COMPONENTS], axis=0)
    # future cost: the cost model's expected cost of the later stages, on stage-level rows only
    future = np.where(block_vals < 0, cost_to_go[stage_col], 0.0)
    costs = {"stage_id": stage_col, "block_id": block_col, "total_cost": immediate + future,
             "immediate_cost": immediate, "future_cost": future, "discount_factor": discount, **comp_cols}
    stage_rows = block_vals < 0
    category = {c: float((comp_cols[c] * discount)[stage_rows].sum()) for c in COST_COMPONENTS}
    total = float((immediate * discount)[stage_rows].sum())

    def cat(d: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: (np.concatenate(v) if v else np.empty(0)) for k, v in d.items()}

    tables: dict[str, dict[str, np.ndarray]] = {"costs": costs}
    for name, d in (("hydros", out_h), ("thermals", out_t), ("exchanges", out_l), ("buses", out_b),
                    ("pumping_stations", out_p), ("contracts", out_c), ("non_controllables", out_n),
                    ("generic_violations", out_g), ("inflow_lags", lag_rows)):
        if system.has_table(name):
            tables[name] = cat(d)
    if "generic_violations" in tables:
        g = tables["generic_violations"]
        for col in ("stage_id", "block_id", "constraint_id"):
            g[col] = g[col].astype(np.int32)
    _ = rows_total
    return SimulationScenarioResult(scenario_id, total, category, tables)
