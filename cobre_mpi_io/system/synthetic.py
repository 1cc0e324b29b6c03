"""The built-in synthetic systems (``small`` and ``production``)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .entities import (
    Block,
    Bus,
    Contract,
    GenericConstraint,
    Hydro,
    Line,
    NonControllable,
    PumpingStation,
    Stage,
    Thermal,
)

__all__ = ["SCALES", "synthetic_system_fields"]

# scale -> (stages, blocks, hydros, max AR order, thermals, buses, lines, pumping, contracts, ncs, generic)
SCALES: Final = {
    "small": (4, 2, 6, 3, 5, 3, 3, 2, 2, 2, 3),
    "production": (60, 3, 160, 12, 130, 6, 10, 5, 5, 10, 50),
}


def synthetic_system_fields(scale: str) -> dict[str, Any]:
    """Build the deterministic synthetic system of ``scale``."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    n_st, n_bl, n_hy, max_ar, n_th, n_bus, n_ln, n_ps, n_ct, n_nc, n_gc = SCALES[scale]
    rng = np.random.default_rng(20260101)
    month_hours = [744, 672, 744, 720, 744, 720, 744, 744, 720, 744, 720, 744]
    split = {1: [1.0], 2: [0.4, 0.6], 3: [0.2, 0.45, 0.35]}[n_bl]
    stages = tuple(
        Stage(t, tuple(Block(b, ("HEAVY", "MEDIUM", "LIGHT")[b] if n_bl == 3 else f"B{b}",
                             round(month_hours[t % 12] * split[b], 1)) for b in range(n_bl)))
        for t in range(n_st))
    buses = tuple(Bus(id=i, name=f"BUS_{i}", deficit_cost=3000.0 + 100 * i) for i in range(n_bus))
    hydros = []
    for i in range(n_hy):
        cap = float(rng.uniform(500, 20000))
        qmax = float(rng.uniform(300, 6000))
        prod = float(rng.uniform(0.3, 1.2))
        ar = max_ar if scale == "production" else i % (max_ar + 1)
        hydros.append(Hydro(
            id=i, name=f"HYDRO_{i:03d}", bus_id=i % n_bus, ar_order=ar,
            min_storage_hm3=round(0.1 * cap, 1) if i % 2 else 0.0, max_storage_hm3=round(cap, 1),
            initial_storage_hm3=round(0.6 * cap, 1),
            min_outflow_m3s=round(0.05 * qmax, 1) if i % 3 == 0 else 0.0,
            max_turbined_m3s=round(qmax, 1), min_turbined_m3s=0.0,
            min_generation_mw=0.0, max_generation_mw=round(qmax * prod, 1),
            productivity_mw_per_m3s=round(prod, 3), mean_inflow_m3s=round(0.5 * qmax, 1),
            entry_stage_id=1 if i == n_hy - 1 else None,
        ))
    thermals = tuple(
        Thermal(id=i, name=f"THERMAL_{i:03d}", bus_id=i % n_bus,
                min_mw=round(float(rng.uniform(0, 50)), 1) if i % 4 == 0 else 0.0,
                max_mw=round(float(rng.uniform(50, 1500)), 1),
                cost_per_mwh=round(float(rng.uniform(15, 900)), 2),
                exit_stage_id=n_st - 2 if i == n_th - 1 else None)
        for i in range(n_th))
    lines = tuple(
        Line(id=i, name=f"LINE_{i}", source_bus_id=i % n_bus, target_bus_id=(i + 1 + i // n_bus) % n_bus,
             direct_mw=round(float(rng.uniform(500, 8000)), 1), reverse_mw=round(float(rng.uniform(500, 8000)), 1),
             losses_percent=round(float(rng.uniform(0.5, 4.0)), 2))
        for i in range(n_ln))
    pumping = tuple(
        PumpingStation(id=i, name=f"PUMP_{i}", bus_id=i % n_bus, source_hydro_id=2 * i,
                       destination_hydro_id=2 * i + 1, min_m3s=0.0, max_m3s=round(float(rng.uniform(50, 500)), 1),
                       power_per_m3s=round(float(rng.uniform(0.2, 0.6)), 3))
        for i in range(n_ps))
    contracts = tuple(
        Contract(id=i, name=f"CONTRACT_{i}", bus_id=i % n_bus, type="import" if i % 2 == 0 else "export",
                 price_per_mwh=round(float(rng.uniform(50, 400)), 2), min_mw=0.0,
                 max_mw=round(float(rng.uniform(100, 1000)), 1))
        for i in range(n_ct))
    ncs = tuple(
        NonControllable(id=i, name=f"NCS_{i}", bus_id=i % n_bus,
                        max_generation_mw=round(float(rng.uniform(50, 2000)), 1))
        for i in range(n_nc))
    generic = tuple(GenericConstraint(id=i, name=f"GENERIC_{i:02d}") for i in range(n_gc))
    return {"stages": stages, "buses": buses, "hydros": tuple(hydros), "thermals": thermals, "lines": lines,
                  "pumping_stations": pumping, "contracts": contracts, "non_controllables": ncs,
                  "generic_constraints": generic, "name": f"synthetic-{scale}", "source": f"synthetic:{scale}"}
