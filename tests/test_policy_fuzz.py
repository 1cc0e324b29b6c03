"""Fuzz of the policy stage readers: every damaged buffer is refused with an OutputError or decodes to a
record that validates -- never another exception, a NumPy warning, a hang or a large allocation.

Deterministic cases (every truncation, every byte flipped three ways, zeroed files and words, every
pair of swapped kinds, aliased offsets, huge lengths, the issue's hostile 808 KB and 4 MB files) and a
derandomized hypothesis campaign (flips, truncations, zeroed and random ranges, interesting 32-bit
words written over offsets and lengths, offsets copied onto one another, one to four at once) run on
the four kinds, in memory (``decode_stage_*``; the file readers map the file and call the same code).

A decode that succeeds on damaged bytes is counted as ``same`` (the damage hit padding or a byte the
schema does not reach, e.g. a truncated trailing pad) or ``different`` (a changed number that is still
well formed, such as a coefficient): only the checkpoint's xxhash64 can catch those, and
``tests/test_checkpoint.py`` checks it does.  ``CASES`` counts the outcomes; ``pytest -s`` prints them.
"""

from __future__ import annotations

import itertools
import struct
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io.errors import OutputError, SchemaError, SerializationError
from cobre_mpi_io.policy.codec import encode_stage
from cobre_mpi_io.policy.decode import (
    decode_stage_basis,
    decode_stage_cuts,
    decode_stage_states,
    decode_stage_vertices,
)
from cobre_mpi_io.policy.records import StageCuts
from cobre_mpi_io.testing.policy import synthetic_policy

DECODERS: dict[str, Callable[..., Any]] = {"cuts": decode_stage_cuts, "states": decode_stage_states,
                                           "vertices": decode_stage_vertices, "basis": decode_stage_basis}
MAX_EXAMPLES = 2500
CASES: Counter[str] = Counter()


def _odd_cuts() -> StageCuts:
    rng = np.random.default_rng(5)
    n, d = 7, 3
    slots = np.array([9, 2, 17, 0, 5, 11, 3], dtype=np.uint32)
    active = np.array([True, False, True, True, False, False, True])
    return StageCuts(stage_id=2, state_dimension=d, capacity=20, warm_start_count=2,
                     cut_ids=np.arange(100, 100 + n, dtype=np.uint64), slot_index=slots,
                     iteration=np.arange(n) + 1, forward_pass_idx=np.arange(n) % 2, scenario_idx=np.arange(n) * 3,
                     intercepts=rng.standard_normal(n), coefficients=rng.standard_normal((n, d)),
                     states_at_generation=rng.random((n, d)), is_active=active, domination_count=np.arange(n))


def _samples() -> dict[str, bytes]:
    p = synthetic_policy(3, 2, 2, seed=7, with_vertices=True)
    return {"cuts": encode_stage(_odd_cuts()), "states": encode_stage(p.states[1]),
            "vertices": encode_stage(p.vertices[1]), "basis": encode_stage(p.bases[1])}


SAMPLES = _samples()
ORIGINALS = {kind: DECODERS[kind](data) for kind, data in SAMPLES.items()}


def _same(a: Any, b: Any) -> bool:
    for name in vars(b):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            if (x is None) != (y is None):
                return False
        elif np.asarray(x).tobytes() != np.asarray(y).tobytes() or np.shape(x) != np.shape(y):
            return False
    return True


def outcome(kind: str, data: bytes | bytearray) -> str:
    """``refused`` (an OutputError with a message), ``same`` or ``different``; anything else raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy overflow/cast warning would fail the test
        try:
            obj = DECODERS[kind](bytes(data))
        except OutputError as exc:
            assert str(exc)
            return "refused"
    return "same" if _same(obj, ORIGINALS[kind]) else "different"


# ---------------------------------------------------------------- deterministic cases


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_every_truncation_is_refused(kind: str) -> None:
    data = SAMPLES[kind]
    for k in range(len(data)):
        got = outcome(kind, data[:k])
        CASES[f"truncation {got}"] += 1
        # only a trailing alignment pad (never a byte the schema reaches) may go unnoticed
        assert got == "refused" or (got == "same" and k >= len(data) - 3), (k, got)


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.slow(10)
def test_every_byte_flipped_three_ways(kind: str) -> None:
    data = SAMPLES[kind]
    seen: Counter[str] = Counter()
    for pos in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            buf = bytearray(data)
            buf[pos] ^= mask
            seen[outcome(kind, buf)] += 1
    CASES.update({f"flip {k}": v for k, v in seen.items()})
    assert seen["refused"] > 0 and sum(seen.values()) == 3 * len(data)


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_zeroed_file_and_every_zeroed_word(kind: str) -> None:
    data = SAMPLES[kind]
    assert outcome(kind, bytes(len(data))) == "refused"  # the all-zero basis file loaded as stage 0
    for pos in range(0, len(data), 4):
        buf = bytearray(data)
        buf[pos:pos + 4] = bytes(4)
        CASES[f"zeroed word {outcome(kind, buf)}"] += 1


def _variants(kind: str) -> list[bytes]:
    """The sample, a one-element and an empty stage of ``kind`` (our layout)."""
    p1 = synthetic_policy(3, 1, 1, seed=2, cuts_per_stage=1, forward_passes=1, with_vertices=True)
    p0 = synthetic_policy(3, 1, 1, seed=2, cuts_per_stage=0, forward_passes=1, with_vertices=True)
    pick = {"cuts": lambda p: p.cuts[0], "states": lambda p: p.states[0], "vertices": lambda p: p.vertices[0],
            "basis": lambda p: p.bases[0]}[kind]
    return [SAMPLES[kind], encode_stage(pick(p1)), encode_stage(pick(p0))]


@pytest.mark.parametrize(("src", "dst"), list(itertools.permutations(SAMPLES, 2)))
def test_a_file_of_another_kind_is_refused(src: str, dst: str) -> None:
    """Swapped kinds, both ways, for every pair: a cuts file copied over a basis file no longer loads."""
    for data in _variants(src):
        with pytest.raises(OutputError):
            DECODERS[dst](data)
        CASES["swapped kind refused"] += 1


def _u32(buf: bytearray, pos: int) -> int:
    return int(struct.unpack_from("<I", buf, pos)[0])


def _cuts_layout(data: bytes) -> tuple[int, int, list[int], list[int]]:
    """(position of the cuts vector, n, element positions, coefficient uoffset field positions)."""
    b = bytearray(data)
    root = _u32(b, 0)
    vt = root - struct.unpack_from("<i", b, root)[0]
    cuts_field = root + struct.unpack_from("<H", b, vt + 4 + 2 * 4)[0]
    vec = cuts_field + _u32(b, cuts_field)
    n = _u32(b, vec)
    elems = [vec + 4 + 4 * i for i in range(n)]
    coef_fields = []
    for e in elems:
        t = e + _u32(b, e)
        cvt = t - struct.unpack_from("<i", b, t)[0]
        coef_fields.append(t + struct.unpack_from("<H", b, cvt + 4 + 2 * 6)[0])
    return vec, n, elems, coef_fields


def test_aliased_offsets_are_refused() -> None:
    data = SAMPLES["cuts"]
    _vec, _n, elems, coef_fields = _cuts_layout(data)
    # the second cut entry points at the first cut's table
    b = bytearray(data)
    struct.pack_into("<I", b, elems[1], elems[0] + _u32(b, elems[0]) - elems[1])
    with pytest.raises(SerializationError, match="share bytes"):
        decode_stage_cuts(bytes(b))
    # the second cut's coefficients are the first cut's vector
    b = bytearray(data)
    target = coef_fields[0] + _u32(b, coef_fields[0])
    struct.pack_into("<I", b, coef_fields[1], target - coef_fields[1])
    with pytest.raises(SerializationError, match="share bytes"):
        decode_stage_cuts(bytes(b))
    # a coefficient vector that is the root table's bytes
    b = bytearray(data)
    struct.pack_into("<I", b, coef_fields[2], _u32(b, 0) - coef_fields[2] + 2**32)  # wraps: points backward
    with pytest.raises(OutputError):
        decode_stage_cuts(bytes(b))
    CASES["aliased refused"] += 3


@pytest.mark.parametrize("what", ["cuts vector", "coefficients", "state_dimension", "active indices",
                                  "vtable size", "table size", "root offset"])
def test_huge_lengths_are_refused(what: str) -> None:
    data = SAMPLES["cuts"]
    b = bytearray(data)
    vec, _n, _elems, coef_fields = _cuts_layout(data)
    root = _u32(b, 0)
    vt = root - struct.unpack_from("<i", b, root)[0]
    if what == "cuts vector":
        struct.pack_into("<I", b, vec, 0xFFFFFFFF)
    elif what == "coefficients":
        struct.pack_into("<I", b, coef_fields[3] + _u32(b, coef_fields[3]), 0xFFFFFFFF)
    elif what == "state_dimension":
        struct.pack_into("<I", b, root + struct.unpack_from("<H", b, vt + 6)[0], 0xFFFFFFFF)
    elif what == "active indices":
        field = root + struct.unpack_from("<H", b, vt + 4 + 2 * 5)[0]
        struct.pack_into("<I", b, field + _u32(b, field), 0x7FFFFFFF)
    elif what == "vtable size":
        struct.pack_into("<H", b, vt, 0xFFFE)
    elif what == "table size":
        struct.pack_into("<H", b, vt + 2, 0xFFFF)
    else:
        struct.pack_into("<I", b, 0, 0xFFFFFFF0)
    tracemalloc.start()
    try:
        with pytest.raises(OutputError):
            decode_stage_cuts(bytes(b))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(b) + (1 << 20)
    CASES["huge length refused"] += 1


def aliased_cuts(n: int, d: int) -> bytes:
    """The issue's hostile file: a StageCuts whose ``n`` cut offsets all point at one cut of ``d`` coefficients.

    808 KB for n=200,000, d=1,000 (it used to decode to a 200,000 x 1,000 array: 1.6 GB, 7.4 s);
    4 MB for n=1,000,000, d=2,000 (it used to ask for 14.9 GiB: a bare MemoryError).
    """
    head = bytearray(64)
    struct.pack_into("<I", head, 0, 24)  # root table at 24, its vtable at 4
    struct.pack_into("<HH7H", head, 4, 18, 32, 4, 8, 12, 16, 28, 24, 20)
    struct.pack_into("<iIIIII", head, 24, 20, 0, d, n, 0, n)  # stage 0, d, capacity n, warm 0, populated n
    struct.pack_into("<II", head, 48, 56 - 48, 60 - 52)  # active_cut_indices -> 56 (empty), cuts -> 60
    struct.pack_into("<II", head, 56, 0, n)
    vtable = 64 + 4 * n  # BendersCut vtable: only coefficients (slot 6) at offset 4 of an 8-byte table
    table = vtable + 24
    coef = ((table + 8 + 4 + 7) & ~7) - 4
    offsets = (table - (64 + 4 * np.arange(n, dtype=np.int64))).astype("<u4")
    return b"".join([bytes(head), offsets.tobytes(), struct.pack("<HH10H", 24, 8, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0),
                     struct.pack("<iI", table - vtable, coef - (table + 4)), bytes(coef - table - 8),
                     struct.pack("<I", d), np.arange(d, dtype="<f8").tobytes()])


@pytest.mark.parametrize(("n", "d", "size"), [(200_000, 1_000, 808_104), (1_000_000, 2_000, 4_016_104)])
def test_hostile_aliased_file_allocates_little(n: int, d: int, size: int) -> None:
    data = aliased_cuts(n, d)
    assert len(data) == size
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match="share bytes"):
            decode_stage_cuts(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * size  # was n x d x 8 bytes: 1.6 GB and 16 GB
    CASES["hostile refused"] += 1


def test_the_hostile_file_builder_is_a_real_stagecuts() -> None:
    """With one cut entry the crafted layout passes every structural check (the refusals above are about the
    aliasing); only its content fails validation (an active cut missing from active_cut_indices)."""
    with pytest.raises(SchemaError, match="active_cut_indices"):
        decode_stage_cuts(aliased_cuts(1, 5))


# ---------------------------------------------------------------- property-based campaign

WORDS = (0, 1, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, 2**16, 2**24)


@st.composite
def mutation(draw: st.DrawFn, size: int) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["flip", "truncate", "zero", "random", "word", "copy", "append"]))
    pos = draw(st.integers(0, size - 1))
    if kind == "flip":
        return (kind, pos, draw(st.integers(1, 255)))
    if kind == "truncate":
        return (kind, pos)
    if kind in ("zero", "random"):
        return (kind, pos, draw(st.integers(1, 64)), draw(st.binary(min_size=64, max_size=64)))
    if kind == "word":
        return (kind, pos & ~3, draw(st.sampled_from(WORDS) | st.integers(0, 2**32 - 1)))
    if kind == "copy":  # an offset or length copied onto another: aliasing
        return (kind, pos & ~3, draw(st.integers(0, size - 4)) & ~3)
    return (kind, draw(st.binary(min_size=1, max_size=32)))


def _apply(buf: bytearray, m: tuple[Any, ...]) -> bytearray:
    op = m[0]
    if op == "flip" and m[1] < len(buf):
        buf[m[1]] ^= m[2]
    elif op == "truncate":
        del buf[m[1]:]
    elif op in ("zero", "random"):
        chunk = bytes(m[2]) if op == "zero" else m[3][:m[2]]
        buf[m[1]:m[1] + m[2]] = chunk[:max(0, len(buf) - m[1])]
    elif op == "word" and m[1] + 4 <= len(buf):
        struct.pack_into("<I", buf, m[1], m[2])
    elif op == "copy" and max(m[1], m[2]) + 4 <= len(buf):
        buf[m[1]:m[1] + 4] = buf[m[2]:m[2] + 4]
    elif op == "append":
        buf += m[1]
    return buf


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(list(SAMPLES)))
    data = SAMPLES[kind]
    buf = bytearray(data)
    for m in draw(st.lists(mutation(len(data)), min_size=1, max_size=4)):
        buf = _apply(buf, m)
    return kind, bytes(buf)


@pytest.mark.slow(25)
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(damaged())
def test_damaged_buffers_are_refused_or_decode_to_a_valid_record(case: tuple[str, bytes]) -> None:
    kind, data = case
    CASES[f"fuzz {outcome(kind, data)}"] += 1


def test_fuzz_counts() -> None:
    """Runs after the fuzz (file order): prints the counts; every kind of outcome was reached."""
    fuzz = sum(v for k, v in CASES.items() if k.startswith("fuzz "))
    total = sum(CASES.values())
    print(f"\npolicy reader fuzz: {total} cases ({fuzz} hypothesis): " + ", ".join(
        f"{k}: {v}" for k, v in sorted(CASES.items())))
    if fuzz:  # the campaign ran in this session
        assert fuzz >= MAX_EXAMPLES // 2
        assert CASES["fuzz refused"] > 0
