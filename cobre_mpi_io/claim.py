"""The start-of-run handshake: one writer at a time, every rank on the same directory.

:func:`acquire_run` is collective and runs in the constructor of every
writer (simulation, training, policy) before anything is written:

1. **Launch check** (:func:`~cobre_mpi_io.mpi.check_launch`): a launch that MPI
   sees as singletons while the launcher started several tasks is refused.
2. **Exclusive claim.** Rank 0 publishes ``OUT/_claim.json`` (host, pid, job
   id, start time, a fresh random token, world size, run fingerprint) with an
   exclusive atomic create: of two runs started on one directory, fresh or
   resuming, exactly one gets it; the other is refused with a message naming
   the holder.  A claim left by a dead run is broken automatically when its
   holder ran on this host and its process is gone (and so is every other
   rank of that run on this host); a claim from another host cannot be
   checked and is broken only with ``break_claim=True`` (CLI
   ``--break-claim``), which says it assumes that run is dead.  A claim whose
   launcher is dead is waited on (up to 10 s) until its ranks have exited
   (:func:`~cobre_mpi_io.mpi.watch_launcher` ends them), then broken.
3. **Identity.** Rank 0 compares the run identity recorded in the directory's
   manifests and ``metadata.json`` with this run's (``ManifestError`` naming
   the differing field).
4. **Shared-directory check.** Every rank reads the claim back and compares
   the token: a rank whose output directory is not the one rank 0 sees (a
   node-local ``/tmp``, a missing mount) makes every rank raise the same
   error naming the ranks and hosts that cannot see it.

The writers of one run in one process share the claim (a lease count); the
last one to finish (commit or failure) removes it.  Rank 0 does all file
operations; releasing is local (no collective).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import mpi
from ._version import __version__
from .atomic import atomic_write, ensure_dir, read_regular, temp_name
from .documents import read_json_document
from .errors import IoError, ManifestError, OutputError
from .identity import RunIdentity, check_same_identity, read_recorded_identity, record_identity
from .layout import (
    CLAIM_NAME,
    IDENTITY_NAME,
    JOURNAL_DIR,
    MANIFEST_NAME,
    SIMULATION_DIR,
    SUCCESS_NAME,
    TRAINING_DIR,
)
from .manifest import read_simulation_manifest, read_training_manifest, utc_now

__all__ = [
    "RunLease",
    "acquire_run",
    "boot_id",
    "claim_holder",
    "finished_phases",
    "holder_is_dead",
    "holder_record",
    "pid_namespace",
    "read_claim",
    "refuse_finished_run",
]

log = logging.getLogger(__name__)

_JOB_ID_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "FLUX_JOB_ID")


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie (exited, not yet reaped) holds nothing
        return None
    return fields[19] if len(fields) > 19 else None


def boot_id() -> str | None:
    """This machine's boot id (``/proc/sys/kernel/random/boot_id``), new at every boot; None if unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    """This process's PID namespace (``readlink /proc/self/ns/pid``, e.g. ``pid:[4026531836]``); None if unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def holder_record() -> dict[str, Any]:
    """Who this process is, as a claim records it: host, boot id, PID namespace, pid and its start time."""
    pid = os.getpid()
    return {"host": mpi.hostname(), "boot_id": boot_id(), "pid_namespace": pid_namespace(), "pid": pid,
            "pid_start": _process_start(pid)}


def _launcher_record() -> dict[str, Any] | None:
    """This rank's launcher as a claim records it (pid and start time), None in a singleton."""
    pid = mpi.launcher_pid()
    return None if pid is None else {"pid": pid, "pid_start": _process_start(pid)}


def _same_machine(record: dict[str, Any], here: dict[str, Any]) -> bool:
    """``record`` names a process of this host, boot and PID namespace (``here``: :func:`holder_record`)."""
    return None not in (here["boot_id"], here["pid_namespace"]) and all(
        record.get(k) == here[k] for k in ("host", "boot_id", "pid_namespace"))


def _gone(pid: Any, start: Any) -> bool | None:
    """Whether process ``pid`` started at ``start`` is gone; None when ``pid`` is not a pid (cannot judge)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    now = _process_start(pid)
    return now is None or (start is not None and now != start)


def _read_raw(path: Path) -> bytes | None:
    """The claim's bytes (None when there is none); a FIFO, device or directory there is refused."""
    try:
        return read_regular(path, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def read_claim(output_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The claim record at ``output_dir`` (None when there is none; ``{}`` when unreadable).

    Parameters
    ----------
    output_dir : path-like
        The run's output root.

    Returns
    -------
    dict or None
        The claim's fields; ``{}`` when the file is not a JSON object.

    Raises
    ------
    IoError
        The claim cannot be read, or is not a regular file (a FIFO, device,
        directory or symbolic link at ``_claim.json`` is refused, never waited on).
    """
    raw = _read_raw(Path(output_dir) / CLAIM_NAME)
    return None if raw is None else _parse(raw)


def claim_holder(record: dict[str, Any]) -> str:
    """One line naming the holder of a claim."""
    if not record:
        return "an unreadable claim"
    job = f", job {record['job_id']}" if record.get("job_id") else ""
    return (f"host {record.get('host')!s}, pid {record.get('pid')!s}{job}, started {record.get('started_at')!s}, "
            f"{record.get('world_size')!s} rank(s)")


def holder_is_dead(record: dict[str, Any]) -> bool:
    """True only when everything the claim records proves its holder dead on this machine.

    The holder ran on this host (same host name), during this boot (same
    boot id), in this PID namespace (same namespace id), and its pid is gone
    or belongs to a process started at another time; so is every other rank
    of its run that ran on this host (``local_ranks``: a rank that outlived
    rank 0 might still write).  A claim that lacks any of these (another
    host, a container with its own PID namespace, an older claim) cannot be
    judged and is kept.

    Parameters
    ----------
    record : dict
        A claim, as :func:`read_claim` returns it.

    Returns
    -------
    bool
        Whether the claim may be broken without ``break_claim``.
    """
    if not record or not _same_machine(record, holder_record()):
        return False
    if not _gone(record.get("pid"), record.get("pid_start")):
        return False
    ranks = record.get("local_ranks", [])
    if not isinstance(ranks, list):
        return False
    return all(isinstance(r, dict) and _gone(r.get("pid"), r.get("pid_start")) for r in ranks)


_ORPHAN_GRACE_S: Final = 10.0


def _wait_for_orphans(record: dict[str, Any], grace_s: float = _ORPHAN_GRACE_S) -> bool:
    """True when ``record``'s launcher is dead and its ranks all exit within ``grace_s``.

    Killing a launcher (``kill -9`` of ``mpiexec``) can leave its ranks running for a moment: each one
    notices and exits within 50 ms (:func:`~cobre_mpi_io.mpi.watch_launcher`).  Only a claim whose recorded
    launcher is provably dead (same machine, pid gone or reused) is waited on, and it is judged with
    :func:`holder_is_dead` as always: a rank that is still alive after ``grace_s`` keeps its claim.
    """
    launcher = record.get("launcher")
    if not isinstance(launcher, dict) or not _same_machine(record, holder_record()):
        return False
    if launcher.get("pid_start") is None or not _gone(launcher.get("pid"), launcher.get("pid_start")):
        return False
    log.warning("the launcher (pid %s) of the run holding this directory (%s) is dead; waiting up to %.0f s "
                "for its ranks to exit", launcher.get("pid"), claim_holder(record), grace_s)
    deadline = time.monotonic() + grace_s
    while not holder_is_dead(record):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _set_aside(path: Path, expected: bytes | None = None, token: str | None = None) -> bool:
    """Atomically remove the claim at ``path`` if it is the one meant: ``expected`` bytes or ``token``.

    The claim is renamed to a unique temp name first, so of several processes doing this at once exactly one
    holds it; the holder then checks it is the claim it meant to remove.  If it is not (another run created
    a new claim since it was read), it is put back (``link``: never over a claim created meanwhile) and
    False is returned: nothing of another run is removed.
    """
    aside = temp_name(path)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    try:
        raw = read_regular(aside, follow_symlinks=False)
    except OSError:
        raw = None
    meant = raw is not None and (raw == expected if expected is not None else _parse(raw).get("token") == token)
    if meant:
        aside.unlink(missing_ok=True)
        return True
    try:
        os.link(aside, path)
    except FileExistsError:
        log.warning("the claim %s was replaced while being checked; the one set aside is at %s", path, aside)
        return False
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    aside.unlink(missing_ok=True)
    return False


def _remove_own_claim(output_dir: Path, token: str) -> None:
    """Remove ``_claim.json`` only if it is this run's (token); never another run's."""
    path = output_dir / CLAIM_NAME
    try:
        _set_aside(path, token=token)
    except OSError as exc:
        log.warning("could not remove the claim %s: %s", path, exc)


def _recorded_identities(output_dir: Path) -> list[tuple[str, Any]]:
    """``(file, run_identity or None)`` of every manifest/metadata file present and usable.

    Read through the one schema-checked reader: a document that is missing, not JSON, or valid JSON of
    the wrong shape is skipped (recovery rebuilds it, and checks the files' footers).  One that is not a
    regular file (a FIFO, a device) is refused at once.
    """
    found: list[tuple[str, Any]] = []
    for path, read in ((output_dir / SIMULATION_DIR / MANIFEST_NAME, read_simulation_manifest),
                       (output_dir / TRAINING_DIR / MANIFEST_NAME, read_training_manifest)):
        try:
            found.append((str(path), read(path).run_identity))
        except IoError as exc:
            if exc.cause == "not a regular file":
                raise
        except ManifestError:
            continue
    path = output_dir / TRAINING_DIR / "metadata.json"
    try:
        doc = read_json_document(path, str(path))
    except IoError as exc:
        if exc.cause == "not a regular file":
            raise
        return found
    except ManifestError:
        return found
    if isinstance(doc, dict):
        integrity = doc.get("data_integrity")
        recorded = doc.get("run_identity", integrity.get("run_identity") if isinstance(integrity, dict) else None)
        if recorded is None or isinstance(recorded, dict):
            found.append((str(path), recorded))
    return found


def finished_phases(output_dir: str | os.PathLike[str]) -> list[str]:
    """What says that ``output_dir`` holds a finished run: ``_SUCCESS`` markers and ``complete`` manifests.

    Parameters
    ----------
    output_dir : path-like
        A run's output root.

    Returns
    -------
    list of str
        Output-relative names (``simulation/_SUCCESS``, ``training/_manifest.json (complete)``, ...);
        empty when no phase is finished.
    """
    out = Path(output_dir)
    found: list[str] = []
    for phase, read in ((SIMULATION_DIR, read_simulation_manifest), (TRAINING_DIR, read_training_manifest)):
        if (out / phase / SUCCESS_NAME).exists():
            found.append(f"{phase}/{SUCCESS_NAME}")
        try:
            if read(out / phase / MANIFEST_NAME).status == "complete":
                found.append(f"{phase}/{MANIFEST_NAME} (complete)")
        except OutputError:
            continue
    return found


def refuse_finished_run(output_dir: Path) -> None:
    """Raise unless ``output_dir`` holds no finished run (the check of a writer that starts a run).

    Parameters
    ----------
    output_dir : Path
        The run's output root.

    Raises
    ------
    IoError
        Cause ``"finished run"``, naming the markers found.
    """
    done = finished_phases(output_dir)
    if done:
        raise IoError(output_dir, "finished run",
                      f"holds a finished run ({', '.join(done)}); a finished run is never written over: choose "
                      "an empty output directory, or resume it (--resume; resume=True) to continue it")


@dataclass
class _Held:
    token: str
    fingerprint: str | None
    count: int
    owner: bool  # rank 0 of this process created the claim file


_HELD: dict[tuple[str, int], _Held] = {}


def _key(output_dir: Path, comm: Any) -> tuple[str, int]:
    return os.path.realpath(output_dir), mpi.comm_key(comm)


@dataclass
class RunLease:
    """A writer's share of the run's claim; :meth:`release` when the writer is done."""

    output_dir: Path
    key: tuple[str, int]
    rank: int
    released: bool = False

    def release(self, *, everything: bool = False) -> None:
        """Give the share back; the last share removes ``_claim.json`` (rank 0; local, no collective).

        Parameters
        ----------
        everything : bool, default False
            Give back every share of the run in this process at once (the
            run handle, on an exception): the claim is removed now.
        """
        if self.released:
            return
        self.released = True
        held = _HELD.get(self.key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0 and not everything:
            return
        del _HELD[self.key]
        if self.rank == 0 and held.owner:
            _remove_own_claim(self.output_dir, held.token)


def _claim_record(identity: RunIdentity | None, world_size: int, token: str,
                  ranks: list[dict[str, Any]] | None = None) -> bytes:
    """The claim's bytes; ``ranks``: every rank's :func:`holder_record` (those on this machine are recorded)."""
    here = holder_record()
    local = [{"pid": r["pid"], "pid_start": r["pid_start"]} for r in ranks or []
             if _same_machine(r, here) and r["pid"] != here["pid"]]
    record = {
        "tool": f"cobre_mpi_io {__version__}", **here, "launcher": _launcher_record(), "local_ranks": local,
        "job_id": next((os.environ[v] for v in _JOB_ID_VARS if os.environ.get(v)), None),
        "started_at": utc_now(), "token": token, "world_size": world_size,
        "run_fingerprint": identity.fingerprint if identity is not None else None,
    }
    return (json.dumps(record, indent=2) + "\n").encode()


def _refused(path: Path, other: dict[str, Any]) -> IoError:
    return IoError(path, "claimed",
                   f"another run holds this output directory ({claim_holder(other)}); two writers are never "
                   "mixed. Wait for it to finish, or, if that run is dead and ran on another host or in "
                   "another container, start again with --break-claim (break_claim=True), which removes its "
                   "claim")


def _check_identity(output_dir: Path, identity: RunIdentity) -> bool:
    """Compare ``identity`` with what the directory records; True when ``identity.json`` exists."""
    recorded = read_recorded_identity(output_dir)
    if recorded is not None:
        check_same_identity(identity, recorded, recorded.path)
        return True
    for where, found in _recorded_identities(output_dir):  # a run recorded before identity.json existed
        if found is not None or where.endswith(MANIFEST_NAME):
            check_same_identity(identity, found, where)
    return False


_CLAIM_ATTEMPTS: Final = 4


def _take(output_dir: Path, identity: RunIdentity | None, world_size: int, break_claim: bool,
          preflight: Callable[[Path], None] | None, ranks: list[dict[str, Any]] | None = None) -> str:
    """Rank 0: publish the claim (exclusive), check the recorded identity; returns the token.

    Nothing is touched when the directory records another identity (checked before the claim, then again,
    authoritatively, once it is held).  A stale claim is broken by :func:`_set_aside` (rename, check,
    create): of two breakers exactly one gets the directory.  A refused run removes only its own claim.
    """
    if identity is not None and output_dir.is_dir():
        _check_identity(output_dir, identity)
    ensure_dir(output_dir)
    path = output_dir / CLAIM_NAME
    token = secrets.token_hex(16)
    data = _claim_record(identity, world_size, token, ranks)
    other: dict[str, Any] = {}
    for _attempt in range(_CLAIM_ATTEMPTS):
        try:
            with atomic_write(path, exclusive=True) as fh:
                fh.write(data)
            break
        except IoError as exc:
            if exc.cause != "exists":
                raise
        raw = _read_raw(path)
        if raw is None:  # removed meanwhile: try again
            continue
        other = _parse(raw)
        if holder_is_dead(other) or _wait_for_orphans(other):
            log.warning("breaking the claim of a dead run on this machine (%s)", claim_holder(other))
        elif break_claim:
            log.warning("breaking the claim of %s as asked (--break-claim)", claim_holder(other))
        else:
            raise _refused(path, other)
        _set_aside(path, expected=raw)  # False: another breaker (or the holder) got there first
    else:
        raise _refused(path, other)
    try:
        if identity is not None:
            _check_identity(output_dir, identity)
        if preflight is not None:
            preflight(output_dir)
    except BaseException:
        _remove_own_claim(output_dir, token)
        raise
    return token


def _record(output_dir: Path, identity: RunIdentity) -> None:
    """Rank 0: write ``identity.json`` unless it is there (then it was checked equal at the claim)."""
    if read_recorded_identity(output_dir) is None:
        record_identity(output_dir, identity)


def acquire_run(comm: Any, output_dir: str | os.PathLike[str], identity: RunIdentity | None = None, *,
                break_claim: bool = False, resume: bool | None = None,
                preflight: Callable[[Path], None] | None = None) -> RunLease:
    """Collective over ``comm``: take (or share) this run's claim on ``output_dir``.

    Parameters
    ----------
    comm : mpi4py communicator
        Every rank of the run.
    output_dir : path-like
        The run's output root (holds ``simulation/``, ``training/``, ``policy/``).
    identity : RunIdentity, optional
        This run's identity, checked against ``OUT/_journal/identity.json``
        (or, in a directory written before it existed, the manifests), and
        recorded there when the directory records none yet.
    break_claim : bool
        Remove a claim whose holder cannot be proved dead (another host).
    resume : bool or None, default None
        ``False``: a writer starting a run; a directory holding a finished run
        is refused. ``True`` or ``None``: no such check (a resume; the commit).
    preflight : callable, optional
        Called on rank 0 with ``output_dir`` once the claim is taken (and only
        then: not when the claim is shared); raising refuses the run, whose
        claim is removed.

    Returns
    -------
    RunLease
        Release it when the writer is done.

    Raises
    ------
    OutputError
        The same on every rank: a singleton launch, a claim held by another
        run, another run's identity, a finished run, what ``preflight``
        raised, or ranks that do not see the directory.
    """
    out = Path(output_dir)
    rank, size = mpi.rank_of(comm), mpi.size_of(comm)
    mpi.run_agreed(comm, mpi.check_launch, "launch")
    key = _key(out, comm)
    held = _HELD.get(key)
    if held is not None:  # another writer of this run, in this process: share its claim
        if identity is not None and held.fingerprint not in (None, identity.fingerprint):
            mpi.run_agreed(comm, lambda: _raise_mixed(out, held.fingerprint, identity), str(out))
        if held.fingerprint is None and identity is not None:
            held.fingerprint = identity.fingerprint
        held.count += 1
        return RunLease(out, key, rank)
    checks = [c for c in (refuse_finished_run if resume is False else None, preflight) if c is not None]

    def check(directory: Path) -> None:
        for c in checks:
            c(directory)

    mpi.watch_launcher()  # a rank whose launcher is killed exits: no rank of a dead job keeps a claim or writes
    ranks = mpi.allgather(comm, holder_record())
    token = mpi.run_on_root(comm, lambda: _take(out, identity, size, break_claim, check if checks else None,
                                                ranks), str(out / CLAIM_NAME))
    _check_shared(comm, out, token)
    if identity is not None:
        try:
            mpi.run_on_root(comm, lambda: _record(out, identity), str(out / JOURNAL_DIR / IDENTITY_NAME))
        except BaseException:
            if rank == 0:
                _remove_own_claim(out, token)
            raise
    mpi.job_monitor(comm).new_epoch()  # collective on first use; a new run forgets earlier failures
    _HELD[key] = _Held(token, identity.fingerprint if identity is not None else None, 1, rank == 0)
    return RunLease(out, key, rank)


def _raise_mixed(out: Path, held: str | None, identity: RunIdentity) -> None:
    raise ManifestError(str(out / CLAIM_NAME), f"this process already writes run {held} here; a writer of run "
                                               f"{identity.fingerprint} cannot join it")


def _check_shared(comm: Any, out: Path, token: str) -> None:
    """Every rank reads the claim back; on any mismatch every rank raises the same error."""
    try:
        record = read_claim(out)
        seen = "missing" if record is None else ("ok" if record.get("token") == token else "another claim")
    except OutputError as exc:
        seen = f"unreadable ({exc})"
    views = mpi.allgather(comm, (seen, mpi.hostname()))
    bad = [(r, host, s) for r, (s, host) in enumerate(views) if s != "ok"]
    if not bad:
        return
    if mpi.rank_of(comm) == 0:
        _remove_own_claim(out, token)
    by_host: dict[str, list[int]] = {}
    for r, host, _s in bad:
        by_host.setdefault(host, []).append(r)
    who = "; ".join(f"host {h}: rank(s) {', '.join(map(str, rs))}" for h, rs in sorted(by_host.items()))
    err = IoError(out, "not shared",
                  f"the output directory is not the same on every rank: rank 0 (host {views[0][1]}) wrote "
                  f"{CLAIM_NAME} there, but {who} see {bad[0][2]!s} instead. Every rank must see one shared "
                  "directory (a parallel or network filesystem mounted at the same path on every host, not a "
                  "node-local /tmp); nothing was written")
    raise mpi.mark_agreed(err)
