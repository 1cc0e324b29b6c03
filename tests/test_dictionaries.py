"""Dictionaries (SPEC §8): codes, bounds, state dictionary, variables.csv, entities.csv."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.schemas import SIMULATION_TABLES, table
from cobre_mpi_io.system import System
from cobre_mpi_io.system.entities import Hydro
from cobre_mpi_io.training.dictionaries import (
    BOUND_TYPE,
    bounds_table,
    state_dictionary,
    write_dictionaries,
    written_tables,
)

CASE = Path(__file__).parent / "data" / "4ree"

# SPEC §8, typed out independently of the package
SPEC_CODES = {
    "operative_state": {"0": "non_existing", "1": "filling_dead_volume", "2": "operating", "3": "decommissioned"},
    "storage_binding": {"0": "none", "1": "min", "2": "max", "3": "target"},
    "contract_type": {"0": "import", "1": "export"},
    "entity_type": {"0": "hydro", "1": "thermal", "2": "bus", "3": "line", "4": "pumping_station",
                    "5": "contract", "6": "battery", "7": "non_controllable"},
    "bound_type": {"0": "storage_min", "1": "storage_max", "2": "turbined_min", "3": "turbined_max",
                   "4": "outflow_min", "5": "outflow_max", "6": "generation_min", "7": "generation_max",
                   "8": "flow_min", "9": "flow_max"},
}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(params=["synthetic", "4ree"])
def system(request: pytest.FixtureRequest) -> System:
    return System.synthetic("small") if request.param == "synthetic" else System.from_case(CASE)


def test_codes_json_equals_the_spec(tmp_path: Path) -> None:
    write_dictionaries(tmp_path / "training" / "dictionaries", System.synthetic("small"), None)
    doc = json.loads((tmp_path / "training" / "dictionaries" / "codes.json").read_text())
    # plus "format" and "note": the spec's meanings are not the Cobre solver's (docs/formats.md)
    assert set(doc) == {"version", "generated_at", "format", "note", *SPEC_CODES}
    assert doc["format"] == "spec" and "not the Cobre solver's" in doc["note"]
    for k, v in SPEC_CODES.items():
        assert doc[k] == v
    assert doc["generated_at"].endswith("Z")


def test_all_five_files_and_policy_copy(tmp_path: Path, system: System) -> None:
    d = tmp_path / "training" / "dictionaries"
    write_dictionaries(d, system, RunConfig(num_scenarios=2))
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["codes.json", "bounds.parquet", "state_dictionary.json", "variables.csv", "entities.csv"])
    assert (tmp_path / "policy" / "state_dictionary.json").read_bytes() == (d / "state_dictionary.json").read_bytes()


@pytest.mark.parametrize("cfg, sim", [
    (RunConfig(num_scenarios=0), ()),
    (RunConfig(num_scenarios=10, detail="full"), "all"),
    (RunConfig(num_scenarios=10, detail="stage"), ("costs", "hydros")),
    (RunConfig(num_scenarios=10, detail="summary"), ("scenario_totals",)),  # the one file summary writes
    ({"num_scenarios": 3}, "all"),
])
def test_variables_csv_covers_exactly_the_written_tables(tmp_path: Path, system: System, cfg: object,
                                                         sim: object) -> None:
    write_dictionaries(tmp_path, system, cfg)
    rows = _csv(tmp_path / "variables.csv")
    assert list(rows[0]) == ["file", "column", "type", "unit", "description", "nullable"]
    sim_tables = system.simulation_tables if sim == "all" else sim
    expected = [(table(t).path, c.name, c.unit, c.nullable)
                for t in ("convergence", "iteration_timing", "rank_timing", "bounds", *sim_tables)
                for c in table(t).columns]
    got = [(r["file"], r["column"], r["unit"], r["nullable"] == "true") for r in rows]
    assert got == expected
    assert {r["type"] for r in rows} <= {"int8", "int32", "int64", "float64", "bool"}
    assert len({(r["file"], r["column"]) for r in rows}) == len(rows)


def test_variables_csv_follows_explicit_simulation_tables(tmp_path: Path) -> None:
    s = System.synthetic("small")
    write_dictionaries(tmp_path, s, None, simulation_tables=("hydros", "costs"))
    files = {r["file"] for r in _csv(tmp_path / "variables.csv")}
    assert files == {table(t).path for t in ("convergence", "iteration_timing", "rank_timing", "bounds", "costs",
                                             "hydros")}
    with pytest.raises(SchemaError):
        written_tables(s, None, simulation_tables=("nope",))
    assert set(written_tables(s, {"num_scenarios": 1})) - {"convergence", "iteration_timing", "rank_timing",
                                                           "bounds"} == set(s.simulation_tables)
    assert set(s.simulation_tables) <= set(SIMULATION_TABLES)


def test_entities_csv_matches_the_4ree_case(tmp_path: Path) -> None:
    write_dictionaries(tmp_path, System.from_case(CASE), None)
    rows = _csv(tmp_path / "entities.csv")
    assert list(rows[0]) == ["entity_type_code", "entity_id", "name", "bus_id", "system_id"]
    expected = set()
    n = 0
    for fname, key, code in (("hydros.json", "hydros", 0), ("thermals.json", "thermals", 1),
                             ("buses.json", "buses", 2), ("lines.json", "lines", 3)):
        for e in json.loads((CASE / "system" / fname).read_text())[key]:
            n += 1
            bus = e.get("bus_id")
            expected.add((str(code), str(e["id"]), e["name"], "" if bus is None else str(bus)))
    got = {(r["entity_type_code"], r["entity_id"], r["name"], r["bus_id"]) for r in rows}
    assert got == expected
    assert len(rows) == n


def test_entities_csv_lists_every_entity_of_the_builtin_system(tmp_path: Path) -> None:
    s = System.synthetic("small")
    write_dictionaries(tmp_path, s, None)
    rows = _csv(tmp_path / "entities.csv")
    expected = {("0", h.id) for h in s.hydros} | {("1", t.id) for t in s.thermals} | {("2", b.id) for b in s.buses} \
        | {("3", ln.id) for ln in s.lines} | {("4", p.id) for p in s.pumping_stations} \
        | {("5", c.id) for c in s.contracts} | {("7", n.id) for n in s.non_controllables}
    assert {(r["entity_type_code"], int(r["entity_id"])) for r in rows} == expected
    assert len(rows) == len(expected)
    names = {(r["entity_type_code"], int(r["entity_id"])): r for r in rows}
    h = s.hydros[0]
    assert names[("0", h.id)]["name"] == h.name and names[("0", h.id)]["bus_id"] == str(h.bus_id)


def test_state_dictionary_dimension_and_order(system: System) -> None:
    sd = state_dictionary(system)
    assert sd["state_dimension"] == len(system.hydros) + sum(h.ar_order for h in system.hydros)
    assert sd["state_dimension"] == system.state_dimension == len(sd["state_variables"])
    hydros = sorted(system.hydros, key=lambda h: h.id)
    expected = [("storage", h.id) for h in hydros]
    for lag in range(1, max(h.ar_order for h in hydros) + 1):
        expected += [(f"inflow_lag_{lag}", h.id) for h in hydros if h.ar_order >= lag]
    got = [(v["type"], v["entity_id"]) for v in sd["state_variables"]]
    assert got == expected
    assert [v["index"] for v in sd["state_variables"]] == list(range(len(expected)))
    assert all(v["entity_type"] == "hydro" for v in sd["state_variables"])
    text = json.dumps(sd["state_variables"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert sd["checksum"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_state_dictionary_of_the_builtin_system_has_lags() -> None:
    s = System.synthetic("small")
    sd = state_dictionary(s)
    assert sd["state_dimension"] == 6 + sum(i % 4 for i in range(6))
    assert sd["state_variables"][6]["type"] == "inflow_lag_1"


def test_bounds_are_finite_non_default_and_in_schema(tmp_path: Path, system: System) -> None:
    write_dictionaries(tmp_path, system, None)
    t = pq.read_table(tmp_path / "bounds.parquet")
    assert t.schema.names == table("bounds").arrow_schema.names
    assert [f.type for f in t.schema] == [f.type for f in table("bounds").arrow_schema]
    d = t.to_pydict()
    assert t.num_rows > 0
    assert all(math.isfinite(v) for v in d["bound_value"])
    assert t.column("block_id").null_count == t.num_rows
    for code, v in zip(d["bound_type_code"], d["bound_value"]):
        if code in (BOUND_TYPE["storage_min"], BOUND_TYPE["turbined_min"], BOUND_TYPE["outflow_min"],
                    BOUND_TYPE["generation_min"]):
            assert v != 0.0
    # spot check one hydro bound for every stage
    h = min(system.hydros, key=lambda h: h.id)
    rows = [(s, v) for e, s, b, v in zip(d["entity_id"], d["stage_id"], d["bound_type_code"], d["bound_value"])
            if b == BOUND_TYPE["storage_max"] and e == h.id]
    assert [v for _s, v in rows] == [h.max_storage_hm3] * len(rows) and rows


def test_bounds_skip_defaults_and_absent_stages() -> None:
    s = System.synthetic("small")
    plain = System(stages=s.stages, buses=s.buses[:1],
                   hydros=(Hydro(id=0, name="H", bus_id=s.buses[0].id),
                           Hydro(id=1, name="G", bus_id=s.buses[0].id, max_storage_hm3=10.0, entry_stage_id=2)))
    d = bounds_table(plain).to_pydict()
    assert d["entity_id"] == [1, 1] and d["stage_id"] == [2, 3] and d["bound_value"] == [10.0, 10.0]
