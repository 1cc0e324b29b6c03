"""Case input formats (Cobre 0.5.x and 0.18), config values checked at load, seed precedence.

Data: ``tests/data/cobre-real/case-1dtoy`` (0.5.1) and ``case-1dtoy-v018`` (the same case in the 0.18
format; see PROVENANCE.txt), ``tests/data/4ree`` and ``tests/data/4ree-v018`` (its 0.18 conversion,
see its SOURCE.txt). The real Cobre 0.18 (``$COBRE18_PYTHON``, default ``.venv-cobre18/bin/python``)
checks that it accepts the 0.18 cases; those tests skip without it, except under CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import CASE_1DTOY_018, CASE_4REE, run_cli

from cobre_mpi_io.cli.demo import DEFAULT_SEED, add_demo_arguments, run_config
from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.system import System
from cobre_mpi_io.system.case import case_format, case_problems
from cobre_mpi_io.system.case_config import load_case_config

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
V05 = DATA / "cobre-real" / "case-1dtoy"
V018 = CASE_1DTOY_018  # assembled by conftest (its scenarios/ are case-1dtoy's)
V018_4REE = DATA / "4ree-v018"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

pytestmark = pytest.mark.timeout(120)


def _copy(case: Path, tmp_path: Path) -> Path:
    dst = tmp_path / case.name
    shutil.copytree(case, dst)
    return dst


def _edit(case: Path, rel: str, fn: Any) -> None:
    p = case / rel
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))


def _problems(case: Path) -> list[str]:
    fields, problems = case_problems(case)
    assert fields is None
    return [str(p) for p in problems]


# ----------------------------------------------------------------------------------- the 0.18 format


def test_018_case_loads_as_the_same_system_as_its_05_twin() -> None:
    old, new = System.from_case(V05), System.from_case(V018)
    assert case_format(V05) == ("cobre-0.5", None)
    assert case_format(V018) == ("cobre-0.18", "system/hydro_production_models.json exists")
    (h,) = new.hydros
    assert h.bus_id == 0 and h.productivity_mw_per_m3s == 1.0 and h.stage_productivity == ()
    assert [(g.id, g.name, g.bus_id, g.max_turbined_m3s) for g in h.unit_groups] == [(0, "UHE1_G1", 0, 50.0)]
    # apart from the unit groups (and the directory name) the two formats describe one system
    d_old, d_new = old.to_dict(), new.to_dict()
    for d in (d_old, d_new):
        d.pop("name")
    del d_new["hydros"][0]["unit_groups"]
    assert d_old == d_new
    assert "unit_groups" not in d_old["hydros"][0]  # a 0.5.x system's hash is unchanged by the new fields


def test_4ree_v018_conversion_loads_as_4ree() -> None:
    old, new = System.from_case(CASE_4REE), System.from_case(V018_4REE)
    assert case_format(V018_4REE)[0] == "cobre-0.18"
    assert [h.bus_id for h in new.hydros] == [h.bus_id for h in old.hydros]
    assert [(len(h.unit_groups), h.productivity_mw_per_m3s) for h in new.hydros] == [(1, 1.0)] * 4
    assert load_case_config(V018_4REE) == load_case_config(CASE_4REE).__class__(  # type: ignore[union-attr]
        **{**load_case_config(CASE_4REE).__dict__, "format": "cobre-0.18",  # type: ignore[union-attr]
           "simulation_enabled": True})


@pytest.mark.parametrize(("rel", "edit", "reason"), [
    ("system/hydros.json", lambda d: d["hydros"][0].update(unit_groups=[]),
     "system/hydros.json, hydros[0] has 'unit_groups'"),
    ("system/thermals.json", lambda d: d["thermals"][1].update(operational_start_date="2024-01-01"),
     "system/thermals.json, thermals[1] has 'operational_start_date'"),
    ("config.json", lambda d: d["training"].update(tree_seed=3), "config.json has 'training.tree_seed'"),
    ("config.json", lambda d: d["simulation"].update(selection={}), "config.json has 'simulation.selection'"),
    ("stages.json", lambda d: d["stages"][2].update(num_openings=3), "stages.json, stages[2] has 'num_openings'"),
    ("penalties.json", lambda d: d["hydro"].update(turbined_cost=1.0), "penalties.json has 'hydro.turbined_cost'"),
])
def test_any_018_field_makes_the_case_018(tmp_path: Path, rel: str, edit: Any, reason: str) -> None:
    case = _copy(V05, tmp_path)
    _edit(case, rel, edit)
    assert case_format(case) == ("cobre-0.18", reason)


def test_05_fields_in_a_018_case_are_named_with_the_reason(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _edit(case, "system/hydros.json", lambda d: (d["hydros"][0].update(bus_id=0),
                                                  d["hydros"][0]["generation"].update(productivity_mw_per_m3s=2)))
    _edit(case, "stages.json", lambda d: d["stages"][1].update(num_scenarios=10))
    _edit(case, "config.json", lambda d: d["training"].update(forward_passes=2))
    _edit(case, "penalties.json", lambda d: d["hydro"].update(fpha_turbined_cost=0.05))
    got = _problems(case)
    why = "(system/hydro_production_models.json exists)"
    assert got == [
        ("config.json, field 'training.forward_passes': a Cobre 0.5.x field, not in the Cobre 0.18 format this case "
        f"is in {why}; 0.18 spells it training.selection.forward_passes"),
        (f"stages.json, stage 1, field 'num_scenarios': a Cobre 0.5.x field, not in the Cobre 0.18 format this case "
        f"is in {why}; 0.18 spells it num_openings"),
        ("penalties.json, field 'hydro.fpha_turbined_cost': a Cobre 0.5.x field, not in the Cobre 0.18 format this "
        f"case is in {why}; 0.18 spells it hydro.turbined_cost"),
        (f"system/hydros.json, hydro 0, field 'bus_id': a Cobre 0.5.x field, not in the Cobre 0.18 format this case "
        f"is in {why}; 0.18 gives each unit group's bus_id in unit_groups"),
        ("system/hydros.json, hydro 0, field 'generation.productivity_mw_per_m3s': a Cobre 0.5.x field, not in the "
        f"Cobre 0.18 format this case is in {why}; 0.18 gives productivity per (hydro, stage) in "
        "system/hydro_production_models.json"),
    ]


def test_018_entity_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _edit(case, "system/buses.json", lambda d: d["buses"][0].pop("operational_start_date"))
    _edit(case, "system/thermals.json", lambda d: d["thermals"][0].update(operational_start_date="2024-13-15"))

    def groups(d: dict[str, Any]) -> None:
        g = d["hydros"][0]["unit_groups"][0]
        d["hydros"][0]["unit_groups"].append({**g, "id": 1, "bus_id": 7, "max_turbined_m3s": 10.0,
                                              "min_generation_mw": "a"})
        g["min_turbined_m3s"] = 60.0

    _edit(case, "system/hydros.json", groups)
    with pytest.raises(SchemaError) as exc:
        System.from_case(case)
    msg = str(exc.value)
    assert "3 problems in the case" in msg, msg
    assert ("system/buses.json, bus 0, field 'operational_start_date': missing required field (Cobre 0.18: the ISO "
            "date YYYY-MM-DD the entity enters service)") in msg
    assert "system/thermals.json, thermal 0, field 'operational_start_date': not an ISO date YYYY-MM-DD: '2024-13-15'" \
        in msg
    assert ("system/hydros.json, hydro 0, field 'unit_groups[1].min_generation_mw': expected a number, got a "
            "string 'a'") in msg
    # once the group reads, its own bounds, its bus and the plant envelope are checked
    _edit(case, "system/buses.json", lambda d: d["buses"][0].update(operational_start_date="2024-01-01"))
    _edit(case, "system/thermals.json", lambda d: d["thermals"][0].update(operational_start_date="2024-01-01"))
    _edit(case, "system/hydros.json", lambda d: d["hydros"][0]["unit_groups"][1].update(min_generation_mw=0.0))
    assert _problems(case) == [
        "system/hydros.json, hydro 0, field 'unit_groups[0].min_turbined_m3s': minimum 60.0 is above the maximum 50.0",
        ("system/hydros.json, hydro 0, field 'unit_groups.max_turbined_m3s': the unit groups' max_turbined_m3s sum "
        "to 60.0, above the plant's own 50.0 (the plant's value is the envelope the groups share)"),
        ("system/hydros.json, hydro 0, field 'unit_groups.max_generation_mw': the unit groups' max_generation_mw sum "
        "to 100.0, above the plant's own 50.0 (the plant's value is the envelope the groups share)"),
        "system/hydros.json, hydro 0, field 'unit_groups[1].bus_id': references unknown bus 7",
    ]


def test_018_hydro_without_unit_groups_is_one_problem(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _edit(case, "system/hydros.json", lambda d: d["hydros"][0].pop("unit_groups"))
    _edit(case, "system/buses.json", lambda d: d["buses"].append({**d["buses"][0], "id": 1}))
    # not also "references unknown bus None": the cause is named, not its consequence
    assert _problems(case) == [
        ("system/hydros.json, hydro 0, field 'unit_groups': missing required field (Cobre 0.18: every hydro declares "
        "at least one unit group with id, name, bus_id, min/max_generation_mw and min/max_turbined_m3s)")]


def test_018_productivity_per_season(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _seasonal(case, range(12))
    (h,) = System.from_case(case).hydros
    assert h.productivity_mw_per_m3s == 1.0 and h.stage_productivity == (1.0, 2.0, 3.0, 4.0)
    _seasonal(case, range(1, 12))
    assert _problems(case) == [
        ("system/hydro_production_models.json, hydro 0, field 'productivity_mw_per_m3s': no productivity for "
        "stage(s) [0]: Cobre 0.18 needs one per (hydro, stage), here or in system/hydro_energy_productivity.parquet")]


def test_018_productivity_per_stage_range(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    rel = "system/hydro_production_models.json"
    _edit(case, rel, lambda d: d["production_models"][0].update(stage_ranges=[
        {"start_stage_id": 0, "end_stage_id": 1, "model": "constant_productivity", "productivity_mw_per_m3s": 0.5},
        {"start_stage_id": 2, "end_stage_id": None, "model": "constant_productivity", "productivity_mw_per_m3s": 2},
    ]))
    (h,) = System.from_case(case).hydros
    assert h.productivity_mw_per_m3s == 0.5 and h.stage_productivity == (0.5, 0.5, 2.0, 2.0)
    # a stage without productivity is a problem, as in Cobre 0.18 ...
    _edit(case, rel, lambda d: d["production_models"][0]["stage_ranges"].pop(0))
    assert _problems(case) == [
        ("system/hydro_production_models.json, hydro 0, field 'productivity_mw_per_m3s': no productivity for "
        "stage(s) [0, 1]: Cobre 0.18 needs one per (hydro, stage), here or in "
        "system/hydro_energy_productivity.parquet")]
    # ... unless the Parquet file Cobre reads them from is there (not read here: 1.0, as a 0.5.x default)
    (case / "system" / "hydro_energy_productivity.parquet").write_bytes(b"")
    (h,) = System.from_case(case).hydros
    assert h.stage_productivity == (1.0, 1.0, 2.0, 2.0)
    _edit(case, rel, lambda d: d["production_models"][0]["stage_ranges"][0].update(model="magic",
                                                                                   productivity_mw_per_m3s=-1))
    assert _problems(case) == [
        ("system/hydro_production_models.json, hydro 0, field 'stage_ranges[0].model': must be one of "
        "constant_productivity, linearized_head, fpha, got 'magic'"),
        ("system/hydro_production_models.json, hydro 0, field 'stage_ranges[0].productivity_mw_per_m3s': must be > 0, "
        "got -1.0")]


# ------------------------------------------------------------------------- config values at the door


@pytest.mark.parametrize(("case", "path", "value", "problem"), [
    (V05, ("training", "forward_passes"), 0, "field 'training.forward_passes': must be an integer >= 1, got 0"),
    (V05, ("training", "forward_passes"), -3, "field 'training.forward_passes': must be an integer >= 1, got -3"),
    (V05, ("training", "forward_passes"), 1.5, "field 'training.forward_passes': expected an integer, got 1.5"),
    (V05, ("simulation", "num_scenarios"), -5, "field 'simulation.num_scenarios': must be an integer >= 0, got -5"),
    (V05, ("simulation", "num_scenarios"), "10", ("field 'simulation.num_scenarios': expected an integer, got a "
                                                 "string '10'")),
    (V05, ("training", "scenario_source", "seed"), -1, ("field 'training.scenario_source.seed': a seed must be an "
                                                       "integer in 0..9223372036854775807")),
    (V05, ("simulation", "enabled"), "yes", "field 'simulation.enabled': must be true or false, got 'yes'"),
    (V05, ("policy", "mode"), "hot", "field 'policy.mode': must be one of 'fresh', 'warm_start', 'resume', got 'hot'"),
    (V05, ("simulation", "detail"), "all", "field 'simulation.detail': must be one of 'full', 'stage', 'summary'"),
    (V05, ("training", "stopping_rules"), [{"type": "iteration_limit", "limit": -1}],
     "field 'training.stopping_rules[0].limit': must be an integer >= 0, got -1"),
    (V05, ("training", "stopping_mode"), "most", "field 'training.stopping_mode': must be one of 'any', 'all'"),
    (V05, ("training",), [], "field 'training': expected an object, got a list"),
    (V018, ("training", "selection", "forward_passes"), 0,
     "field 'training.selection.forward_passes': must be an integer >= 1, got 0"),
    (V018, ("training", "selection"), None, "field 'training.selection': missing required field"),
    (V018, ("training", "selection", "method"), "random",
     "field 'training.selection.method': must be one of 'sampled', 'enumerated', got 'random'"),
    (V018, ("simulation", "selection", "num_scenarios"), -5,
     "field 'simulation.selection.num_scenarios': must be an integer >= 0, got -5"),
    (V018, ("training", "tree_seed"), True, "field 'training.tree_seed': a seed must be an integer"),
])
def test_bad_config_value_is_refused_at_load_naming_the_field(tmp_path: Path, case: Path, path: tuple[str, ...],
                                                              value: Any, problem: str) -> None:
    case = _copy(case, tmp_path)

    def put(d: dict[str, Any]) -> None:
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    _edit(case, "config.json", put)
    for load in (System.from_case, load_case_config):
        with pytest.raises(SchemaError) as exc:
            load(case)
        assert f"{case}/config.json" in str(exc.value) and problem.split(":")[0].split("'")[1] in str(exc.value)
    (got,) = _problems(case)
    assert got.startswith(f"config.json, {problem}"), got


def test_config_values_of_both_formats() -> None:
    old, new = load_case_config(V05), load_case_config(V018)
    assert old is not None and new is not None
    assert (old.format, old.seed, old.forward_passes, old.max_iterations, old.num_scenarios,
            old.simulation_enabled, old.policy_mode) == ("cobre-0.5", 42, 1, 1, 100, False, "warm_start")
    assert (new.format, new.seed, new.forward_passes, new.max_iterations, new.num_scenarios,
            new.simulation_enabled, new.policy_mode) == ("cobre-0.18", 42, 1, 128, 100, True, "fresh")
    doc = json.loads((V018 / "config.json").read_text())
    assert RunConfig.from_case_config(doc) == RunConfig(seed=42, forward_passes=1, max_iterations=128,
                                                        num_scenarios=100, stopping_rules=doc["training"][
                                                            "stopping_rules"])
    doc["training"]["selection"] = {"method": "sampled", "forward_passes": 0}
    with pytest.raises(SchemaError, match="training.selection.forward_passes.*must be an integer >= 1, got 0"):
        RunConfig.from_case_config(doc)


# -------------------------------------------------------------------------------------- seed precedence


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_demo_arguments(p)
    return p.parse_args(["--output", "unused", *argv])


def test_seed_precedence_option_then_case_then_default(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _edit(case, "config.json", lambda d: d["training"].update(tree_seed=7))
    assert run_config(_args("--case", str(case))).seed == 7  # the case's own seed is honoured
    assert run_config(_args("--case", str(case), "--seed", "3")).seed == 3  # --seed wins
    assert run_config(_args("--case", str(case), "--seed", "0")).seed == 0  # ... even 0
    _edit(case, "config.json", lambda d: (d["training"].pop("tree_seed"),
                                          d["training"]["scenario_source"].update(seed=9)))
    assert run_config(_args("--case", str(case))).seed == 9  # 0.18 falls back to scenario_source.seed
    _edit(case, "config.json", lambda d: d["training"]["scenario_source"].pop("seed"))
    assert run_config(_args("--case", str(case))).seed == DEFAULT_SEED
    assert run_config(_args()).seed == DEFAULT_SEED == 42
    old = _copy(V05, tmp_path / "v05")
    _edit(old, "config.json", lambda d: d["training"]["scenario_source"].update(seed=11))
    assert run_config(_args("--case", str(old))).seed == 11


# ----------------------------------------------------------------------------- the demo, under mpiexec


def test_demo_refuses_a_bad_config_before_writing_anything(tmp_path: Path) -> None:
    case = _copy(CASE_4REE, tmp_path)
    _edit(case, "config.json", lambda d: (d["training"].update(forward_passes=-3),
                                          d["simulation"].update(num_scenarios=-5)))
    out = tmp_path / "out"
    proc = run_cli("demo", "--output", str(out), "--case", str(case), "--iterations", "2", n=2, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "MPI_Abort" not in proc.stderr, proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr  # one message, rank 0's
    assert "config.json, field 'training.forward_passes': must be an integer >= 1, got -3" in proc.stderr
    assert "config.json, field 'simulation.num_scenarios': must be an integer >= 0, got -5" in proc.stderr
    assert not out.exists()
    # an existing (empty) output directory is not touched either
    out.mkdir()
    before = out.stat().st_mtime_ns
    proc = run_cli("demo", "--output", str(out), "--case", str(case), n=2, check=False)
    assert proc.returncode != 0 and list(out.iterdir()) == [] and out.stat().st_mtime_ns == before


@pytest.mark.mpi_agnostic("reading a 0.18 case; the launcher only starts the demo")
def test_demo_runs_a_018_case_with_its_own_seed(tmp_path: Path) -> None:
    case = _copy(V018, tmp_path)
    _edit(case, "config.json", lambda d: d["training"].update(tree_seed=7))
    out = tmp_path / "out"
    run_cli("demo", "--output", str(out), "--case", str(case), "--iterations", "3", "--scenarios", "4",
            "--quiet", n=2)
    assert run_cli("validate", str(out)).returncode == 0
    snap = json.loads((out / "training" / "metadata.json").read_text())["configuration_snapshot"]
    assert (snap["seed"], snap["forward_passes"], snap["num_scenarios"]) == (7, 1, 4)  # tree_seed, selection


# ------------------------------------------------------------------------------------ the real Cobre


def _cobre18() -> str:
    exe = os.environ.get("COBRE18_PYTHON") or str(ROOT / ".venv-cobre18" / "bin" / "python")
    if not Path(exe).exists():
        if IN_CI:
            pytest.fail(f"no Cobre 0.18 interpreter at {exe} (CI=true)")
        pytest.skip(f"no Cobre 0.18 interpreter at {exe} (set COBRE18_PYTHON)")
    return exe


@pytest.mark.parametrize("case", [V018, V018_4REE], ids=["1dtoy", "4ree"])
def test_cobre_018_accepts_the_018_cases(case: Path) -> None:
    code = "import json, sys, cobre.io; print(json.dumps(cobre.io.validate(sys.argv[1])))"
    proc = subprocess.run([_cobre18(), "-c", code, str(case)], capture_output=True, text=True, timeout=60,
                          check=True)
    report = json.loads(proc.stdout)
    assert report["valid"] is True and report["errors"] == [], report


_GROUP2 = {"id": 1, "name": "G2", "bus_id": 0, "min_generation_mw": 0.0, "max_generation_mw": 10.0,
           "min_turbined_m3s": 0.0, "max_turbined_m3s": 10.0}
# (name, file, edit, whether the case stays valid): each judged by this package and by Cobre 0.18 itself
_VARIANTS: list[tuple[str, str, Any, bool]] = [
    ("as-is", "config.json", lambda d: None, True),
    ("late start date", "system/thermals.json", lambda d: d["thermals"][0].update(operational_start_date="2024-03-15"),
     True),
    ("productivity per range", "system/hydro_production_models.json", lambda d: d["production_models"][0].update(
        stage_ranges=[{"start_stage_id": 0, "end_stage_id": 1, "model": "constant_productivity",
                       "productivity_mw_per_m3s": 1.0},
                      {"start_stage_id": 2, "end_stage_id": None, "model": "constant_productivity",
                       "productivity_mw_per_m3s": 2.0}]), True),
    ("hydro bus_id", "system/hydros.json", lambda d: d["hydros"][0].update(bus_id=0), False),
    ("no unit groups", "system/hydros.json", lambda d: d["hydros"][0].update(unit_groups=[]), False),
    ("group on unknown bus", "system/hydros.json", lambda d: d["hydros"][0]["unit_groups"][0].update(bus_id=5),
     False),
    ("groups above the plant", "system/hydros.json", lambda d: d["hydros"][0]["unit_groups"].append(_GROUP2),
     False),
    ("no start date", "system/buses.json", lambda d: d["buses"][0].pop("operational_start_date"), False),
    ("bad start date", "system/thermals.json", lambda d: d["thermals"][0].update(operational_start_date="2024-13-15"),
     False),
    ("stage num_scenarios", "stages.json", lambda d: d["stages"][0].update(num_scenarios=3), False),
    ("no productivity for stage 0", "system/hydro_production_models.json",
     lambda d: d["production_models"][0]["stage_ranges"][0].update(start_stage_id=1), False),
    ("no production model", "system/hydro_production_models.json", lambda d: d.update(production_models=[]), False),
    ("productivity per season", "", lambda case: _seasonal(case, range(12)), True),
    ("a season without productivity", "", lambda case: _seasonal(case, range(1, 12)), False),
]


def _seasonal(case: Path, seasons: range) -> None:
    """Monthly seasons (stage k in season k) and a seasonal production model giving ``seasons`` 1 + season."""
    def stages(d: dict[str, Any]) -> None:
        for k, st in enumerate(d["stages"]):
            st["season_id"] = k
        d["season_definitions"] = {"cycle_type": "monthly", "seasons": [
            {"id": m, "label": str(m), "month_start": m + 1} for m in range(12)]}

    _edit(case, "stages.json", stages)
    _edit(case, "system/hydro_production_models.json", lambda d: d.update(production_models=[{
        "hydro_id": 0, "selection_mode": "seasonal", "default_model": "constant_productivity",
        "seasons": [{"season_id": m, "model": "constant_productivity", "productivity_mw_per_m3s": 1.0 + m}
                    for m in seasons]}]))


def test_this_package_and_cobre_018_agree_on_what_is_a_valid_018_case(tmp_path: Path) -> None:
    """Each variant of the 0.18 1dtoy case: refused here exactly when Cobre 0.18's validate refuses it."""
    exe = _cobre18()
    dirs = []
    for k, (name, rel, edit, valid) in enumerate(_VARIANTS):
        case = _copy(V018, tmp_path / str(k))
        if rel:
            _edit(case, rel, edit)
        else:
            edit(case)
        ours = case_problems(case)[1]
        assert (not ours) == valid, (name, [str(p) for p in ours])
        dirs.append(str(case))
    code = "import json, sys, cobre.io; print(json.dumps([cobre.io.validate(d)['valid'] for d in sys.argv[1:]]))"
    proc = subprocess.run([exe, "-c", code, *dirs], capture_output=True, text=True, timeout=120, check=True)
    theirs = json.loads(proc.stdout)
    assert {v[0]: t for v, t in zip(_VARIANTS, theirs, strict=True)} == {v[0]: v[3] for v in _VARIANTS}
