"""The outcome of ``validate``: one :class:`Problem` per finding, gathered in a :class:`ValidationReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..layout import POLICY_DIR, SIMULATION_DIR, TRAINING_DIR

__all__ = ["SECTIONS", "Problem", "ValidationReport"]

SECTIONS: Final = ("", SIMULATION_DIR, TRAINING_DIR, POLICY_DIR)
"""Sections of a report: the output root (``""``) and its three directories."""

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
    """

    directory: str
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    scenarios_checked: int = 0
    status: str | None = None
    training_status: str | None = None
    checkpoints_checked: int = 0

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

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"directory": self.directory, "valid": self.valid, "status": self.status,
                "training_status": self.training_status, "files_checked": self.files_checked,
                "scenarios_checked": self.scenarios_checked, "checkpoints_checked": self.checkpoints_checked,
                "problems": [{"section": p.section, "file": p.file, "path": p.path, "problem": p.problem}
                             for p in self.problems]}
