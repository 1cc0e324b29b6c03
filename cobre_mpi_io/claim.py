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
   holder ran on this host and its process is gone; a claim from another host
   cannot be checked and is broken only with ``break_claim=True`` (CLI
   ``--break-claim``), which says it assumes that run is dead.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import mpi
from ._version import __version__
from .atomic import atomic_write, ensure_dir
from .documents import read_json_document
from .errors import IoError, ManifestError, OutputError
from .identity import RunIdentity, check_same_identity
from .layout import CLAIM_NAME, MANIFEST_NAME, SIMULATION_DIR, TRAINING_DIR
from .manifest import read_simulation_manifest, read_training_manifest, utc_now

__all__ = ["RunLease", "acquire_run", "claim_holder", "read_claim"]

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


def read_claim(output_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The claim record at ``output_dir`` (None when there is none; ``{}`` when unreadable)."""
    path = Path(output_dir) / CLAIM_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def claim_holder(record: dict[str, Any]) -> str:
    """One line naming the holder of a claim."""
    if not record:
        return "an unreadable claim"
    job = f", job {record['job_id']}" if record.get("job_id") else ""
    return (f"host {record.get('host')!s}, pid {record.get('pid')!s}{job}, started {record.get('started_at')!s}, "
            f"{record.get('world_size')!s} rank(s)")


def _holder_is_dead(record: dict[str, Any]) -> bool:
    """True only when the holder ran on this host and its process is gone (or is another process)."""
    if not record or record.get("host") != mpi.hostname():
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    start = _process_start(pid)
    return start is None or (record.get("pid_start") is not None and start != record.get("pid_start"))


def _recorded_identities(output_dir: Path) -> list[tuple[str, Any]]:
    """``(file, run_identity or None)`` of every manifest/metadata file present and usable.

    Read through the one schema-checked reader: a document that is missing, not JSON, or valid JSON of
    the wrong shape is skipped (recovery rebuilds it, and checks the files' footers).
    """
    found: list[tuple[str, Any]] = []
    for path, read in ((output_dir / SIMULATION_DIR / MANIFEST_NAME, read_simulation_manifest),
                       (output_dir / TRAINING_DIR / MANIFEST_NAME, read_training_manifest)):
        try:
            found.append((str(path), read(path).run_identity))
        except (ManifestError, IoError):
            continue
    path = output_dir / TRAINING_DIR / "metadata.json"
    try:
        doc = read_json_document(path, str(path))
    except (ManifestError, IoError):
        return found
    if isinstance(doc, dict):
        integrity = doc.get("data_integrity")
        recorded = doc.get("run_identity", integrity.get("run_identity") if isinstance(integrity, dict) else None)
        if recorded is None or isinstance(recorded, dict):
            found.append((str(path), recorded))
    return found


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

    def release(self) -> None:
        """Give the share back; the last share removes ``_claim.json`` (rank 0; local, no collective)."""
        if self.released:
            return
        self.released = True
        held = _HELD.get(self.key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HELD[self.key]
        if self.rank == 0 and held.owner:
            path = self.output_dir / CLAIM_NAME
            record = read_claim(self.output_dir)
            if record is not None and record.get("token") == held.token:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("could not remove the claim %s: %s", path, exc)


def _take(output_dir: Path, identity: RunIdentity | None, world_size: int, break_claim: bool) -> str:
    """Rank 0: publish the claim (exclusive), check the recorded identity; returns the token."""
    ensure_dir(output_dir)
    path = output_dir / CLAIM_NAME
    token = secrets.token_hex(16)
    record = {
        "tool": f"cobre_mpi_io {__version__}", "host": mpi.hostname(), "pid": os.getpid(),
        "pid_start": _process_start(os.getpid()),
        "job_id": next((os.environ[v] for v in _JOB_ID_VARS if os.environ.get(v)), None),
        "started_at": utc_now(), "token": token, "world_size": world_size,
        "run_fingerprint": identity.fingerprint if identity is not None else None,
    }
    data = (json.dumps(record, indent=2) + "\n").encode()
    for attempt in (1, 2):
        try:
            with atomic_write(path, exclusive=True) as fh:
                fh.write(data)
            break
        except IoError as exc:
            if exc.cause != "exists" or attempt == 2:
                raise
            other = read_claim(output_dir) or {}
            if _holder_is_dead(other):
                log.warning("breaking the claim of a dead run on this host (%s)", claim_holder(other))
            elif break_claim:
                log.warning("breaking the claim of %s as asked (--break-claim)", claim_holder(other))
            else:
                raise IoError(path, "claimed",
                              f"another run holds this output directory ({claim_holder(other)}); two writers "
                              "are never mixed. Wait for it to finish, or, if that run is dead and ran on "
                              "another host, start again with --break-claim (break_claim=True), which "
                              "removes its claim") from exc
            path.unlink(missing_ok=True)
    if identity is not None:
        try:
            for where, recorded in _recorded_identities(output_dir):
                if recorded is not None or where.endswith(MANIFEST_NAME):
                    check_same_identity(identity, recorded, where)
        except OutputError:
            path.unlink(missing_ok=True)
            raise
    return token


def acquire_run(comm: Any, output_dir: str | os.PathLike[str], identity: RunIdentity | None = None, *,
                break_claim: bool = False) -> RunLease:
    """Collective over ``comm``: take (or share) this run's claim on ``output_dir``.

    Parameters
    ----------
    comm : mpi4py communicator
        Every rank of the run.
    output_dir : path-like
        The run's output root (holds ``simulation/``, ``training/``, ``policy/``).
    identity : RunIdentity, optional
        This run's identity, checked against what the directory records.
    break_claim : bool
        Remove a claim whose holder cannot be proved dead (another host).

    Returns
    -------
    RunLease
        Release it when the writer is done.

    Raises
    ------
    OutputError
        The same on every rank: a singleton launch, a claim held by another
        run, another run's identity, or ranks that do not see the directory.
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
    token = mpi.run_on_root(comm, lambda: _take(out, identity, size, break_claim), str(out / CLAIM_NAME))
    _check_shared(comm, out, token)
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
        (out / CLAIM_NAME).unlink(missing_ok=True)
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
