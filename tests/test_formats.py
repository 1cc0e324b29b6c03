"""Output formats: Cobre 0.18's column sets (copied from its own files), codes per format, and
a ``--format cobre-0.18`` demo run read by Cobre 0.18's own loaders (the real solver)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.formats import COBRE_RULES, CODE_MEANINGS, to_format
from cobre_mpi_io.schemas import check_format, format_tables, table
from cobre_mpi_io.simulation.payload import validate_result
from cobre_mpi_io.simulation.tables import build_table
from cobre_mpi_io.simulation.writer import SimulationConfig
from cobre_mpi_io.system.model import System
from cobre_mpi_io.testing.simulation import synthetic_result
from cobre_mpi_io.training.dictionaries import CODES, bounds_table, codes_document, variables_rows

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(__file__).parent / "data" / "cobre-real" / "run-1dtoy-v018"
CASE018 = Path(__file__).parent / "data" / "4ree-v018"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
_FILES = {"costs": "simulation/costs/scenario_id=0000/data.parquet",
          "hydros": "simulation/hydros/scenario_id=0000/data.parquet",
          "thermals": "simulation/thermals/scenario_id=0000/data.parquet",
          "buses": "simulation/buses/scenario_id=0000/data.parquet",
          "hydro_bus_generation": "simulation/hydro_bus_generation/scenario_id=0000/data.parquet",
          "paths": "simulation/paths.parquet", "scenario_summary": "simulation/scenario_summary.parquet",
          "convergence": "training/convergence.parquet", "iteration_timing": "training/timing/iterations.parquet",
          "bounds": "training/dictionaries/bounds.parquet", "solver_iterations": "training/solver/iterations.parquet",
          "retry_histogram": "training/solver/retry_histogram.parquet"}


@pytest.mark.parametrize("name", sorted(_FILES))
def test_cobre018_schema_is_that_of_cobres_own_file(name: str) -> None:
    real = pq.read_schema(REAL / _FILES[name]).remove_metadata()
    ours = table(name, "cobre-0.18").arrow_schema
    assert ours.equals(real), f"{name}:\nours {ours}\nreal {real}"


def test_cobre018_column_counts_of_the_issue() -> None:
    counts = {n: len(table(n, "cobre-0.18").columns) for n in ("costs", "hydros", "iteration_timing")}
    assert counts == {"costs": 29, "hydros": 41, "iteration_timing": 19}
    assert "batteries" not in format_tables("cobre-0.18")
    with pytest.raises(SchemaError, match="unknown format"):
        check_format("cobre-0.17")
    with pytest.raises(SchemaError, match="unknown format"):
        SimulationConfig(num_scenarios=1, format="cobre")


def test_every_cobre018_column_has_a_source() -> None:
    """Each Cobre 0.18 column we write is a spec column of the same name or has a written rule."""
    for name in ("costs", "hydros", "thermals", "exchanges", "buses", "pumping_stations", "contracts",
                 "non_controllables", "inflow_lags", "generic_violations", "convergence", "iteration_timing",
                 "bounds"):
        spec = set(table(name).names)
        rules = set(COBRE_RULES.get(name, {})) | set(COBRE_RULES["*"])
        missing = [c for c in table(name, "cobre-0.18").names if c not in spec and c not in rules]
        assert not missing, (name, missing)


@pytest.fixture(scope="module")
def small() -> System:
    return System.synthetic("small")


def test_build_table_cobre018(small: System) -> None:
    vr = validate_result(synthetic_result(small, 3), small)
    out = {n: build_table(n, vr.tables[n], small, "full", n in vr.canonical, scenario_id=3, fmt="cobre-0.18")
           for n in small.simulation_tables}
    spec = {n: build_table(n, vr.tables[n], small, "full", n in vr.canonical, scenario_id=3)
            for n in small.simulation_tables}
    for n, t in out.items():
        assert t.schema.equals(table(n, "cobre-0.18").arrow_schema), n
        assert set(t.column("scenario_id").to_pylist()) <= {3}
    costs = out["costs"]
    assert costs.num_rows == small.num_stages and costs.column("block_id").null_count == small.num_stages
    stage_rows = spec["costs"].filter(spec["costs"].column("block_id").is_null())
    assert costs.column("turbined_cost").equals(stage_rows.column("fpha_turbined_cost"))
    assert costs.column("node_id").equals(costs.column("stage_id"))
    assert (np.asarray(out["inflow_lags"].column("lag_index")) ==
            np.asarray(spec["inflow_lags"].column("lag_index")) - 1).all()
    h, hs = out["hydros"], spec["hydros"]
    # the spec's operating (2) is Cobre's operating (2); the spec's non_existing/decommissioned are deactivated (0)
    ops, ops_spec = np.asarray(h.column("operative_state_code")), np.asarray(hs.column("operative_state_code"))
    assert ((ops == 2) == (ops_spec == 2)).all() and set(ops[ops_spec != 2]) <= {0}
    e0 = np.asarray(h.column("stored_energy_initial_mwh"))
    want = np.asarray(hs.column("storage_initial_hm3")) * 1e6 / 3600 * np.asarray(
        h.column("equivalent_productivity_mw_per_m3s"))
    assert np.allclose(e0, want)
    assert out["thermals"].column("is_anticipated").equals(spec["thermals"].column("is_gnl"))


def test_codes_per_format() -> None:
    spec = codes_document("2026-01-01T00:00:00Z")
    assert spec["format"] == "spec" and "not the Cobre solver's" in spec["note"]
    assert {k: spec[k] for k in CODES} == CODES
    assert CODES == {f: {str(c): lab for lab, c in sorted(m.items(), key=lambda kv: kv[1])}
                     for f, m in CODE_MEANINGS["spec"].items()}
    real = json.loads((REAL / "training" / "dictionaries" / "codes.json").read_text())
    ours = codes_document(real["generated_at"], "cobre-0.18")
    assert ours == real and list(ours) == list(real)  # Cobre's keys, codes, meanings and order


def test_variables_and_bounds_cobre018(small: System) -> None:
    with open(REAL / "training" / "dictionaries" / "variables.csv", newline="") as f:
        real = [r for r in csv.DictReader(f) if r["file"] in ("costs", "hydros", "thermals", "convergence")]
    assert variables_rows(("costs", "hydros", "thermals", "convergence", "bounds", "rank_timing"),
                          "cobre-0.18") == real
    b = bounds_table(small, "cobre-0.18")
    assert b.schema.equals(table("bounds", "cobre-0.18").arrow_schema)
    assert b.column("hydro_id").null_count == b.num_rows == bounds_table(small).num_rows


def test_to_format_refuses_a_table_cobre_lacks() -> None:
    with pytest.raises(SchemaError, match="no table 'batteries'"):
        to_format(table("batteries").arrow_schema.empty_table(), "batteries", "cobre-0.18")


def _cobre18() -> str:
    exe = os.environ.get("COBRE18_PYTHON") or str(ROOT / ".venv-cobre18" / "bin" / "python")
    if not Path(exe).is_file():
        exe = "/work/main/.venv-cobre18/bin/python"
    if not Path(exe).is_file():
        if IN_CI:
            pytest.fail("the Cobre 0.18 venv is missing (CI=true: this test must run in CI)")
        pytest.skip("no Cobre 0.18 venv (scripts/cobre_venv.sh; $COBRE18_PYTHON)")
    return exe


_LOAD = """
import json, sys, cobre.results as r
out = sys.argv[1]
sim = r.load_simulation(out)
conv = r.load_convergence(out)
print(json.dumps({"tables": {k: len(v) for k, v in sim.items()},
                  "hydro_columns": list(r.load_simulation(out, "hydros")[0]),
                  "costs": r.load_simulation(out, "costs")[:2],
                  "convergence": conv}))
"""


@pytest.fixture(scope="module")
def demo018(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mpiexec -n 2 cobre-mpi-io demo --format cobre-0.18 --case 4ree-v018``: 4 scenarios, 3 iterations."""
    out = tmp_path_factory.mktemp("demo018") / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "4", "--iterations", "3", "--format", "cobre-0.18",
            "--case", str(CASE018), n=2, timeout=170)
    return out


@pytest.mark.timeout(180)
def test_cobre018_loaders_read_a_cobre018_demo_run(demo018: Path) -> None:
    """The real solver's own loaders (cobre-python 0.18.0) read what ``demo --format cobre-0.18`` wrote."""
    exe = _cobre18()
    out = demo018
    proc = subprocess.run([exe, "-c", _LOAD, str(out)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    system = System.from_case(CASE018)
    assert got["tables"]["costs"] == 4 * system.num_stages  # stage rows only
    assert got["tables"]["hydros"] == 4 * system.expected_rows("hydros")
    assert got["hydro_columns"] == table("hydros", "cobre-0.18").names
    assert [c["scenario_id"] for c in got["costs"]] == [0, 0] and got["costs"][0]["block_id"] is None
    conv = got["convergence"]
    assert [c["iteration"] for c in conv] == [1, 2, 3]
    assert list(conv[0]) == table("convergence", "cobre-0.18").names
    assert conv[0]["upper_bound_kind"] == "statistical"
    ours = pq.read_table(out / "training" / "convergence.parquet")
    assert [c["lower_bound"] for c in conv] == ours.column("lower_bound").to_pylist()
    codes = json.loads((out / "training" / "dictionaries" / "codes.json").read_text())
    assert codes["operative_state"] == {"0": "deactivated", "1": "maintenance", "2": "operating", "3": "saturated"}
    assert not (out / "training" / "dictionaries" / "state_dictionary.json").exists()


_POLICY = """
import json, sys, cobre
p = cobre.results.load_policy(sys.argv[1])
print("RESULT " + json.dumps([len(s["cuts"]) for s in p["stage_cuts"]]))
"""

_WARM = """
import json, sys, cobre
r = cobre.run.run(sys.argv[1], output_dir=sys.argv[2])
print("RESULT " + json.dumps({"lower_bound": float(r["lower_bound"]), "iterations": r["iterations"]}))
"""


def _in_cobre18(code: str, *args: str, cwd: Path) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run([_cobre18(), "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"cobre exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def _warm_start(work: Path, policy: Path | None) -> dict[str, Any]:
    """Cobre 0.18 on a copy of the 4ree-v018 case, 1 iteration of 1 forward pass, warm-started from ``policy``."""
    case = work / "case"
    shutil.copytree(CASE018, case)
    config = json.loads((case / "config.json").read_text())
    config["training"]["stopping_rules"] = [{"type": "iteration_limit", "limit": 1}]
    config["training"]["selection"]["forward_passes"] = 1
    config["simulation"] = {"enabled": False}
    if policy is not None:
        config["policy"] = {"path": str(policy), "mode": "warm_start"}
    (case / "config.json").write_text(json.dumps(config, indent=1))
    result: dict[str, Any] = _in_cobre18(_WARM, str(case), str(work / "out"), cwd=work)
    assert result["iterations"] == 1
    return result


@pytest.mark.timeout(180)
def test_cobre018_loads_and_warm_starts_from_a_cobre018_demo_policy(demo018: Path, tmp_path: Path) -> None:
    """``demo --format cobre-0.18 --case``: Cobre 0.18's ``load_policy`` reads its policy with our reader's cut
    counts, and Cobre 0.18 warm-starts from it (a bound a fresh start does not reach)."""
    from cobre_mpi_io.policy import read_policy_checkpoint

    ck = read_policy_checkpoint(demo018 / "policy")
    assert ck.format == "cobre-0.18"
    ours = [int(np.asarray(sc.intercepts).size) for sc in ck.cuts]
    system = System.from_case(CASE018)
    assert len(ours) == system.num_stages and min(ours) > 0
    assert _in_cobre18(_POLICY, str(demo018), cwd=tmp_path) == ours  # load_policy(OUT) reads OUT/policy
    (tmp_path / "warm").mkdir()
    (tmp_path / "fresh").mkdir()
    pol = shutil.copytree(demo018 / "policy", tmp_path / "policy")  # follows the link: the published policy
    warm = _warm_start(tmp_path / "warm", pol)
    fresh = _warm_start(tmp_path / "fresh", None)
    assert np.isfinite(warm["lower_bound"]) and warm["lower_bound"] != fresh["lower_bound"]


def test_cobre018_demo_without_a_case_is_refused_before_writing(tmp_path: Path) -> None:
    """The built-in system has no stage dates and inflow lags in its state: no Cobre 0.18 policy for it."""
    out = tmp_path / "out"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "1", "--iterations", "1", "--format", "cobre-0.18",
                   "-q", check=False)
    assert proc.returncode == 1 and "--format cobre-0.18 needs a Cobre 0.18 --case" in proc.stderr, proc.stderr
    assert not out.exists()


def test_docs_list_every_rule() -> None:
    """docs/formats.md tells, for every Cobre column the spec payload lacks, how it is written."""
    text = (ROOT / "docs" / "formats.md").read_text()
    for name, rules in COBRE_RULES.items():
        for column, rule in rules.items():
            assert f"| `{column}` | {rule} |" in text, (name, column)


def test_format_is_part_of_the_run_identity() -> None:
    from cobre_mpi_io.config import RunConfig

    spec, cobre = RunConfig(seed=1), RunConfig(seed=1, format="cobre-0.18")
    assert "format" not in spec.to_dict()  # a spec run's config_hash does not depend on the option
    assert cobre.to_dict()["format"] == "cobre-0.18" and cobre.config_hash != spec.config_hash
    system = System.synthetic("small")
    assert cobre.identity(system).fingerprint != spec.identity(system).fingerprint
    with pytest.raises(SchemaError, match="the run identity says format 'cobre-0.18', the config 'spec'"):
        SimulationConfig(num_scenarios=16, identity=RunConfig(num_scenarios=16, format="cobre-0.18")
                         .identity(system))
    with pytest.raises(SchemaError, match="unknown format"):
        RunConfig(format="cobre-0.5")  # readable, not writable


def test_a_system_with_batteries_is_refused_in_cobre018() -> None:
    from cobre_mpi_io.formats import format_tables_for

    assert format_tables_for("spec", ("costs", "batteries")) == ("costs", "batteries")
    with pytest.raises(SchemaError, match="Cobre 0.18 has no table batteries"):
        format_tables_for("cobre-0.18", ("costs", "hydros", "batteries"))


@pytest.mark.mpi_agnostic("validate's checks against Cobre's schemas; validate under each launcher: tests/test_validate.py")
@pytest.mark.timeout(180)
def test_validate_checks_our_cobre018_run_against_cobres_schemas(demo018: Path, tmp_path: Path) -> None:
    """validate reads the run's format from its identity and checks Cobre 0.18's columns, not the spec's."""
    proc = run_cli("validate", str(demo018), n=2)
    assert proc.stdout.strip().splitlines()[-1].startswith(f"{demo018}: valid;")
    from cobre_mpi_io.validate.files import Task, run_tasks

    sim = tmp_path / "simulation"
    rel = "costs/scenario_id=0001/data.parquet"
    (sim / rel).parent.mkdir(parents=True)
    tbl = pq.read_table(demo018 / "simulation" / rel)
    pq.write_table(tbl.drop(["node_id"]), sim / rel, compression="zstd")

    def problems(fmt: str) -> list[str]:
        task = Task("parquet", "simulation", rel, table="costs", fmt=fmt)
        return [p.problem for p in run_tasks([task], {"simulation": str(sim)}, {}, "full", 1).problems]

    assert problems("cobre-0.18") == [(f"columns {tbl.drop(['node_id']).schema.names} differ from format "
                                      f"cobre-0.18's {table('costs', 'cobre-0.18').names}")]
    assert "differ from the spec's" in problems("spec")[0]


@pytest.mark.timeout(180)
def test_report_reads_our_cobre018_run(demo018: Path) -> None:
    """report takes the run's format from its identity: Cobre's columns are read, not refused."""
    rep = json.loads(run_cli("report", str(demo018), "--section", "all", "--json").stdout)
    conv = rep["sections"]["convergence"]["summary"]
    lb = pq.read_table(demo018 / "training" / "convergence.parquet").column("lower_bound").to_pylist()
    assert conv["iterations"] == 3 and conv["upper_bound_kind"] == "statistical"
    assert conv["final_lower_bound"] == pytest.approx(lb[-1], rel=1e-6)
    assert rep["sections"]["results"]["scenarios"] == 4 and not rep["sections"]["results"]["unavailable"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("detail", ["stage", "summary"])
def test_cobre018_at_other_detail_levels_validates(detail: str, tmp_path: Path) -> None:
    """stage: Cobre's costs and hydros (block_id null); summary: our scenario_totals.parquet, the spec's table."""
    out = tmp_path / "out"
    run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "2", "--format", "cobre-0.18",
            "--case", str(CASE018), "--detail", detail, "-q")
    proc = run_cli("validate", str(out), check=False)
    assert proc.returncode == 0, proc.stdout
    if detail == "stage":
        hydros = pq.read_table(out / "simulation" / "hydros" / "scenario_id=0000" / "data.parquet")
        assert hydros.schema.equals(table("hydros", "cobre-0.18").arrow_schema, check_metadata=False)
        assert hydros.column("block_id").null_count == hydros.num_rows
    else:
        totals = pq.read_table(out / "simulation" / "scenario_totals.parquet")
        assert totals.schema.equals(table("scenario_totals").arrow_schema, check_metadata=False)


def test_write_results_in_cobre018_and_a_format_that_disagrees(tmp_path: Path) -> None:
    """write_results takes the configuration's format; a different ``fmt`` is refused before anything is written."""
    from mpi4py import MPI

    from cobre_mpi_io.config import RunConfig
    from cobre_mpi_io.results import write_results
    from cobre_mpi_io.testing.training import synthetic_training

    system = System.synthetic("small")
    cfg = RunConfig(seed=1, forward_passes=4, max_iterations=8, format="cobre-0.18")
    tr = synthetic_training(system, 8, 1, 4, seed=2).to_training_output(0)
    with pytest.raises(SchemaError, match="format 'spec' differs from the configuration's 'cobre-0.18'"):
        write_results(tmp_path / "a", tr, None, system, cfg, comm=MPI.COMM_SELF, fmt="spec")
    assert not (tmp_path / "a" / "training").exists()
    write_results(tmp_path / "b", tr, None, system, cfg, comm=MPI.COMM_SELF)
    d = tmp_path / "b" / "training"
    assert pq.read_schema(d / "convergence.parquet").remove_metadata().equals(
        table("convergence", "cobre-0.18").arrow_schema)
    assert pq.read_table(d / "convergence.parquet").column("lower_bound").to_pylist() == \
        [r.lower_bound for r in tr.iterations]
    assert json.loads((d / "dictionaries" / "codes.json").read_text())["version"] == "1.0"
    with open(d / "dictionaries" / "variables.csv", newline="") as f:
        assert {r["file"] for r in csv.DictReader(f)} == {"convergence", "iteration_timing"}


def test_a_storage_binding_code_without_meaning_is_named(small: System) -> None:
    vr = validate_result(synthetic_result(small, 2), small)
    cols = dict(vr.tables["hydros"])
    bad = cols["storage_binding_code"].values.copy()
    bad[5] = 7
    cols["storage_binding_code"] = type(cols["storage_binding_code"])(bad, None)
    with pytest.raises(SchemaError, match=r"scenario 2 hydros.*storage_binding_code.*code 7 has no meaning"):
        build_table("hydros", cols, small, "full", scenario_id=2, fmt="cobre-0.18")
