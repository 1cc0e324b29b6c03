"""Direct tests of building each simulation table (exact schema, rows, derived columns, stage detail)."""

from __future__ import annotations

import numpy as np
import pytest

from cobre_mpi_io.schemas import table
from cobre_mpi_io.simulation.payload import validate_result
from cobre_mpi_io.simulation.tables import build_table
from cobre_mpi_io.system import System
from cobre_mpi_io.testing.simulation import synthetic_result

SMALL = System.synthetic("small")


@pytest.fixture(scope="module")
def validated():  # type: ignore[no-untyped-def]
    return validate_result(synthetic_result(SMALL, 3, 7), SMALL, "full")


@pytest.mark.parametrize("name", SMALL.simulation_tables)
def test_every_table_has_the_exact_spec_schema_and_rows(validated, name: str) -> None:  # type: ignore[no-untyped-def]
    fast = build_table(name, validated.tables[name], SMALL, "full", name in validated.canonical, scenario_id=3)
    slow = build_table(name, validated.tables[name], SMALL, "full", False, scenario_id=3)
    assert fast.schema == table(name).arrow_schema
    assert fast.num_rows == validated.rows[name]
    expected = SMALL.expected_rows(name)
    assert expected is None or fast.num_rows == expected
    assert fast.equals(slow)  # the canonical fast path computes the same table


def test_stage_detail_aggregates_hydros_per_stage(validated) -> None:  # type: ignore[no-untyped-def]
    full = build_table("hydros", validated.tables["hydros"], SMALL, "full")
    stage = build_table("hydros", validated.tables["hydros"], SMALL, "stage")
    assert stage.num_rows == SMALL.num_stages * len(SMALL.hydros)
    assert stage.column("block_id").null_count == stage.num_rows
    energy = next(c.name for c in table("hydros").columns if c.name.endswith("_mwh"))
    assert np.isclose(np.nansum(stage.column(energy).to_numpy(zero_copy_only=False)),
                      np.nansum(full.column(energy).to_numpy(zero_copy_only=False)))
