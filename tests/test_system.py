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


# ---- issue 8: case loading reports every problem with the right file, entity and field

def _edit(case: Path, rel: str, fn: object) -> None:
    p = case / rel
    doc = json.loads(p.read_text())
    fn(doc)  # type: ignore[operator]
    p.write_text(json.dumps(doc))


def _problems(exc: SchemaError) -> str:
    return str(exc)


@pytest.mark.parametrize("rel,data,file,match", [
    ("system/hydros.json", b'\xff\xfe{"hydros": []}', "system/hydros.json", "not UTF-8 text: byte 0xff at offset 0"),
    ("stages.json", b'{"stages": [{"id": 0, "blocks": [{"id": 0, "hours": 744}]}', "stages.json",
     "not valid JSON"),
    ("system/thermals.json", b"[]", "system/thermals.json", "expected a top-level object with a list 'thermals'"),
    ("system/buses.json", b'{"buses": 5}', "system/buses.json", "column 'buses': expected a list, got a number"),
    ("initial_conditions.json", b'{"storage": 5}', "initial_conditions.json", "expected a list, got a number"),
    ("system/hydros.json", b"[" * 100000, "system/hydros.json", "not valid JSON"),
])
def test_unreadable_file_is_a_schema_error_naming_it(case_4ree: Path, tmp_path: Path, rel: str, data: bytes,
                                                     file: str, match: str) -> None:
    """Reproductions: UnicodeDecodeError, TypeError (number where a list belongs) became SchemaErrors."""
    c = _copy_case(case_4ree, tmp_path)
    (c / rel).write_bytes(data)
    with pytest.raises(SchemaError, match=match) as ei:
        System.from_case(c)
    assert ei.value.file == str(c / file)


def test_utf8_byte_order_mark_is_accepted(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    p = c / "system" / "lines.json"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    assert System.from_case(c).lines == System.from_case(case_4ree).lines


# (file, mutation, entity, field, message): each loaded without a word (or with the wrong exception) before
SEMANTIC = [
    ("system/hydros.json", lambda d: d["hydros"][0]["reservoir"].update(max_storage_hm3=float("nan")),
     "hydro 0", "reservoir.max_storage_hm3", "nan is not allowed"),
    ("system/hydros.json", lambda d: d["hydros"][0]["reservoir"].update(max_storage_hm3=-1.0),
     "hydro 0", "reservoir.max_storage_hm3", "must be a number >= 0"),
    ("system/hydros.json", lambda d: d["hydros"][1]["reservoir"].update(min_storage_hm3=1e9),
     "hydro 1", "reservoir.min_storage_hm3", "minimum 1000000000.0 is above the maximum 19929.2"),
    ("system/hydros.json", lambda d: d["hydros"][0]["reservoir"].update(min_storage_hm3=float("nan")),
     "hydro 0", "reservoir.min_storage_hm3", "nan is not allowed"),
    ("system/hydros.json", lambda d: d["hydros"][2].update(entry_stage_id=5, exit_stage_id=2),
     "hydro 2", "exit_stage_id", "exit stage 2 is before entry stage 5"),
    ("system/hydros.json", lambda d: d["hydros"][2].update(entry_stage_id=99),
     "hydro 2", "entry_stage_id", "stage 99 does not exist"),
    ("system/hydros.json", lambda d: d["hydros"][2].update(exit_stage_id=-1),
     "hydro 2", "exit_stage_id", "stage -1 does not exist"),
    ("system/hydros.json", lambda d: d["hydros"][0]["generation"].update(min_turbined_m3s=1e9),
     "hydro 0", "generation.min_turbined_m3s", "is above the maximum"),
    ("system/hydros.json", lambda d: d["hydros"][0]["generation"].update(min_generation_mw=1e9),
     "hydro 0", "generation.min_generation_mw", "is above the maximum"),
    ("system/hydros.json", lambda d: d["hydros"][0]["outflow"].update(min_outflow_m3s=10.0, max_outflow_m3s=5.0),
     "hydro 0", "outflow.min_outflow_m3s", "is above the maximum"),
    ("system/hydros.json", lambda d: d["hydros"][0]["generation"].update(productivity_mw_per_m3s=-1.0),
     "hydro 0", "generation.productivity_mw_per_m3s", "must be a finite number >= 0"),
    ("system/hydros.json", lambda d: d["hydros"][0]["reservoir"].update(max_storage_hm3="big"),
     "hydro 0", "reservoir.max_storage_hm3", "expected a number, got a string 'big'"),
    ("system/hydros.json", lambda d: d["hydros"][0].update(reservoir=5),
     "hydro 0", "reservoir", "expected an object, got a number"),
    ("system/hydros.json", lambda d: d["hydros"][0].update(bus_id=True),
     "hydro 0", "bus_id", "expected an integer, got a boolean"),
    ("system/hydros.json", lambda d: d["hydros"][0].update(id=1),  # duplicate: not blamed on initial_conditions
     "hydro 1", "id", "duplicate hydro id 1"),
    ("system/hydros.json", lambda d: d["hydros"][0].update(id=2**40),
     "hydros[0]", "id", "outside 0..2147483647"),
    ("initial_conditions.json", lambda d: d["storage"][0].update(value_hm3=1e9),
     "hydro 0", "storage.value_hm3", "initial storage 1000000000.0 outside the storage bounds [0.0, 204078.3]"),
    ("initial_conditions.json", lambda d: d["storage"][1].update(value_hm3=-5.0),
     "hydro 1", "storage.value_hm3", "must be a finite number >= 0"),
    ("initial_conditions.json", lambda d: d["storage"][0].update(value_hm3="x"),
     "storage[0]", "value_hm3", "expected a number, got a string 'x'"),
    ("initial_conditions.json", lambda d: d["storage"].append({"hydro_id": 0, "value_hm3": 1.0}),
     "storage[4]", "hydro_id", "hydro 0 has a second initial storage"),
    ("initial_conditions.json", lambda d: d["storage"].append(5),
     "storage[4]", None, "expected an object, got a number"),
    ("system/buses.json", lambda d: d["buses"][0].update(deficit_segments="x"),
     "bus 0", "deficit_segments", "expected a non-empty list of segments"),
    ("system/buses.json", lambda d: d["buses"][0].update(deficit_segments=[]),
     "bus 0", "deficit_segments", "expected a non-empty list of segments"),
    ("system/buses.json", lambda d: d["buses"][1]["deficit_segments"][0].update(cost="cheap"),
     "bus 1", "deficit_segments[0].cost", "expected a number"),
    ("system/buses.json", lambda d: d["buses"][1]["deficit_segments"][0].update(cost=-3.0),
     "bus 1", "deficit_segments.cost", "must be a finite number >= 0"),
    ("system/lines.json", lambda d: d["lines"][0]["capacity"].update(direct_mw=-5.0),
     "line 0", "capacity.direct_mw", "must be a number >= 0"),
    ("system/lines.json", lambda d: d["lines"][1]["capacity"].update(reverse_mw=-1.0),
     "line 1", "capacity.reverse_mw", "must be a number >= 0"),
    ("system/lines.json", lambda d: d["lines"][0].update(losses_percent=100),
     "line 0", "losses_percent", "not in [0, 100)"),
    ("system/lines.json", lambda d: d["lines"][0].update(losses_percent=-0.5),
     "line 0", "losses_percent", "not in [0, 100)"),
    ("system/thermals.json", lambda d: d["thermals"][0]["generation"].update(max_mw=float("inf")),
     "thermal 0", "generation.max_mw", "inf is not allowed"),
    ("system/thermals.json", lambda d: d["thermals"][0]["generation"].update(min_mw=-1.0),
     "thermal 0", "generation.min_mw", "must be a finite number >= 0"),
    ("system/thermals.json", lambda d: d["thermals"][3]["generation"].update(min_mw=1e6),
     "thermal 3", "generation.min_mw", "is above the maximum"),
    ("system/thermals.json", lambda d: d["thermals"][3].update(cost_per_mwh=float("nan")),
     "thermal 3", "cost_per_mwh", "nan is not allowed"),
    ("system/thermals.json", lambda d: d["thermals"].append(dict(d["thermals"][0])),
     "thermal 0", "id", "duplicate thermal id 0"),
    ("stages.json", lambda d: d["stages"][3]["blocks"][0].update(hours=0),
     "stage 3 block 0", "blocks.hours", "hours must be a positive finite number"),
    ("stages.json", lambda d: d["stages"][3]["blocks"][0].update(hours=float("nan")),
     "stage 3 block 0", "hours", "nan is not allowed"),
    ("stages.json", lambda d: d["stages"][0].update(blocks=[5]),
     "stage 0 blocks[0]", None, "expected an object, got a number"),
    ("stages.json", lambda d: d["stages"].pop(4),
     None, "id", "stage ids must be 0..n-1 with none missing; missing [4]"),
]


@pytest.mark.parametrize("rel,mutate,entity,field,message", SEMANTIC,
                         ids=[f"{s[0].split('/')[-1]}:{s[3]}:{s[4][:24]}" for s in SEMANTIC])
def test_wrong_case_is_refused_naming_file_entity_and_field(case_4ree: Path, tmp_path: Path, rel: str,
                                                            mutate: object, entity: str | None, field: str | None,
                                                            message: str) -> None:
    from cobre_mpi_io.system.case import case_problems

    c = _copy_case(case_4ree, tmp_path)
    _edit(c, rel, mutate)
    with pytest.raises(SchemaError) as ei:
        System.from_case(c)
    assert isinstance(ei.value, ValueError)
    fields, problems = case_problems(c)
    assert fields is None
    assert len(problems) == 1, problems  # the cause alone, not its consequences
    p = problems[0]
    assert (p.file, p.entity, p.field) == (rel, entity, field) and message in p.message, p
    # the raised error says the same: file path, field as its column, entity and message in the text
    assert ei.value.file == str(c / rel) and ei.value.column == field
    assert (entity is None or f"{entity}: " in str(ei.value)) and message in str(ei.value)


def test_every_problem_of_a_case_is_reported_at_once(case_4ree: Path, tmp_path: Path) -> None:
    from cobre_mpi_io.system.case import case_problems

    c = _copy_case(case_4ree, tmp_path)
    _edit(c, "system/hydros.json", lambda d: (d["hydros"][0]["reservoir"].update(max_storage_hm3=-1),
                                              d["hydros"][1].update(exit_stage_id=99),
                                              d["hydros"][2].update(name=7)))
    _edit(c, "system/lines.json", lambda d: d["lines"][1]["capacity"].update(reverse_mw="big"))
    _edit(c, "stages.json", lambda d: d["stages"][3]["blocks"][0].update(hours=0))
    (c / "system" / "thermals.json").write_text('{"thermals": [1, {"id": 1}]')
    with pytest.raises(SchemaError) as ei:
        System.from_case(c)
    text = str(ei.value)
    _, problems = case_problems(c)
    expected = [
        ("stages.json", "stage 3 block 0", "blocks.hours"),
        ("system/lines.json", "line 1", "capacity.reverse_mw"),
        ("system/hydros.json", "hydro 2", "name"),
        ("system/hydros.json", "hydro 0", "reservoir.max_storage_hm3"),
        ("system/hydros.json", "hydro 1", "exit_stage_id"),
        ("system/thermals.json", None, None),
    ]
    assert [(p.file, p.entity, p.field) for p in problems] == expected
    assert text.startswith(f"schema error in {c}: 6 problems in the case:")
    for p in problems:
        assert f"  - {p}" in text
    assert ei.value.column is None


def test_missing_required_files_are_all_listed(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    (c / "system" / "hydros.json").unlink()
    (c / "system" / "buses.json").unlink()
    with pytest.raises(SchemaError) as ei:
        System.from_case(c)
    text = str(ei.value)
    assert "system/buses.json: required case file is missing" in text
    assert "system/hydros.json: required case file is missing" in text
    assert "references unknown" not in text  # consequences of the missing files are not listed


def test_ar_coefficients_problems_name_the_parquet_file(case_4ree: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = _copy_case(case_4ree, tmp_path)
    (c / "scenarios").mkdir()
    path = c / "scenarios" / "inflow_ar_coefficients.parquet"
    pq.write_table(pa.table({"hydro_id": [0, 7], "stage_id": [0, 0], "lag": [1, 2]}), path)
    with pytest.raises(SchemaError, match=r"inflow_ar_coefficients.parquet, column 'hydro_id'.*unknown hydros \[7\]"):
        System.from_case(c)
    pq.write_table(pa.table({"hydro_id": [0], "lag": [1.5]}), path)
    with pytest.raises(SchemaError, match="column 'lag': expected an integer column, got double"):
        System.from_case(c)
    pq.write_table(pa.table({"hydro_id": [0], "lag": [0]}), path)
    with pytest.raises(SchemaError, match="lags must be >= 1"):
        System.from_case(c)
    path.write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="cannot read AR coefficients"):
        System.from_case(c)


def test_deficit_cost_from_penalties_when_the_bus_has_none(case_4ree: Path, tmp_path: Path) -> None:
    c = _copy_case(case_4ree, tmp_path)
    _edit(c, "system/buses.json", lambda d: d["buses"][0].pop("deficit_segments"))
    _edit(c, "penalties.json", lambda d: d["bus"]["deficit_segments"][0].update(cost=999.5))
    s = System.from_case(c)
    assert s.buses[0].deficit_cost == 999.5 and s.buses[1].deficit_cost == 1420.34
    _edit(c, "system/buses.json", lambda d: d["buses"][1]["deficit_segments"][0].update(cost=0.0))
    assert System.from_case(c).buses[1].deficit_cost == 0.0  # a zero cost stays zero (was 1000 before)


def test_system_built_in_code_reports_every_problem(small_system: System) -> None:
    from dataclasses import replace

    th = small_system.thermals
    bad = (replace(th[0], max_mw=float("nan")), replace(th[1], min_mw=-2.0), replace(th[2], bus_id=42)) + th[3:]
    with pytest.raises(SchemaError) as ei:
        replace(small_system, thermals=bad, source="code")
    text = str(ei.value)
    assert text.startswith("schema error in code: thermals: 3 problems in the system:")
    assert "thermals, thermal 0, field 'max_mw': must be a number >= 0 (or no limit), got nan" in text
    assert "thermals, thermal 1, field 'min_mw': must be a finite number >= 0, got -2.0" in text
    assert "thermals, thermal 2, field 'bus_id': references unknown bus 42" in text


def test_stage_hours_that_overflow_are_refused() -> None:
    from cobre_mpi_io.system.entities import Block, Bus, Stage

    with pytest.raises(SchemaError, match="total hours overflow"):
        System(stages=(Stage(0, (Block(0, "a", 1.5e308), Block(1, "b", 1.5e308))),), buses=(Bus(id=0, name="b"),))


def test_row_slice_matches_the_canonical_layout(small_system: System, system_4ree: System) -> None:
    from cobre_mpi_io import empty_scenario_result
    from cobre_mpi_io.schemas import table

    for s in (small_system, system_4ree):
        p = empty_scenario_result(s, 0)
        for name in s.simulation_tables:
            if name == "generic_violations":
                with pytest.raises(SchemaError, match="no fixed row layout"):
                    s.row_slice(name, 0, 0)
                continue
            cols, ent = p.tables[name], table(name).entity_column
            for t in range(s.num_stages):
                blocks: list[int | None] = list(range(int(s.blocks_per_stage[t])))
                if name == "costs":
                    blocks = [None, *blocks]
                elif name == "inflow_lags":
                    blocks = [None]
                for b in blocks:
                    r = s.row_slice(name, t, b)
                    assert (cols["stage_id"][r] == t).all()
                    if b is not None:
                        assert (np.ma.getdata(cols["block_id"][r]) == b).all()
                    elif name == "costs":
                        assert np.ma.getmaskarray(cols["block_id"][r]).all()
                    if ent is not None:
                        want = np.repeat(s.ids(name), s.ar_orders) if name == "inflow_lags" else s.ids(name)
                        assert (cols[ent][r] == want).all()
    with pytest.raises(SchemaError, match="stage 99 does not exist"):
        small_system.row_slice("hydros", 99, 0)
    with pytest.raises(SchemaError, match="block 7 does not exist in stage 0"):
        small_system.row_slice("hydros", 0, 7)
    with pytest.raises(SchemaError, match="give a block_id"):
        small_system.row_slice("hydros", 0)
