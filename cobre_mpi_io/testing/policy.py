"""Deterministic synthetic policy (demo, tests, benchmark), and flatc's Builder encoding of a stage."""

from __future__ import annotations

import numpy as np

from ..policy.codec import allocate_coefficients
from ..policy.records import (
    PolicyCheckpoint,
    PolicyMetadata,
    StageBasis,
    StageCuts,
    StageStates,
    StageVertices,
)

__all__ = ["builder_stage_cuts", "synthetic_policy"]

# --------------------------------------------------------------------------
# Deterministic synthetic policy (demo, tests, benchmark)
# --------------------------------------------------------------------------


def synthetic_policy(
    state_dimension: int,
    num_stages: int,
    iteration: int,
    seed: int = 0,
    cuts_per_stage: int | None = None,
    *,
    forward_passes: int = 4,
    max_iterations: int | None = None,
    config_hash: str = "",
    system_hash: str = "",
    with_states: bool = True,
    with_vertices: bool = False,
) -> PolicyCheckpoint:
    """A deterministic, valid policy as it would stand after ``iteration`` iterations.

    Each iteration adds ``forward_passes`` cuts per stage in slots
    ``(k-1)*forward_passes + j``; the pool capacity is
    ``forward_passes * max_iterations``.  The same arguments always give
    the same arrays, and the cuts of iteration ``k`` are identical in every
    later snapshot (so consecutive checkpoints share a prefix).  Some cuts
    are inactive.

    Parameters
    ----------
    state_dimension : int
        Length of every cut's coefficient vector and visited state.
    num_stages : int
        Number of stages (stage ids ``0..num_stages-1``).
    iteration : int
        Completed iterations the policy stands after.
    seed : int, default 0
        Seeds the random arrays (per stage) and is recorded as ``rng_seed``.
    cuts_per_stage : int, optional
        Overrides the number of cuts per stage (default
        ``iteration * forward_passes``); the capacity grows to fit.
    forward_passes : int, default 4
        Cuts added per stage per iteration.
    max_iterations : int, optional
        Iteration limit recorded in the metadata; sizes the pool capacity.
        Default (and at least): ``iteration``.
    config_hash, system_hash : str, default ""
        Recorded in the policy metadata.
    with_states : bool, default True
        Include ``min(cuts, forward_passes)`` visited states per stage.
    with_vertices : bool, default False
        Include ``min(cuts, forward_passes)`` inner-approximation vertices per stage.

    Returns
    -------
    PolicyCheckpoint
        Write it with ``write_policy_checkpoint(path, **p.write_kwargs(), comm=comm)``.
    """
    d = int(state_dimension)
    max_it = max(int(max_iterations or iteration), int(iteration), 1)
    n = int(cuts_per_stage) if cuts_per_stage is not None else int(iteration) * forward_passes
    capacity = max(n, forward_passes * max_it)
    cuts: list[StageCuts] = []
    states: list[StageStates] = []
    vertices: list[StageVertices] = []
    bases: list[StageBasis] = []
    slots = np.arange(n, dtype=np.uint32)
    it_of = (slots // max(forward_passes, 1) + 1).astype(np.uint32)
    fp_of = (slots % max(forward_passes, 1)).astype(np.uint32)
    for t in range(num_stages):
        rng = np.random.default_rng([seed, t])
        coef = allocate_coefficients(n, d)  # the layout write_stage_cuts writes in one segment per 512 rows
        coef[...] = rng.standard_normal((n, d))
        intercept = 1000.0 * (num_stages - t) + rng.standard_normal(n)
        rng2 = np.random.default_rng([seed, t, 1])
        active = rng2.random(n) > 0.2
        cuts.append(StageCuts(
            stage_id=t, state_dimension=d, capacity=capacity, warm_start_count=0,
            cut_ids=(t * capacity + slots).astype(np.uint64), slot_index=slots, iteration=it_of,
            forward_pass_idx=fp_of, scenario_idx=(fp_of + 7 * it_of) % 1000, intercepts=intercept,
            coefficients=coef, states_at_generation=None, is_active=active,
            domination_count=(~active).astype(np.uint32) * 3,
        ))
        if with_states:
            m = min(n, forward_passes)
            states.append(StageStates(
                stage_id=t, state_dimension=d, state_ids=np.arange(m, dtype=np.uint64),
                iteration=np.full(m, iteration, np.uint32), forward_pass_idx=np.arange(m, dtype=np.uint32),
                scenario_idx=np.arange(m, dtype=np.uint32), components=np.abs(coef[:m]) * 100.0,
                dominating_cut_id=(t * capacity + np.arange(m)).astype(np.uint64),
                dominating_objective=intercept[:m].copy(),
            ))
        if with_vertices:
            m = min(n, forward_passes)
            vertices.append(StageVertices(
                stage_id=t, state_dimension=d, vertex_ids=np.arange(m, dtype=np.uint64),
                iteration=np.full(m, iteration, np.uint32), forward_pass_idx=np.arange(m, dtype=np.uint32),
                scenario_idx=np.arange(m, dtype=np.uint32), components=np.abs(coef[:m]),
                upper_bound_value=intercept[:m] + 10.0, lipschitz_constant=np.full(m, 5.0),
                stage_lipschitz=5.0,
            ))
        ncols, nrows = 3 * d + 8, 2 * d + 4 + n
        bases.append(StageBasis(
            stage_id=t, iteration=iteration, num_columns=ncols, num_rows=nrows,
            column_status=(np.arange(ncols) % 4).astype(np.uint8),
            row_status=(np.arange(nrows) % 3).astype(np.uint8), num_cut_rows=n,
        ))
    metadata = PolicyMetadata(
        completed_iterations=int(iteration), state_dimension=d, num_stages=int(num_stages),
        last_forward_pass=max(forward_passes - 1, 0),
        final_lower_bound=float(1000.0 * num_stages - 100.0 / (iteration + 1)),
        best_upper_bound=float(1000.0 * num_stages + 100.0 / (iteration + 1)),
        max_iterations=max_it, forward_passes=forward_passes, warm_start_cuts=0, rng_seed=int(seed),
        rng_state=(int(seed), int(iteration)), config_hash=config_hash, system_hash=system_hash,
        cobre_version="cobre_mpi_io", created_at="",
    )
    return PolicyCheckpoint(metadata=metadata, cuts=cuts, bases=bases, states=states, vertices=vertices)


def builder_stage_cuts(sc: StageCuts) -> bytearray:
    """``sc`` encoded through flatc's generated ``flatbuffers.Builder`` API: one ``BendersCut`` table per cut.

    Another layout than :func:`~cobre_mpi_io.policy.codec.encode_stage`
    (objects back to front, fields equal to their default left out, vtables
    shared), independent of :mod:`cobre_mpi_io.policy.codec`: the tests read
    it back with :func:`~cobre_mpi_io.policy.decode.decode_stage_cuts`, and
    ``cobre-mpi-io bench policy`` times it as the plain-Builder baseline.

    Parameters
    ----------
    sc : StageCuts
        The stage, already validated (``active_cut_indices`` set).

    Returns
    -------
    bytearray
        The finished buffer (``Builder.Output()``, not copied).
    """
    import flatbuffers

    from .._generated.cobre.policy import BendersCut as GCut
    from .._generated.cobre.policy import StageCuts as GCuts

    b = flatbuffers.Builder(1024)
    tables = []
    for i in range(sc.n_cuts):
        coef = b.CreateNumpyVector(np.ascontiguousarray(sc.coefficients[i]))
        sag = (b.CreateNumpyVector(np.ascontiguousarray(sc.states_at_generation[i]))
               if sc.states_at_generation is not None else None)
        GCut.Start(b)
        GCut.AddCutId(b, int(sc.cut_ids[i]))
        GCut.AddSlotIndex(b, int(sc.slot_index[i]))
        GCut.AddIteration(b, int(sc.iteration[i]))
        GCut.AddForwardPassIdx(b, int(sc.forward_pass_idx[i]))
        GCut.AddScenarioIdx(b, int(sc.scenario_idx[i]))
        GCut.AddIntercept(b, float(sc.intercepts[i]))
        GCut.AddCoefficients(b, coef)
        if sag is not None:
            GCut.AddStateAtGeneration(b, sag)
        GCut.AddIsActive(b, bool(sc.is_active[i]))
        GCut.AddDominationCount(b, int(sc.domination_count[i]))
        tables.append(GCut.End(b))
    active = b.CreateNumpyVector(np.asarray(sc.active_cut_indices, dtype=np.uint32))
    GCuts.StartCutsVector(b, sc.n_cuts)
    for t in reversed(tables):
        b.PrependUOffsetTRelative(t)
    cuts = b.EndVector()
    GCuts.Start(b)
    GCuts.AddStageId(b, sc.stage_id)
    GCuts.AddStateDimension(b, sc.state_dimension)
    GCuts.AddCapacity(b, sc.capacity)
    GCuts.AddWarmStartCount(b, sc.warm_start_count)
    GCuts.AddCuts(b, cuts)
    GCuts.AddActiveCutIndices(b, active)
    GCuts.AddPopulatedCount(b, sc.n_cuts)
    b.Finish(GCuts.End(b))
    out: bytearray = b.Output()
    return out
