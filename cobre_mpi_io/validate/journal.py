"""``validate`` against the run journal: every file of the tree is one the run recorded, with its bytes.

The run journal (:mod:`cobre_mpi_io.journal`, ``OUT/_journal/files/``)
holds one record (path, bytes, xxhash64, rows) per file a rank renamed into
place, the last record of a path winning and removals dropping it.
Planning (rank 0) reads it once (:func:`read_run_journal`); every file task
carries its file's record (:meth:`Plan.record <.plan.Plan.record>`), so the
worker that reads and hashes the file compares the bytes with it.  After
the walks, :func:`plan_unrecorded` finds:

- **unlisted** files: regular files of the tree the journal does not record
  (a file this run did not write);
- **missing** files: records whose file is gone;
- entries of the training manifest's ``files`` (written from the journal)
  that differ from the journal;
- the files no other check reads (manifests, ``_SUCCESS``, ``metadata.json``,
  the dictionaries, policy metadata): one hash-only task each.

A file whose bytes hash to its record is the file its writer wrote and
checked: workers skip its footer (see :func:`.files.run_one`).  Temp names,
``_claim.json`` and ``_journal/`` itself are the only files without a
record.  An output with no ``_journal/`` at all (written before the journal,
or by writers outside a run) is validated against its manifests alone, and
the report says so; so does a section (``training/``, ``policy/``) of which
the journal records no file at all (written by a version whose writers of
that section did not record yet): its files are checked as before, without
"unlisted" lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from ..atomic import is_temp_name
from ..errors import OutputError
from ..journal import read_journal
from ..layout import JOURNAL_DIR, MANIFEST_NAME, SIMULATION_DIR, TRAINING_DIR
from .files import Task
from .plan import UNLISTED_PARTITION, Plan
from .report import Problem
from .tree import not_regular

__all__ = ["journal_root", "plan_unrecorded", "read_run_journal"]

_NO_RECORD: Final = "unlisted: no record in the run journal (a file this run did not write)"


def journal_root(path: Path, mode: str) -> Path | None:
    """The output root whose ``_journal/`` covers the validated ``path``; None when there is none.

    Parameters
    ----------
    path : Path
        What ``validate`` was given: ``OUT``, or ``OUT/simulation`` alone.
    mode : str
        ``"root"`` or ``"simulation"`` (``path`` is a simulation directory).
    """
    out = path if mode == "root" else path.parent
    if mode == "simulation" and path.name != SIMULATION_DIR:
        return None
    return out if os.path.lexists(out / JOURNAL_DIR) else None


def read_run_journal(plan: Plan, out: Path) -> None:
    """Read ``out``'s run journal into ``plan.journal`` (a problem line when it cannot be read).

    Parameters
    ----------
    plan : Plan
        Receives the records (only those below ``simulation/`` when a simulation directory is validated alone).
    out : Path
        The output root holding ``_journal/``.
    """
    where = out / JOURNAL_DIR
    if os.path.islink(where) or not where.is_dir():
        plan.add("", JOURNAL_DIR, "not a directory (refused): the run journal cannot be read")
        plan.journal = {}
        return
    try:
        entries = read_journal(out)
    except OutputError as exc:
        plan.add("", JOURNAL_DIR, f"unreadable: {exc}")
        entries = {}
    if plan.mode == "simulation":
        entries = {p: e for p, e in entries.items() if p.startswith(SIMULATION_DIR + "/")}
    plan.journal = entries


def plan_unrecorded(plan: Plan, out: Path) -> None:
    """Compare the files the walks saw with the journal: unlisted, missing, and hash-only tasks.

    Parameters
    ----------
    plan : Plan
        After every section is planned (its tasks, its walks' :attr:`~.plan.Plan.seen`).
    out : Path
        The output root the journal's paths are relative to.
    """
    journal = plan.journal
    listed = dict(plan.training.files) if plan.training is not None else {}
    if journal is None:
        if listed:
            plan.add("", JOURNAL_DIR, f"missing although training/_manifest.json lists {len(listed)} files as the "
                                      "run journal recorded them")
        return
    for path, fe in sorted(listed.items()):  # the training manifest is written from the journal
        e = journal.get(path)
        if e is None:
            plan.add(TRAINING_DIR, MANIFEST_NAME, f"lists {path}, which the run journal does not record")
        elif (e.bytes, e.xxhash64) != (fe.bytes, fe.xxhash64):
            plan.add(TRAINING_DIR, MANIFEST_NAME, f"records {path} as {fe.bytes} bytes, xxhash64 {fe.xxhash64}; "
                                                  f"the run journal as {e.bytes}, {e.xxhash64}")
    covered = {p.partition("/")[0] for p in journal}
    plan.unjournaled = sorted({p.partition("/")[0] for p in plan.seen} - covered)
    flagged = {p.path for p in plan.problems}
    # partitions a running (crashed) manifest does not list yet: what resume adopts only when its bytes match
    # their record, so validate compares them too (a mismatch is a second line, naming the journal)
    unlisted_partitions = {p.path for p in plan.problems if p.problem == UNLISTED_PARTITION}
    tasked = {f"{t.section}/{t.rel}" if t.section else t.rel
              for t in (*plan.tasks, *plan.ref_tasks) if t.kind != "concat"}
    seen = set(plan.seen)
    for path in plan.seen:
        e = journal.get(path)
        if e is not None and path in tasked:
            continue  # the common case: its task carries the record
        if is_temp_name(path.rsplit("/", 1)[-1]):
            continue  # reported by the walk as a stray temp
        if e is None:
            if path not in flagged and path.split("/", 1)[0] in covered:  # an unexpected file: once, as such
                plan.problems.append(_problem(path, _NO_RECORD))
            continue
        if path in tasked or (path in flagged and path not in unlisted_partitions):
            continue  # its task carries the record; a file already reported gets no second line
        section, _, rel = path.partition("/")
        plan.tasks.append(Task("bytes", section, rel, journal=(e.bytes, e.xxhash64, e.rows)))
    for path in sorted(set(journal) - seen - tasked):
        if path in flagged:
            continue
        target = out / path
        parts = path.split("/")
        if os.path.islink(target) or any("/".join(parts[:i]) in flagged for i in range(1, len(parts))):
            continue  # a link (the policy's fixed paths) or below a directory already reported
        if not os.path.lexists(target):
            plan.problems.append(_problem(path, "recorded in the run journal but missing"))
        elif not target.is_dir():
            why = not_regular(target)
            if why is not None:
                plan.problems.append(_problem(path, why))


def _problem(path: str, message: str) -> Problem:
    section, _, rel = path.partition("/")
    if section not in ("simulation", "training", "policy"):
        return Problem(path, message, "")
    return Problem(rel, message, section)

