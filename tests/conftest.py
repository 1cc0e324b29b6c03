"""Shared fixtures, helpers (imported with ``from conftest import ...``) and the MPI safety hook.

Under ``mpiexec`` (``--with-mpi``), a test marked ``mpi`` that fails on one
rank aborts the whole job (after printing the failure), so the other ranks
are never left blocked in a collective; ``pytest-timeout`` turns any other
deadlock into a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import strategies as st

from cobre_mpi_io.system import System
from cobre_mpi_io.testing.processes import OPENMPI_SESSION_BASE, remove_stale_openmpi_sessions

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


# A test that starts MPI jobs itself (its body, or a function or class of its module that it uses, calls
# mpiexec_argv(), mpiexec() or run_cli(..., n=...)) depends on the launcher: this hook marks it "launcher",
# and scripts/test.sh runs the launcher tests under every MPI, the rest of the serial suite (which does not
# depend on the MPI) once. A launcher test whose checks do not depend on the MPI (bytes written, resume,
# validate) says so with @pytest.mark.mpi_agnostic("why") and is not marked: it runs once, under MPICH.
# Fixtures that start jobs (e.g. a module's reference run) are set-up, not what a test checks.
_STARTS_JOBS = re.compile(r"mpiexec_argv\(|mpiexec\(\)|run_cli\((?:[^()]|\([^()]*\))*?\bn=", re.DOTALL)


def pytest_configure(config: pytest.Config) -> None:
    # Open MPI's session directories in a directory of this run, not the shared /tmp: a launcher a test
    # kills leaves its ompi.<pid> there, and a later launcher given that pid fails (exit 213) -- see
    # remove_stale_openmpi_sessions, which _stale_openmpi_sessions below runs after every test.
    if not os.environ.get(OPENMPI_SESSION_BASE):
        base = tempfile.mkdtemp(prefix="cobre-ompi-")
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        os.environ[OPENMPI_SESSION_BASE] = base
    config.addinivalue_line("markers", "launcher: the test starts MPI jobs through the launcher settings "
                                       "(set by tests/conftest.py)")
    config.addinivalue_line("markers", "mpi_agnostic(reason): the test starts MPI jobs, but what it checks "
                                       "does not depend on the MPI: scripts/test.sh runs it once, under MPICH")
    config.pluginmanager.register(_SlowFirst(), "cobre_slow_first")


class _SlowFirst:
    """Tests marked ``slow`` run first, longest first (``@pytest.mark.slow(seconds)``: its rough duration on
    the 2-core machine of docs/development.md; 30 when not given), each followed by one other test.

    pytest-xdist hands tests to its workers in collection order; scripts/test.sh has it hand them two at
    a time (``--maxschedchunk 2``), so each worker starts on one slow test and one short one instead of
    a test of minutes collected late (the README's commands: a fresh venv and install) running alone at
    the end while the other workers idle. Last among the hooks, after pytest's own reordering; the same
    order in every worker (xdist requires it).
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def seconds(item: pytest.Item) -> float:
            mark = item.get_closest_marker("slow")
            return 0.0 if mark is None else float(mark.args[0] if mark.args else 30)

        slow = sorted((it for it in items if seconds(it) > 0), key=seconds, reverse=True)
        rest = [it for it in items if seconds(it) == 0]
        ordered: list[pytest.Item] = []
        for k, item in enumerate(slow):
            ordered += [item, *rest[k:k + 1]]
        items[:] = ordered + rest[len(slow):]


def _code_names(code: types.CodeType) -> set[str]:
    """Every global or attribute name ``code`` refers to, nested functions and comprehensions included."""
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _code_names(const)
    return out


def _starts_jobs(obj: Any, module: types.ModuleType, seen: set[int]) -> bool:
    """Whether ``obj`` (a test function, or a function or class of ``module``) starts MPI jobs, transitively."""
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    try:
        if _STARTS_JOBS.search(inspect.getsource(obj)):
            return True
    except (OSError, TypeError):
        return False
    if inspect.isclass(obj):
        codes = [f.__code__ for f in vars(obj).values() if inspect.isfunction(f)]
    else:
        codes = [obj.__code__] if hasattr(obj, "__code__") else []
    for code in codes:
        for name in _code_names(code):
            ref = vars(module).get(name)
            if ((inspect.isfunction(ref) or inspect.isclass(ref)) and ref.__module__ == module.__name__
                    and _starts_jobs(ref, module, seen)):
                return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        func = getattr(item, "function", None)
        module = getattr(item, "module", None)
        if func is None or module is None:
            continue
        starts = _starts_jobs(inspect.unwrap(func), module, set())
        agnostic = item.get_closest_marker("mpi_agnostic")
        if agnostic is not None:
            if not (agnostic.args and isinstance(agnostic.args[0], str) and agnostic.args[0].strip()):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.mpi_agnostic needs a reason")
            if not starts:
                raise pytest.UsageError(f"{item.nodeid}: marked mpi_agnostic but starts no MPI job")
        elif starts:
            item.add_marker(pytest.mark.launcher)


@pytest.fixture(autouse=True)
def _stale_openmpi_sessions() -> Iterator[None]:
    """After each test: the session directories of Open MPI launchers it killed are removed."""
    yield
    remove_stale_openmpi_sessions()


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


def _assemble_case_1dtoy_018() -> Path:
    """The whole 0.18 1dtoy case, assembled once per process in a temp directory removed at exit.

    ``tests/data/cobre-real/case-1dtoy-v018/`` stores only what differs from the 0.5.1 case: its
    ``scenarios/*.parquet`` are byte for byte those of ``case-1dtoy/`` (PROVENANCE.txt) and are copied in.
    """
    root = Path(tempfile.mkdtemp(prefix="cobre-case-1dtoy-v018-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    case = root / "case-1dtoy-v018"
    shutil.copytree(DATA / "cobre-real" / "case-1dtoy-v018", case)
    shutil.copytree(DATA / "cobre-real" / "case-1dtoy" / "scenarios", case / "scenarios")
    return case


CASE_1DTOY_018 = _assemble_case_1dtoy_018()
"""Cobre's 1dtoy example in the 0.18 input format (tests/data/cobre-real/PROVENANCE.txt)."""


def warm_case_018(dest: Path, policy: str = "POLICY_DIR") -> Path:
    """A writable copy of :data:`CASE_1DTOY_018` at ``dest``, set up for a 1-iteration warm start from ``policy``.

    Its ``config.json`` changes (PROVENANCE.txt, "the warm case"): stopping rule ``iteration_limit`` 1
    (was 128), ``"simulation": {"enabled": false}`` (was 100 sampled scenarios) and
    ``"policy": {"path": policy, "mode": "warm_start"}``; everything else is the case unchanged.
    """
    shutil.copytree(CASE_1DTOY_018, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    config_path = dest / "config.json"
    config = json.loads(config_path.read_text())
    assert config["training"]["stopping_rules"] == [{"type": "iteration_limit", "limit": 128}], config
    config["training"]["stopping_rules"] = [{"type": "iteration_limit", "limit": 1}]
    config["simulation"] = {"enabled": False}
    config["policy"] = {"path": policy, "mode": "warm_start"}
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return dest


@pytest.fixture(scope="session")
def case018_warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`warm_case_018` once per session (policy path ``POLICY_DIR``), for tests that only read it."""
    return warm_case_018(tmp_path_factory.mktemp("case018") / "case-1dtoy-v018-warm")


@pytest.fixture(scope="session")
def small_system() -> System:
    return System.synthetic("small")


@pytest.fixture(scope="session")
def case_4ree() -> Path:
    return CASE_4REE


@pytest.fixture(scope="session")
def system_4ree() -> System:
    return System.from_case(CASE_4REE)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``) mounted at ``where/small``: a real filesystem that fills up.

    Needs root (CI runs as root: there a non-root run fails instead of skipping); unmounted on the way out,
    retried while a child that wrote there is still letting go of it.
    """
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test mounts a tmpfs and needs root (CI runs as root)")
        pytest.skip("needs root to mount a tmpfs")
    mnt = where / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(mnt)], check=False).returncode == 0:
                break
            time.sleep(0.2)


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
