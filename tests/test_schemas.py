"""The schemas match the spec's column list exactly (a copy of spec/columns.json in tests/data)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from conftest import DATA

from cobre_mpi_io.schemas import ARROW_TYPES, SIMULATION_TABLES, TABLES, TRAINING_TABLES

SPEC = json.loads((DATA / "spec_columns.json").read_text())


@pytest.mark.parametrize("name", sorted(SPEC))
def test_table_matches_spec(name: str) -> None:
    spec = SPEC[name]
    t = TABLES[name]
    assert t.path == spec["path"]
    assert t.names == [c["name"] for c in spec["columns"]]
    schema = t.arrow_schema
    for field, col in zip(schema, spec["columns"]):
        assert field.type == ARROW_TYPES[col["type"]], (name, col["name"])
        assert field.nullable == col["nullable"], (name, col["name"])
    for c, col in zip(t.columns, spec["columns"]):
        assert c.description == col["description"]
        assert c.unit and c.unit != "?"


def test_every_table_is_defined() -> None:
    assert set(SIMULATION_TABLES) | set(TRAINING_TABLES) | {"bounds"} == set(SPEC)
    assert len(SIMULATION_TABLES) == 11


def test_derived_columns_are_the_spec_ones() -> None:
    derived = {(t, c.name) for t in SIMULATION_TABLES for c in TABLES[t].derived_columns
               if c.name != "operative_state_code"}
    assert derived == {
        ("hydros", "outflow_m3s"), ("hydros", "generation_mwh"), ("thermals", "generation_mwh"),
        ("non_controllables", "generation_mwh"), ("non_controllables", "curtailment_mwh"),
        ("exchanges", "net_flow_mw"), ("exchanges", "net_flow_mwh"), ("exchanges", "losses_mw"),
        ("exchanges", "losses_mwh"), ("buses", "load_mwh"), ("buses", "deficit_mwh"), ("buses", "excess_mwh"),
        ("pumping_stations", "pumped_volume_hm3"), ("pumping_stations", "energy_consumption_mwh"),
        ("contracts", "energy_mwh"),
    }


def test_key_columns_are_ids_and_codes_only() -> None:
    for t in TABLES.values():
        for name in t.key_columns:
            assert t.by_name[name].arrow_type in (pa.int8(), pa.int32())
        assert not any(t.by_name[n].type_code == "f64" for n in t.key_columns)
