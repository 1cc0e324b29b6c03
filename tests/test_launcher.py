"""The launcher from settings (CMake FindMPI style), the hostfiles, and no rank outliving its launcher.

``scripts/test.sh`` runs the serial suite once per MPI venv (MPICH's Hydra, Open MPI's prterun) with
``MPIEXEC``/``MPIEXEC_PREFLAGS``/``MPIEXEC_NUMPROC_FLAG`` set by ``scripts/mpi_launcher.sh``; these tests
check the argv the helpers build, that the localhost hostfile of the running launcher's syntax works, and
that the cluster template of that syntax (and the other launcher's localhost file) fails loudly instead of
running every rank on the launch host. The failing launches run in a fresh network namespace with only
loopback, so the placeholder host names are never looked up anywhere (skipped when one cannot be made).
A rank whose launcher is killed exits (Open MPI's ranks live in process groups of their own, so ``kill -9``
of the launcher's group missed them and they wrote on); a singleton survives its parent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import mpiexec, mpiexec_argv, self_comm

from cobre_mpi_io import claim
from cobre_mpi_io.claim import acquire_run, read_claim

pytestmark = pytest.mark.timeout(120)

HOSTFILES = Path(__file__).resolve().parent.parent / "hostfiles"
# rank 0 prints "RANKS <size> <every rank that took part>" (one line: ranks' own lines may interleave)
RANK_PY = ("from mpi4py import MPI; c = MPI.COMM_WORLD; r = c.allgather(c.Get_rank()); "
           "c.Get_rank() or print('RANKS', c.Get_size(), *sorted(r), flush=True)")


def launcher_kind() -> str:
    """``hydra`` (MPICH) or ``openmpi``, from ``mpiexec --version``."""
    out = subprocess.run([mpiexec(), "--version"], capture_output=True, text=True, timeout=30, check=False)
    text = out.stdout + out.stderr
    if "HYDRA" in text:
        return "hydra"
    if "Open MPI" in text:
        return "openmpi"
    pytest.skip(f"unknown launcher {mpiexec()}: {text[:200]!r}")
    raise AssertionError  # unreachable


def hostfile_flag(kind: str) -> str:
    return "-f" if kind == "hydra" else "--hostfile"


def test_argv_follows_cmake_findmpi_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPIEXEC", "/opt/mpi/bin/mpirun")
    monkeypatch.setenv("MPIEXEC_NUMPROC_FLAG", "-np")
    monkeypatch.setenv("MPIEXEC_PREFLAGS", "--allow-run-as-root  --oversubscribe --mca btl 'tcp,self'")
    assert mpiexec_argv(3) == ["/opt/mpi/bin/mpirun", "-np", "3", "--allow-run-as-root", "--oversubscribe",
                               "--mca", "btl", "tcp,self"]
    monkeypatch.delenv("MPIEXEC")
    monkeypatch.setenv("MPIEXEC_EXECUTABLE", "/cmake/style/mpiexec")
    monkeypatch.delenv("MPIEXEC_NUMPROC_FLAG")
    monkeypatch.delenv("MPIEXEC_PREFLAGS")
    assert mpiexec_argv(2) == ["/cmake/style/mpiexec", "-n", "2"]
    monkeypatch.delenv("MPIEXEC_EXECUTABLE")
    venv_mpiexec = Path(sys.executable).parent / "mpiexec"
    if venv_mpiexec.exists():
        assert mpiexec_argv(1) == [str(venv_mpiexec), "-n", "1"]


def test_ranks_see_one_world_through_the_settings() -> None:
    proc = subprocess.run([*mpiexec_argv(3), sys.executable, "-c", RANK_PY], capture_output=True, text=True,
                          timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "RANKS 3 0 1 2" in proc.stdout.splitlines(), proc.stdout + proc.stderr


def test_localhost_hostfile_of_this_launcher_runs_every_rank() -> None:
    kind = launcher_kind()
    hostfile = HOSTFILES / f"localhost.{kind}"
    assert hostfile.is_file()
    proc = subprocess.run([*mpiexec_argv(4), hostfile_flag(kind), str(hostfile), sys.executable, "-c", RANK_PY],
                          capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "RANKS 4 0 1 2 3" in proc.stdout.splitlines(), proc.stdout + proc.stderr


def _isolated(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a new network namespace that has loopback only (no resolver, no route anywhere)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip to isolate the launch from the network")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {probe.stderr!r}")
    script = 'ip link set lo up && exec "$@"'
    return subprocess.run(["unshare", "--net", "sh", "-c", script, "sh", *cmd], capture_output=True, text=True,
                          timeout=90, check=False)


@pytest.mark.parametrize("which", ["template", "other-syntax"])
def test_wrong_or_unedited_hostfile_fails_loudly(which: str) -> None:
    kind = launcher_kind()
    other = "openmpi" if kind == "hydra" else "hydra"
    hostfile = HOSTFILES / (f"cluster.{kind}.template" if which == "template" else f"localhost.{other}")
    proc = _isolated([*mpiexec_argv(4), hostfile_flag(kind), str(hostfile), sys.executable, "-c", RANK_PY])
    assert proc.returncode != 0, f"{hostfile.name} launched:\n{proc.stdout}"
    assert "RANKS" not in proc.stdout, f"ranks ran from {hostfile.name}:\n{proc.stdout}"
    err = (proc.stdout + proc.stderr).lower()  # Open MPI prints its launch errors on stdout
    if which == "template":  # the launcher names the placeholder host it could not reach (it needs ssh to try)
        assert "replace_with_node_name" in err if shutil.which("ssh") else "ssh" in err, proc.stdout + proc.stderr
    else:  # Hydra rejects "slots=", Open MPI takes "localhost:4" for a host it cannot start a daemon on
        assert ("slots" in err) if kind == "hydra" else ("localhost:4" in err), proc.stderr


def test_the_launcher_marker_is_per_test_and_follows_helpers(pytestconfig: pytest.Config) -> None:
    """tests/conftest.py marks "launcher" the tests that start MPI jobs (scripts/test.sh runs them under
    every MPI): through the module's helpers too, not the tests that only share a module with one."""
    import inspect

    import test_cli
    import test_formats
    import test_reliability
    from conftest import _starts_jobs

    def starts(module: object, name: str) -> bool:
        return _starts_jobs(inspect.unwrap(getattr(module, name)), module, set())  # type: ignore[arg-type]

    assert starts(test_reliability, "test_kill9_one_rank_then_resume")  # Popen(demo_cmd(..., n=3))
    assert starts(test_cli, "test_progress_bar_option_under_mpiexec")
    assert not starts(test_cli, "test_terminal_shows_a_bar")  # a single process, in a module with launcher tests
    assert not starts(test_reliability, "test_resume_repairs_any_damage")  # in-process writer (hypothesis)
    assert not starts(test_formats, "test_cobre018_loaders_read_a_cobre018_demo_run")  # its fixture's run: set-up
    assert "mpi_agnostic(reason)" in "\n".join(pytestconfig.getini("markers"))


# ----------------------------------------------------------------------------- no rank outlives its launcher
_WATCHED = "import time; from cobre_mpi_io import mpi; mpi.watch_launcher(); print('WATCHING', flush=True); time.sleep(60)"
_PARENT = ("import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', sys.argv[1]]); "
           "print(c.pid, flush=True); c.wait()")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while claim._process_start(pid) is not None:  # None: no such process, or a zombie
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("launched", [True, False])
def test_a_rank_exits_when_its_launcher_is_killed_a_singleton_does_not(launched: bool) -> None:
    """The watch alone, no MPI: a parent that sets a launcher's rank variable, then ``kill -9`` of that parent."""
    env = {k: v for k, v in os.environ.items() if k not in ("PMIX_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK",
                                                            "MV2_COMM_WORLD_RANK")}
    if launched:
        env["PMI_RANK"] = "0"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, _WATCHED], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None and parent.stderr is not None
    lines = {parent.stdout.readline().strip() for _ in range(2)}
    assert "WATCHING" in lines, lines
    child = int(next(x for x in lines if x.isdigit()))
    try:
        parent.kill()
        parent.wait()
        if launched:
            assert _gone_within(child, 5), "the rank outlived its launcher"
            assert f"its launcher (pid {parent.pid}) is gone" in parent.stderr.read()
        else:
            assert not _gone_within(child, 1), "a singleton must survive its parent (nohup, a closed terminal)"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        parent.stdout.close()
        parent.stderr.close()


_HOLD = ("import sys, time; from mpi4py import MPI; from cobre_mpi_io.claim import acquire_run; "
         "acquire_run(MPI.COMM_WORLD, sys.argv[1]); MPI.COMM_WORLD.Barrier(); "
         "MPI.COMM_WORLD.Get_rank() or print('HELD', flush=True); time.sleep(60)")


def test_kill9_of_the_launchers_group_ends_every_rank_and_frees_the_claim(tmp_path: Path) -> None:
    """What a batch system or ``kill -9 -PGID`` does: Open MPI's ranks live in process groups of their own."""
    out = tmp_path / "out"
    proc = subprocess.Popen([*mpiexec_argv(2), sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "HELD"
        record = read_claim(out)
        assert record is not None and isinstance(record["launcher"], dict), record
        ranks = [record["pid"], *(r["pid"] for r in record["local_ranks"])]
        assert len(ranks) == 2, record  # rank 0 and the other rank on this machine
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert all(_gone_within(pid, 5) for pid in ranks), "a rank outlived its killed launcher"
    lease = acquire_run(self_comm(), out)  # the dead run's claim is broken, not refused
    assert (read_claim(out) or {}).get("pid") == os.getpid()
    lease.release()


def test_stale_open_mpi_session_directories_of_dead_launchers_are_removed(tmp_path: Path) -> None:
    """A prterun killed with SIGKILL leaves ompi.<pid>; the next prterun given that pid fails before any rank
    starts (exit 213). Only directories of pids that are no running process are removed."""
    from cobre_mpi_io.testing.processes import remove_stale_openmpi_sessions

    gone = subprocess.Popen(["true"])
    gone.wait()
    for pid in (gone.pid, os.getpid()):
        (tmp_path / f"ompi.{pid}" / "0").mkdir(parents=True)
        (tmp_path / f"ompi.{pid}" / "pmix.vm.tool").write_text("tcp4://127.0.0.1:1\n")
    (tmp_path / "ompi.notapid").mkdir()
    (tmp_path / "other").mkdir()
    assert remove_stale_openmpi_sessions(tmp_path) == [tmp_path / f"ompi.{gone.pid}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"ompi.{os.getpid()}", "ompi.notapid", "other"])
    assert remove_stale_openmpi_sessions(tmp_path / "missing") == []
