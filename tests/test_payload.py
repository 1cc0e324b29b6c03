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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(col=st.sampled_from(_COLUMNS), kind=_VALUES, sid=st.integers(-5, 2**33))
def test_property_bad_payloads_are_output_errors(col: tuple[str, str], kind: str, sid: int) -> None:
    CASES_RUN["n"] += 1
    table, column = col
    r = copy.deepcopy(BASE)
    r.scenario_id = sid
    r.tables[table][column] = _corrupt(kind, np.asarray(BASE.tables[table][column]))  # type: ignore[index]
    try:
        validate_result(r, SYSTEM)
    except OutputError as exc:
        assert str(exc)
    # some corruptions are valid (e.g. inf in a float column, NaN in a nullable one): they must pass cleanly


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
