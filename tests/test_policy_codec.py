"""The policy codec against the flatc-generated reader and builder: bytes in memory, no directories, no MPI.

``encode_stage`` output is read with the code flatc generated from ``cobre_mpi_io/fbs/policy.fbs``
(``cobre_mpi_io/_generated``), and buffers built with flatc's own ``flatbuffers.Builder`` API (another
layout: objects back to front, default fields left out, vtables deduplicated) are read with
``decode_stage_*``.  A property test round-trips random stages, and golden digests pin the bytes of our
files (they must not change).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
from conftest import assert_cuts_equal, bits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io._generated.cobre.policy import StageBasis as GBasis
from cobre_mpi_io._generated.cobre.policy import StageCuts as GCuts
from cobre_mpi_io._generated.cobre.policy import StageStates as GStates
from cobre_mpi_io._generated.cobre.policy import StageVertices as GVertices
from cobre_mpi_io._generated.cobre.policy import Vertex as GVertex
from cobre_mpi_io._generated.cobre.policy import VisitedState as GState
from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.policy.codec import (
    encode_stage,
    write_stage_basis,
    write_stage_cuts,
    write_stage_states,
    write_stage_vertices,
)
from cobre_mpi_io.policy.decode import (
    decode_stage_basis,
    decode_stage_cuts,
    decode_stage_states,
    decode_stage_vertices,
)
from cobre_mpi_io.policy.records import StageBasis, StageCuts, StageStates, StageVertices
from cobre_mpi_io.testing.policy import builder_stage_cuts


def cuts_stage(n: int = 7, d: int = 3, *, with_states: bool = True) -> StageCuts:
    """Non-contiguous slots, inactive cuts, NaN, -inf, -0.0, a subnormal, states at generation."""
    coef = (np.arange(n * d, dtype=np.float64).reshape(n, d) - 5.5) / 3.0
    if n > 2 and d > 2:
        coef[0, 0], coef[1, 1], coef[2, 1], coef[2, 2] = -0.0, 5e-324, np.nan, -np.inf
    slots = np.array([9, 2, 17, 0, 5, 11, 3, 19, 8, 14], dtype=np.uint32)[:n]
    active = np.array([True, False, True, True, False, False, True, True, False, True])[:n]
    return StageCuts(stage_id=2, state_dimension=d, capacity=20, warm_start_count=2,
                     cut_ids=np.arange(100, 100 + n, dtype=np.uint64) * 2**40, slot_index=slots,
                     iteration=np.arange(n) + 1, forward_pass_idx=np.arange(n) % 2, scenario_idx=np.arange(n) * 3,
                     intercepts=np.linspace(-1e6, 1e6, n), coefficients=coef,
                     states_at_generation=coef[::-1] * 2.0 if with_states else None, is_active=active,
                     domination_count=np.arange(n), active_cut_indices=slots[active][::-1])


def states_stage(n: int = 4, d: int = 3) -> StageStates:
    comp = np.arange(n * d, dtype=np.float64).reshape(n, d) * 0.25
    return StageStates(stage_id=1, state_dimension=d, state_ids=np.arange(n, dtype=np.uint64) + 2**63,
                       iteration=np.full(n, 7), forward_pass_idx=np.arange(n), scenario_idx=np.arange(n) * 5,
                       components=comp, dominating_cut_id=np.arange(n, dtype=np.uint64) * 11,
                       dominating_objective=np.linspace(0.5, 9.5, n))


def vertices_stage(n: int = 3, d: int = 3) -> StageVertices:
    comp = np.arange(n * d, dtype=np.float64).reshape(n, d) - 1.0
    return StageVertices(stage_id=1, state_dimension=d, vertex_ids=np.arange(n, dtype=np.uint64) + 40,
                         iteration=np.full(n, 3), forward_pass_idx=np.arange(n), scenario_idx=np.arange(n),
                         components=comp, upper_bound_value=np.linspace(10.0, 20.0, n),
                         lipschitz_constant=np.full(n, 5.0), stage_lipschitz=7.25)


def basis_stage(cols: int = 11, rows: int = 6) -> StageBasis:
    return StageBasis(stage_id=1, iteration=4, num_columns=cols, num_rows=rows,
                      column_status=np.arange(cols) % 4, row_status=np.arange(rows) % 3, num_cut_rows=2)


def assert_points_equal(a: Any, b: Any, fields: tuple[str, ...]) -> None:
    assert (a.stage_id, a.state_dimension) == (b.stage_id, b.state_dimension)
    for f in (*fields, "iteration", "forward_pass_idx", "scenario_idx", "components"):
        x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
        assert x.dtype == y.dtype and x.shape == y.shape and bits(x) == bits(y), f


# ---------------------------------------------------------------- ours -> flatc-generated reader


def test_encoded_cuts_read_by_generated_reader() -> None:
    sc = cuts_stage()
    data = encode_stage(sc)
    root = GCuts.StageCuts.GetRootAs(data, 0)
    assert (root.StageId(), root.StateDimension(), root.Capacity(), root.WarmStartCount(),
            root.PopulatedCount(), root.CutsLength()) == (2, 3, 20, 2, 7, 7)
    assert root.ActiveCutIndicesAsNumpy().tolist() == sc.active_cut_indices.tolist()
    for i in range(root.CutsLength()):
        c = root.Cuts(i)
        assert (c.CutId(), c.SlotIndex(), c.Iteration(), c.ForwardPassIdx(), c.ScenarioIdx()) == (
            sc.cut_ids[i], sc.slot_index[i], sc.iteration[i], sc.forward_pass_idx[i], sc.scenario_idx[i])
        assert bits(np.float64(c.Intercept())) == bits(sc.intercepts[i])
        assert c.IsActive() == sc.is_active[i] and c.DominationCount() == sc.domination_count[i]
        assert bits(c.CoefficientsAsNumpy()) == bits(sc.coefficients[i])
        assert bits(c.StateAtGenerationAsNumpy()) == bits(sc.states_at_generation[i])


def test_encoded_cuts_without_states_have_no_field() -> None:
    data = encode_stage(cuts_stage(with_states=False))
    root = GCuts.StageCuts.GetRootAs(data, 0)
    assert all(root.Cuts(i).StateAtGenerationIsNone() for i in range(root.CutsLength()))


def test_encoded_states_vertices_basis_read_by_generated_reader() -> None:
    st_, vx, bs = states_stage(), vertices_stage(), basis_stage()
    g = GStates.StageStates.GetRootAs(encode_stage(st_), 0)
    assert (g.StageId(), g.StateDimension(), g.StatesLength()) == (1, 3, 4)
    for i in range(g.StatesLength()):
        s = g.States(i)
        assert (s.StateId(), s.Iteration(), s.ForwardPassIdx(), s.ScenarioIdx(), s.DominatingCutId(),
                s.DominatingObjective()) == (st_.state_ids[i], st_.iteration[i], st_.forward_pass_idx[i],
                                             st_.scenario_idx[i], st_.dominating_cut_id[i],
                                             st_.dominating_objective[i])
        assert bits(s.ComponentsAsNumpy()) == bits(st_.components[i])
    g2 = GVertices.StageVertices.GetRootAs(encode_stage(vx), 0)
    assert (g2.StageId(), g2.StateDimension(), g2.VerticesLength(), g2.StageLipschitz()) == (1, 3, 3, 7.25)
    for i in range(g2.VerticesLength()):
        v = g2.Vertices(i)
        assert (v.VertexId(), v.UpperBoundValue(), v.LipschitzConstant()) == (
            vx.vertex_ids[i], vx.upper_bound_value[i], vx.lipschitz_constant[i])
        assert bits(v.ComponentsAsNumpy()) == bits(vx.components[i])
    g3 = GBasis.StageBasis.GetRootAs(encode_stage(bs), 0)
    assert (g3.StageId(), g3.Iteration(), g3.NumColumns(), g3.NumRows(), g3.NumCutRows()) == (1, 4, 11, 6, 2)
    assert g3.ColumnStatusAsNumpy().tolist() == bs.column_status.tolist()
    assert g3.RowStatusAsNumpy().tolist() == bs.row_status.tolist()


# ---------------------------------------------------------------- flatc's Builder -> ours


def build_points(obj: Any, vertices: bool) -> bytes:
    g_item, g_root = (GVertex, GVertices) if vertices else (GState, GStates)
    b = flatbuffers.Builder(256)
    tables = []
    ids = obj.vertex_ids if vertices else obj.state_ids
    for i in range(ids.shape[0]):
        comp = b.CreateNumpyVector(np.ascontiguousarray(obj.components[i]))
        g_item.Start(b)
        if vertices:
            GVertex.AddVertexId(b, int(ids[i]))
            GVertex.AddUpperBoundValue(b, float(obj.upper_bound_value[i]))
            GVertex.AddLipschitzConstant(b, float(obj.lipschitz_constant[i]))
        else:
            GState.AddStateId(b, int(ids[i]))
            GState.AddDominatingCutId(b, int(obj.dominating_cut_id[i]))
            GState.AddDominatingObjective(b, float(obj.dominating_objective[i]))
        g_item.AddIteration(b, int(obj.iteration[i]))
        g_item.AddForwardPassIdx(b, int(obj.forward_pass_idx[i]))
        g_item.AddScenarioIdx(b, int(obj.scenario_idx[i]))
        g_item.AddComponents(b, comp)
        tables.append(g_item.End(b))
    (GVertices.StartVerticesVector if vertices else GStates.StartStatesVector)(b, len(tables))
    for t in reversed(tables):
        b.PrependUOffsetTRelative(t)
    vec = b.EndVector()
    g_root.Start(b)
    g_root.AddStageId(b, obj.stage_id)
    g_root.AddStateDimension(b, obj.state_dimension)
    if vertices:
        GVertices.AddVertices(b, vec)
        GVertices.AddStageLipschitz(b, float(obj.stage_lipschitz))
    else:
        GStates.AddStates(b, vec)
    b.Finish(g_root.End(b))
    return bytes(b.Output())


def build_basis(bs: StageBasis) -> bytes:
    b = flatbuffers.Builder(64)
    cols = b.CreateNumpyVector(np.asarray(bs.column_status, dtype=np.uint8))
    rows = b.CreateNumpyVector(np.asarray(bs.row_status, dtype=np.uint8))
    GBasis.Start(b)
    GBasis.AddStageId(b, bs.stage_id)
    GBasis.AddIteration(b, bs.iteration)
    GBasis.AddNumColumns(b, bs.num_columns)
    GBasis.AddNumRows(b, bs.num_rows)
    GBasis.AddColumnStatus(b, cols)
    GBasis.AddRowStatus(b, rows)
    GBasis.AddNumCutRows(b, bs.num_cut_rows)
    b.Finish(GBasis.End(b))
    return bytes(b.Output())


@pytest.mark.parametrize("with_states", [True, False])
def test_generated_builder_cuts_decode(with_states: bool) -> None:
    sc = cuts_stage(with_states=with_states).validate(check_finite=False)
    data = builder_stage_cuts(sc)
    assert data != encode_stage(sc)  # another layout
    assert_cuts_equal(decode_stage_cuts(data, stage_id=2, state_dimension=3), sc)


def test_generated_builder_cuts_with_defaults_left_out_decode() -> None:
    """All cuts active and domination_count 0: the builder leaves both fields out (schema defaults)."""
    sc = cuts_stage(with_states=False)
    sc.is_active = np.ones(sc.n_cuts, dtype=bool)
    sc.active_cut_indices = None
    sc.domination_count = np.zeros(sc.n_cuts, dtype=np.uint32)
    sc.validate(check_finite=False)
    back = decode_stage_cuts(builder_stage_cuts(sc))
    assert_cuts_equal(back, sc)


def test_generated_builder_points_and_basis_decode() -> None:
    st_, vx, bs = states_stage().validate(), vertices_stage().validate(), basis_stage().validate()
    back = decode_stage_states(build_points(st_, vertices=False), stage_id=1, state_dimension=3)
    assert_points_equal(back, st_, ("state_ids", "dominating_cut_id", "dominating_objective"))
    back_v = decode_stage_vertices(build_points(vx, vertices=True), stage_id=1, state_dimension=3)
    assert_points_equal(back_v, vx, ("vertex_ids", "upper_bound_value", "lipschitz_constant"))
    assert back_v.stage_lipschitz == 7.25
    back_b = decode_stage_basis(build_basis(bs), stage_id=1)
    assert (back_b.iteration, back_b.num_columns, back_b.num_rows, back_b.num_cut_rows) == (4, 11, 6, 2)
    assert bits(back_b.column_status) == bits(bs.column_status) and bits(back_b.row_status) == bits(bs.row_status)


# ---------------------------------------------------------------- our bytes: round trip, writer, golden


def test_round_trip_in_memory_bit_for_bit_and_zero_copy() -> None:
    sc = cuts_stage()
    data = encode_stage(sc)
    back = decode_stage_cuts(data, stage_id=2, state_dimension=3)
    assert_cuts_equal(back, sc)
    assert not back.coefficients.flags.owndata and back.coefficients.strides == (8 + 8 * 3, 8)
    assert_points_equal(decode_stage_states(encode_stage(states_stage())), states_stage().validate(),
                        ("state_ids", "dominating_cut_id", "dominating_objective"))
    assert_points_equal(decode_stage_vertices(encode_stage(vertices_stage())), vertices_stage().validate(),
                        ("vertex_ids", "upper_bound_value", "lipschitz_constant"))
    bs = decode_stage_basis(encode_stage(basis_stage()))
    assert bits(bs.row_status) == bits(basis_stage().validate().row_status)


def test_encode_stage_is_what_the_writers_write(tmp_path: Path) -> None:
    for obj, write in ((cuts_stage(), write_stage_cuts), (states_stage(), write_stage_states),
                       (vertices_stage(), write_stage_vertices), (basis_stage(), write_stage_basis)):
        path = tmp_path / f"{type(obj).__name__}.bin"
        n = write(path, obj, durable=False)  # type: ignore[operator]
        assert path.read_bytes() == encode_stage(obj) and n == path.stat().st_size


# sha256 of the files the writers at commit 6733dd6 (before the reader was hardened) wrote for the
# stages above: the bytes of our files must not change.
GOLDEN = {
    "cuts": "c951e9294d9a297886376f525de0b8045f75222bd30f6d22b92a73183bd383ed",
    "cuts_no_states": "c386743007ca521dd96b28a7d3a169f9eca01cabda0d24e37d782fe3600625dd",
    "states": "08b146c03f3a57d33f1497b1f4d0f7a97f2125ec70d4c5b401e9e74e2c6585ef",
    "vertices": "0ee60a48af3338ba2e882d9488a1467dce8aa06efecf0bbfad59f89f15c41887",
    "basis": "4f8be896fcb099324866bbf3f18016840757932a0e29192dec6f1135310200e4",
    "cuts_empty": "45c99eab08af34d0f0a5d16fa871f9760f3a38c4d40ce87c3682c917811ce3d4",
}


def _golden_stages() -> dict[str, Any]:
    return {"cuts": cuts_stage(), "cuts_no_states": cuts_stage(with_states=False), "states": states_stage(),
            "vertices": vertices_stage(), "basis": basis_stage(), "cuts_empty": cuts_stage(0, 4)}


def test_bytes_of_our_files_are_unchanged() -> None:
    got = {k: hashlib.sha256(encode_stage(v)).hexdigest() for k, v in _golden_stages().items()}
    assert got == GOLDEN


# ---------------------------------------------------------------- property: random stages round-trip

CODEC_EXAMPLES = 120


@st.composite
def random_cuts(draw: st.DrawFn) -> StageCuts:
    n = draw(st.integers(0, 6))
    d = draw(st.integers(0, 5))
    capacity = draw(st.integers(n, n + 5))
    slots = draw(st.permutations(list(range(capacity))))[:n]
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    coef = np.array(draw(st.lists(floats, min_size=n * d, max_size=n * d)), dtype=np.float64).reshape(n, d)
    active = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    u32 = st.integers(0, 2**32 - 1)
    col = lambda e: np.array(draw(st.lists(e, min_size=n, max_size=n)), dtype=np.int64)
    with_states = draw(st.booleans())
    return StageCuts(
        stage_id=draw(st.integers(0, 999)), state_dimension=d, capacity=capacity,
        warm_start_count=draw(u32), cut_ids=np.array(draw(st.lists(st.integers(0, 2**64 - 1), min_size=n,
                                                                   max_size=n)), dtype=np.uint64),
        slot_index=np.array(slots, dtype=np.uint32), iteration=col(u32), forward_pass_idx=col(u32),
        scenario_idx=col(u32), intercepts=np.array(draw(st.lists(floats, min_size=n, max_size=n))),
        coefficients=coef, states_at_generation=(coef[::-1].copy() if with_states and n and d else None),
        is_active=active, domination_count=col(u32))


@settings(max_examples=CODEC_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_cuts())
def test_random_stages_round_trip_through_both_readers(sc: StageCuts) -> None:
    data = encode_stage(sc)
    back = decode_stage_cuts(data, stage_id=sc.stage_id, state_dimension=sc.state_dimension)
    assert_cuts_equal(back, sc)
    root = GCuts.StageCuts.GetRootAs(data, 0)
    assert root.CutsLength() == sc.n_cuts and root.StateDimension() == sc.state_dimension
    for i in range(sc.n_cuts):
        assert root.Cuts(i).SlotIndex() == sc.slot_index[i]
        assert bits(root.Cuts(i).CoefficientsAsNumpy()) == bits(sc.coefficients[i])
    if sc.n_cuts:  # and flatc's builder layout of the same stage decodes to the same stage (the builder
        # leaves out fields equal to their default, so an intercept of -0.0 comes back as 0.0)
        sc.intercepts = np.where(sc.intercepts == 0, 0.0, sc.intercepts)
        assert_cuts_equal(decode_stage_cuts(builder_stage_cuts(sc)), sc)


def test_a_stage_the_disk_cannot_hold_fails_before_a_byte_is_written(tmp_path: Path) -> None:
    """The stage's blocks are allocated up front: a full disk is refused at once, the old stage untouched."""
    import os

    from conftest import small_tmpfs

    from cobre_mpi_io.errors import IoError

    with small_tmpfs(tmp_path, "1m") as mnt:
        path = mnt / "stage_000.bin"
        small = cuts_stage(7, 3)
        written = write_stage_cuts(path, small)
        before = path.read_bytes()
        assert len(before) == written == path.stat().st_size  # preallocation never pads the file
        big = cuts_stage(10, 20_000)  # 3.2 MB of coefficients and states on a 1 MB filesystem
        with pytest.raises(IoError) as info:
            write_stage_cuts(path, big)
        assert info.value.cause == "disk full" and "stage_000.bin" in str(info.value)
        assert path.read_bytes() == before and sorted(p.name for p in mnt.iterdir()) == ["stage_000.bin"]
        assert os.statvfs(mnt).f_bfree * os.statvfs(mnt).f_frsize > 900_000  # nothing of the big stage kept


# ---------------------------------------------------------------- the gather write: iovecs, framed rows, short writes


def _iov_entries(sc: StageCuts) -> int:
    from cobre_mpi_io.policy.codec import _encode, _iovecs, _spec_for

    sc.validate(check_finite=False)
    iov, _checks, _keep = _iovecs(_encode(sc, _spec_for("spec", "cuts"), sc.state_dimension, "t"))
    return int(iov.shape[0])


def _with_coefficients(sc: StageCuts, coef: np.ndarray, states: np.ndarray | None = None) -> StageCuts:
    import dataclasses

    return dataclasses.replace(sc, coefficients=coef, states_at_generation=states)


def test_rows_behind_their_headers_are_written_in_one_segment_per_batch(tmp_path: Path) -> None:
    """allocate_coefficients arrays, and views of a mapped stage file, go out without per-row segments,
    into the same bytes as a plain array; a look-alike whose header bytes differ is written per row."""
    from cobre_mpi_io.policy import allocate_coefficients, read_stage_cuts

    n, d = 1100, 5  # three batches of rows (512 a batch)
    rng = np.random.default_rng(3)
    slots = np.arange(n, dtype=np.uint32)
    sc = StageCuts(stage_id=4, state_dimension=d, capacity=n, warm_start_count=0, cut_ids=slots.astype(np.uint64),
                   slot_index=slots, iteration=slots // 7 + 1, forward_pass_idx=slots % 7, scenario_idx=slots % 3,
                   intercepts=rng.standard_normal(n), coefficients=rng.standard_normal((n, d)),
                   is_active=slots % 4 != 0, domination_count=np.zeros(n, dtype=np.uint32))
    framed = allocate_coefficients(n, d)
    framed[...] = sc.coefficients
    assert framed.shape == (n, d) and framed.strides == (8 + 8 * d, 8)
    states = allocate_coefficients(n, d)
    states[...] = sc.coefficients[::-1]
    want = encode_stage(_with_coefficients(sc, sc.coefficients.copy(), sc.coefficients[::-1].copy()))
    fast = _with_coefficients(sc, framed, states)
    assert encode_stage(fast) == want
    write_stage_cuts(tmp_path / "fast.bin", fast, durable=False)
    assert (tmp_path / "fast.bin").read_bytes() == want
    per_row = _iov_entries(_with_coefficients(sc, sc.coefficients.copy(), sc.coefficients[::-1].copy()))
    assert per_row > 4 * n and _iov_entries(fast) < per_row - 4 * n + 10  # 2 x 3 batch segments, not 4n
    # a view of the mapped file has the same layout: read, write back, same bytes, same few segments
    back = read_stage_cuts(tmp_path / "fast.bin")
    assert not back.coefficients.flags.owndata and _iov_entries(back) == _iov_entries(fast)
    write_stage_cuts(tmp_path / "again.bin", back, durable=False)
    assert (tmp_path / "again.bin").read_bytes() == want
    # same strides, wrong header bytes (an (n, d+1) array's first column is not a header): per row, same bytes
    wide = rng.standard_normal((n, d + 1))
    wide[:, 1:] = sc.coefficients
    look_alike = _with_coefficients(sc, wide[:, 1:], sc.coefficients[::-1].copy())
    assert _iov_entries(look_alike) > 2 * n
    write_stage_cuts(tmp_path / "look.bin", look_alike, durable=False)
    assert (tmp_path / "look.bin").read_bytes() == want
    # a non-contiguous matrix (every other column) is copied, then written: same bytes as its copy
    holey = np.repeat(sc.coefficients, 2, axis=1)[:, ::2]
    assert encode_stage(_with_coefficients(sc, holey, None)) == encode_stage(_with_coefficients(sc, holey.copy(), None))
    with pytest.raises(SchemaError):
        allocate_coefficients(-1, 3)


def test_nan_in_a_late_batch_of_framed_rows_leaves_no_file(tmp_path: Path) -> None:
    from cobre_mpi_io.policy import allocate_coefficients

    n = 1500
    big = StageCuts(stage_id=1, state_dimension=3, capacity=n, warm_start_count=0,
                    cut_ids=np.arange(n, dtype=np.uint64), slot_index=np.arange(n, dtype=np.uint32),
                    iteration=np.ones(n, np.uint32), forward_pass_idx=np.zeros(n, np.uint32), scenario_idx=np.zeros(n, np.uint32),
                    intercepts=np.zeros(n), coefficients=allocate_coefficients(n, 3), is_active=np.ones(n, bool),
                    domination_count=np.zeros(n, np.uint32))
    big.coefficients[1400, 2] = np.inf  # in the third batch of 512 rows
    with pytest.raises(SchemaError, match="coefficients"):
        write_stage_cuts(tmp_path / "stage_001.bin", big, check_finite=True)
    assert list(tmp_path.iterdir()) == []


def test_write_iovecs_finishes_short_writes_and_works_without_writev(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A writev that writes less than asked (a signal, a pipe, a quota) and a libc without writev both end
    with every byte written, in order."""
    import os

    from cobre_mpi_io import atomic

    bufs = [np.frombuffer(bytes(range(i, i + 40)), dtype=np.uint8) for i in range(0, 200, 40)]
    iov = np.array([[b.ctypes.data, b.nbytes] for b in bufs], dtype=np.uint64)
    want = b"".join(b.tobytes() for b in bufs)

    class ShortLibc:  # writes 57 bytes of whatever it is asked: the first segment and part of the second
        def writev(self, fd: int, address: int, count: int) -> int:
            first = int((address - iov.ctypes.data) // 16)
            data = b"".join(bufs[i].tobytes() for i in range(first, first + count))[:57]
            return os.write(fd, data)

    for libc in (atomic._libc(), ShortLibc(), None):
        monkeypatch.setattr(atomic, "_libc", lambda libc=libc: libc)
        path = tmp_path / f"{type(libc).__name__}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            assert atomic.write_iovecs(fd, iov) == len(want)
        finally:
            os.close(fd)
        assert path.read_bytes() == want
    with pytest.raises(ValueError, match="iov"):
        atomic.write_iovecs(0, iov[:, :1].copy())
