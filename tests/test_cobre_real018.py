"""The policy formats against the real Cobre solver 0.18.0 (and 0.5.1's loader) -- issue 15.

Data: ``tests/data/cobre-real/`` (PROVENANCE.txt): ``policy-1dtoy-v018`` (written by Cobre 0.18.0),
``policy-1dtoy`` (Cobre 0.5.1) and ``case-1dtoy-v018`` (1dtoy in the 0.18 input format), which
``conftest.warm_case_018`` copies and sets up for a 1-iteration warm start from a policy directory.

- Cobre 0.18 warm-started from its own policy, and from that policy passed through
  ``cobre-mpi-io policy convert --format cobre-0.18``, reaches the identical lower bound; a copy with
  halved intercepts (written by our cobre-0.18 writer) does not.
- 0.5.1 -> 0.18: ``policy convert`` of 0.5.1's policy (values x its cost scale factor 1000, the 0.18
  fields from the 0.18 case) warm-starts 0.18 within 1 % of 0.5.1's own bound (2605295.12).
- Our reader reads Cobre's files of both versions with the cut counts (and values) Cobre's own
  loader (``cobre.results.load_policy``) gives.

The solvers live in their own venvs (Python >= 3.12): ``scripts/cobre_venv.sh 0.18.0`` makes
``.venv-cobre18`` (found through ``$COBRE18_PYTHON``), ``scripts/cobre_venv.sh`` makes ``.venv-cobre``
(``$COBRE_PYTHON``).  Missing, the tests skip -- except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import warm_case_018

from cobre_mpi_io.policy import read_policy_checkpoint
from cobre_mpi_io.policy.formats import write_cobre_policy

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "cobre-real"
V018 = DATA / "policy-1dtoy-v018"
V051 = DATA / "policy-1dtoy"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
BOUND_051 = 2605295.1210092693  # Cobre 0.5.1 warm-started from its own policy (PROVENANCE.txt)
BOUND_018 = 2611822.251023356  # Cobre 0.18.0 warm-started from its own policy, 1 iteration


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: this test must run in CI)")
    pytest.skip(what)


def _python(env_var: str, venv: str, version: str) -> str:
    exe = os.environ.get(env_var) or str(ROOT / venv / "bin" / "python")
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        _missing(f"no Cobre {version} interpreter at {exe} (scripts/cobre_venv.sh {version}, or set {env_var})")
    probe = subprocess.run([exe, "-c", "import importlib.metadata as m; print(m.version('cobre-python'))"],
                           capture_output=True, text=True, timeout=120, check=False, env=_clean_env())
    if probe.returncode != 0:
        _missing(f"{exe} cannot import cobre-python: {probe.stderr.strip()[-500:]}")
    assert probe.stdout.strip() == version, f"{exe} has cobre-python {probe.stdout.strip()}, expected {version}"
    return exe


@pytest.fixture(scope="module")
def cobre18() -> str:
    return _python("COBRE18_PYTHON", ".venv-cobre18", "0.18.0")


@pytest.fixture(scope="module")
def cobre051() -> str:
    return _python("COBRE_PYTHON", ".venv-cobre", "0.5.1")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dst


def _in_cobre(python: str, code: str, *args: str, cwd: Path) -> Any:
    proc = subprocess.run([python, "-c", code, *args], cwd=cwd, env=_clean_env(), capture_output=True,
                          text=True, timeout=600, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"cobre exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


_RUN = """
import json, sys
import cobre
r = cobre.run.run(sys.argv[1], output_dir=sys.argv[2])
print("RESULT " + json.dumps({"hex": float(r["lower_bound"]).hex(), "iterations": r["iterations"]}))
"""

_LOAD = """
import json, sys
import cobre
p = cobre.results.load_policy(sys.argv[1])
print("RESULT " + json.dumps([{"cuts": len(s["cuts"]), "populated": s["populated_count"],
                               "intercepts": [float(c["intercept"]).hex() for c in s["cuts"]]}
                              for s in p["stage_cuts"]]))
"""


def _warm_start(python: str, policy: Path, work: Path, copy: bool = True) -> float:
    """Cobre 0.18 on the 0.18 case, 1 iteration, warm-started from (a copy of) ``policy``; its lower bound."""
    work.mkdir()
    pol = _copy(policy, work / "policy") if copy else policy
    case = warm_case_018(work / "case", policy=str(pol))
    result = _in_cobre(python, _RUN, str(case), str(work / "out"), cwd=work)
    assert result["iterations"] == 1
    return float.fromhex(result["hex"])


def _convert(src: Path, dst: Path, *extra: str) -> None:
    """``cobre-mpi-io policy convert`` as a user runs it (a separate process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cobre_mpi_io", "policy", "convert", str(src), str(dst),
                           "--format", "cobre-0.18", *extra], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr


def test_warm_start_from_own_and_converted_policy(cobre18: str, tmp_path: Path) -> None:
    _convert(V018, tmp_path / "converted")
    ck = read_policy_checkpoint(V018)
    assert ck.cobre_manifest is not None
    halved = [dataclasses.replace(sc, intercepts=np.asarray(sc.intercepts) * 0.5) for sc in ck.cuts]
    write_cobre_policy(tmp_path / "halved", halved, ck.bases, ck.cobre_manifest, durable=False)
    own = _warm_start(cobre18, V018, tmp_path / "run-own")
    converted = _warm_start(cobre18, tmp_path / "converted", tmp_path / "run-converted")
    control = _warm_start(cobre18, tmp_path / "halved", tmp_path / "run-halved")
    # Cobre's visited-states files, read and rewritten by us, are accepted too
    with_states = _copy(V018, tmp_path / "with-states")
    (with_states / "states").mkdir()
    shutil.copy(DATA / "states-v018" / "000.bin", with_states / "states" / "000.bin")
    _convert(with_states, tmp_path / "converted-states")
    assert (tmp_path / "converted-states" / "states" / "000.bin").is_file()
    states = _warm_start(cobre18, tmp_path / "converted-states", tmp_path / "run-states")
    print(f"Cobre 0.18 lower bounds: own {own!r}, converted {converted!r}, halved cuts {control!r}, "
          f"converted with states {states!r}")
    assert converted == own == states  # identical, as floats
    assert own == pytest.approx(BOUND_018, rel=1e-9)
    assert control < 0.7 * own  # the cuts are really read (measured 1415494.11)


def test_warm_start_from_our_cobre_018_checkpoint(cobre18: str, tmp_path: Path) -> None:
    """PolicyCheckpointer(format="cobre-0.18"): OUT/policy (a link into policy_checkpoints/) is what Cobre reads."""
    from mpi4py import MPI

    from cobre_mpi_io.policy import PolicyCheckpointer

    ck = read_policy_checkpoint(V018)
    assert ck.cobre_manifest is not None
    out = tmp_path / "out"
    with PolicyCheckpointer(out, every=0, comm=MPI.COMM_SELF, format="cobre-0.18", install_signal_handlers=False,
                            cobre_fields=ck.cobre_manifest) as ckpt:
        ckpt.after_iteration(128, dict)
        ckpt.final(stage_cuts=ck.cuts, stage_bases=ck.bases, metadata=ck.metadata)
    assert (out / "policy").is_symlink()
    assert _warm_start(cobre18, out / "policy", tmp_path / "run", copy=False) == pytest.approx(BOUND_018, rel=1e-9)


def test_upgrade_051_policy_to_018(cobre18: str, case018_warm: Path, tmp_path: Path) -> None:
    _convert(V051, tmp_path / "upgraded", "--case", str(case018_warm), "--value-scale", "1000")
    lb = _warm_start(cobre18, tmp_path / "upgraded", tmp_path / "run")
    print(f"Cobre 0.18 from 0.5.1's policy upgraded: {lb!r} (0.5.1 on its own: {BOUND_051!r})")
    assert lb == pytest.approx(BOUND_051, rel=0.01)


def test_our_reader_agrees_with_cobre_018_loader(cobre18: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _copy(V018, out / "policy")
    theirs = _in_cobre(cobre18, _LOAD, str(out), cwd=tmp_path)
    ours = read_policy_checkpoint(V018).cuts
    assert [s["cuts"] for s in theirs] == [sc.n_cuts for sc in ours] == [128, 128, 128, 0]
    assert [s["populated"] for s in theirs] == [sc.populated_count for sc in ours]
    for s, sc in zip(theirs, ours, strict=True):
        assert s["intercepts"] == [float(x).hex() for x in np.asarray(sc.intercepts)]


def test_our_reader_agrees_with_cobre_051_loader(cobre051: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _copy(V051, out / "training" / "policy")  # where Cobre 0.5.1's loader looks
    theirs = _in_cobre(cobre051, _LOAD, str(out), cwd=tmp_path)
    ours = read_policy_checkpoint(V051).cuts
    assert [s["cuts"] for s in theirs] == [sc.n_cuts for sc in ours] == [129, 129, 129, 0]
    for s, sc in zip(theirs, ours, strict=True):
        assert s["intercepts"] == [float(x).hex() for x in np.asarray(sc.intercepts)]
