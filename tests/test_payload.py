"""Payload validation: every bad input is a SchemaError naming scenario, table and column."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io.errors import OutputError, SchemaError
from cobre_mpi_io.schemas import TABLES
from cobre_mpi_io.simulation.payload import SimulationScenarioResult, validate_result
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result

SYSTEM = System.synthetic("small")
BASE = synthetic_result(SYSTEM, 3, seed=1)


def mutated(table: str, column: str, value: object) -> SimulationScenarioResult:
    r = copy.deepcopy(BASE)
    r.tables[table][column] = value  # type: ignore[index]
    return r


def test_valid_payload_passes() -> None:
    v = validate_result(BASE, SYSTEM)
    assert v.rows["hydros"] == SYSTEM.expected_rows("hydros")
    assert v.tables["hydros"]["diverted_inflow_m3s"].mask is not None  # omitted nullable -> all null


@pytest.mark.parametrize("table,column,value,match", [
    ("hydros", "turbined_m3s", np.zeros(3), "length 3"),
    ("hydros", "turbined_m3s", np.zeros((48, 1)), "1-D"),
    ("hydros", "turbined_m3s", np.zeros(48, np.int64), "float64 is required"),
    ("hydros", "turbined_m3s", [0.0] * 48, "NumPy array"),
    ("hydros", "turbined_m3s", np.full(48, np.nan), "NaN at row 0"),
    ("thermals", "thermal_id", np.full(40, 999, np.int32), "unknown entity id 999"),
    ("thermals", "stage_id", np.full(40, 77, np.int32), "stage 77 does not exist"),
    ("thermals", "block_id", np.full(40, 5, np.int32), "block 5 does not exist"),
    ("thermals", "is_gnl", np.zeros(40, np.int8), "bool is required"),
    ("buses", "bus_id", np.zeros(24, np.int32), "duplicate rows"),
    ("hydros", "outflow_m3s", np.zeros(48), "derived column"),
    ("hydros", "operative_state_code", np.zeros(48, np.int8), "derived column"),
    ("hydros", "no_such_column", np.zeros(48), "unknown column"),
    ("exchanges", "line_id", np.ma.MaskedArray(np.zeros(24, np.int32), mask=np.ones(24, bool)), "null at row 0"),
    ("inflow_lags", "lag_index", np.full(28, 9, np.int32), "lag 9 outside"),
    ("thermals", "stage_id", np.full(40, 2**40, np.int64), "outside the int32 range"),
])
def test_bad_column(table: str, column: str, value: object, match: str) -> None:
    with pytest.raises(SchemaError, match=match) as ei:
        validate_result(mutated(table, column, value), SYSTEM)
    assert f"scenario 3 {table}" in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_missing_required_column() -> None:
    r = copy.deepcopy(BASE)
    del r.tables["buses"]["load_mw"]  # type: ignore[attr-defined]
    with pytest.raises(SchemaError, match="'load_mw'.*required column missing"):
        validate_result(r, SYSTEM)


def test_missing_table_and_unknown_table() -> None:
    r = copy.deepcopy(BASE)
    del r.tables["contracts"]  # type: ignore[attr-defined]
    with pytest.raises(SchemaError, match="contracts.*missing"):
        validate_result(r, SYSTEM)
    r = copy.deepcopy(BASE)
    r.tables["batteries"] = {}  # type: ignore[index]
    with pytest.raises(SchemaError, match="batteries"):
        validate_result(r, SYSTEM)


def test_wrong_row_count_is_reported() -> None:
    r = copy.deepcopy(BASE)
    r.tables["thermals"] = {k: v[:-5] for k, v in r.tables["thermals"].items()}  # type: ignore[index]
    with pytest.raises(SchemaError, match="35 rows where the system needs 40"):
        validate_result(r, SYSTEM)


def test_bad_totals() -> None:
    r = copy.deepcopy(BASE)
    r.total_cost = float("inf")
    with pytest.raises(SchemaError, match="total_cost"):
        validate_result(r, SYSTEM)
    r = copy.deepcopy(BASE)
    r.category_costs = {}
    with pytest.raises(SchemaError, match="category_costs"):
        validate_result(r, SYSTEM)


def test_summary_detail_checks_only_totals() -> None:
    r = copy.deepcopy(BASE)
    r.tables = {}
    assert validate_result(r, SYSTEM, "summary").tables == {}


# ---- property-based: any corruption of a valid payload is an OutputError, never a bare exception
_COLUMNS = [(t, c.name) for t in SYSTEM.simulation_tables for c in TABLES[t].payload_columns
            if t != "generic_violations" and c.name in BASE.tables[t]]
_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "int", "short", "2d", "list", "none", "bool", "huge", "neg", "str", "masked"]),
)


def _corrupt(kind: str, arr: np.ndarray) -> object:
    n = arr.shape[0]
    return {
        "nan": np.full(n, np.nan), "inf": np.full(n, np.inf), "int": np.arange(n, dtype=np.int64),
        "short": arr[: max(n - 1, 0)], "2d": np.zeros((n, 2)), "list": arr.tolist(), "none": None,
        "bool": np.ones(n, bool), "huge": np.full(n, 2**62, np.int64), "neg": np.full(n, -1, np.int32),
        "str": np.array(["x"] * n), "masked": np.ma.MaskedArray(arr, mask=np.ones(n, bool)),
    }[kind]


CASES_RUN = {"n": 0}


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(col=st.sampled_from(_COLUMNS), kind=_VALUES, sid=st.integers(-5, 2**33))
def test_property_bad_payloads_are_output_errors(col: tuple[str, str], kind: str, sid: int) -> None:
    CASES_RUN["n"] += 1
    table, column = col
    r = copy.deepcopy(BASE)
    r.scenario_id = sid
    r.tables[table][column] = _corrupt(kind, np.asarray(BASE.tables[table][column]))  # type: ignore[index]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked NumPy warning fails the test
        try:
            validate_result(r, SYSTEM)
        except OutputError as exc:
            assert str(exc)
    # some corruptions are valid (e.g. NaN in a nullable column): they must pass cleanly


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cols=st.lists(st.sampled_from(_COLUMNS), min_size=2, max_size=6, unique=True),
       kinds=st.lists(st.sampled_from(["nan", "inf", "int", "short", "2d", "list", "none", "str"]),
                      min_size=6, max_size=6))
def test_property_every_corrupted_column_is_named_at_once(cols: list[tuple[str, str]], kinds: list[str]) -> None:
    """Several columns corrupted at once: one SchemaError naming each of them (no first-problem-only)."""
    import warnings

    from cobre_mpi_io.simulation.payload import payload_problems

    r = copy.deepcopy(BASE)
    bad: set[tuple[str, str]] = set()  # corruptions that are wrong whatever the other columns hold
    for (table, column), kind in zip(cols, kinds):
        col = TABLES[table].by_name[column]
        if kind == "nan" and col.nullable:
            kind = "str"  # NaN is null there: valid
        r.tables[table][column] = _corrupt(kind, np.asarray(BASE.tables[table][column]))  # type: ignore[index]
        if kind in ("short", "2d", "list", "none", "str", "nan", "inf") or (kind == "int" and col.type_code == "f64"):
            bad.add((table, column))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problems = payload_problems(r, SYSTEM)
        with pytest.raises(SchemaError) as ei:
            validate_result(r, SYSTEM)
    named = {(p.where.removeprefix("scenario 3 "), p.column) for p in problems}
    assert bad <= named, (bad - named, problems)
    for p in problems:
        assert str(p) in str(ei.value)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(col=st.sampled_from(_COLUMNS), kind=_VALUES, sid=st.integers(-3, 12))
def test_property_writer_never_leaves_a_partial_file(col: tuple[str, str], kind: str, sid: int) -> None:
    """Through the writer: a refused payload (or scenario id) leaves no file at all, an accepted one
    leaves complete files; nothing else than an OutputError ever escapes, and no temp file remains."""
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq
    from mpi4py import MPI

    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter

    table, column = col
    r = copy.deepcopy(BASE)
    r.scenario_id = sid
    r.tables[table][column] = _corrupt(kind, np.asarray(BASE.tables[table][column]))  # type: ignore[index]
    with tempfile.TemporaryDirectory() as d:
        w = SimulationParquetWriter(d, SYSTEM, SimulationConfig(num_scenarios=8, durability="none"), MPI.COMM_SELF)
        accepted = True
        try:
            w.write_scenario(r)
        except OutputError:
            accepted = False
        try:
            w.finalize()
        except OutputError:
            pass  # partial: the run has 8 scenarios and at most one was written
        sim = Path(d) / "simulation"
        data = sorted(sim.rglob("data.parquet"))
        assert not [p for p in sim.rglob(".*")], "temp file left behind"
        if accepted:
            assert len(data) == len(SYSTEM.simulation_tables)
            for p in data:
                assert f"scenario_id={sid:04d}" in p.as_posix()
                pq.read_table(p)
        else:
            assert data == []


# ---- issue 8/11: every problem at once, non-payload objects, non-finite values, no NumPy warning

def test_every_problem_of_a_payload_is_listed_at_once() -> None:
    from cobre_mpi_io.simulation.payload import payload_problems

    r = copy.deepcopy(BASE)
    r.total_cost = float("nan")
    r.tables["hydros"]["turbined_m3s"] = np.zeros(3)  # type: ignore[index]
    r.tables["hydros"]["spillage_m3s"] = np.full(48, np.inf)  # type: ignore[index]
    r.tables["thermals"]["thermal_id"] = np.full(40, 999, np.int32)  # type: ignore[index]
    del r.tables["contracts"]  # type: ignore[attr-defined]
    r.tables["buses"]["bogus"] = np.zeros(24)  # type: ignore[index]
    problems = payload_problems(r, SYSTEM)
    assert [(p.where, p.column) for p in problems] == [
        ("scenario 3", "total_cost"),
        ("scenario 3 hydros", "turbined_m3s"),
        ("scenario 3 hydros", "spillage_m3s"),
        ("scenario 3 thermals", "thermal_id"),
        ("scenario 3 buses", "bogus"),
        ("scenario 3 contracts", None),
    ]
    with pytest.raises(SchemaError) as ei:
        validate_result(r, SYSTEM)
    text = str(ei.value)
    assert text.startswith("schema error in scenario 3: 6 problems in the payload:")
    for p in problems:
        assert f"  - {p}" in text
    assert "inf at row 0 (and 47 more rows): values must be finite" in text
    assert "unknown entity id 999, at row 0 (and 39 more rows)" in text


def test_a_long_list_of_problems_is_capped() -> None:
    from cobre_mpi_io import empty_scenario_result
    from cobre_mpi_io.simulation.payload import MAX_LISTED, payload_problems

    r = empty_scenario_result(SYSTEM, 2)  # nothing filled: every value NaN
    problems = payload_problems(r, SYSTEM)
    assert len(problems) > MAX_LISTED
    with pytest.raises(SchemaError) as ei:
        validate_result(r, SYSTEM)
    assert f"... and {len(problems) - MAX_LISTED} more" in str(ei.value)
    assert "scenario 2 hydros, column 'turbined_m3s': NaN at row 0 (and 47 more rows) in a non-nullable column" \
        in str(ei.value)


@pytest.mark.parametrize("bad", [None, 42, "payload", {"scenario_id": 1}], ids=["None", "int", "str", "dict"])
def test_non_payload_objects_are_refused(bad: object) -> None:
    """Reproduction: write_scenario(None) raised AttributeError."""
    from mpi4py import MPI

    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter

    with pytest.raises(SchemaError, match="expected a SimulationScenarioResult, got"):
        validate_result(bad, SYSTEM)  # type: ignore[arg-type]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        w = SimulationParquetWriter(d, SYSTEM, SimulationConfig(num_scenarios=1, durability="none"), MPI.COMM_SELF)
        with pytest.raises(SchemaError, match="expected a SimulationScenarioResult"):
            w.write_scenario(bad)  # type: ignore[arg-type]
        w.write_scenario(synthetic_result(SYSTEM, 0))
        assert w.finalize().status == "complete"


class _Hostile:
    def __float__(self) -> float:
        raise RuntimeError("no")

    def __repr__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("attr,value,match", [
    ("tables", None, "tables must be a mapping"),
    ("category_costs", [1, 2], "must be a mapping of cost component"),
    ("scenario_id", "7", "scenario id must be a non-negative int32"),
    ("total_cost", "x", "not a number"),
    ("total_cost", True, "not a number"),
    ("total_cost", 10**400, r"not a number: 1000000000.*\.\.\."),  # float() overflows; the repr is cut
    ("total_cost", _Hostile(), r"not a number: <_Hostile>"),         # __float__ and __repr__ raise
])
def test_wrong_attribute_types_are_schema_errors(attr: str, value: object, match: str) -> None:
    r = copy.deepcopy(BASE)
    setattr(r, attr, value)
    with pytest.raises(SchemaError, match=match):
        validate_result(r, SYSTEM)
    assert isinstance(r.nbytes, int)


@pytest.mark.parametrize("table,column,value", [
    ("hydros", "turbined_m3s", np.inf),            # non-nullable float
    ("hydros", "water_value_per_hm3", -np.inf),    # a dual value
    ("hydros", "evaporation_m3s", np.inf),         # nullable float: NaN is null, inf still refused
    ("costs", "future_cost", np.inf),
])
def test_infinite_values_are_refused_in_every_float_column(table: str, column: str, value: float) -> None:
    """Reproduction: ±inf was accepted and overflowed derived columns with a leaked RuntimeWarning."""
    arr = np.array(BASE.tables[table][column], dtype=np.float64)
    arr[1] = value
    with pytest.raises(SchemaError, match=rf"{column}.*{value} at row 1: values must be finite"):
        validate_result(mutated(table, column, arr), SYSTEM)


def test_nan_is_null_only_in_nullable_columns() -> None:
    ok = validate_result(mutated("hydros", "evaporation_m3s", np.full(48, np.nan)), SYSTEM)
    assert ok.tables["hydros"]["evaporation_m3s"].mask is not None
    with pytest.raises(SchemaError, match="NaN at row 0"):
        validate_result(mutated("hydros", "generation_mw", np.full(48, np.nan)), SYSTEM)


@pytest.mark.parametrize("detail", ["full", "stage"])
def test_derived_overflow_is_a_schema_error_and_no_numpy_warning(tmp_path: object, detail: str) -> None:
    """Finite payload values whose derived column (× block hours) overflows: a SchemaError naming the scenario,
    table and derived column; nothing written; no NumPy warning leaks."""
    import tempfile
    import warnings
    from pathlib import Path

    from mpi4py import MPI

    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter

    r = copy.deepcopy(BASE)
    r.tables["hydros"]["generation_mw"][5] = 1e307  # type: ignore[index]
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as d:
        warnings.simplefilter("error")
        w = SimulationParquetWriter(d, SYSTEM, SimulationConfig(num_scenarios=4, detail=detail, durability="none"),
                                    MPI.COMM_SELF)
        with pytest.raises(SchemaError) as ei:
            w.write_scenario(r)
        assert ei.value.file == "scenario 3 hydros"
        want = "generation_mwh" if detail == "full" else "generation_mw"
        assert ei.value.column == want and "overflows float64" in str(ei.value)
        with pytest.raises(OutputError):
            w.finalize()
        assert not list((Path(d) / "simulation").rglob("data.parquet"))


# ---- issue 11: the empty payload an integrator fills

@pytest.mark.parametrize("source", ["small", "production", "4ree"])
@pytest.mark.parametrize("detail", ["full", "stage", "summary"])
def test_empty_payload_has_every_table_and_column_keys_filled(source: str, detail: str) -> None:
    from conftest import CASE_4REE

    from cobre_mpi_io import empty_scenario_result
    from cobre_mpi_io.schemas import tables_for_detail

    system = System.from_case(CASE_4REE) if source == "4ree" else System.synthetic(source)
    p = empty_scenario_result(system, 5, detail, fill=0.0)
    want = tables_for_detail(detail, system.simulation_tables, partitioned=True)
    assert tuple(p.tables) == want
    for name in want:
        t = TABLES[name]
        cols = p.tables[name]
        assert list(cols) == [c.name for c in t.payload_columns]  # every LP column, no derived one
        for c in t.payload_columns:
            a = cols[c.name]
            assert isinstance(a, np.ndarray) and a.dtype == np.dtype(c.numpy_dtype) and a.flags.writeable, c.name
        rows = system.expected_rows(name)
        assert len(cols["stage_id"]) == (rows if rows is not None else 0)
    v = validate_result(p, system, detail)  # valid as it comes with fill=0.0
    assert v.canonical == frozenset(n for n in want if n != "generic_violations")
    assert p.category_costs == dict.fromkeys(p.category_costs, 0.0) and len(p.category_costs) == 14


def test_empty_payload_values_must_be_filled() -> None:
    from cobre_mpi_io import empty_scenario_result

    p = empty_scenario_result(SYSTEM, 1)
    assert np.isnan(p.total_cost) and np.isnan(p.tables["hydros"]["turbined_m3s"]).all()
    assert np.isnan(p.tables["hydros"]["evaporation_m3s"]).all()  # nullable: starts null
    assert p.tables["thermals"]["is_gnl"].dtype == bool and not p.tables["thermals"]["is_gnl"].any()
    assert np.ma.getmaskarray(p.tables["costs"]["block_id"]).sum() == SYSTEM.num_stages  # stage-level rows
    with pytest.raises(SchemaError, match="NaN at row 0"):
        validate_result(p, SYSTEM)
    with pytest.raises(SchemaError, match="unknown detail level"):
        empty_scenario_result(SYSTEM, 1, "everything")


def test_filled_empty_payload_writes_the_same_files_as_the_reference() -> None:
    """Copying the reference payload's values into the empty one gives the same validated result."""
    from cobre_mpi_io import empty_scenario_result

    p = empty_scenario_result(SYSTEM, 3)
    for name, cols in BASE.tables.items():
        if name == "generic_violations":
            p.tables[name] = cols  # type: ignore[index]  # variable rows: given whole
            continue
        for cname, arr in cols.items():
            np.copyto(p.tables[name][cname], np.ma.getdata(arr))
    p.total_cost, p.category_costs = BASE.total_cost, dict(BASE.category_costs)
    a, b = validate_result(p, SYSTEM), validate_result(BASE, SYSTEM)
    assert a.canonical == b.canonical and a.rows == b.rows
    for name in a.tables:
        for cname in a.tables[name]:
            x, y = a.tables[name][cname], b.tables[name][cname]
            assert (x.mask is None) == (y.mask is None), (name, cname)
            keep = np.ones(x.values.shape, bool) if x.mask is None else ~x.mask
            np.testing.assert_array_equal(x.values[keep], y.values[keep])


# ---- issue 10: one tables_for_detail

@pytest.mark.parametrize("detail", ["full", "stage", "summary"])
def test_one_tables_for_detail_for_payload_writer_dictionaries_and_results(tmp_path: object, detail: str) -> None:
    from cobre_mpi_io import RunConfig, empty_scenario_result
    from cobre_mpi_io.manifest import SimulationManifest
    from cobre_mpi_io.results import SimulationOutput
    from cobre_mpi_io.schemas import TRAINING_TABLES, tables_for_detail
    from cobre_mpi_io.simulation.writer import tables_for_detail as writer_tables
    from cobre_mpi_io.training.dictionaries import written_tables

    part = tables_for_detail(detail, SYSTEM.simulation_tables, partitioned=True)
    written = tables_for_detail(detail, SYSTEM.simulation_tables)
    assert writer_tables(SYSTEM, detail) == part
    assert tuple(empty_scenario_result(SYSTEM, 0, detail).tables) == part
    assert written_tables(SYSTEM, RunConfig(num_scenarios=3, detail=detail)) == (*TRAINING_TABLES, "bounds",
                                                                                   *written)
    m = SimulationManifest(status="complete", started_at="x", scenarios_total=1, detail=detail, tables=part)
    assert SimulationOutput(m).tables == written
    assert written == {"full": SYSTEM.simulation_tables, "stage": ("costs", "hydros"),
                       "summary": ("scenario_totals",)}[detail]


def test_stage_detail_on_a_system_without_hydros(tmp_path: object) -> None:
    """stage detail used to require a hydros table even when the system had none."""
    import tempfile
    from dataclasses import replace

    from mpi4py import MPI

    from cobre_mpi_io import empty_scenario_result
    from cobre_mpi_io.simulation.writer import SimulationConfig, SimulationParquetWriter

    system = replace(SYSTEM, hydros=(), pumping_stations=(), source="code")
    with tempfile.TemporaryDirectory() as d:
        w = SimulationParquetWriter(d, system, SimulationConfig(num_scenarios=1, detail="stage", durability="none"),
                                    MPI.COMM_SELF)
        assert w.tables == ("costs",)
        w.write_scenario(empty_scenario_result(system, 0, "stage", fill=0.0))
        assert w.finalize().tables == ("costs",)
