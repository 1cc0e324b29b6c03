"""Serial tests of the FlatBuffers policy checkpoint (cobre_mpi_io.policy)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_cuts_equal, bits
from mpi4py import MPI

from cobre_mpi_io._generated.cobre.policy import StageBasis as GBasis
from cobre_mpi_io._generated.cobre.policy import StageCuts as GCuts
from cobre_mpi_io._generated.cobre.policy import StageStates as GStates
from cobre_mpi_io._generated.cobre.policy import StageVertices as GVertices
from cobre_mpi_io.errors import ManifestError, OutputError, SchemaError, SerializationError
from cobre_mpi_io.hashing import xxh64_file
from cobre_mpi_io.layout import policy_cut_files
from cobre_mpi_io.policy.checkpoint import (
    PolicyCheckpointer,
    list_checkpoints,
    read_policy_checkpoint,
    write_policy_checkpoint,
)
from cobre_mpi_io.policy.codec import write_stage_cuts
from cobre_mpi_io.policy.decode import read_stage_basis, read_stage_cuts
from cobre_mpi_io.policy.records import FileDigest, PolicyMetadata, StageBasis, StageCuts
from cobre_mpi_io.testing.policy import synthetic_policy

ROOT = Path(__file__).resolve().parents[1]
SELF = MPI.COMM_SELF


def _write(path: Path, policy, **kw):  # type: ignore[no-untyped-def]
    return write_policy_checkpoint(path, **{**policy.write_kwargs(), **kw}, comm=SELF)


def _odd_stage(stage_id: int = 2, n: int = 7, d: int = 3) -> StageCuts:
    """Non-contiguous slots, inactive cuts, states at generation, -0.0 and subnormals."""
    rng = np.random.default_rng(5)
    coef = rng.standard_normal((n, d))
    coef[0, 0] = -0.0
    coef[1, 1] = 5e-324
    slots = np.array([9, 2, 17, 0, 5, 11, 3], dtype=np.uint32)[:n]
    active = np.array([True, False, True, True, False, False, True])[:n]
    return StageCuts(stage_id=stage_id, state_dimension=d, capacity=20, warm_start_count=2,
                     cut_ids=np.arange(100, 100 + n, dtype=np.uint64) * 2**40, slot_index=slots,
                     iteration=np.arange(n) + 1, forward_pass_idx=np.arange(n) % 2,
                     scenario_idx=np.arange(n) * 3, intercepts=rng.standard_normal(n), coefficients=coef,
                     states_at_generation=rng.random((n, d)), is_active=active,
                     domination_count=np.arange(n), active_cut_indices=slots[active][::-1])


# ---------------------------------------------------------------- generated code


def _need_flatc() -> None:
    """Skip without ``flatc`` locally; under CI (``CI=true``) a missing ``flatc`` is a failure."""
    if shutil.which("flatc") is None:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail("flatc not installed (CI=true: this check must run; apt-get install flatbuffers-compiler)")
        pytest.skip("flatc not installed (Debian: apt-get install flatbuffers-compiler)")


def test_generated_code_is_current(tmp_path: Path) -> None:
    _need_flatc()
    subprocess.run(["bash", str(ROOT / "scripts" / "regen_flatbuffers.sh"), str(tmp_path)], check=True,
                   capture_output=True)
    committed = ROOT / "cobre_mpi_io" / "_generated" / "cobre"
    fresh = tmp_path / "cobre"

    def walk(d: Path) -> list[str]:
        return sorted(str(p.relative_to(d)) for p in d.rglob("*.py"))

    assert walk(committed) == walk(fresh)
    for rel in walk(fresh):
        assert filecmp.cmp(committed / rel, fresh / rel, shallow=False), f"{rel} differs: run scripts/regen"


# ---------------------------------------------------------------- independent decoding


def test_cut_file_decodes_with_generated_code(tmp_path: Path) -> None:
    sc = _odd_stage()
    write_stage_cuts(tmp_path / "s.bin", sc)
    data = (tmp_path / "s.bin").read_bytes()
    root = GCuts.StageCuts.GetRootAs(data, 0)
    assert (root.StageId(), root.StateDimension(), root.Capacity(), root.WarmStartCount(),
            root.PopulatedCount(), root.CutsLength()) == (2, 3, 20, 2, 7, 7)
    assert root.ActiveCutIndicesAsNumpy().tolist() == sc.active_cut_indices.tolist()
    for i in range(root.CutsLength()):
        c = root.Cuts(i)
        assert c.CutId() == sc.cut_ids[i] and c.SlotIndex() == sc.slot_index[i]
        assert c.Iteration() == sc.iteration[i] and c.ForwardPassIdx() == sc.forward_pass_idx[i]
        assert c.ScenarioIdx() == sc.scenario_idx[i] and c.Intercept() == sc.intercepts[i]
        assert c.IsActive() == sc.is_active[i] and c.DominationCount() == sc.domination_count[i]
        assert bits(c.CoefficientsAsNumpy()) == bits(sc.coefficients[i])
        assert bits(c.StateAtGenerationAsNumpy()) == bits(sc.states_at_generation[i])


def test_other_stage_files_decode_with_generated_code(tmp_path: Path) -> None:
    p = synthetic_policy(4, 2, 3, seed=3, with_vertices=True)
    rec = _write(tmp_path / "policy", p)
    ck = Path(rec.checkpoint_dir)
    st, vx, bs = p.states[1], p.vertices[1], p.bases[1]
    g = GStates.StageStates.GetRootAs((ck / "states/stage_001.bin").read_bytes(), 0)
    assert (g.StageId(), g.StateDimension(), g.StatesLength()) == (1, 4, st.n_states)
    for i in range(g.StatesLength()):
        s = g.States(i)
        assert (s.StateId(), s.Iteration(), s.ForwardPassIdx(), s.ScenarioIdx(), s.DominatingCutId()) == (
            st.state_ids[i], st.iteration[i], st.forward_pass_idx[i], st.scenario_idx[i],
            st.dominating_cut_id[i])
        assert s.DominatingObjective() == st.dominating_objective[i]
        assert bits(s.ComponentsAsNumpy()) == bits(st.components[i])
    g2 = GVertices.StageVertices.GetRootAs((ck / "vertices/stage_001.bin").read_bytes(), 0)
    assert (g2.StageId(), g2.VerticesLength(), g2.StageLipschitz()) == (1, vx.n_vertices, vx.stage_lipschitz)
    v = g2.Vertices(1)
    assert (v.VertexId(), v.UpperBoundValue(), v.LipschitzConstant()) == (
        vx.vertex_ids[1], vx.upper_bound_value[1], vx.lipschitz_constant[1])
    assert bits(v.ComponentsAsNumpy()) == bits(vx.components[1])
    g3 = GBasis.StageBasis.GetRootAs((ck / "basis/stage_001.bin").read_bytes(), 0)
    assert (g3.StageId(), g3.Iteration(), g3.NumColumns(), g3.NumRows(), g3.NumCutRows()) == (
        1, bs.iteration, bs.num_columns, bs.num_rows, bs.num_cut_rows)
    assert g3.ColumnStatusAsNumpy().tolist() == bs.column_status.tolist()
    assert g3.RowStatusAsNumpy().tolist() == bs.row_status.tolist()


def test_flatc_json_decoding(tmp_path: Path) -> None:
    """flatc itself (C++ reader built from the same schema) converts the file to JSON."""
    _need_flatc()
    sc = _odd_stage()
    write_stage_cuts(tmp_path / "stage_002.bin", sc)
    subprocess.run(["flatc", "--json", "--strict-json", "--raw-binary", "-o", str(tmp_path),
                    str(ROOT / "cobre_mpi_io" / "fbs" / "policy.fbs"), "--root-type",
                    "cobre.policy.StageCuts", "--", str(tmp_path / "stage_002.bin")], check=True)
    doc = json.loads((tmp_path / "stage_002.json").read_text())
    assert [c["slot_index"] for c in doc["cuts"]] == sc.slot_index.tolist()
    assert [c.get("is_active", True) for c in doc["cuts"]] == sc.is_active.tolist()
    assert np.allclose([c["coefficients"] for c in doc["cuts"]], sc.coefficients, rtol=1e-11)


# ---------------------------------------------------------------- round trips


def test_stage_round_trip_bit_for_bit(tmp_path: Path) -> None:
    sc = _odd_stage()
    sc.coefficients[2, 1] = np.nan  # persisted as is unless check_finite
    sc.coefficients[3, 2] = -np.inf
    write_stage_cuts(tmp_path / "s.bin", sc)
    back = read_stage_cuts(tmp_path / "s.bin")
    assert_cuts_equal(back, sc)


def test_coefficients_are_zero_copy_views(tmp_path: Path) -> None:
    sc = synthetic_policy(16, 1, 5, seed=2).cuts[0]
    write_stage_cuts(tmp_path / "s.bin", sc)
    back = read_stage_cuts(tmp_path / "s.bin")
    coef = back.coefficients
    assert coef.shape == (sc.n_cuts, 16)
    assert not coef.flags.owndata and not coef.flags.writeable
    assert coef.strides == (8 + 8 * 16, 8)
    np.testing.assert_array_equal(coef, sc.coefficients)


@pytest.mark.parametrize("n", [0, 1])
def test_stage_with_zero_or_one_cut(tmp_path: Path, n: int) -> None:
    e = np.zeros(n, dtype=np.int64)
    sc = StageCuts(stage_id=0, state_dimension=4, capacity=5, warm_start_count=0, cut_ids=e.astype(np.uint64),
                   slot_index=e + 3, iteration=e + 1, forward_pass_idx=e, scenario_idx=e, intercepts=e + 1.5,
                   coefficients=np.ones((n, 4)))
    write_stage_cuts(tmp_path / "s.bin", sc)
    back = read_stage_cuts(tmp_path / "s.bin")
    assert back.coefficients.shape == (n, 4) and back.n_cuts == n
    assert_cuts_equal(back, sc)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    p = synthetic_policy(6, 4, 3, seed=9, with_vertices=True)
    p.cuts[2] = _odd_stage(stage_id=2, d=6)
    p.cuts[3] = StageCuts(stage_id=3, state_dimension=6, capacity=12, warm_start_count=0, cut_ids=[],
                          slot_index=[], iteration=[], forward_pass_idx=[], scenario_idx=[], intercepts=[],
                          coefficients=np.zeros((0, 6)))  # empty stage
    sd = {"version": "1", "state_dimension": 6, "state_variables": []}
    _write(tmp_path / "policy", p, state_dictionary=sd)
    back = read_policy_checkpoint(tmp_path / "policy", expected_state_dimension=6, expected_num_stages=4)
    assert back.metadata.completed_iterations == 3 and back.metadata.created_at
    assert back.state_dictionary == sd
    for a, b in zip(back.cuts, p.cuts, strict=True):
        assert_cuts_equal(a, b)
    for a, b in zip(back.states, p.states, strict=True):
        assert bits(a.components) == bits(b.components) and a.state_ids.tolist() == b.state_ids.tolist()
    for a, b in zip(back.vertices, p.vertices, strict=True):
        assert bits(a.components) == bits(b.components) and a.stage_lipschitz == b.stage_lipschitz
    for a, b in zip(back.bases, p.bases, strict=True):
        assert bits(a.row_status) == bits(b.row_status) and a.num_cut_rows == b.num_cut_rows
    # the SPEC §2 paths work with plain open()
    with open(tmp_path / "policy" / "cuts" / "stage_000.bin", "rb") as fh:
        assert fh.read() == (Path(back.path) / "cuts" / "stage_000.bin").read_bytes()
    assert json.loads((tmp_path / "policy" / "metadata.json").read_text())["num_stages"] == 4
    assert [f.name for f in policy_cut_files(tmp_path / "policy")] == [f"stage_{i:03d}.bin" for i in range(4)]


def test_synthetic_policy_is_deterministic() -> None:
    a = synthetic_policy(5, 2, 3, seed=4)
    b = synthetic_policy(5, 2, 3, seed=4)
    later = synthetic_policy(5, 2, 4, seed=4, max_iterations=3)
    for x, y, z in zip(a.cuts, b.cuts, later.cuts, strict=True):
        x.validate(), y.validate(), z.validate()
        assert_cuts_equal(x, y)
        assert bits(z.coefficients[: x.n_cuts]) == bits(x.coefficients)


# ---------------------------------------------------------------- validation and compatibility


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"coefficients": np.zeros((7, 2))}, "coefficients"),
        ({"slot_index": [9, 2, 17, 0, 5, 11, 20]}, "slot_index"),
        ({"slot_index": [9, 2, 17, 0, 5, 11, 9]}, "slot_index"),
        ({"active_cut_indices": [9, 2]}, "active_cut_indices"),
        ({"capacity": 6}, "populated_count"),
        ({"intercepts": [np.nan] * 7}, "intercepts"),
        ({"coefficients": np.full((7, 3), np.inf)}, "coefficients"),
        ({"states_at_generation": np.full((7, 3), np.nan)}, "states_at_generation"),
        ({"iteration": [-1] * 7}, "iteration"),
        ({"is_active": [True] * 3}, "is_active"),
    ],
)
def test_validation_names_stage_and_field(tmp_path: Path, change: dict, column: str) -> None:
    sc = _odd_stage()
    for k, v in change.items():
        setattr(sc, k, v)
    with pytest.raises(SchemaError) as info:
        write_stage_cuts(tmp_path / "s.bin", sc, check_finite=True)
    assert info.value.column == column and info.value.file == "cuts/stage_002.bin"
    assert not (tmp_path / "s.bin").exists() and not list(tmp_path.iterdir())


def test_load_checks_dimension_stages_and_hashes(tmp_path: Path) -> None:
    _write(tmp_path / "policy", synthetic_policy(3, 2, 1, config_hash="c1", system_hash="s1"))
    with pytest.raises(SchemaError, match="state_dimension"):
        read_policy_checkpoint(tmp_path / "policy", expected_state_dimension=4)
    with pytest.raises(SchemaError, match="num_stages"):
        read_policy_checkpoint(tmp_path / "policy", expected_num_stages=3)
    with pytest.raises(ManifestError, match="config_hash"):
        read_policy_checkpoint(tmp_path / "policy", config_hash="other")
    with pytest.raises(ManifestError, match="system_hash"):
        read_policy_checkpoint(tmp_path / "policy", system_hash="other")
    ok = read_policy_checkpoint(tmp_path / "policy", expected_state_dimension=3, expected_num_stages=2,
                                config_hash="c1", system_hash="s1")
    assert ok.metadata.system_hash == "s1"


def test_metadata_inconsistent_with_stages_is_refused(tmp_path: Path) -> None:
    p = synthetic_policy(3, 2, 1)
    bad = PolicyMetadata(completed_iterations=1, state_dimension=3, num_stages=3)
    with pytest.raises(SchemaError, match="num_stages"):
        write_policy_checkpoint(tmp_path / "policy", p.cuts, p.bases, bad, comm=SELF)
    assert list_checkpoints(tmp_path / "policy") == []


def test_failed_checkpoint_keeps_previous(tmp_path: Path) -> None:
    _write(tmp_path / "policy", synthetic_policy(3, 2, 1))
    p = synthetic_policy(3, 2, 2)
    p.cuts[1].intercepts = np.full(p.cuts[1].n_cuts, np.inf)
    with pytest.raises(SchemaError):
        _write(tmp_path / "policy", p, check_finite=True)
    assert read_policy_checkpoint(tmp_path / "policy").metadata.completed_iterations == 1
    assert [c.name for c in list_checkpoints(tmp_path / "policy")] == ["iter_000001"]


# ---------------------------------------------------------------- retention, latest pointer


def test_retention_keeps_three_and_latest_is_newest(tmp_path: Path) -> None:
    pol = tmp_path / "policy"
    for it in range(1, 6):
        rec = _write(pol, synthetic_policy(3, 2, it))
        assert read_policy_checkpoint(pol).metadata.completed_iterations == it
        assert os.readlink(pol / "latest") == f"checkpoints/iter_{it:06d}"
    assert [c.name for c in list_checkpoints(pol)] == ["iter_000003", "iter_000004", "iter_000005"]
    assert len(rec.removed) == 1
    # same iteration again (final after periodic): published under a new name, never overwritten
    _write(pol, synthetic_policy(3, 2, 5))
    assert os.readlink(pol / "latest") == "checkpoints/iter_000005-1"
    assert len(list_checkpoints(pol)) == 3


_KILL_DRIVER = textwrap.dedent("""
    import sys
    from mpi4py import MPI
    from cobre_mpi_io.policy import write_policy_checkpoint
    from cobre_mpi_io.testing.policy import synthetic_policy
    out = sys.argv[1]
    p = synthetic_policy(4, 2, 1)
    write_policy_checkpoint(out, **p.write_kwargs(), comm=MPI.COMM_SELF)
    print("first", flush=True)
    big = synthetic_policy(400, 30, 2, cuts_per_stage=2000)
    print("second", flush=True)
    write_policy_checkpoint(out, **big.write_kwargs(), comm=MPI.COMM_SELF)
    print("done", flush=True)
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.timeout(180)
def test_kill_during_checkpoint_keeps_previous(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(_KILL_DRIVER)
    pol = tmp_path / "policy"
    proc = subprocess.Popen([sys.executable, str(script), str(pol)], stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "first"
    assert proc.stdout.readline().strip() == "second"
    deadline = time.monotonic() + 120
    ckdir = pol / "checkpoints"
    while time.monotonic() < deadline:  # kill as soon as the second checkpoint has stage files on disk
        tmps = [d for d in ckdir.iterdir() if d.name.startswith(".")]
        if tmps and any((tmps[0] / "cuts").glob("*.bin")):
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    back = read_policy_checkpoint(pol, expected_num_stages=2, expected_state_dimension=4)
    assert back.metadata.completed_iterations == 1
    assert [c.name for c in list_checkpoints(pol)] == ["iter_000001"]
    # the next checkpoint cleans the leftover and publishes
    _write(pol, synthetic_policy(4, 2, 3))
    assert not [d for d in ckdir.iterdir() if d.name.startswith(".")]
    assert read_policy_checkpoint(pol).metadata.completed_iterations == 3


# ---------------------------------------------------------------- periodic checkpointer


class _TrainingWriter:
    def __init__(self) -> None:
        self.calls = 0

    def checkpoint(self) -> None:
        self.calls += 1


def test_checkpointer_period_final_and_training_writer(tmp_path: Path) -> None:
    tw = _TrainingWriter()
    with PolicyCheckpointer(tmp_path, every=2, keep=3, comm=SELF, training_writer=tw) as ck:
        for it in range(1, 8):
            ck.after_iteration(it, lambda it=it: synthetic_policy(3, 2, it).write_kwargs())
            assert not ck.interrupted
        ck.final(**synthetic_policy(3, 2, 7).write_kwargs())
        assert ck.final(**synthetic_policy(3, 2, 7).write_kwargs()) is None  # already published
    assert [r.iteration for r in ck.records] == [2, 4, 6, 7]
    assert tw.calls == 4
    assert [c.name for c in list_checkpoints(tmp_path / "policy")] == ["iter_000004", "iter_000006",
                                                                       "iter_000007"]
    assert read_policy_checkpoint(tmp_path / "policy").metadata.completed_iterations == 7


def test_checkpointer_signal_checkpoints_last_completed(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with PolicyCheckpointer(tmp_path, every=100, comm=SELF) as ck:
        for it in range(1, 10):
            if it == 4:
                signal.raise_signal(signal.SIGTERM)
            rec = ck.after_iteration(it, lambda it=it: synthetic_policy(3, 2, it).write_kwargs())
            if ck.interrupted:
                break
    assert signal.getsignal(signal.SIGTERM) is previous
    assert it == 4 and rec is not None and rec.iteration == 4
    assert read_policy_checkpoint(tmp_path / "policy").metadata.completed_iterations == 4


_SIGTERM_DRIVER = textwrap.dedent("""
    import sys, time
    from mpi4py import MPI
    from cobre_mpi_io.atomic import write_json_atomic
    from cobre_mpi_io.policy import PolicyCheckpointer
    from cobre_mpi_io.testing.policy import synthetic_policy
    out = sys.argv[1]
    status = "complete"
    with PolicyCheckpointer(out, every=1000, comm=MPI.COMM_WORLD) as ck:
        for it in range(1, 10000):
            time.sleep(0.05)  # the training iteration
            print(it, flush=True)
            ck.after_iteration(it, lambda: synthetic_policy(3, 2, it).write_kwargs())
            if ck.interrupted:
                status = "interrupted"
                break
        ck.final(**synthetic_policy(3, 2, ck.last_completed_iteration).write_kwargs())
    write_json_atomic(out + "/training/_manifest.json",
                      {"status": status, "iterations": {"completed": ck.last_completed_iteration}})
""")


@pytest.mark.timeout(120)
def test_sigterm_during_training_driver(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(_SIGTERM_DRIVER)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None
    while int(proc.stdout.readline()) < 3:
        pass
    proc.send_signal(signal.SIGTERM)
    lines = proc.stdout.read().split()
    assert proc.wait(timeout=60) == 0
    manifest = json.loads((out / "training" / "_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    last = manifest["iterations"]["completed"]
    assert last >= 3 and (not lines or int(lines[-1]) == last)
    assert read_policy_checkpoint(out / "policy").metadata.completed_iterations == last


def test_basis_validation() -> None:
    with pytest.raises(SchemaError) as info:
        StageBasis(stage_id=1, iteration=1, num_columns=3, num_rows=2, column_status=[0, 1],
                   row_status=[0, 0]).validate()
    assert info.value.column == "column_status" and info.value.file == "basis/stage_001.bin"


# ---------------------------------------------------------------- verified checkpoints (issue 8)


def _ckpt(tmp_path: Path, **kw) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A published checkpoint with every kind of file: (policy dir, checkpoint dir)."""
    pol = tmp_path / "policy"
    rec = _write(pol, synthetic_policy(4, 3, 2, seed=1, with_vertices=True, config_hash="c", system_hash="s"),
                 state_dictionary={"version": "1", "state_dimension": 4, "state_variables": []}, **kw)
    return pol, Path(rec.checkpoint_dir)


def _edit_metadata(ck: Path, fn) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((ck / "metadata.json").read_text())
    fn(doc)
    (ck / "metadata.json").write_text(json.dumps(doc))


def test_checkpoint_records_the_xxhash64_of_every_file(tmp_path: Path) -> None:
    pol = tmp_path / "policy"
    rec = _write(pol, synthetic_policy(4, 3, 2, seed=1, with_vertices=True), state_dictionary={"version": "1"})
    ck = Path(rec.checkpoint_dir)
    doc = json.loads((ck / "metadata.json").read_text())
    assert doc["version"] == "1.1.0"
    assert sorted(doc["files"]) == sorted(set(rec.files) - {"metadata.json"})  # all but itself
    assert len([r for r in doc["files"] if r.endswith(".bin")]) == 4 * 3
    for rel, entry in doc["files"].items():
        assert xxh64_file(ck / rel) == (entry["bytes"], entry["xxhash64"]) == (rec.files[rel], rec.xxhash64[rel])
    back = read_policy_checkpoint(pol)
    assert back.files == {rel: FileDigest(e["bytes"], e["xxhash64"]) for rel, e in doc["files"].items()}


def test_flipped_coefficient_byte_is_caught(tmp_path: Path) -> None:
    """The issue: a flipped byte changed a coefficient from 1.1503 to 0.5752 and the checkpoint loaded."""
    p = synthetic_policy(3, 2, 1, seed=4)
    p.cuts[1].coefficients[2, 1] = 1.1503
    pol = tmp_path / "policy"
    ck = Path(_write(pol, p).checkpoint_dir)
    f = ck / "cuts" / "stage_001.bin"
    data = bytearray(f.read_bytes())
    pos = bytes(data).index(struct.pack("<d", 1.1503))
    data[pos + 6] ^= 0x10  # the lowest exponent bit: the value halves
    f.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="xxhash64") as info:
        read_policy_checkpoint(pol)
    assert "cuts/stage_001.bin" in str(info.value)
    # the documented trusted fast path skips the hash: the damage is invisible to structure checks
    fast = read_policy_checkpoint(pol, verify=False)
    assert fast.cuts[1].coefficients[2, 1] == 1.1503 / 2


@pytest.mark.parametrize("same_size", [True, False])
def test_all_zero_basis_file_is_refused(tmp_path: Path, same_size: bool) -> None:
    """The issue: an all-zero basis file loaded as stage 0."""
    pol, ck = _ckpt(tmp_path)
    f = ck / "basis" / "stage_001.bin"
    f.write_bytes(bytes(f.stat().st_size if same_size else 64))
    with pytest.raises(ManifestError, match="xxhash64" if same_size else "bytes"):
        read_policy_checkpoint(pol)
    with pytest.raises(SerializationError, match="StageBasis"):
        read_policy_checkpoint(pol, verify=False)
    with pytest.raises(SerializationError):
        read_stage_basis(f)


@pytest.mark.parametrize(("src", "dst"), [("cuts", "basis"), ("basis", "cuts"), ("states", "vertices"),
                                          ("vertices", "states"), ("cuts", "states"), ("basis", "vertices")])
def test_file_of_another_kind_is_refused(tmp_path: Path, src: str, dst: str) -> None:
    """The issue: a cuts file copied over a basis file loaded."""
    pol, ck = _ckpt(tmp_path)
    shutil.copyfile(ck / src / "stage_001.bin", ck / dst / "stage_001.bin")
    with pytest.raises(ManifestError, match="xxhash64|bytes"):
        read_policy_checkpoint(pol)
    with pytest.raises((SerializationError, SchemaError)):
        read_policy_checkpoint(pol, verify=False)


def test_stage_files_swapped_between_stages_are_refused(tmp_path: Path) -> None:
    pol, ck = _ckpt(tmp_path)
    a, b = ck / "cuts" / "stage_000.bin", ck / "cuts" / "stage_001.bin"
    tmp = a.with_name("x")
    a.rename(tmp), b.rename(a), tmp.rename(b)
    with pytest.raises(ManifestError):
        read_policy_checkpoint(pol)
    with pytest.raises(SchemaError, match="stage_id") as info:
        read_policy_checkpoint(pol, verify=False)
    assert "holds stage 1" in str(info.value) and "stage_000.bin" in str(info.value)


def test_stage_of_another_dimension_is_refused(tmp_path: Path) -> None:
    pol, ck = _ckpt(tmp_path)
    other = synthetic_policy(5, 3, 2, seed=1).cuts[1]
    write_stage_cuts(ck / "cuts" / "stage_001.bin", other)
    _edit_metadata(ck, lambda d: d["files"].update(
        {"cuts/stage_001.bin": dict(zip(("bytes", "xxhash64"), xxh64_file(ck / "cuts" / "stage_001.bin"),
                                        strict=True))}))
    with pytest.raises(SchemaError, match="state_dimension"):
        read_policy_checkpoint(pol)


CAMPAIGN = 494


def _content(ck) -> bytes:  # type: ignore[no-untyped-def]
    """Every number of a loaded checkpoint's stages, as bytes."""
    parts = []
    for stage in (*ck.cuts, *ck.states, *ck.vertices, *ck.bases):
        for value in vars(stage).values():
            parts.append(b"-" if value is None else np.ascontiguousarray(value).tobytes())
    return b"|".join(parts)


@pytest.mark.slow(35)
def test_corrupted_stage_files_never_load_silently(tmp_path: Path) -> None:
    """The issue: 159 of 494 corrupted stage files decoded to different content with no error (151 passed
    .validate()). Now every one is refused (hash, or size), and without the hash every one is refused or
    decodes to a record that validates -- never another exception."""
    pol, ck = _ckpt(tmp_path)
    files = sorted(p for p in ck.rglob("stage_*.bin"))
    original = {p: p.read_bytes() for p in files}
    content = _content(read_policy_checkpoint(pol))
    rng = np.random.default_rng(494)
    outcomes = {"refused": 0, "same": 0, "different": 0}
    done = 0
    while done < CAMPAIGN:
        f = files[int(rng.integers(len(files)))]
        data = bytearray(original[f])
        how = int(rng.integers(4))
        at = int(rng.integers(len(data)))
        if how == 0:
            data[at] ^= int(rng.integers(1, 256))
        elif how == 1:
            del data[at:]
        elif how == 2:
            data[at:at + 8] = bytes(len(data[at:at + 8]))
        else:
            data[at & ~3:(at & ~3) + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        if bytes(data) == original[f]:
            continue
        f.write_bytes(bytes(data))
        try:
            with pytest.raises(ManifestError, match="xxhash64|bytes"):
                read_policy_checkpoint(pol)
            try:
                got = _content(read_policy_checkpoint(pol, verify=False))
                outcomes["same" if got == content else "different"] += 1
            except OutputError:
                outcomes["refused"] += 1
        finally:
            f.write_bytes(original[f])
        done += 1
    print(f"\n{CAMPAIGN} corrupted stage files: all refused with verify; without it {outcomes['refused']} "
          f"refused, {outcomes['different']} loaded with different numbers, {outcomes['same']} loaded the same "
          "(damage in padding)")
    assert outcomes["refused"] > outcomes["different"] > 0
    read_policy_checkpoint(pol)  # restored


def test_missing_extra_and_unrecorded_files(tmp_path: Path) -> None:
    pol, ck = _ckpt(tmp_path)
    (ck / "states" / "stage_002.bin").unlink()
    with pytest.raises(ManifestError, match="states/stage_002.bin, which is missing"):
        read_policy_checkpoint(pol)
    assert len(read_policy_checkpoint(pol, verify=False).states) == 2  # trusted: reads what is there
    _edit_metadata(ck, lambda d: d["files"].pop("states/stage_002.bin"))
    assert len(read_policy_checkpoint(pol).states) == 2
    _edit_metadata(ck, lambda d: d["files"].pop("basis/stage_000.bin"))
    with pytest.raises(ManifestError, match="does not record basis/stage_000.bin"):
        read_policy_checkpoint(pol)
    shutil.copyfile(ck / "basis" / "stage_000.bin", ck / "basis" / "stage_007.bin")
    with pytest.raises(SchemaError, match="no cuts file for this stage"):
        read_policy_checkpoint(pol, verify=False)


def test_state_dictionary_is_verified(tmp_path: Path) -> None:
    pol, ck = _ckpt(tmp_path)
    (ck / "state_dictionary.json").write_text('{"version": "2", "state_dimension": 4, "state_variables": []}\n')
    with pytest.raises(ManifestError, match="state_dictionary.json"):
        read_policy_checkpoint(pol)
    assert read_policy_checkpoint(pol, verify=False).state_dictionary["version"] == "2"


def test_checkpoint_without_hashes(tmp_path: Path) -> None:
    """Ours without ``files`` (format 1.0.0) needs verify=False; the Cobre solver's own has none to check."""
    pol, ck = _ckpt(tmp_path)
    _edit_metadata(ck, lambda d: d.pop("files"))
    with pytest.raises(ManifestError, match="records no file hashes"):
        read_policy_checkpoint(pol)
    assert read_policy_checkpoint(pol, verify=False).metadata.num_stages == 3

    def cobre_own(d: dict) -> None:  # type: ignore[type-arg]
        for key in ("version", "config_hash", "system_hash", "rng_state", "last_forward_pass"):
            d.pop(key)
        d.update(cobre_version="0.5.1", warm_start_counts=[0, 0, 0], total_visited_states=0)

    _edit_metadata(ck, cobre_own)
    back = read_policy_checkpoint(pol)
    assert back.metadata.version == "" and back.files == {} and len(back.cuts) == 3


@pytest.mark.parametrize(("key", "value"), [
    ("completed_iterations", "1e400"), ("final_lower_bound", "1e400"), ("best_upper_bound", "-1e999"),
    ("completed_iterations", str(10**30)), ("state_dimension", str(2**40)), ("num_stages", "-1"),
    ("rng_seed", str(2**64)), ("rng_state", "[1, -2]"), ("completed_iterations", '"5"'),
    ("max_iterations", "true"), ("final_lower_bound", '"low"'), ("created_at", "7"),
    ("files", '{"../x.bin": {"bytes": 1, "xxhash64": "0000000000000000"}}'),
    ("files", '{"cuts/stage_000.bin": {"bytes": -1, "xxhash64": "0000000000000000"}}'),
    ("files", '{"cuts/stage_000.bin": {"bytes": 1, "xxhash64": "XYZ"}}'), ("files", "[]"),
    ("completed_iterations", "9" * 5000),
])
def test_metadata_numbers_and_types_are_bounded(tmp_path: Path, key: str, value: str) -> None:
    """The issue: policy/metadata.json numbers like 1e400 raised a bare OverflowError."""
    pol, ck = _ckpt(tmp_path)
    doc = json.loads((ck / "metadata.json").read_text())
    doc[key] = "@@"
    (ck / "metadata.json").write_text(json.dumps(doc).replace('"@@"', value))
    for verify in (True, False):
        with pytest.raises(ManifestError, match="metadata.json") as info:
            read_policy_checkpoint(pol, verify=verify)
        assert not isinstance(info.value, OverflowError)
