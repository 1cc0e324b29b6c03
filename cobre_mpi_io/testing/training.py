"""Deterministic synthetic training history, to feed the training writer in demos and tests.

:func:`synthetic_training` produces what an SDDP training loop would report:
a lower bound rising towards the optimum, an upper-bound estimate whose
confidence band shrinks, the gap, cut counts with some cut selection, and
per-rank timings with a visible load imbalance.  The bounds converge to
the expected cost of the synthetic simulation of the same system and seed
(:func:`~cobre_mpi_io.testing.simulation.expected_total_cost`): training and
simulation follow one cost model. Forward passes are spread
over ranks round-robin (pass ``j`` on rank ``j % world_size``), so
``scenarios_processed`` summed over ranks equals ``forward_passes`` every
iteration. Same arguments give the same records.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..manifest import utc_now
from ..system.model import System
from ..training.writer import IterationRecord, RankTimingRecord
from .simulation import expected_total_cost

__all__ = ["SyntheticTraining", "synthetic_training"]


@dataclass(frozen=True)
class SyntheticTraining:
    """A synthetic training history.

    Attributes
    ----------
    iterations : tuple of IterationRecord
        One record per iteration (the same on every rank).
    rank_timings : tuple of tuple of RankTimingRecord
        ``rank_timings[r]``: rank ``r``'s rows, one per iteration.
    world_size, forward_passes, max_iterations : int
    status : str
        ``"complete"`` (iteration limit reached).
    termination_reason : str
        ``"iteration_limit"``.
    lp_dimensions : dict
        Plausible average LP dimensions of a stage problem.
    """

    iterations: tuple[IterationRecord, ...]
    rank_timings: tuple[tuple[RankTimingRecord, ...], ...]
    world_size: int
    forward_passes: int
    max_iterations: int
    status: str
    termination_reason: str
    lp_dimensions: dict[str, Any]

    def rank_timing(self, rank: int) -> tuple[RankTimingRecord, ...]:
        """Rank ``rank``'s timing rows."""
        return self.rank_timings[rank]

    def to_training_output(self, rank: int, *, started_at: str | None = None,
                           policy_dir: str | os.PathLike[str] | None = None, **kw: Any) -> Any:
        """A :class:`~cobre_mpi_io.results.TrainingOutput` for ``rank`` (``kw`` overrides fields).

        Parameters
        ----------
        rank : int
            The rank whose timing rows the output carries.
        started_at : str, optional
            UTC timestamp of the start of training; default: now
            (:func:`~cobre_mpi_io.manifest.utc_now`).
        policy_dir : path-like, optional
            The policy checkpoint directory, if one was written.
        **kw
            Any other :class:`~cobre_mpi_io.results.TrainingOutput` field
            (``status``, ``writer``, ``termination_reason``, ...), overriding
            the value from this history.

        Returns
        -------
        TrainingOutput
            Status, iteration limit, forward passes, every iteration record,
            ``rank``'s timing rows, termination reason and LP dimensions of
            this history, solver ``"synthetic"``.
        """
        from ..results import TrainingOutput

        args: dict[str, Any] = {
            "status": self.status, "started_at": started_at or utc_now(),
            "max_iterations": self.max_iterations, "forward_passes": self.forward_passes,
            "iterations": self.iterations, "rank_timings": self.rank_timings[rank],
            "termination_reason": self.termination_reason, "policy_dir": policy_dir,
            "lp_dimensions": self.lp_dimensions, "solver": "synthetic", "solver_version": "0"}
        args.update(kw)
        return TrainingOutput(**args)


def synthetic_training(system: System, iterations: int, world_size: int, forward_passes: int, seed: int,
                       *, upper_bound_evaluation: bool = True) -> SyntheticTraining:
    """Build a deterministic training history for ``system``.

    Parameters
    ----------
    system : System
        Sizes the problem (stages, hydros, thermals).
    iterations : int
        Number of iterations (>= 1).
    world_size : int
        Number of MPI ranks to simulate timings for (>= 1).
    forward_passes : int
        Forward passes per iteration (>= 1), spread round-robin over ranks.
    seed : int
        RNG seed.
    upper_bound_evaluation : bool
        When False the upper-bound and gap fields are ``None``.

    Returns
    -------
    SyntheticTraining
    """
    if iterations < 1 or world_size < 1 or forward_passes < 1:
        raise ValueError("iterations, world_size and forward_passes must be >= 1")
    rng = np.random.default_rng(seed)
    n_st = system.num_stages
    openings = 3
    # the optimum is the synthetic simulation's expected cost: one cost model for training and simulation
    optimum = expected_total_cost(system, seed)
    scen = np.array([len(range(r, forward_passes, world_size)) for r in range(world_size)], dtype=np.int64)
    # static per-rank speed (load imbalance) plus per-iteration jitter
    speed = 1.0 + 0.25 * np.arange(world_size) / max(world_size - 1, 1) + rng.uniform(0, 0.05, world_size)
    dim = system.state_dimension
    cut_ms_per_stage = 2.0 + 0.02 * dim

    lb_prev = -math.inf
    active = 0
    its: list[IterationRecord] = []
    ranks: list[list[RankTimingRecord]] = [[] for _ in range(world_size)]
    for k in range(1, iterations + 1):
        lb = optimum * (1.0 - 0.6 * math.exp(-k / max(iterations / 5.0, 1.0)))
        lb *= 1.0 + float(rng.normal(0, 0.002)) * math.exp(-k / 10)
        lb = max(lb, lb_prev + 1e-6 * optimum) if k > 1 else lb
        lb_prev = lb
        if upper_bound_evaluation:
            ub = optimum * (1.0 + 0.4 * math.exp(-k / max(iterations / 4.0, 1.0))) + float(rng.normal(0, 0.01)) \
                * optimum / math.sqrt(k)
            ub = max(ub, lb)
            std = optimum * (0.15 / math.sqrt(k) + 0.005) / math.sqrt(forward_passes)
            gap: float | None = (ub - lb) / abs(ub) * 100.0
            ub_mean: float | None = ub
            ub_std: float | None = std
        else:
            ub_mean = ub_std = gap = None
        added = forward_passes * (n_st - 1)
        removed = int(rng.integers(0, added // 2 + 1)) if k > 5 else 0
        active = active + added - removed
        # per-rank work
        jitter = rng.uniform(0.95, 1.10, world_size)
        fwd = scen * n_st * 1.5 * speed * jitter
        bwd = scen * (n_st - 1) * openings * 1.2 * speed * jitter
        comm = 1.0 + 0.3 * n_st + rng.uniform(0, 1.0, world_size)
        busy = fwd + bwd + comm
        idle = busy.max() - busy
        lp_rank = scen * n_st + scen * (n_st - 1) * openings
        for r in range(world_size):
            ranks[r].append(RankTimingRecord(
                iteration=k, rank=r, forward_time_ms=round(fwd[r]), backward_time_ms=round(bwd[r]),
                communication_time_ms=round(comm[r]), idle_time_ms=round(idle[r]),
                lp_solves=int(lp_rank[r]), scenarios_processed=int(scen[r])))
        t_fwd, t_bwd = round(fwd.max()), round(bwd.max())
        sample = int(1 + forward_passes // 4)
        cut = round(cut_ms_per_stage * (n_st - 1))
        select = round(0.1 * active / max(n_st, 1)) if k > 5 else 0
        allreduce, bcast = round(comm.max() * 0.7), round(comm.max() * 0.3)
        io = int(rng.integers(0, 3))
        total = t_fwd + t_bwd + sample + cut + select + allreduce + bcast + io + 1
        its.append(IterationRecord(
            iteration=k, lower_bound=lb, upper_bound_mean=ub_mean, upper_bound_std=ub_std, gap_percent=gap,
            cuts_added=added, cuts_removed=removed, cuts_active=active,
            time_forward_ms=t_fwd, time_backward_ms=t_bwd, time_total_ms=total,
            memory_peak_mb=int(200 + 0.001 * active * dim + 5 * k), forward_passes=forward_passes,
            lp_solves=int(lp_rank.sum()),
            forward_solve_ms=max(t_fwd - sample, 0), forward_sample_ms=sample,
            backward_solve_ms=max(t_bwd - cut, 0), backward_cut_ms=cut, cut_selection_ms=select,
            mpi_allreduce_ms=allreduce, mpi_broadcast_ms=bcast, io_write_ms=io, overhead_ms=1))
    lp = {"avg_rows": float(3 * len(system.hydros) + 2 * len(system.buses) + len(system.lines) + 50),
          "avg_columns": float(5 * len(system.hydros) + len(system.thermals) + 2 * len(system.lines) + dim),
          "avg_nonzeros": float(12 * len(system.hydros) + 3 * len(system.thermals) + 4 * len(system.lines)
                                + 4 * dim)}
    return SyntheticTraining(
        iterations=tuple(its), rank_timings=tuple(tuple(x) for x in ranks), world_size=world_size,
        forward_passes=forward_passes, max_iterations=iterations, status="complete",
        termination_reason="iteration_limit", lp_dimensions=lp)
