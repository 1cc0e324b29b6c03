"""The one module that makes MPI calls.

Everything else in the package takes a ``comm`` argument, resolves it here
and calls the helpers below; format modules never import :mod:`mpi4py`.
World size 1 (a plain ``python`` process) is the same code path.

Pure functions (:func:`owner_rank`, :func:`owned_scenarios`) decide which
rank writes which scenario, so anyone can compute where a file lives.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any, Literal, TypeVar

__all__ = [
    "Assignment",
    "abort_job",
    "agree_on_error",
    "all_agree",
    "allgather",
    "barrier",
    "bcast_from_root",
    "gather_to_root",
    "mark_agreed",
    "mpi_library_info",
    "owned_scenarios",
    "owner_rank",
    "rank_of",
    "resolve_comm",
    "run_agreed",
    "size_of",
]

Assignment = Literal["round-robin", "block"]
T = TypeVar("T")


def resolve_comm(comm: Any = None) -> Any:
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
    """Scenario ids ``0..total-1`` owned by ``rank``, ascending."""
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
    """Collective over ``comm``: list of every rank's ``obj`` at ``root``, ``None`` elsewhere."""
    return comm.gather(obj, root=root)  # type: ignore[no-any-return]


def allgather(comm: Any, obj: T) -> list[T]:
    """Collective over ``comm``: list of every rank's ``obj`` on every rank."""
    return comm.allgather(obj)  # type: ignore[no-any-return]


def bcast_from_root(comm: Any, obj: T, root: int = 0) -> T:
    """Collective over ``comm``: ``root``'s ``obj`` on every rank."""
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


def run_agreed(comm: Any, fn: Callable[[], T], entity: str) -> T | None:
    """Collective over ``comm``: run ``fn`` on every rank, then agree on failure.

    Any exception of ``fn`` becomes an ``OutputError`` naming ``entity``
    (:func:`~cobre_mpi_io.errors.as_output_error`) and is raised on every
    rank by :func:`agree_on_error`. Returns ``fn``'s result on success.
    """
    from .errors import as_output_error

    err = None
    result = None
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - becomes an agreed OutputError
        err = as_output_error(exc, entity)
    agree_on_error(comm, err)
    return result


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

    version = MPI.Get_library_version().strip()
    first = version.splitlines()[0] if version else ""
    vendor, (major, minor, micro) = MPI.get_vendor()
    std_major, std_minor = MPI.Get_version()
    return {
        "mpi_implementation": vendor,
        "mpi_version": f"{major}.{minor}.{micro}",
        "mpi_standard": f"{std_major}.{std_minor}",
        "library_version": first,
    }


