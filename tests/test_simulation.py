"""The simulation writer, serially (COMM_SELF): files, derived columns, readers, errors, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import write_synthetic_run
from mpi4py import MPI

from cobre_mpi_io.errors import IoError, ManifestError, OutputError, SchemaError
from cobre_mpi_io.layout import partition_file
from cobre_mpi_io.manifest import combined_checksum, read_simulation_manifest
from cobre_mpi_io.schemas import TABLES
from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.validate import validate_simulation

SELF = MPI.COMM_SELF
N = 6


def write_run(out: Path, system: System, n: int = N, seed: int = 1, **cfg: object) -> object:
    cfg_ = SimulationConfig(num_scenarios=n, **cfg)  # type: ignore[arg-type]
    return write_synthetic_run(out, system, cfg_, SELF, seed)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, small_system: System) -> Path:
    out = tmp_path_factory.mktemp("full")
    write_run(out, small_system)
    return out


def test_tree_manifest_and_success(full_run: Path, small_system: System) -> None:
    sim = full_run / "simulation"
    assert (sim / "_SUCCESS").exists()
    m = read_simulation_manifest(sim / "_manifest.json")
    assert m.status == "complete" and m.scenarios_completed == N and m.scenarios_failed == 0
    assert m.partitions_written == tuple(f"scenario_id={s:04d}/" for s in range(N))
    assert m.world_size == 1 and m.ranks_participated == 1
    assert len(m.files) == N * len(small_system.simulation_tables)
    assert m.checksum_value == combined_checksum({p: e.xxhash64 for p, e in m.files.items()})
    assert (sim / "violations" / "generic" / "scenario_id=0000" / "data.parquet").exists()
    assert not (sim / "batteries").exists()
    temps = [p for p in sim.rglob("*") if p.name.startswith(".")]
    assert temps == []
    assert validate_simulation(full_run).valid


@pytest.mark.parametrize("name", ["costs", "hydros", "thermals", "exchanges", "buses", "pumping_stations",
                                  "contracts", "non_controllables", "inflow_lags", "generic_violations"])
def test_every_table_reads_with_three_readers(full_run: Path, small_system: System, name: str) -> None:
    t = TABLES[name]
    root = full_run / "simulation" / t.directory
    rows = small_system.expected_rows(name)
    tbl = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert tbl.schema.names == t.names + ["scenario_id"]
    present = sorted(set(tbl.column("scenario_id").to_pylist()))
    if rows is not None:  # generic violations store only non-zero rows: some partitions are empty
        assert present == list(range(N))
        assert tbl.num_rows == rows * N
    assert set(present) <= set(range(N)) and tbl.num_rows > 0
    one = pq.read_table(root / "scenario_id=0001" / "data.parquet")
    assert one.schema.equals(t.arrow_schema)
    pdf = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert pdf.height == tbl.num_rows and "scenario_id" in pdf.columns
    assert sorted(pdf["scenario_id"].unique().cast(pl.Int64).to_list()) == present
    got = duckdb.sql(f"select count(*), count(distinct scenario_id) from "
                     f"read_parquet('{root}/*/*.parquet', hive_partitioning=true)").fetchall()[0]
    assert got == (tbl.num_rows, len(present))


def test_derived_columns_follow_formulas(full_run: Path, small_system: System) -> None:
    sim = full_run / "simulation"
    s = small_system

    def read(name: str) -> dict[str, np.ndarray]:
        t = pq.read_table(sim / partition_file(name, 2))
        return {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}

    def hours(d: dict[str, np.ndarray]) -> np.ndarray:
        return s.hours_matrix[d["stage_id"], d["block_id"]]

    h = read("hydros")
    np.testing.assert_allclose(h["outflow_m3s"], h["turbined_m3s"] + h["spillage_m3s"])
    np.testing.assert_allclose(h["generation_mwh"], h["generation_mw"] * hours(h))
    e = read("exchanges")
    loss = s.losses_fraction[np.searchsorted(s.ids("exchanges"), e["line_id"])]
    np.testing.assert_allclose(e["net_flow_mw"], e["direct_flow_mw"] - e["reverse_flow_mw"])
    np.testing.assert_allclose(e["losses_mw"], loss * (e["direct_flow_mw"] + e["reverse_flow_mw"]))
    np.testing.assert_allclose(e["losses_mwh"], e["losses_mw"] * hours(e))
    np.testing.assert_allclose(e["net_flow_mwh"], e["net_flow_mw"] * hours(e))
    b = read("buses")
    for c in ("load", "deficit", "excess"):
        np.testing.assert_allclose(b[f"{c}_mwh"], b[f"{c}_mw"] * hours(b))
    p = read("pumping_stations")
    np.testing.assert_allclose(p["pumped_volume_hm3"], p["pumped_flow_m3s"] * hours(p) * 3600 / 1e6)
    np.testing.assert_allclose(p["energy_consumption_mwh"], p["power_consumption_mw"] * hours(p))
    c = read("contracts")
    np.testing.assert_allclose(c["energy_mwh"], c["power_mw"] * hours(c))
    n = read("non_controllables")
    np.testing.assert_allclose(n["curtailment_mwh"], n["curtailment_mw"] * hours(n))
    np.testing.assert_allclose(n["generation_mwh"], n["generation_mw"] * hours(n))
    t = read("thermals")
    np.testing.assert_allclose(t["generation_mwh"], t["generation_mw"] * hours(t))
    # operative state from entry/exit stages; non-operating entities produce nothing
    ops = s.operative_states("thermals")[t["stage_id"], np.searchsorted(s.ids("thermals"), t["thermal_id"])]
    np.testing.assert_array_equal(t["operative_state_code"], ops)
    assert (t["generation_mw"][ops != 2] == 0).all()


def test_synthetic_results_are_self_consistent(full_run: Path, small_system: System) -> None:
    s = small_system
    sim = full_run / "simulation"
    costs = pq.read_table(sim / partition_file("costs", 0)).to_pandas() if False else \
        pq.read_table(sim / partition_file("costs", 0))
    comp = [c for c in costs.column_names if c.endswith("_cost") and c not in ("total_cost", "immediate_cost",
                                                                            "future_cost")]
    assert len(comp) == 14
    total = sum(costs.column(c).to_numpy() for c in comp)
    np.testing.assert_allclose(costs.column("immediate_cost").to_numpy(), total)
    assert costs.column("block_id").null_count == s.num_stages
    h = pq.read_table(sim / partition_file("hydros", 0))
    d = {c: h.column(c).to_numpy(zero_copy_only=False) for c in h.column_names}
    # water balance per block (pumping moves water between hydros)
    pump = pq.read_table(sim / partition_file("pumping_stations", 0))
    net_pump = np.zeros(len(d["hydro_id"]))
    for ps in s.pumping_stations:
        sel = pump.column("pumping_station_id").to_numpy() == ps.id
        flows = pump.column("pumped_flow_m3s").to_numpy()[sel]
        keys = list(zip(pump.column("stage_id").to_numpy()[sel], pump.column("block_id").to_numpy()[sel]))
        for (st_, bl), f in zip(keys, flows):
            net_pump[(d["stage_id"] == st_) & (d["block_id"] == bl) & (d["hydro_id"] == ps.destination_hydro_id)] += f
            net_pump[(d["stage_id"] == st_) & (d["block_id"] == bl) & (d["hydro_id"] == ps.source_hydro_id)] -= f
    conv = s.hours_matrix[d["stage_id"], d["block_id"]] * 3600 / 1e6
    balance = d["storage_initial_hm3"] + (d["inflow_m3s"] + net_pump - d["evaporation_m3s"] - d["turbined_m3s"]
                                          - d["spillage_m3s"]) * conv + d["storage_violation_below_hm3"]
    np.testing.assert_allclose(d["storage_final_hm3"], balance, rtol=1e-9, atol=1e-6)


def test_detail_stage_and_summary(tmp_path: Path, small_system: System) -> None:
    s = small_system
    write_run(tmp_path / "stage", s, detail="stage")
    sim = tmp_path / "stage" / "simulation"
    assert sorted(p.name for p in sim.iterdir() if p.is_dir()) == ["costs", "hydros"]
    h = pq.read_table(sim / partition_file("hydros", 0))
    assert h.num_rows == s.num_stages * len(s.hydros) and h.column("block_id").null_count == h.num_rows
    full = tmp_path / "full"
    write_run(full, s)
    hf = pq.read_table(full / "simulation" / partition_file("hydros", 0))
    # energy is conserved by the aggregation, and final storage is the last block's
    np.testing.assert_allclose(sum(h.column("generation_mwh").to_numpy()), sum(hf.column("generation_mwh").to_numpy()))
    c = pq.read_table(sim / partition_file("costs", 0))
    assert c.num_rows == s.num_stages and c.column("block_id").null_count == s.num_stages
    assert validate_simulation(tmp_path / "stage").valid
    m = write_run(tmp_path / "summary", s, detail="summary")
    sim = tmp_path / "summary" / "simulation"
    assert [p.name for p in sim.iterdir() if p.is_dir()] == []
    totals = pq.read_table(sim / "scenario_totals.parquet")
    assert totals.column("scenario_id").to_pylist() == list(range(N))
    assert m.partitions_written == () and m.scenarios_completed == N  # type: ignore[attr-defined]


def test_bad_payload_raises_and_leaves_no_file(tmp_path: Path, small_system: System) -> None:
    cfg = SimulationConfig(num_scenarios=3)
    w = SimulationParquetWriter(tmp_path, small_system, cfg, SELF)
    bad = synthetic_result(small_system, 1, 1)
    bad.tables["hydros"]["turbined_m3s"] = bad.tables["hydros"]["turbined_m3s"].astype(np.int64)  # type: ignore[index]
    w.write_scenario(synthetic_result(small_system, 0, 1))
    with pytest.raises(SchemaError, match="scenario 1 hydros.*turbined_m3s"):
        w.write_scenario(bad)
    with pytest.raises(SchemaError, match="outside 0..2"):
        w.write_scenario(synthetic_result(small_system, 7, 1))
    w.write_scenario(synthetic_result(small_system, 2, 1))
    with pytest.raises(SchemaError, match="given twice"):
        w.write_scenario(synthetic_result(small_system, 2, 1))
    with pytest.raises(OutputError, match="simulation partial"):
        w.finalize()
    sim = tmp_path / "simulation"
    assert not list(sim.glob("*/scenario_id=0001/*")) and not list(sim.glob("*/*/scenario_id=0001/*"))
    m = read_simulation_manifest(sim / "_manifest.json")
    assert m.status == "partial" and m.scenarios_completed == 2 and m.scenarios_failed == 1
    assert any(f.scenario_id == 1 and "turbined_m3s" in f.message for f in m.failures)
    assert not (sim / "_SUCCESS").exists()


def test_non_empty_directory_is_refused(full_run: Path, small_system: System) -> None:
    with pytest.raises(IoError, match="--resume"):
        SimulationParquetWriter(full_run, small_system, SimulationConfig(num_scenarios=N), SELF)


def test_resume_rewrites_only_missing_and_matches_clean_run(tmp_path: Path, full_run: Path,
                                                           small_system: System) -> None:
    import shutil

    out = tmp_path / "r"
    shutil.copytree(full_run, out)
    sim = out / "simulation"
    (sim / partition_file("thermals", 4)).unlink()          # crash before this file
    (sim / "hydros" / "scenario_id=0002" / ".data.parquet.abc.tmp").write_bytes(b"partial")  # stray temp
    (sim / "_SUCCESS").unlink()
    before = (sim / partition_file("hydros", 1)).stat().st_mtime_ns
    with SimulationParquetWriter(out, small_system, SimulationConfig(num_scenarios=N, resume=True), SELF) as w:
        assert w.pending_scenarios() == [4]
        for sid in w.owned_scenarios:
            w.write_scenario(synthetic_result(small_system, sid, 1))
    m = w.finalize()
    clean = read_simulation_manifest(full_run / "simulation" / "_manifest.json")
    assert m.status == "complete" and m.checksum_value == clean.checksum_value
    assert (sim / partition_file("hydros", 1)).stat().st_mtime_ns == before
    assert not (sim / "hydros" / "scenario_id=0002" / ".data.parquet.abc.tmp").exists()
    assert validate_simulation(out).valid


def test_resume_rebuilds_garbage_manifest_and_redoes_corrupt_file(tmp_path: Path, full_run: Path,
                                                                  small_system: System) -> None:
    import shutil

    out = tmp_path / "g"
    shutil.copytree(full_run, out)
    sim = out / "simulation"
    (sim / "_manifest.json").write_bytes(b"\x00garbage{")
    p = sim / partition_file("costs", 3)
    p.write_bytes(p.read_bytes()[:-20])  # truncated: footer unreadable
    with pytest.raises(ManifestError):
        read_simulation_manifest(sim / "_manifest.json")
    m = write_run(out, small_system, resume=True)
    clean = read_simulation_manifest(full_run / "simulation" / "_manifest.json")
    assert m.checksum_value == clean.checksum_value  # type: ignore[attr-defined]
    assert validate_simulation(out).valid


def test_io_thread_error_surfaces(tmp_path: Path, small_system: System) -> None:
    w = SimulationParquetWriter(tmp_path, small_system, SimulationConfig(num_scenarios=4), SELF)
    # a directory where a partition directory must go: the write fails in the I/O thread
    (tmp_path / "simulation" / "hydros").write_bytes(b"not a directory")
    w.write_scenario(synthetic_result(small_system, 0, 1))
    w._thread.join(0.5)
    with pytest.raises(IoError, match="hydros"):
        for sid in (1, 2, 3):
            w.write_scenario(synthetic_result(small_system, sid, 1))
    with pytest.raises(IoError):
        w.finalize()
    m = read_simulation_manifest(tmp_path / "simulation" / "_manifest.json")
    assert m.status == "partial" and m.scenarios_failed >= 1


def test_4ree_case(tmp_path: Path, system_4ree: System) -> None:
    m = write_run(tmp_path, system_4ree, n=4)
    sim = tmp_path / "simulation"
    assert sorted(p.name for p in sim.iterdir() if p.is_dir()) == ["buses", "costs", "exchanges", "hydros", "thermals"]
    assert pq.read_table(sim / partition_file("thermals", 0)).num_rows == 12 * 126
    assert pq.read_table(sim / partition_file("costs", 0)).num_rows == 24
    assert m.status == "complete"  # type: ignore[attr-defined]
    assert validate_simulation(tmp_path).valid


def test_queue_backpressure_bounds_pending(tmp_path: Path, small_system: System) -> None:
    w = SimulationParquetWriter(tmp_path, small_system, SimulationConfig(num_scenarios=8, queue_capacity=1), SELF)
    for sid in range(8):
        w.write_scenario(synthetic_result(small_system, sid, 1))
        assert w._queue.qsize() <= 1
    assert w.finalize().status == "complete"


def test_manifest_json_fields(full_run: Path) -> None:
    d = json.loads((full_run / "simulation" / "_manifest.json").read_text())
    for key in ("$schema", "version", "status", "started_at", "completed_at", "scenarios", "partitions_written",
                "checksum", "mpi_info", "files"):
        assert key in d
    assert d["version"] == "2.0.0" and d["checksum"]["algorithm"] == "xxhash64"
    assert set(d["mpi_info"]) == {"world_size", "ranks_participated"}
    assert set(d["scenarios"]) == {"total", "completed", "failed"}
    assert d["completed_at"].endswith("Z")
    entry = d["files"]["hydros/scenario_id=0000/data.parquet"]
    assert set(entry) == {"rows", "bytes", "xxhash64"}
    assert entry["bytes"] == os.path.getsize(full_run / "simulation" / "hydros/scenario_id=0000/data.parquet")
