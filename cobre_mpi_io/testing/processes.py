"""Finding and stopping the processes of an MPI job, for the tests and the attack campaign (Linux ``/proc``).

A test that kills one rank of an ``mpiexec`` job needs that rank's pid
(below the launcher, whatever Hydra or PRRTE put in between), and a job
started for a test must never outlive it: :func:`popen_session` starts it in
a session of its own and kills the whole process group on the way out.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["OPENMPI_SESSION_BASE", "RANK_COMMANDS", "kill_session", "parent_pids", "popen_session", "rank_of",
           "rank_pids", "remove_stale_openmpi_sessions"]

OPENMPI_SESSION_BASE = "PRTE_MCA_prte_tmpdir_base"
"""Environment variable naming where Open MPI 5 (PRRTE) puts its session directories (default: ``$TMPDIR``
or ``/tmp``); the tests point it at a directory of their own run."""

RANK_COMMANDS = (b"cobre_mpi_io", b"cobre-mpi-io", b"solver_integration")
"""Substrings of a command line that make a process one of our ranks (launchers and proxies have none)."""


def parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process (``/proc/*/stat``; works where ``task/*/children`` is missing)."""
    out: dict[int, int] = {}
    for f in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(f).read_text()
            out[int(text.split(" ", 1)[0])] = int(text.rsplit(")", 1)[1].split()[1])
    return out


def rank_of(pid: int, commands: Sequence[bytes] = RANK_COMMANDS) -> int | None:
    """MPI rank of process ``pid`` (``PMI_RANK`` or ``OMPI_COMM_WORLD_RANK``); None for anything else.

    Only a process whose command line holds one of ``commands`` counts: a
    launcher or proxy may inherit the rank variables of an outer job.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not any(c in cmdline for c in commands):
            return None
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for kv in env:
        for key in (b"PMI_RANK=", b"OMPI_COMM_WORLD_RANK="):
            if kv.startswith(key):
                return int(kv[len(key):])
    return None


def rank_pids(launcher: int, size: int, timeout: float = 30) -> dict[int, int]:
    """``{rank: pid}`` of the ``size`` ranks below process ``launcher`` (an ``mpiexec`` or a singleton).

    Parameters
    ----------
    launcher : int
        The pid of the job's launcher; its whole subtree is searched.
    size : int
        How many ranks to wait for.
    timeout : float, default 30
        Seconds to keep looking (ranks appear a moment after the launcher).

    Returns
    -------
    dict of int to int
        Rank to pid, at least ``size`` entries.

    Raises
    ------
    TimeoutError
        Fewer than ``size`` ranks found within ``timeout`` seconds (naming those found).
    """
    deadline = time.monotonic() + timeout
    while True:
        parents: Mapping[int, int] = parent_pids()
        found: dict[int, int] = {}
        stack = [launcher]
        while stack:
            parent = stack.pop()
            for kid in (p for p, pp in parents.items() if pp == parent):
                stack.append(kid)
                r = rank_of(kid)
                if r is not None:
                    found[r] = kid
        if len(found) >= size:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {size} ranks of job {launcher} not found in {timeout:.0f} s (found {found})")
        time.sleep(0.02)


def kill_session(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """``SIGKILL`` the process group of ``proc`` (started with ``start_new_session``) and wait for it.

    Then removes the Open MPI session directory a killed ``prterun`` leaves
    (:func:`remove_stale_openmpi_sessions`).
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    remove_stale_openmpi_sessions()


def remove_stale_openmpi_sessions(base: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the Open MPI session directories (``<base>/ompi.<pid>``) whose ``prterun`` is gone.

    ``prterun`` (Open MPI 5) keeps its PMIx rendezvous files in
    ``ompi.<its pid>`` and removes the directory when it exits; killed with
    ``SIGKILL`` it leaves it, and a later ``prterun`` given the same pid then
    fails before any rank starts: exit 213, "The PMIx server's listener
    thread failed to start" (reproduced here by creating ``ompi.<pid>`` for
    the next launcher's pid).  With ~100 such directories in a shared
    ``/tmp``, 1 launch in ~300 failed.  Only directories whose pid is no
    running process are removed.

    Parameters
    ----------
    base : path-like, optional
        Default: ``$PRTE_MCA_prte_tmpdir_base``, else ``$TMPDIR``, else ``/tmp``.

    Returns
    -------
    list of Path
        The directories removed.
    """
    import shutil

    root = Path(base or os.environ.get(OPENMPI_SESSION_BASE) or os.environ.get("TMPDIR") or "/tmp")
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in root.glob("ompi.[0-9]*"):
            pid = entry.name.split(".", 1)[1]
            if not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def popen_session(cmd: Sequence[str], stdout: Path, stderr: Path, *,
                  env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` in a session of its own, output to the files ``stdout`` and ``stderr``.

    On the way out (also on an exception) a job still running is killed
    with its whole process group (``SIGKILL``) and waited for.

    Parameters
    ----------
    cmd : sequence of str
        The command line.
    stdout, stderr : Path
        Files that receive the job's output (created or truncated).
    env : mapping, optional
        The job's environment (default: this process's).

    Yields
    ------
    subprocess.Popen
        The running job.
    """
    with open(stdout, "wb") as so, open(stderr, "wb") as se:
        proc = subprocess.Popen(list(cmd), stdout=so, stderr=se, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                kill_session(proc)
