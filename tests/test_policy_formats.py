"""Policy directories of every format (cobre_mpi_io.policy.formats, .convert, .cobre_manifest, cli/policy.py).

Data: ``tests/data/cobre-real/`` (PROVENANCE.txt): ``policy-1dtoy-v018`` written by Cobre 0.18.0,
``policy-1dtoy`` by Cobre 0.5.1, and ``case-1dtoy-v018`` (the 0.18 case; fixture ``case018_warm``: set up for a
warm start, ``conftest.warm_case_018``).  The real solver's
side is in tests/test_cobre_real018.py; nothing here needs it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_cuts_equal, bits

from cobre_mpi_io.cli.main import main
from cobre_mpi_io.errors import IoError, ManifestError, OutputError, SchemaError, SerializationError
from cobre_mpi_io.policy import read_policy_checkpoint, read_stage_cuts, write_stage_cuts
from cobre_mpi_io.policy.cobre_manifest import decode_manifest, encode_manifest
from cobre_mpi_io.policy.convert import cobre_fields_from_case, convert_policy, policy_info
from cobre_mpi_io.policy.decode import decode_stage_cuts, stage_file_format
from cobre_mpi_io.policy.formats import detect_policy_format, read_cobre_policy, write_cobre_policy

DATA = Path(__file__).parent / "data" / "cobre-real"
V018 = DATA / "policy-1dtoy-v018"
V051 = DATA / "policy-1dtoy"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dst


# ------------------------------------------------------------------ reading what Cobre wrote


def test_read_cobre_018_policy_directory() -> None:
    ck = read_policy_checkpoint(V018, expected_state_dimension=1, expected_num_stages=4)
    assert (ck.format, ck.value_scale) == ("cobre-0.18", 1.0)
    assert [c.n_cuts for c in ck.cuts] == [128, 128, 128, 0]  # what cobre.results.load_policy gives
    assert [c.capacity for c in ck.cuts] == [129] * 4 and [b.stage_id for b in ck.bases] == [0, 1, 2, 3]
    for sid, sc in enumerate(ck.cuts):
        assert (sc.stage_id, sc.node_id, sc.graph_stage_id, sc.cost_scale_factor) == (sid, sid, sid, 1e6)
        assert sc.priced_state_date == [20240201, 20240301, 20240401, 20240501][sid]
        assert sc.entity_manifest is not None and sc.entity_manifest.to_rows() == [
            {"entity_type": 0, "entity_id": 0, "subindex": 0, "was_active": True, "reference_date": -2**31,
             "interval_start": -2**31, "interval_end": -2**31}]
        assert sc.states_at_generation is None and not np.asarray(sc.domination_count).any()
    sc0 = ck.cuts[0]
    assert np.asarray(sc0.slot_index).tolist() == list(range(128))  # no placeholder cut in 0.18
    assert float(sc0.intercepts[0]) == 4878527.526945354 and float(sc0.coefficients[0, 0]) == -67508.36811521264
    assert not sc0.coefficients.flags.owndata  # zero-copy view into the mapped file, as for the spec layout
    m = ck.metadata
    assert (m.completed_iterations, m.final_lower_bound, m.rng_seed, m.cobre_version) == (
        128, 2611822.2510233563, 42, "0.18.0")
    man = ck.cobre_manifest
    assert man is not None and man["format_version"] == 3 and man["software"] == "cobre"
    assert man["graph_manifest"]["n_pools"] == 4 and len(man["graph_manifest"]["edges"]) == 3
    assert man["producer"]["cost_scale_factor"] == 1e6 and len(man["producer"]["lower_bound_history"]) == 128
    assert man["season_manifest"] == {"cycle_code": 255, "n_seasons": 0, "hydro_orders": []}


def test_detect_formats_and_units(tmp_path: Path) -> None:
    assert detect_policy_format(V018) == "cobre-0.18"
    assert detect_policy_format(V051) == "cobre-0.5"
    ck = read_policy_checkpoint(V051)
    assert (ck.format, ck.value_scale) == ("cobre-0.5", None)  # not recorded beside a bare policy: not guessed
    # Cobre 0.5.x records its cost scale factor in training/scaling_report.json beside the policy
    out = tmp_path / "run"
    _copy(V051, out / "policy")
    (out / "training").mkdir()
    (out / "training" / "scaling_report.json").write_text(json.dumps({"cost_scale_factor": 1000.0, "stages": []}))
    assert read_policy_checkpoint(out / "policy").value_scale == 1000.0
    (out / "training" / "scaling_report.json").write_text(json.dumps({"cost_scale_factor": "big"}))
    with pytest.raises(ManifestError, match="scaling_report.json"):
        read_policy_checkpoint(out / "policy")
    assert stage_file_format((V018 / "cuts" / "000.bin").read_bytes()) == "cobre-0.18"
    assert stage_file_format((V051 / "cuts" / "stage_000.bin").read_bytes()) == "spec"


def test_cobre_018_files_are_checked(tmp_path: Path) -> None:
    pol = _copy(V018, tmp_path / "policy")
    (pol / "checkpoints").mkdir()  # Cobre refuses anything else in the directory; so do we
    with pytest.raises(ManifestError, match="checkpoints"):
        read_policy_checkpoint(pol)
    (pol / "checkpoints").rmdir()
    raw = bytearray((pol / "cuts" / "001.bin").read_bytes())
    raw[4:8] = b"XXXX"  # no CBVF: read with the spec layout, which it is not
    (pol / "cuts" / "001.bin").write_bytes(bytes(raw))
    with pytest.raises(OutputError, match="001.bin"):
        read_policy_checkpoint(pol)
    shutil.copy(V018 / "cuts" / "001.bin", pol / "cuts" / "001.bin")
    (pol / "cuts" / "002.bin").unlink()
    with pytest.raises(ManifestError, match="stage 2 has none"):
        read_policy_checkpoint(pol)
    man = (V018 / "manifest.bin").read_bytes()
    with pytest.raises(SerializationError, match="manifest.bin"):
        decode_manifest(man[:200], "x/manifest.bin")
    with pytest.raises(SerializationError, match="identifier"):
        decode_manifest(man[:4] + b"ABCD" + man[8:])


def test_cobre_018_cuts_survive_any_byte_flip() -> None:
    """Every single-byte corruption reads as some valid stage or raises an OutputError: never another error."""
    refused = read = 0
    for name, stop in (("003.bin", None), ("000.bin", 96)):  # the whole small file; the big one's header
        blob = (V018 / "cuts" / name).read_bytes()
        for i in range(stop or len(blob)):
            for v in (0xFF, blob[i] ^ 0x10)[: 2 if stop is None else 1]:
                bad = bytearray(blob)
                bad[i] = v
                try:
                    decode_stage_cuts(bytes(bad), source="flip")
                    read += 1
                except OutputError:
                    refused += 1
    assert refused > read > 0  # most flips are caught; a flipped value byte (a date, a count) may read


def test_entity_slot_unknown_fields_are_refused() -> None:
    """EntitySlot slots 4-5 are never written by Cobre 0.18 here; a file setting them is not guessed at."""
    raw = bytearray((V018 / "cuts" / "003.bin").read_bytes())
    # the entity slot table's vtable: 9 slots, slots 4 and 5 zero; point slot 4 at the was_active byte
    vt = bytes(raw).find(struct.pack("<HH", 22, 32))
    assert vt > 0 and struct.unpack_from("<9H", raw, vt + 4)[4:6] == (0, 0)
    struct.pack_into("<H", raw, vt + 4 + 8, struct.unpack_from("<H", raw, vt + 4 + 6)[0])
    with pytest.raises(SerializationError, match="slot 4"):
        decode_stage_cuts(bytes(raw))


# ------------------------------------------------------------------ writing format cobre-0.18


def test_write_cobre_018_round_trip(tmp_path: Path) -> None:
    ck = read_policy_checkpoint(V018)
    assert ck.cobre_manifest is not None
    files = write_cobre_policy(tmp_path / "policy", ck.cuts, ck.bases, ck.cobre_manifest, durable=False)
    assert sorted(files) == sorted([f"cuts/{i:03d}.bin" for i in range(4)] + [f"basis/{i:03d}.bin" for i in range(4)]
                                   + ["manifest.bin"])
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == ["basis", "cuts", "manifest.bin"]
    back = read_cobre_policy(tmp_path / "policy")
    for a, b in zip(ck.cuts, back.cuts, strict=True):
        assert_cuts_equal(a, b)
        assert (a.cost_scale_factor, a.node_id, a.graph_stage_id, a.priced_state_date) == (
            b.cost_scale_factor, b.node_id, b.graph_stage_id, b.priced_state_date)
        assert a.entity_manifest is not None and b.entity_manifest is not None
        assert a.entity_manifest.to_rows() == b.entity_manifest.to_rows()
    for a2, b2 in zip(ck.bases, back.bases, strict=True):
        assert a2.row_status.tolist() == b2.row_status.tolist()
        assert (V018 / "basis" / "000.bin").read_bytes()[4:8] == b"CBVF"
    assert back.cobre_manifest == ck.cobre_manifest
    with pytest.raises(IoError, match="exists"):
        write_cobre_policy(tmp_path / "policy", ck.cuts, ck.bases, ck.cobre_manifest, durable=False)


def test_cobre_018_writer_needs_the_cobre_fields(tmp_path: Path) -> None:
    sc = read_stage_cuts(V051 / "cuts" / "stage_000.bin")
    with pytest.raises(SchemaError, match="cost_scale_factor"):
        write_stage_cuts(tmp_path / "000.bin", sc, format="cobre-0.18", durable=False)
    with pytest.raises(SchemaError, match="format"):
        write_stage_cuts(tmp_path / "000.bin", sc, format="cobre-0.17", durable=False)
    assert not list(tmp_path.iterdir())


def test_manifest_round_trip_with_seasons() -> None:
    man = decode_manifest((V018 / "manifest.bin").read_bytes())
    man["season_manifest"] = {"cycle_code": 0, "n_seasons": 2, "hydro_orders": [{"hydro_id": 7, "orders": [1, 2]}]}
    man["producer"]["training_block_mode_per_stage"] = ["parallel", "chronological", "parallel", "parallel"]
    assert decode_manifest(encode_manifest(man)) == man
    man["producer"]["rng_seed"] = -1
    with pytest.raises(SerializationError, match="rng_seed"):
        encode_manifest(man)


# ------------------------------------------------------------------ conversion


def test_convert_051_to_018_scales_units(tmp_path: Path, case018_warm: Path) -> None:
    with pytest.raises(SchemaError, match="value_scale"):
        convert_policy(V051, tmp_path / "up", "cobre-0.18", case=case018_warm, durable=False)
    with pytest.raises(SchemaError, match="case"):
        convert_policy(V051, tmp_path / "up", "cobre-0.18", value_scale=1000.0, durable=False)
    assert not (tmp_path / "up").exists()
    up = convert_policy(V051, tmp_path / "up", "cobre-0.18", case=case018_warm, value_scale=1000.0, durable=False)
    src = read_policy_checkpoint(V051)
    assert (up.format, up.value_scale) == ("cobre-0.18", 1.0)
    for a, b in zip(src.cuts, up.cuts, strict=True):
        assert bits(np.asarray(b.intercepts)) == bits(np.asarray(a.intercepts) * 1000.0)
        assert bits(np.asarray(b.coefficients)) == bits(np.asarray(a.coefficients) * 1000.0)
        assert np.asarray(b.slot_index).tolist() == np.asarray(a.slot_index).tolist()
    ref = read_policy_checkpoint(V018)  # what Cobre 0.18 itself records for this case
    for mine, cobre in zip(up.cuts, ref.cuts, strict=True):
        assert (mine.node_id, mine.graph_stage_id, mine.priced_state_date, mine.cost_scale_factor) == (
            cobre.node_id, cobre.graph_stage_id, cobre.priced_state_date, cobre.cost_scale_factor)
        assert mine.entity_manifest is not None and cobre.entity_manifest is not None
        assert mine.entity_manifest.to_rows() == cobre.entity_manifest.to_rows()
    assert up.cobre_manifest is not None and ref.cobre_manifest is not None
    for key in ("graph_manifest", "season_manifest"):
        assert up.cobre_manifest[key] == ref.cobre_manifest[key]
    assert up.cobre_manifest["producer"]["final_lower_bound"] == src.metadata.final_lower_bound


def test_convert_018_spec_018(tmp_path: Path) -> None:
    spec = convert_policy(V018, tmp_path / "spec", "spec", durable=False)
    assert (spec.format, spec.value_scale) == ("spec", 1.0)  # recorded in metadata.json
    assert json.loads((tmp_path / "spec" / "metadata.json").read_text())["value_scale"] == 1.0
    # spec keeps what Cobre 0.18 records (metadata.json "cobre"): back to 0.18 without a case, unchanged
    back = convert_policy(tmp_path / "spec", tmp_path / "back", "cobre-0.18", durable=False)
    ref = read_policy_checkpoint(V018)
    assert back.cobre_manifest == ref.cobre_manifest
    for a, b in zip(ref.cuts, back.cuts, strict=True):
        assert_cuts_equal(a, b)
        assert (a.node_id, a.priced_state_date, a.cost_scale_factor) == (b.node_id, b.priced_state_date,
                                                                          b.cost_scale_factor)
        assert a.entity_manifest is not None and b.entity_manifest is not None
        assert a.entity_manifest.to_rows() == b.entity_manifest.to_rows()
    # a spec policy without them (from 0.5.x) needs the case
    convert_policy(V051, tmp_path / "spec051", "spec", value_scale=1000.0, durable=False)
    with pytest.raises(SchemaError, match="--case"):
        convert_policy(tmp_path / "spec051", tmp_path / "x", "cobre-0.18", durable=False)
    doc = json.loads((tmp_path / "spec" / "metadata.json").read_text())
    doc["cobre"]["stages"][0].pop("node_id")
    (tmp_path / "spec" / "metadata.json").write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="cobre"):
        read_policy_checkpoint(tmp_path / "spec", verify=False)
    same = convert_policy(V018, tmp_path / "same", "cobre-0.18", durable=False)
    assert same.cobre_manifest == ref.cobre_manifest
    for name in ("cuts/000.bin", "basis/002.bin"):  # our encoding, Cobre's content: read back equal
        assert (tmp_path / "same" / name).stat().st_size > 0
    with pytest.raises(IoError, match="exists"):
        convert_policy(V018, tmp_path / "same", "spec", durable=False)


def test_fields_from_case_refuse_what_they_cannot_derive(tmp_path: Path, case018_warm: Path) -> None:
    with pytest.raises(SchemaError, match="4 stages"):
        cobre_fields_from_case(case018_warm, 5, 1)
    with pytest.raises(SchemaError, match="inflow lags"):
        cobre_fields_from_case(case018_warm, 4, 3)
    from_policy = cobre_fields_from_case(V018, 4, 1)  # a 0.18 policy of the case: copied from it
    from_case = cobre_fields_from_case(case018_warm, 4, 1)
    for a, b in zip(from_policy.stages, from_case.stages, strict=True):
        assert {k: v for k, v in a.items() if k != "entity_manifest"} == {
            k: v for k, v in b.items() if k != "entity_manifest"}
    assert from_policy.manifest == from_case.manifest


# ------------------------------------------------------------------ the command line


def test_cli_policy_info_and_convert(tmp_path: Path, case018_warm: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "info", str(V018)]) == 0
    text = capsys.readouterr().out
    assert "cobre-0.18 (written by cobre 0.18.0)" in text and "384 (384 active)" in text
    assert "costs (value_scale 1)" in text
    assert main(["policy", "info", str(V051), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["format"], info["value_scale"], info["cuts"], info["producer"]) == (
        "cobre-0.5", None, 387, "cobre 0.5.1")
    assert info == policy_info(V051) | {"path": str(V051)}
    dst = tmp_path / "up"
    assert main(["policy", "convert", str(V051), str(dst), "--format", "cobre-0.18", "--case", str(case018_warm)]) == 1
    assert "--value-scale" in capsys.readouterr().err and not dst.exists()
    assert main(["policy", "convert", str(V051), str(dst), "--format", "cobre-0.18", "--case", str(case018_warm),
                 "--value-scale", "1000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "cobre-0.18"
    with pytest.raises(SystemExit) as exc:
        main(["policy", "convert", str(V051), str(tmp_path / "x"), "--format", "cobre-0.5"])
    assert exc.value.code == 2
    assert main(["policy", "info", str(tmp_path / "missing")]) == 2


def test_halved_copy_differs(tmp_path: Path) -> None:
    """The control the real-solver test uses: halving intercepts changes the files (and so the bound)."""
    ck = read_policy_checkpoint(V018)
    assert ck.cobre_manifest is not None
    halved = [dataclasses.replace(sc, intercepts=np.asarray(sc.intercepts) * 0.5) for sc in ck.cuts]
    write_cobre_policy(tmp_path / "p", halved, ck.bases, ck.cobre_manifest, durable=False)
    back = read_cobre_policy(tmp_path / "p")
    assert float(back.cuts[0].intercepts[0]) == float(ck.cuts[0].intercepts[0]) * 0.5


# ------------------------------------------------------------------ periodic checkpoints in format cobre-0.18


def _iteration_kwargs(it: int) -> dict[str, object]:
    """Cobre 0.18's own 1dtoy policy, relabelled as iteration ``it`` (its cuts scaled so each differs)."""
    ck = read_policy_checkpoint(V018)
    cuts = [dataclasses.replace(sc, intercepts=np.asarray(sc.intercepts) * (1 + it / 100)) for sc in ck.cuts]
    meta = dataclasses.replace(ck.metadata, completed_iterations=it)
    return {"stage_cuts": cuts, "stage_bases": ck.bases, "metadata": meta}


def test_checkpointer_cobre_018_rotation_beside_the_policy(tmp_path: Path, case018_warm: Path) -> None:
    from mpi4py import MPI

    from cobre_mpi_io.policy import PolicyCheckpointer

    fields = cobre_fields_from_case(case018_warm, 4, 1).manifest
    with PolicyCheckpointer(tmp_path, every=2, keep=2, comm=MPI.COMM_SELF, format="cobre-0.18",
                            cobre_fields=fields, install_signal_handlers=False) as ckpt:
        for it in range(1, 6):
            ckpt.after_iteration(it, lambda it=it: _iteration_kwargs(it))
        ckpt.final(**_iteration_kwargs(5))
    assert [r.iteration for r in ckpt.records] == [2, 4, 5]
    policy = tmp_path / "policy"
    assert policy.is_symlink() and str(policy.readlink()) == "policy_checkpoints/iter_000005/policy"
    # exactly what Cobre 0.18 writes, nothing else; the rotation and our hashes live beside it
    assert sorted(p.name for p in policy.iterdir()) == ["basis", "cuts", "manifest.bin"]
    assert sorted(p.name for p in (tmp_path / "policy_checkpoints").iterdir()) == ["iter_000004", "iter_000005"]
    back = read_policy_checkpoint(policy)  # verified against policy_checkpoints/iter_000005/metadata.json
    assert (back.format, back.metadata.completed_iterations) == ("cobre-0.18", 5)
    assert back.cobre_manifest is not None and back.cobre_manifest["producer"]["completed_iterations"] == 5
    assert float(back.cuts[0].intercepts[0]) == float(read_policy_checkpoint(V018).cuts[0].intercepts[0]) * 1.05
    from cobre_mpi_io.journal import read_journal, verify_entry

    journal = read_journal(tmp_path)  # every file of the retained checkpoints, none of the removed ones
    kept = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "policy_checkpoints").rglob("*") if p.is_file())
    assert sorted(k for k in journal if k.startswith("policy_checkpoints/")) == kept
    assert all(verify_entry(tmp_path, journal[k]) for k in kept)
    meta = json.loads((tmp_path / "policy_checkpoints" / "iter_000005" / "metadata.json").read_text())
    assert meta["format"] == "cobre-0.18" and "policy/cuts/000.bin" in meta["files"]
    raw = bytearray((policy / "cuts" / "001.bin").read_bytes())
    at = bytes(raw).find(struct.pack("<d", float(back.cuts[1].coefficients[5, 0])))
    raw[at] ^= 1  # one coefficient bit: structurally valid, caught by the recorded hash
    (policy / "cuts" / "001.bin").write_bytes(bytes(raw))
    with pytest.raises(ManifestError, match="001.bin"):
        read_policy_checkpoint(policy)
    assert read_policy_checkpoint(policy, verify=False).metadata.completed_iterations == 5


def test_checkpointer_cobre_018_refuses_what_cobre_cannot_hold(tmp_path: Path) -> None:
    from mpi4py import MPI

    from cobre_mpi_io.policy import write_policy_checkpoint

    kw = _iteration_kwargs(1)
    with pytest.raises(SchemaError, match="state dictionary"):
        write_policy_checkpoint(tmp_path / "a" / "policy", comm=MPI.COMM_SELF, format="cobre-0.18",
                                state_dictionary={"x": 1}, **kw)  # type: ignore[arg-type]
    (tmp_path / "b" / "policy").mkdir(parents=True)  # a policy Cobre wrote: never replaced
    with pytest.raises(IoError, match="link"):
        write_policy_checkpoint(tmp_path / "b" / "policy", comm=MPI.COMM_SELF, format="cobre-0.18",
                                **kw)  # type: ignore[arg-type]


def test_cobre_018_visited_states(tmp_path: Path) -> None:
    """Cobre 0.18's states/NNN.bin (written by Cobre itself): read, kept through a rewrite, checked."""
    from cobre_mpi_io.policy.formats import read_cobre_stage_states

    st = read_cobre_stage_states(DATA / "states-v018" / "000.bin", stage_id=0, state_dimension=1)
    assert (st.stage_id, st.state_dimension, st.reserved_5) == (0, 1, -1)
    assert st.states.tolist() == [[1.0], [2.0]] and not st.states.flags.owndata
    pol = _copy(V018, tmp_path / "a")
    (pol / "states").mkdir()
    shutil.copy(DATA / "states-v018" / "000.bin", pol / "states" / "000.bin")
    ck = read_policy_checkpoint(pol)
    assert [s.states.tolist() for s in ck.cobre_states] == [[[1.0], [2.0]]]
    back = convert_policy(pol, tmp_path / "b", "cobre-0.18", durable=False)
    assert [s.states.tolist() for s in back.cobre_states] == [[[1.0], [2.0]]]
    with pytest.raises(SchemaError, match="state_dimension"):
        read_cobre_stage_states(DATA / "states-v018" / "000.bin", state_dimension=3)
    raw = bytearray((DATA / "states-v018" / "000.bin").read_bytes())
    struct.pack_into("<I", raw, 0x2C, 3)  # count 3 for 2 values
    (tmp_path / "bad.bin").write_bytes(bytes(raw))
    with pytest.raises(SerializationError, match="count 3"):
        read_cobre_stage_states(tmp_path / "bad.bin")


def test_checkpointer_cobre_018_fills_cuts_from_a_case(tmp_path: Path, case018_warm: Path) -> None:
    """A solver whose cuts lack the Cobre fields gets the case's (CobreFields.as_mapping())."""
    from mpi4py import MPI

    from cobre_mpi_io.policy import write_policy_checkpoint

    ck = read_policy_checkpoint(V051)  # 0.5.1 cuts: no Cobre fields
    cuts = [dataclasses.replace(sc, intercepts=np.asarray(sc.intercepts) * 1000.0,
                                coefficients=np.asarray(sc.coefficients) * 1000.0) for sc in ck.cuts]
    fields = cobre_fields_from_case(case018_warm, 4, 1).as_mapping()
    write_policy_checkpoint(tmp_path / "policy", cuts, ck.bases, ck.metadata, comm=MPI.COMM_SELF,
                            format="cobre-0.18", cobre_fields=fields, durable=False)
    back = read_policy_checkpoint(tmp_path / "policy")
    ref = read_policy_checkpoint(V018)
    assert [sc.priced_state_date for sc in back.cuts] == [sc.priced_state_date for sc in ref.cuts]
    assert back.cobre_manifest is not None and ref.cobre_manifest is not None
    assert back.cobre_manifest["graph_manifest"] == ref.cobre_manifest["graph_manifest"]
    with pytest.raises(SchemaError, match="cost_scale_factor"):
        write_policy_checkpoint(tmp_path / "p2" / "policy", cuts, ck.bases, ck.metadata, comm=MPI.COMM_SELF,
                                format="cobre-0.18", durable=False)
