"""The cheapest attacks of issue 14's campaign (``scripts/attack_campaign.py``), run as tests.

The whole campaign (every finding, crashes under ``mpiexec`` included) is a
script CI runs on its own: ``python scripts/attack_campaign.py``.  Here, the
attacks that need no crash and few jobs:

- 11: ``demo`` into a non-empty directory that holds no run is refused and the directory is untouched;
- 9: a bad case ``config.json`` gives one error naming file and field and leaves nothing behind, and a
  case's own seed is used when ``--seed`` is not given;
- 6: ``validate`` detects a bit flip in every kind of file of a run and targeted edits of
  ``metadata.json``/``codes.json``.

Each attack returns the list of what went wrong (empty: it was refused, rewritten or detected); the
test asserts it is empty, so a failure prints the attack's own findings.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import mpiexec_argv

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "attack_campaign.py"


def _campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attack_campaign", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attack_campaign"] = module
    spec.loader.exec_module(module)
    return module


campaign = _campaign()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    work = tmp_path_factory.mktemp("attacks")
    context = campaign.Ctx(work, sys.executable, 2, rng_seed=20261203, verbose=False)
    context.mpiexec = mpiexec_argv  # the launcher settings of the test suite ($MPIEXEC, $MPIEXEC_PREFLAGS)
    yield context
    context.kill_all()
    shutil.rmtree(work, ignore_errors=True)


def test_the_campaign_lists_every_finding_of_issue_14() -> None:
    assert sorted(campaign.ATTACKS) == list(range(1, 12))


@pytest.mark.timeout(120)
def test_attack_11_non_empty_directory_without_a_run_is_refused(ctx: object) -> None:
    assert campaign.attack_11(ctx) == []


@pytest.mark.timeout(240)
def test_attack_9_bad_case_config_is_one_clear_error_and_leaves_nothing(ctx: object) -> None:
    assert campaign.attack_9(ctx) == []


@pytest.mark.timeout(300)
def test_attack_6_validate_detects_a_flip_in_every_kind_of_file(ctx: object) -> None:
    assert campaign.attack_6(ctx) == []


@pytest.mark.timeout(120)
def test_validate_compares_a_crashed_runs_unlisted_partitions_with_the_journal(ctx: object, tmp_path: Path) -> None:
    """Finding 1: a crashed run's manifest lists no file; validate still checks each partition's bytes."""
    from cobre_mpi_io.validate import validate_output

    out = tmp_path / "crashed"
    costs = out / "simulation" / "costs"
    demo = ctx.cli("demo", "--output", str(out), "-q", "--scenarios", "8", "--iterations", "0",  # type: ignore[attr-defined]
                   "--slow", "0.4")
    campaign.crash(ctx, demo, lambda: (costs / "scenario_id=0003").exists(), victim=0, size=0, name="crash")
    shutil.copyfile(costs / "scenario_id=0001" / "data.parquet", costs / "scenario_id=0000" / "data.parquet")
    report = validate_output(out, threads=1)
    about = [p.problem for p in report.problems if p.path == "simulation/costs/scenario_id=0000/data.parquet"]
    assert any("differ from the run journal" in line for line in about), about
    untouched = [p.problem for p in report.problems if p.path == "simulation/costs/scenario_id=0001/data.parquet"]
    assert not any("journal" in line for line in untouched), untouched


@pytest.mark.timeout(120)
def test_a_resume_removes_an_earlier_checkpoint_damaged_since(ctx: object, tmp_path: Path) -> None:
    """Finding 8's FIFO (and any flipped bit) in the previous attempt's checkpoint: a resume that trains
    again publishes its own and removes the damaged one, so no complete run keeps it under ``_SUCCESS``."""
    import os

    from cobre_mpi_io.validate import validate_output

    out = tmp_path / "run"
    args = ("demo", "--output", str(out), "-q", "--scenarios", "2", "--iterations", "2")
    assert ctx.run(ctx.cli(*args)).rc == 0  # type: ignore[attr-defined]
    old = out / "policy" / "checkpoints" / "iter_000002"
    (old / "metadata.json").unlink()
    os.mkfifo(old / "metadata.json")
    res = ctx.run(ctx.cli(*args, "--resume"))  # type: ignore[attr-defined]
    assert res.rc == 0, res.brief()
    assert not old.exists()
    report = validate_output(out, threads=1)
    assert report.valid, [str(p) for p in report.problems]
