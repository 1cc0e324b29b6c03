"""System: case loading (errors name file and entity), synthetic scales, lookups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.system import System
from cobre_mpi_io.system.entities import OPERATIVE_STATE


def test_4ree_loads(system_4ree: System) -> None:
    s = system_4ree
    assert (len(s.hydros), len(s.thermals), len(s.buses), len(s.lines)) == (4, 126, 5, 5)
    assert s.num_stages == 12 and list(s.blocks_per_stage) == [1] * 12
    assert s.hours_matrix[1, 0] == 672
    assert s.simulation_tables == ("costs", "hydros", "thermals", "exchanges", "buses")
    assert s.state_dimension == 4
    assert s.hydros[0].initial_storage_hm3 == 38343.9


@pytest.mark.parametrize("scale,expect", [
    ("small", None),
    ("production", {"stages": 60, "blocks": 3, "hydros": 160, "ar": 12, "thermals": 130, "buses": 6,
                    "lines": 10, "pumping": 5, "contracts": 5, "ncs": 10, "generic": 50}),
])
def test_synthetic_has_every_entity_type(scale: str, expect: dict[str, int] | None) -> None:
    s = System.synthetic(scale)
    for attr in ("hydros", "thermals", "buses", "lines", "pumping_stations", "contracts", "non_controllables",
                 "generic_constraints"):
        assert len(getattr(s, attr)) > 0, attr
    assert (s.ar_orders > 0).any()
    assert (s.losses_fraction > 0).all()
    assert "inflow_lags" in s.simulation_tables
    if expect:
        assert s.num_stages == expect["stages"] and set(s.blocks_per_stage) == {expect["blocks"]}
        assert len(s.hydros) == expect["hydros"] and set(s.ar_orders) == {expect["ar"]}
        assert (len(s.thermals), len(s.buses), len(s.lines), len(s.pumping_stations), len(s.contracts),
                len(s.non_controllables), len(s.generic_constraints)) == (
            expect["thermals"], expect["buses"], expect["lines"], expect["pumping"], expect["contracts"],
            expect["ncs"], expect["generic"])
        assert s.state_dimension == 160 + 160 * 12


def test_operative_states_follow_entry_and_exit(small_system: System) -> None:
    m = small_system.operative_states("hydros")
    last = len(small_system.hydros) - 1  # enters at stage 1
    assert m[0, last] == OPERATIVE_STATE["non_existing"] and m[1, last] == OPERATIVE_STATE["operating"]
    t = small_system.operative_states("thermals")
    assert t[-1, -1] == OPERATIVE_STATE["decommissioned"] and t[-2, -1] == OPERATIVE_STATE["operating"]


def _copy_case(case: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "case"
    shutil.copytree(case, dst)
    return dst


def test_missing_file_is_named(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    (c / "system" / "hydros.json").unlink()
    with pytest.raises(SchemaError, match="hydros.json"):
        System.from_case(c)


def test_missing_field_names_file_entity_and_field(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    p = c / "system" / "thermals.json"
    doc = json.loads(p.read_text())
    del doc["thermals"][3]["generation"]["max_mw"]
    p.write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as ei:
        System.from_case(c)
    assert "thermals.json" in str(ei.value) and "generation.max_mw" in str(ei.value) and "thermal 3" in str(ei.value)


def test_dangling_bus_is_named(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    p = c / "system" / "lines.json"
    doc = json.loads(p.read_text())
    doc["lines"][0]["target_bus_id"] = 99
    p.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="line 0: references unknown bus 99"):
        System.from_case(c)


def test_bad_json_is_named(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    (c / "stages.json").write_text("{not json")
    with pytest.raises(SchemaError, match="stages.json"):
        System.from_case(c)


def test_ar_orders_from_parquet(case_4ree: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = _copy_case(case_4ree, tmp_path)
    (c / "scenarios").mkdir()
    pq.write_table(pa.table({"hydro_id": [0, 0, 2], "stage_id": [0, 0, 0], "lag": [1, 2, 1],
                             "coefficient": [0.5, 0.1, 0.3]}), c / "scenarios" / "inflow_ar_coefficients.parquet")
    s = System.from_case(c)
    assert list(s.ar_orders) == [2, 0, 1, 0]
    assert s.state_dimension == 4 + 3
    assert s.expected_rows("inflow_lags") == 12 * 3


def test_duplicate_id_rejected(small_system: System) -> None:
    from dataclasses import replace

    with pytest.raises(SchemaError, match="duplicate thermal id"):
        replace(small_system, thermals=small_system.thermals + (small_system.thermals[0],))
    assert np.all(np.diff(small_system.ids("thermals")) > 0)
