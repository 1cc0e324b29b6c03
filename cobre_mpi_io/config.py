"""The run configuration (:class:`RunConfig`) and its reading from a Cobre ``config.json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import SchemaError
from .hashing import sha256_json
from .identity import RunIdentity, case_inputs, inputs_hash
from .schemas import DEFAULT_FORMAT, check_format
from .system.model import System

__all__ = ["RunConfig"]


@dataclass(frozen=True)
class RunConfig:
    """The run configuration the output layer records (``configuration_snapshot``).

    Attributes
    ----------
    seed : int
        Scenario sampling seed.
    forward_passes : int
        Forward passes (scenarios) per training iteration.
    stopping_rules : tuple of mapping
        Cobre's ``training.stopping_rules``, verbatim.
    stopping_mode : str
        ``"any"`` or ``"all"`` (how stopping rules combine).
    cut_selection : mapping, str or None
        Cut selection settings, verbatim.
    upper_bound_evaluation : bool
        Whether an upper bound is estimated (convergence UB columns null otherwise).
    policy_mode : str
        ``"fresh"``, ``"warm_start"`` or ``"resume"``.
    max_iterations : int
        Iteration limit.
    num_scenarios : int
        Simulation scenarios (0 = simulation off).
    detail : str
        Simulation detail level ``"full"``, ``"stage"`` or ``"summary"``.
    format : str
        Output format of the tables and dictionaries, ``"spec"`` (default)
        or ``"cobre-0.18"`` (:mod:`cobre_mpi_io.formats`). Part of the run
        identity (a resume in another format is refused); recorded only when
        not the spec's, so a spec run's ``config_hash`` does not depend on it.
    """

    seed: int = 0
    forward_passes: int = 1
    stopping_rules: tuple[Mapping[str, Any], ...] = ()
    stopping_mode: str = "any"
    cut_selection: Mapping[str, Any] | str | None = None
    upper_bound_evaluation: bool = False
    policy_mode: str = "fresh"
    max_iterations: int = 100
    num_scenarios: int = 0
    detail: str = "full"
    format: str = DEFAULT_FORMAT

    def __post_init__(self) -> None:
        check_format(self.format)
        object.__setattr__(self, "stopping_rules", tuple(dict(r) for r in self.stopping_rules))
        if isinstance(self.cut_selection, Mapping):
            object.__setattr__(self, "cut_selection", dict(self.cut_selection))
        if self.detail not in ("full", "stage", "summary"):
            raise SchemaError("config", "detail", f"unknown detail level {self.detail!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the configuration snapshot of ``metadata.json``)."""
        return {
            "seed": self.seed, "forward_passes": self.forward_passes,
            "stopping_rules": [dict(r) for r in self.stopping_rules], "stopping_mode": self.stopping_mode,
            "cut_selection": dict(self.cut_selection) if isinstance(self.cut_selection, Mapping)
            else self.cut_selection,
            "upper_bound_evaluation": self.upper_bound_evaluation, "policy_mode": self.policy_mode,
            "max_iterations": self.max_iterations, "num_scenarios": self.num_scenarios, "detail": self.detail,
        } | ({"format": self.format} if self.format != DEFAULT_FORMAT else {})

    @property
    def config_hash(self) -> str:
        """``"sha256:<hex>"`` of the canonical JSON of :meth:`to_dict`."""
        return sha256_json(self.to_dict())

    def identity(self, system: System) -> RunIdentity:
        """The run identity of this configuration on ``system`` (:mod:`cobre_mpi_io.identity`).

        When ``system`` was loaded from a case directory, the identity covers
        the bytes of every input file of that directory
        (:func:`~cobre_mpi_io.identity.case_inputs`), not only what
        :class:`System` parses.

        Parameters
        ----------
        system : System
            The system being solved.

        Returns
        -------
        RunIdentity
            With the configuration and the case input files it was built from.

        Raises
        ------
        IoError
            A case input file cannot be read or is not a regular file.
        """
        source = system.source
        inputs: dict[str, dict[str, Any]] | None = None
        if source and not source.startswith(("code", "synthetic:")) and Path(source).is_dir():
            inputs = case_inputs(source)
        return RunIdentity(system.system_hash, self.config_hash, self.detail, self.num_scenarios,
                           inputs_hash=inputs_hash(inputs or {}), config=self.to_dict(), inputs=inputs,
                           inputs_source=str(Path(source).resolve()) if inputs is not None else source)

    @classmethod
    def from_case_config(cls, doc: Mapping[str, Any], **overrides: Any) -> RunConfig:
        """Read Cobre's ``config.json`` shape (Cobre 0.5.x or 0.18), every value checked.

        What is read, and the format detection, are those of
        :mod:`cobre_mpi_io.system.case_config`; ``max_iterations`` is the
        ``iteration_limit`` rule's ``limit``. ``overrides`` win.

        Raises
        ------
        SchemaError
            Every problem of ``doc``, each naming its field.
        """
        from .system.case_config import parse_config

        kw = parse_config(doc).run_config_fields()
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def coerce(cls, config: Any) -> RunConfig:
        """A :class:`RunConfig` from a RunConfig, a Cobre ``config.json`` dict, a flat mapping or an object."""
        if isinstance(config, RunConfig):
            return config
        if config is None:
            return cls()
        names = [f.name for f in fields(cls)]
        if isinstance(config, Mapping):
            if "training" in config or "simulation" in config:
                return cls.from_case_config(config)
            return cls(**{k: config[k] for k in names if k in config})
        return cls(**{k: getattr(config, k) for k in names if hasattr(config, k)})


