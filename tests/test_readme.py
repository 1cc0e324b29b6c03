"""The README's commands run as written, in order, from the root of a fresh copy of the repository.

The test copies the repository's files (``git ls-files``: what a clone has) into a temporary
directory, takes every ``bash`` and ``python`` block of the README in order, and runs them as one
script from that copy's root in a clean shell (no venv on ``PATH``, no ``PYTHONPATH``, no launcher
settings): the first command creates the venv and installs the package with the extras it names, so
a missing extra, a command that is not on ``PATH`` or a snippet that needs a package the install does
not bring fails here.  The one command not run is the test command itself (``scripts/test.sh``, which
runs this test); CI runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEST_COMMAND = "scripts/test.sh"

_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """The README's ``bash`` and ``python`` code blocks, in order, as ``(language, code)``."""
    return [(lang, code) for lang, code in _BLOCK.findall(text) if lang in ("bash", "python")]


def readme_script(text: str) -> tuple[str, list[str]]:
    """One bash script running every README command in order, and the commands it leaves out.

    Python blocks run with the ``python`` on ``PATH`` at that point (the venv the README activated).
    """
    lines = ["set -euo pipefail"]
    skipped: list[str] = []
    for k, (lang, code) in enumerate(readme_blocks(text)):
        if lang == "python":
            lines += [f"echo '== README block {k}: python'", f"python - <<'README_PY_{k}'", code.rstrip("\n"),
                      f"README_PY_{k}"]
            continue
        for cmd in code.splitlines():
            if cmd.strip() == TEST_COMMAND:
                skipped.append(cmd.strip())
                continue
            if cmd.strip():
                lines += [f"echo {_quote('== ' + cmd.strip())}", cmd]
    return "\n".join(lines) + "\n", skipped


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def _fresh_copy(dest: Path) -> None:
    """The files a clone of this checkout has (tracked, plus new files not ignored), copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no venv on PATH, no PYTHONPATH, no launcher settings."""
    venv_bins = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "MPIEXEC", "MPIEXEC_EXECUTABLE", "MPIEXEC_NUMPROC_FLAG", "MPIEXEC_PREFLAGS",
            "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in venv_bins]
    env["PATH"] = os.pathsep.join(path or ["/usr/bin", "/bin"])
    return env


def test_readme_script_takes_every_command_in_order() -> None:
    script, skipped = readme_script(README.read_text(encoding="utf-8"))
    assert skipped == [TEST_COMMAND], "the README's test command must be exactly scripts/test.sh"
    install = script.index("python3 -m venv .venv")
    assert install < script.index(". .venv/bin/activate") < script.index("mpiexec -n 4 cobre-mpi-io demo")
    assert script.index("cobre-mpi-io demo") < script.index("import duckdb")  # the first look reads the run
    # the first command installs every extra the later commands need
    first = readme_blocks(README.read_text(encoding="utf-8"))[0][1].splitlines()[0]
    assert "[mpich,all]" in first


@pytest.mark.slow(300)
@pytest.mark.timeout(1800)  # a venv and a pip install: minutes on a busy machine
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """Every command of the README, in order, in a fresh copy: venv, install, demo, validate, report, reads."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clone has")
    repo = tmp_path / "clone"
    repo.mkdir()
    _fresh_copy(repo)
    script, _ = readme_script(README.read_text(encoding="utf-8"))
    (tmp_path / "readme.sh").write_text(script)
    proc = subprocess.run(["bash", str(tmp_path / "readme.sh")], cwd=repo, env=_clean_env(), capture_output=True,
                          text=True, timeout=1500, check=False)
    assert proc.returncode == 0, f"a README command failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n" \
                                 f"stderr:\n{proc.stderr[-6000:]}"
    out = repo / "out"
    assert (out / "simulation" / "_SUCCESS").exists() and (out / "training" / "_SUCCESS").exists()
    page = (repo / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "data:image/svg+xml" in page  # the plots
    assert "== README block" in proc.stdout and "rows of" in proc.stdout  # the reading snippet ran and printed
    assert "scenario_id" in proc.stdout and "cvar95" in proc.stdout  # every reader, and cobre_mpi_io.report
    assert (repo / "stored_volume.png").read_bytes().startswith(b"\x89PNG")
