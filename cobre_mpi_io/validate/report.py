"""The outcome of ``validate``: one :class:`Problem` per finding, gathered in a :class:`ValidationReport`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..layout import POLICY_DIR, SIMULATION_DIR, TRAINING_DIR

__all__ = ["SECTIONS", "SUMMARY_LINES", "SUMMARY_PATHS", "Problem", "ValidationReport", "problem_kind", "summarize"]

SECTIONS: Final = ("", SIMULATION_DIR, TRAINING_DIR, POLICY_DIR)
"""Sections of a report: the output root (``""``) and its three directories."""
SUMMARY_LINES: Final = 25
"""Most lines :func:`summarize` prints (the verdict line included)."""
SUMMARY_PATHS: Final = 5
"""Most paths :func:`summarize` shows per kind of problem."""

_VARIABLE: Final = re.compile(
    r"sha256:[0-9a-f]{64}|\b[0-9a-f]{16}\b|'[^']*'|\"[^\"]*\"|(?<!\w)-?\d+(?:[.,]\d+)*|\b[\w./=-]+\.(?:parquet|json|csv|bin)\b")

@dataclass(frozen=True)
class Problem:
    """One validation problem: where (section and file) and what is wrong.

    Attributes
    ----------
    file : str
        Path relative to the section's directory (``simulation/``,
        ``training/``, ``policy/``, or the output root for section ``""``).
    problem : str
        What is wrong, one line.
    section : str
        ``"simulation"``, ``"training"``, ``"policy"`` or ``""`` (the output root).
    """

    file: str
    problem: str
    section: str = SIMULATION_DIR

    @property
    def path(self) -> str:
        """The file relative to the output root."""
        return f"{self.section}/{self.file}" if self.section else self.file

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    @property
    def kind(self) -> str:
        """The kind of problem: :attr:`problem` with its figures, digests, names and quotes replaced by ``…``."""
        return problem_kind(self.problem)


def problem_kind(message: str) -> str:
    """``message`` with what varies from file to file (numbers, digests, quoted text, file names) as ``…``.

    Problems of one kind (every ``xxhash64 … differs from the manifest (…)``) share it.

    Parameters
    ----------
    message : str
        A :attr:`Problem.problem`.
    """
    return _VARIABLE.sub("…", message)


def summarize(problems: Sequence[Problem], verdict: str, *, lines: int = SUMMARY_LINES, paths: int = SUMMARY_PATHS,
              every: bool = False) -> list[str]:
    """The lines ``validate`` prints: every problem when they fit in ``lines``, else counts per kind.

    The summary gives, per kind of problem (most frequent first), its count
    and its first ``paths`` paths, as many as fit: never more than ``lines`` lines in
    all, whatever the number of problems (a killed run of 2,000 scenarios
    has 20,000), and the ``verdict`` last.

    Parameters
    ----------
    problems : sequence of Problem
        In report order.
    verdict : str
        The last line (the directory, valid or not, what was checked).
    lines : int
        Most lines in all (at least 4).
    paths : int
        Most paths shown per kind.
    every : bool
        One line per problem however many there are (``--all``).

    Returns
    -------
    list of str
    """
    if every or len(problems) < lines:
        return [*map(str, problems), verdict]
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.kind, []).append(p)
    kinds = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: ties keep report order
    budget = max(lines, 4) - 2  # the header and the verdict
    shown = kinds if len(kinds) <= budget else kinds[:budget - 1]  # then one line for the other kinds
    room = budget - len(shown) - (len(shown) < len(kinds))

    def cost(n: int, count: int) -> int:  # lines of n paths of a kind (a "… and N more" line when cut)
        return 0 if count == 1 else n + (0 < n < count)

    per = [0] * len(shown)
    grown = True
    while grown:  # one more path per kind, round-robin, the most frequent kinds first
        grown = False
        for i, (_kind, ps) in enumerate(shown):
            step = cost(per[i] + 1, len(ps)) - cost(per[i], len(ps))
            if per[i] < min(len(ps), paths) and step <= room:
                per[i] += 1
                room -= step
                grown = True
    out = [(f"{len(problems):,} problems of {len(kinds):,} kind(s), the first paths of each (--all prints every "
            "problem):")]
    for (kind, ps), n in zip(shown, per, strict=True):
        if len(ps) == 1:
            out.append(f"  1 × {ps[0]}")
            continue
        out.append(f"  {len(ps):,} × {kind}")
        out.extend(f"      {p.path}" if p.problem == kind else f"      {p}" for p in ps[:n])
        if 0 < n < len(ps):
            out.append(f"      … and {len(ps) - n:,} more")
    if len(shown) < len(kinds):
        rest = kinds[len(shown):]
        out.append(f"  … and {sum(len(ps) for _kind, ps in rest):,} more problems of {len(rest):,} other kind(s)")
    out.append(verdict)
    return out


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_output`.

    Attributes
    ----------
    directory : str
        The directory validated (the output root, or a ``simulation/`` directory given alone).
    problems : list of Problem
    files_checked : int
        Files whose bytes were read (simulation, training and policy).
    scenarios_checked : int
        Distinct scenarios of the simulation manifest's files.
    status, training_status : str or None
        The manifests' statuses (None when absent or unreadable).
    checkpoints_checked : int
        Policy checkpoints checked.
    journal_records : int or None
        Files the run journal records (None: the output has no run journal,
        so files no manifest hashes could not be checked byte for byte).
    unjournaled : list of str
        Sections holding files of which the journal records none (their
        writers did not record: checked without the journal).
    """

    directory: str
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    scenarios_checked: int = 0
    status: str | None = None
    training_status: str | None = None
    checkpoints_checked: int = 0
    journal_records: int | None = None
    unjournaled: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No problem found."""
        return not self.problems

    def add(self, file: str, problem: str, section: str = SIMULATION_DIR) -> None:
        """Record a problem.

        Parameters
        ----------
        file : str
            The file, relative to its section.
        problem : str
            What is wrong.
        section : str
            ``simulation`` (default), ``training``, ``policy`` or the output root.
        """
        self.problems.append(Problem(file, problem, section))

    def kinds(self) -> dict[str, int]:
        """Number of problems of each kind (:attr:`Problem.kind`), the most frequent first."""
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def verdict(self) -> str:
        """One line: the directory, valid or how many problems, what was checked, the statuses."""
        verdict = "valid" if self.valid else f"INVALID ({len(self.problems):,} problem(s))"
        journal = "no run journal" if self.journal_records is None else \
            f"against {self.journal_records:,} journal records" + \
            "".join(f"; {s or 'the root'}/ not in the journal" for s in self.unjournaled)
        return (f"{self.directory}: {verdict}; {self.files_checked} files, {self.scenarios_checked} scenarios, "
                f"{self.checkpoints_checked} policy checkpoint(s) checked ({journal}); simulation "
                f"{self.status or '-'}, training {self.training_status or '-'}")

    def lines(self, *, every: bool = False, limit: int = SUMMARY_LINES) -> list[str]:
        """What ``validate`` prints: :func:`summarize` of the problems, then :meth:`verdict`.

        Parameters
        ----------
        every : bool
            One line per problem however many (``--all``).
        limit : int
            Most lines otherwise.
        """
        return summarize(self.problems, self.verdict(), lines=limit, every=every)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (every problem, and the count of each kind)."""
        return {"directory": self.directory, "valid": self.valid, "status": self.status,
                "training_status": self.training_status, "files_checked": self.files_checked,
                "scenarios_checked": self.scenarios_checked, "checkpoints_checked": self.checkpoints_checked,
                "journal_records": self.journal_records, "unjournaled": self.unjournaled, "kinds": self.kinds(),
                "problems": [{"section": p.section, "file": p.file, "path": p.path, "problem": p.problem}
                             for p in self.problems]}
