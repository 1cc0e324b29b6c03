"""The one module that makes MPI calls.

Everything else in the package takes a ``comm`` argument, resolves it here
and calls the helpers below; format modules never import :mod:`mpi4py`.
World size 1 (a plain ``python`` process) is the same code path.

Pure functions (:func:`owner_rank`, :func:`owned_scenarios`) decide which
rank writes which scenario, so anyone can compute where a file lives.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

if TYPE_CHECKING:
    from mpi4py.MPI import Comm
else:  # the public API names the type without importing mpi4py at run time
    Comm = Any

__all__ = [
    "Assignment",
    "Comm",
    "JobMonitor",
    "abort_job",
    "agree_on_error",
    "all_agree",
    "allgather",
    "barrier",
    "bcast_from_root",
    "check_launch",
    "comm_key",
    "gather_to_root",
    "hostname",
    "job_monitor",
    "launcher_pid",
    "launcher_task_count",
    "mark_agreed",
    "mpi_library_info",
    "owned_scenarios",
    "owner_rank",
    "pickle_dumps",
    "pickle_loads",
    "rank_of",
    "resolve_comm",
    "run_agreed",
    "run_on_root",
    "size_of",
    "watch_launcher",
]

Assignment = Literal["round-robin", "block"]
T = TypeVar("T")


def resolve_comm(comm: Comm | None = None) -> Any:
    """Return ``comm``, or ``MPI.COMM_WORLD`` when ``comm`` is None."""
    if comm is not None:
        return comm
    from mpi4py import MPI

    return MPI.COMM_WORLD


def rank_of(comm: Any) -> int:
    """Rank of this process in ``comm``."""
    return int(comm.Get_rank())


def size_of(comm: Any) -> int:
    """Number of processes in ``comm``."""
    return int(comm.Get_size())


def owner_rank(scenario_id: int, world_size: int, assignment: Assignment = "round-robin",
               total: int | None = None) -> int:
    """The rank that owns ``scenario_id``.

    Parameters
    ----------
    scenario_id : int
        Scenario id, ``0 <= scenario_id < total`` for ``"block"``.
    world_size : int
        Number of ranks.
    assignment : {"round-robin", "block"}
        ``"round-robin"`` (default): ``scenario_id % world_size``.
        ``"block"``: contiguous blocks, rank ``r`` owns
        ``[r*total//world_size, (r+1)*total//world_size)``.
    total : int, optional
        Total number of scenarios; required for ``"block"``.
    """
    if world_size < 1:
        raise ValueError("world_size must be >= 1")
    if assignment == "round-robin":
        return scenario_id % world_size
    if assignment == "block":
        if total is None or total < 1:
            raise ValueError("block assignment needs the total number of scenarios")
        if not 0 <= scenario_id < total:
            raise ValueError(f"scenario {scenario_id} outside 0..{total - 1}")
        # largest r with r*total//world_size <= scenario_id
        r = ((scenario_id + 1) * world_size - 1) // total
        while r > 0 and r * total // world_size > scenario_id:
            r -= 1
        while r + 1 < world_size and (r + 1) * total // world_size <= scenario_id:
            r += 1
        return r
    raise ValueError(f"unknown assignment {assignment!r}")


def owned_scenarios(total: int, rank: int, world_size: int,
                    assignment: Assignment = "round-robin") -> list[int]:
    """Scenario ids ``0..total-1`` owned by ``rank``, ascending.

    The inverse of :func:`owner_rank`: every id is owned by exactly one rank.

    Parameters
    ----------
    total : int
        Total number of scenarios.
    rank : int
        The rank, ``0 <= rank < world_size``.
    world_size : int
        Number of ranks.
    assignment : {"round-robin", "block"}
        ``"round-robin"`` (default): ``rank, rank + world_size, ...``.
        ``"block"``: the contiguous block
        ``[rank*total//world_size, (rank+1)*total//world_size)``.

    Returns
    -------
    list of int
        The owned ids (empty when ``rank`` owns none, e.g. ``total < world_size``).

    Raises
    ------
    ValueError
        For an unknown ``assignment``.
    """
    if assignment == "round-robin":
        return list(range(rank, total, world_size))
    if assignment == "block":
        return list(range(rank * total // world_size, (rank + 1) * total // world_size))
    raise ValueError(f"unknown assignment {assignment!r}")


def all_agree(comm: Any, ok: bool) -> bool:
    """Collective over ``comm``: True on every rank iff ``ok`` on every rank."""
    from mpi4py import MPI

    return bool(comm.allreduce(bool(ok), op=MPI.LAND))


def gather_to_root(comm: Any, obj: T, root: int = 0) -> list[T] | None:
    """Collective over ``comm``: list of every rank's ``obj`` at ``root``, ``None`` elsewhere.

    Parameters
    ----------
    comm : MPI communicator
        The communicator; every rank of it must call this.
    obj : picklable object
        This rank's contribution (sent pickled).
    root : int, default 0
        The rank that receives the list.

    Returns
    -------
    list or None
        At ``root``: every rank's ``obj``, indexed by rank. ``None`` on the other ranks.
    """
    return comm.gather(obj, root=root)  # type: ignore[no-any-return]


def allgather(comm: Any, obj: T) -> list[T]:
    """Collective over ``comm``: list of every rank's ``obj`` on every rank."""
    return comm.allgather(obj)  # type: ignore[no-any-return]


def bcast_from_root(comm: Any, obj: T, root: int = 0) -> T:
    """Collective over ``comm``: ``root``'s ``obj`` on every rank.

    Parameters
    ----------
    comm : MPI communicator
        The communicator; every rank of it must call this.
    obj : picklable object
        The value to send; only ``root``'s is used (the others typically pass ``None``).
    root : int, default 0
        The rank whose ``obj`` is broadcast.

    Returns
    -------
    object
        ``root``'s ``obj`` on every rank (on ``root`` itself, the same object;
        elsewhere an unpickled copy).
    """
    return comm.bcast(obj, root=root)  # type: ignore[no-any-return]


def barrier(comm: Any) -> None:
    """Collective over ``comm``: wait for every rank."""
    comm.Barrier()


def agree_on_error(comm: Any, error: BaseException | None) -> None:
    """Collective over ``comm``: raise the same error on every rank if any rank failed.

    Every rank passes its local error (an ``OutputError`` or ``None``).
    When all pass ``None`` this returns everywhere; otherwise the error of
    the lowest failing rank is raised on every rank (the failing rank
    raises its own object, keeping its traceback), so no rank is left
    waiting in a later collective.
    """
    if all_agree(comm, error is None):
        return
    errors = allgather(comm, error)
    first_rank = next(r for r, e in enumerate(errors) if e is not None)
    agreed = error if first_rank == rank_of(comm) and error is not None else errors[first_rank]
    assert agreed is not None
    mark_agreed(agreed)
    raise agreed


def mark_agreed(error: BaseException) -> BaseException:
    """Mark ``error`` as raised on every rank (the CLI then exits instead of aborting)."""
    error.agreed = True  # type: ignore[attr-defined]
    return error


def run_agreed(comm: Any, fn: Callable[[], T], entity: str) -> T:
    """Collective over ``comm``: run ``fn`` on every rank, then agree on failure.

    Parameters
    ----------
    comm : MPI communicator
        The communicator; every rank of it must call this.
    fn : callable
        Called with no arguments on every rank.
    entity : str
        The file, column, entity or phase named in the error when ``fn`` fails.

    Returns
    -------
    object
        This rank's result of ``fn``, when ``fn`` succeeded on every rank.

    Raises
    ------
    OutputError
        On every rank, when ``fn`` raised on any rank: the exception of the
        lowest failing rank as an ``OutputError`` naming ``entity``
        (:func:`~cobre_mpi_io.errors.as_output_error`), marked agreed
        (:func:`agree_on_error`).
    """
    from .errors import as_output_error

    err = None
    result = None
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - becomes an agreed OutputError
        err = as_output_error(exc, entity)
    agree_on_error(comm, err)
    return result  # type: ignore[return-value]  # set: a failure of fn raised in agree_on_error


def abort_job(exc: BaseException | None = None, code: int = 1) -> None:
    """Print ``exc`` and abort the whole MPI job (never returns).

    Used by the command-line entry point so one failing rank never leaves
    its peers blocked in a collective.
    """
    try:
        from mpi4py import MPI

        rank = MPI.COMM_WORLD.Get_rank()
        size = MPI.COMM_WORLD.Get_size()
    except Exception:  # noqa: BLE001  # pragma: no cover - mpi4py missing
        rank, size = 0, 1
        MPI = None  # type: ignore[assignment]
    if exc is not None:
        sys.stderr.write(f"[rank {rank}] error: {exc}\n")
        if not hasattr(exc, "kind"):
            traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    if MPI is not None and size > 1:
        MPI.COMM_WORLD.Abort(code)
    raise SystemExit(code)


def mpi_library_info() -> dict[str, Any]:
    """Implementation name and version of the running MPI library."""
    from mpi4py import MPI

    version = MPI.Get_library_version().replace("\x00", "").strip()
    first = version.splitlines()[0] if version else ""
    vendor, (major, minor, micro) = MPI.get_vendor()
    std_major, std_minor = MPI.Get_version()
    return {
        "mpi_implementation": vendor,
        "mpi_version": f"{major}.{minor}.{micro}",
        "mpi_standard": f"{std_major}.{std_minor}",
        "library_version": first,
    }




# ---------------------------------------------------------------------------
# Launch sanity: a job that MPI does not see as one job
# ---------------------------------------------------------------------------

# environment variable -> launcher it comes from; each holds the number of tasks the launcher started
_LAUNCHER_SIZE_VARS: tuple[tuple[str, str], ...] = (
    ("SLURM_STEP_NUM_TASKS", "Slurm (srun)"),
    ("PMI_SIZE", "a PMI launcher (Hydra mpiexec, srun --mpi=pmi2)"),
    ("PMIX_SIZE", "a PMIx launcher"),
    ("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun"),
    ("MV2_COMM_WORLD_SIZE", "MVAPICH's launcher"),
)


def launcher_task_count(environ: Mapping[str, str] | None = None) -> tuple[int, str, str] | None:
    """``(tasks, variable, launcher)`` the environment says the launcher started, if it says more than 1."""
    env = os.environ if environ is None else environ
    for var, launcher in _LAUNCHER_SIZE_VARS:
        value = env.get(var, "")
        if value.isdigit() and int(value) > 1:
            return int(value), var, launcher
    return None


def check_launch(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a launch that MPI does not see as one job.

    When ``MPI.COMM_WORLD`` has one process but the launcher's environment
    says it started several tasks, every task would run alone and write the
    whole run over the others: raise before anything is written.

    Raises
    ------
    cobre_mpi_io.errors.OutputError
        Naming the variable, its value and what to do.
    """
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() != 1:
        return
    found = launcher_task_count(environ)
    if found is None:
        return
    tasks, var, launcher = found
    from .errors import OutputError

    raise OutputError(
        f"MPI sees this process as a singleton (world size 1) but {launcher} started {tasks} tasks "
        f"({var}={tasks}): the MPI library mpi4py loaded ({_library_name()}) does not talk to this launcher, "
        "so every task would run alone. Launch with the mpiexec of that MPI library, or with srun "
        "--mpi=pmix (or --mpi=pmi2) using an MPI built with Slurm support (see `srun --mpi=list`).")


def _library_name() -> str:
    try:
        from mpi4py import MPI

        return MPI.Get_library_version().strip().replace("\x00", "").splitlines()[0]
    except Exception:  # noqa: BLE001  # pragma: no cover
        return "unknown"


def hostname() -> str:
    """This process's host name."""
    return socket.gethostname()


# ---------------------------------------------------------------------------
# No rank outlives its launcher
# ---------------------------------------------------------------------------

# set in every rank by the MPI launchers (Open MPI's prterun, Hydra, srun --mpi=pmix/pmi2, MVAPICH), never in a
# singleton; read at import, before MPI_Init, so a library that sets them at init cannot turn a singleton into a rank
_LAUNCHER_RANK_VARS: Final = ("PMIX_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_PARENT_AT_IMPORT: Final = os.getppid()
_LAUNCHED: Final = any(v in os.environ for v in _LAUNCHER_RANK_VARS)
_WATCH_INTERVAL_S: Final = 0.05
_LAUNCHER_GONE_EXIT: Final = 137  # what the shell reports for a kill -9: the job was killed
_watch_lock = threading.Lock()
_watching = False


def launcher_pid() -> int | None:
    """The pid of the process that launched this rank (its parent at start), or None in a singleton.

    Under an MPI launcher the parent is the launcher's local agent (Open MPI's ``prterun``/``prted``,
    Hydra's ``hydra_pmi_proxy``, Slurm's ``slurmstepd``); a process started without one has no launcher.

    Returns
    -------
    int or None
        The parent pid recorded when :mod:`cobre_mpi_io.mpi` was imported, when one of the launchers'
        rank variables (``PMIX_RANK``, ``PMI_RANK``, ``OMPI_COMM_WORLD_RANK``, ``MV2_COMM_WORLD_RANK``)
        was set then; None otherwise.
    """
    return _PARENT_AT_IMPORT if _LAUNCHED else None


def _launcher_gone(parent: int) -> None:
    """Exit now: this rank's launcher is dead, so the job is dead (never returns)."""
    try:
        sys.stderr.write(f"cobre-mpi-io: rank process {os.getpid()}: its launcher (pid {parent}) is gone, so "
                         "the job was killed; exiting so that no rank of a dead job writes on\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr went with the launcher (a pipe to it)
        pass
    os._exit(_LAUNCHER_GONE_EXIT)


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            _launcher_gone(parent)
        time.sleep(_WATCH_INTERVAL_S)


def watch_launcher() -> None:
    """Under an MPI launcher, end this process within 50 ms of its launcher's death (once per process).

    Killing ``mpiexec`` with ``SIGKILL`` does not kill the ranks of every
    launcher: Open MPI's ``prterun`` starts each rank in a process group of its
    own (PRRTE's ``setpgid(0, 0)``), so ``kill -9`` of the launcher's process
    group leaves the ranks running, re-parented, writing on with nobody to
    stop them. A daemon thread compares the parent pid with the one at start
    and, when it changed (the launcher died), exits the process at once with
    status 137 (``os._exit``: like the ``kill -9`` it missed; the atomic
    writes and the journal make that safe). No-op in a singleton, whose
    parent (a shell) may come and go (``nohup``).
    """
    global _watching
    parent = launcher_pid()
    if parent is None:
        return
    with _watch_lock:
        if _watching:
            return
        _watching = True
    if os.getppid() != parent:
        _launcher_gone(parent)
    threading.Thread(target=_watch, args=(parent,), name="cobre-mpi-io-launcher-watch", daemon=True).start()


# ---------------------------------------------------------------------------
# Agreement: the other half of run_agreed
# ---------------------------------------------------------------------------


def run_on_root(comm: Any, fn: Callable[[], T], entity: str, root: int = 0) -> T:
    """Collective over ``comm``: run ``fn`` on ``root`` only and broadcast its result or its error.

    Parameters
    ----------
    comm : MPI communicator
        The communicator; every rank of it must call this.
    fn : callable
        Called with no arguments on ``root`` only; its result must be picklable.
    entity : str
        The file, column, entity or phase named in the error when ``fn`` fails.
    root : int, default 0
        The rank that runs ``fn``.

    Returns
    -------
    object
        ``fn``'s result, on every rank.

    Raises
    ------
    OutputError
        On every rank, when ``fn`` raised: its exception as an ``OutputError``
        naming ``entity`` (:func:`~cobre_mpi_io.errors.as_output_error`),
        marked agreed.
    """
    from .errors import as_output_error

    outcome: tuple[Any, BaseException | None] = (None, None)
    if rank_of(comm) == root:
        try:
            outcome = (fn(), None)
        except Exception as exc:  # noqa: BLE001 - broadcast as an agreed OutputError
            outcome = (None, as_output_error(exc, entity))
    result, err = bcast_from_root(comm, outcome, root)
    if err is not None:
        raise mark_agreed(err)
    return result  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# The job monitor: a non-blocking side channel for failure notices and progress
# ---------------------------------------------------------------------------

_TAG_FAILURE = 7301
_TAG_PROGRESS = 7302


class JobMonitor:
    """Failure notices to every rank and progress counts to rank 0, without blocking collectives.

    A rank that fails calls :meth:`notify_failure`, which sends a small
    non-blocking message to every other rank; the others find it with
    :meth:`poll_failure` (an ``Iprobe``, microseconds) between scenarios and
    stop taking new work, so a job does not run for hours after one rank is
    lost.  Ranks send their running counts to rank 0 with
    :meth:`report_progress` (rate-limited, non-blocking); rank 0 reads the
    job-wide total with :meth:`progress_total`.  Messages travel on a
    duplicate of the communicator, so they never match the package's other
    traffic.  Construction is collective (``Dup``); use :func:`job_monitor`
    to share one monitor per communicator.
    """

    def __init__(self, comm: Any) -> None:
        self.comm = comm.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._requests: list[Any] = []
        self.epoch = 0
        self.new_epoch()

    def new_epoch(self) -> None:
        """Start a new run on this communicator: forget earlier failures and counts.

        Every rank calls it at the same point of the run (the start
        handshake), so every message carries the run it belongs to and a
        late message of an earlier run is received and dropped.
        """
        self.epoch += 1
        self._counts: dict[tuple[str, int], int] = {}
        self._sent: dict[str, tuple[int, float]] = {}
        self.failure: str | None = None
        self.failed_rank: int | None = None

    def _isend(self, payload: Any, dest: int, tag: int) -> None:
        self._requests.append(self.comm.isend(payload, dest=dest, tag=tag))
        if len(self._requests) > 64:
            self._requests = [r for r in self._requests if not r.Test()]

    def notify_failure(self, message: str) -> None:
        """Tell every other rank that this rank failed (non-blocking; sent once)."""
        if self.failed_rank == self.rank:
            return
        self.failure, self.failed_rank = message, self.rank
        for dest in range(self.size):
            if dest != self.rank:
                self._isend((self.epoch, self.rank, message), dest, _TAG_FAILURE)

    def poll_failure(self) -> tuple[int, str] | None:
        """``(rank, message)`` of the first failure notice received from a peer, else None."""
        if self.failed_rank is not None and self.failed_rank != self.rank:
            return self.failed_rank, self.failure or ""
        from mpi4py import MPI

        status = MPI.Status()
        while self.size > 1 and self.comm.iprobe(source=MPI.ANY_SOURCE, tag=_TAG_FAILURE, status=status):
            epoch, rank, message = self.comm.recv(source=status.Get_source(), tag=_TAG_FAILURE)
            if epoch == self.epoch and self.failed_rank is None:
                self.failed_rank, self.failure = int(rank), str(message)
        if self.failed_rank is not None and self.failed_rank != self.rank:
            return self.failed_rank, self.failure or ""
        return None

    def report_progress(self, phase: str, done: int, *, min_interval_s: float = 0.5, force: bool = False) -> None:
        """Send this rank's count for ``phase`` to rank 0 (at most every ``min_interval_s``).

        Non-blocking (an ``isend``); rank 0 records its own count directly.

        Parameters
        ----------
        phase : str
            What is counted, e.g. ``"simulation"``; :meth:`progress_total` sums per phase.
        done : int
            This rank's running count for ``phase`` (a total so far, not an increment).
        min_interval_s : float, default 0.5
            Minimum time in seconds between two sends of the same phase; an
            unchanged count is never resent.
        force : bool, default False
            Send now, regardless of ``min_interval_s`` and of an unchanged count.
        """
        if self.rank == 0:
            self._counts[(phase, 0)] = done
            return
        last = self._sent.get(phase)
        now = time.monotonic()
        if not force and last is not None and (last[0] == done or now - last[1] < min_interval_s):
            return
        self._sent[phase] = (done, now)
        self._isend((self.epoch, phase, done), 0, _TAG_PROGRESS)

    def progress_total(self, phase: str) -> int:
        """On rank 0: the sum of the latest counts every rank reported for ``phase``."""
        from mpi4py import MPI

        status = MPI.Status()
        while self.size > 1 and self.comm.iprobe(source=MPI.ANY_SOURCE, tag=_TAG_PROGRESS, status=status):
            epoch, ph, done = self.comm.recv(source=status.Get_source(), tag=_TAG_PROGRESS)
            if epoch == self.epoch:
                self._counts[(ph, status.Get_source())] = int(done)
        return sum(v for (ph, _r), v in self._counts.items() if ph == phase)

    def wait_all(self, on_poll: Callable[[], None] | None = None, interval_s: float = 0.05) -> None:
        """Collective: wait for every rank (an ``Ibarrier``), polling meanwhile.

        ``on_poll`` runs between tests (rank 0 refreshes its progress display
        there); failure notices are collected too, so a rank waiting here
        still learns why its peers stopped.
        """
        req = self.comm.Ibarrier()
        while not req.Test():
            self.poll_failure()
            if on_poll is not None:
                on_poll()
            time.sleep(interval_s)


_MONITORS: dict[int, JobMonitor] = {}


def comm_key(comm: Any) -> int:
    """A key naming ``comm`` in this process (its Fortran handle): state kept per communicator."""
    return int(comm.py2f()) if hasattr(comm, "py2f") else id(comm)


def job_monitor(comm: Any) -> JobMonitor:
    """The :class:`JobMonitor` of ``comm`` (created collectively on first use, then shared)."""
    key = comm_key(comm)
    mon = _MONITORS.get(key)
    if mon is None:
        mon = _MONITORS[key] = JobMonitor(comm)
    return mon


def pickle_dumps(obj: Any) -> bytes:
    """``obj`` serialized as mpi4py's collectives serialize it (for measuring what they send)."""
    from mpi4py import MPI

    return MPI.pickle.dumps(obj)


def pickle_loads(data: bytes) -> Any:
    """Inverse of :func:`pickle_dumps`."""
    from mpi4py import MPI

    return MPI.pickle.loads(data)
