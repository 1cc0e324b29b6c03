"""Reading and checking a Cobre case's ``config.json`` (Cobre 0.5.x and 0.18 shapes).

:func:`read_config` checks every value this package uses when the case is
loaded, before anything is written, and reports each problem with the file
and the field as written (``config.json, field 'training.selection.forward_passes':
must be an integer >= 1, got 0``), in the same list as every other problem of
the case (:func:`~cobre_mpi_io.system.case.case_problems`). What it reads:

============================  =====================================  =========================================
value                         Cobre 0.5.x                            Cobre 0.18
============================  =====================================  =========================================
forward passes (>= 1)         ``training.forward_passes``            ``training.selection`` ``{"method": "sampled",
                                                                     "forward_passes"}`` (``"enumerated"``: no count)
seed (0 .. 2**63-1)           ``training.scenario_source.seed``      ``training.tree_seed``, else
                                                                     ``training.scenario_source.seed``
simulation scenarios (>= 0)   ``simulation.num_scenarios``           ``simulation.selection`` ``{"method": "sampled",
                                                                     "num_scenarios"}`` (``"enumerated"``: no count)
simulation on/off             ``simulation.enabled`` (default true)  ``simulation.enabled`` (default false, as Cobre)
iteration limit (>= 0)        the ``iteration_limit`` rule's ``limit`` in ``training.stopping_rules``
stopping mode                 ``training.stopping_mode``: ``any`` or ``all``
upper-bound evaluation        ``training.upper_bound_evaluation`` (bool or ``{"enabled"}``) or the top-level
                              ``upper_bound_evaluation.enabled``
policy mode                   ``policy.mode``: ``fresh``, ``warm_start`` or ``resume``
detail                        ``simulation.detail`` (or ``output_detail``): ``full``, ``stage`` or ``summary``
============================  =====================================  =========================================

In a 0.18 case the 0.5.x spellings that 0.18 removed (``training.forward_passes``,
``simulation.num_scenarios``) are problems, and ``training.selection`` is
required, as Cobre 0.18 requires it. Unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .case018 import case_format, config_018_marker
from .checks import problems_error
from .reader import CaseReader, convert, type_name

__all__ = ["CASE_FORMATS", "CaseConfig", "config_format", "load_case_config", "parse_config",
           "read_config"]

CASE_FORMATS: Final = ("cobre-0.5", "cobre-0.18")
"""The case input formats read: Cobre 0.5.x and Cobre 0.18."""

_REL: Final = "config.json"
_SEED_MAX: Final = 2**63 - 1
_COUNT_MAX: Final = 2**32 - 1  # Cobre's counts are uint32
_MODES: Final = ("fresh", "warm_start", "resume")
_DETAILS: Final = ("full", "stage", "summary")


@dataclass(frozen=True)
class CaseConfig:
    """The values of a case's ``config.json`` this package uses, checked.

    ``None`` means the file does not give the value (the caller's default
    applies: the demo's options, :class:`~cobre_mpi_io.config.RunConfig`'s
    defaults).

    Attributes
    ----------
    format : str
        ``"cobre-0.5"`` or ``"cobre-0.18"`` (:data:`CASE_FORMATS`).
    seed : int or None
        The case's own seed (0.5.x ``training.scenario_source.seed``; 0.18
        ``training.tree_seed``, else ``training.scenario_source.seed``).
    forward_passes : int or None
        Forward passes per training iteration.
    max_iterations : int or None
        The ``iteration_limit`` stopping rule's ``limit``.
    stopping_rules : tuple of dict
        ``training.stopping_rules``, verbatim.
    stopping_mode : str
        ``"any"`` or ``"all"``.
    cut_selection : object
        ``training.cut_selection``, verbatim (None when absent).
    upper_bound_evaluation : bool
        Whether the case asks for an upper-bound evaluation.
    policy_mode : str
        ``"fresh"``, ``"warm_start"`` or ``"resume"``.
    simulation_enabled : bool
        ``simulation.enabled`` (default true in 0.5.x, false in 0.18, as each Cobre reads it).
    num_scenarios : int or None
        Simulation scenarios the case asks for (whether or not simulation is enabled).
    detail : str or None
        Simulation detail level.
    """

    format: str = "cobre-0.5"
    seed: int | None = None
    forward_passes: int | None = None
    max_iterations: int | None = None
    stopping_rules: tuple[dict[str, Any], ...] = ()
    stopping_mode: str = "any"
    cut_selection: Any = None
    upper_bound_evaluation: bool = False
    policy_mode: str = "fresh"
    simulation_enabled: bool = True
    num_scenarios: int | None = None
    detail: str | None = None

    def run_config_fields(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~cobre_mpi_io.config.RunConfig` (values the file gives).

        ``num_scenarios`` is the case's count when simulation is enabled, else
        0; ``seed``, ``forward_passes``, ``max_iterations`` and ``detail`` are
        left out when the file does not give them.
        """
        kw: dict[str, Any] = {
            "stopping_rules": self.stopping_rules, "stopping_mode": self.stopping_mode,
            "cut_selection": self.cut_selection, "upper_bound_evaluation": self.upper_bound_evaluation,
            "policy_mode": self.policy_mode,
            "num_scenarios": (self.num_scenarios or 0) if self.simulation_enabled else 0,
        }
        for name in ("seed", "forward_passes", "max_iterations", "detail"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        return kw


def config_format(doc: Any) -> str:
    """``"cobre-0.18"`` when ``doc`` has a field only Cobre 0.18's ``config.json`` has, else ``"cobre-0.5"``."""
    return "cobre-0.5" if config_018_marker(doc) is None else "cobre-0.18"


def _section(ld: CaseReader, doc: Mapping[str, Any], key: str, dotted: str | None = None) -> Mapping[str, Any]:
    """``doc[key]`` when it is an object; ``{}`` when absent or null; a problem otherwise."""
    v = doc.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        ld.add(_REL, None, dotted or key, f"expected an object, got {type_name(v)}")
        return {}
    return v


def _count(ld: CaseReader, sec: Mapping[str, Any], dotted: str, key: str, minimum: int) -> int | None:
    """The integer ``sec[key]`` (field ``dotted``) in ``minimum .. 2**32-1``, else None (problem recorded)."""
    raw = sec.get(key)
    if raw is None:
        return None
    ok, v = convert(raw, "int")
    if not ok:
        ld.add(_REL, None, dotted, v)
        return None
    if not minimum <= v <= _COUNT_MAX:
        ld.add(_REL, None, dotted, f"must be an integer >= {minimum}, got {v}" if v < minimum
               else f"must be at most {_COUNT_MAX}, got {v}")
        return None
    return int(v)


def _choice(ld: CaseReader, sec: Mapping[str, Any], dotted: str, key: str, allowed: tuple[str, ...]) -> str | None:
    v = sec.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or v not in allowed:
        ld.add(_REL, None, dotted, f"must be one of {', '.join(repr(a) for a in allowed)}, got {v!r}")
        return None
    return v


def _flag(ld: CaseReader, sec: Mapping[str, Any], dotted: str, key: str) -> bool | None:
    v = sec.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        ld.add(_REL, None, dotted, f"must be true or false, got {v!r}")
        return None
    return v


def _seed(ld: CaseReader, sec: Mapping[str, Any], dotted: str, key: str) -> int | None:
    v = sec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _SEED_MAX:
        ld.add(_REL, None, dotted, f"a seed must be an integer in 0..{_SEED_MAX} "
               f"(this package's scenario streams need a non-negative seed), got {v!r}")
        return None
    return v


def _selection(ld: CaseReader, sec: Mapping[str, Any], phase: str, count: str, minimum: int,
               required: bool) -> int | None:
    """A 0.18 ``selection`` block: the count of a ``sampled`` selection, None for ``enumerated``."""
    dotted = f"{phase}.selection"
    sel = sec.get("selection")
    if sel is None:
        if required:
            ld.add(_REL, None, dotted, f'missing required field (Cobre 0.18: {{"method": "sampled", "{count}": N}})')
        return None
    if not isinstance(sel, Mapping):
        ld.add(_REL, None, dotted, f"expected an object, got {type_name(sel)}")
        return None
    method = _choice(ld, sel, f"{dotted}.method", "method", ("sampled", "enumerated"))
    if method is None and sel.get("method") is None:
        ld.add(_REL, None, f"{dotted}.method", "missing required field ('sampled' or 'enumerated')")
    if method != "sampled":
        return None
    if sel.get(count) is None:
        ld.add(_REL, None, f"{dotted}.{count}", "missing required field (a sampled selection gives its count)")
        return None
    return _count(ld, sel, f"{dotted}.{count}", count, minimum)


def read_config(ld: CaseReader, doc: Any, fmt: str) -> CaseConfig | None:
    """Check a parsed ``config.json`` of a case in format ``fmt``; the values, or None on a problem.

    Parameters
    ----------
    ld : CaseReader
        Records every problem (file ``config.json``, the field dotted as in the file).
    doc : object
        The parsed ``config.json``.
    fmt : str
        The case's format (:data:`CASE_FORMATS`).

    Returns
    -------
    CaseConfig or None
        None when a problem was recorded.
    """
    before = len(ld.problems)
    if not isinstance(doc, Mapping):
        ld.add(_REL, None, None, f"expected a top-level object, got {type_name(doc)}")
        return None
    tr = _section(ld, doc, "training")
    sim = _section(ld, doc, "simulation")
    pol = _section(ld, doc, "policy")
    src = _section(ld, tr, "scenario_source", "training.scenario_source")
    v018 = fmt == "cobre-0.18"
    if v018:
        for sec, key, instead in ((tr, "forward_passes", "training.selection.forward_passes"),
                                  (sim, "num_scenarios", "simulation.selection.num_scenarios")):
            if key in sec:
                section = "training" if sec is tr else "simulation"
                ld.removed_in_018(_REL, None, f"{section}.{key}", f"spells it {instead}")
        forward_passes = _selection(ld, tr, "training", "forward_passes", 1, required=True)
        num_scenarios = _selection(ld, sim, "simulation", "num_scenarios", 0, required=False)
        seed = _seed(ld, tr, "training.tree_seed", "tree_seed")
        if seed is None and tr.get("tree_seed") is None:
            seed = _seed(ld, src, "training.scenario_source.seed", "seed")
    else:
        forward_passes = _count(ld, tr, "training.forward_passes", "forward_passes", 1)
        num_scenarios = _count(ld, sim, "simulation.num_scenarios", "num_scenarios", 0)
        seed = _seed(ld, src, "training.scenario_source.seed", "seed")
        if seed is None and src.get("seed") is None:
            seed = _seed(ld, tr, "training.seed", "seed")

    rules_raw = tr.get("stopping_rules")
    rules: list[dict[str, Any]] = []
    max_iterations = None
    if rules_raw is not None and not isinstance(rules_raw, list):
        ld.add(_REL, None, "training.stopping_rules", f"expected a list of rules, got {type_name(rules_raw)}")
    for i, r in enumerate(rules_raw if isinstance(rules_raw, list) else ()):
        where = f"training.stopping_rules[{i}]"
        if not isinstance(r, Mapping):
            ld.add(_REL, None, where, f"expected an object, got {type_name(r)}")
            continue
        if not isinstance(r.get("type"), str):
            ld.add(_REL, None, f"{where}.type", "missing required field" if r.get("type") is None
                   else f"expected a string, got {type_name(r['type'])}")
            continue
        rules.append(dict(r))
        if r["type"] == "iteration_limit":
            if r.get("limit") is None:
                ld.add(_REL, None, f"{where}.limit", "missing required field")
            else:
                limit = _count(ld, r, f"{where}.limit", "limit", 0)
                if limit is not None and max_iterations is None:
                    max_iterations = limit

    ub: Any = tr.get("upper_bound_evaluation")
    ub_where = "training.upper_bound_evaluation"
    if ub is None and isinstance(doc.get("upper_bound_evaluation"), Mapping):
        ub, ub_where = doc["upper_bound_evaluation"].get("enabled"), "upper_bound_evaluation.enabled"
    elif isinstance(ub, Mapping):
        ub, ub_where = ub.get("enabled"), "training.upper_bound_evaluation.enabled"
    upper = _flag(ld, {"v": ub}, ub_where, "v")

    enabled = _flag(ld, sim, "simulation.enabled", "enabled")
    detail_key = "detail" if "detail" in sim else "output_detail"
    detail = _choice(ld, sim, f"simulation.{detail_key}", detail_key, _DETAILS)
    mode = _choice(ld, pol, "policy.mode", "mode", _MODES)
    stopping_mode = _choice(ld, tr, "training.stopping_mode", "stopping_mode", ("any", "all"))
    if len(ld.problems) > before:
        return None
    return CaseConfig(
        format=fmt, seed=seed, forward_passes=forward_passes, max_iterations=max_iterations,
        stopping_rules=tuple(rules), stopping_mode=stopping_mode or "any", cut_selection=tr.get("cut_selection"),
        upper_bound_evaluation=bool(upper), policy_mode=mode or "fresh",
        simulation_enabled=(not v018) if enabled is None else enabled, num_scenarios=num_scenarios, detail=detail)


def parse_config(doc: Any, *, fmt: str | None = None) -> CaseConfig:
    """Check a parsed ``config.json`` on its own (format from :func:`config_format` unless given).

    Raises
    ------
    SchemaError
        Listing every problem, each naming the field.
    """
    fmt = fmt or config_format(doc)
    ld = CaseReader(Path("."), fmt, f"config.json has {config_018_marker(doc)!r}")
    cc = read_config(ld, doc, fmt)
    if cc is None:
        raise problems_error(ld.problems, "config", case=False)
    return cc


def load_case_config(case: str | Path) -> CaseConfig | None:
    """The checked ``config.json`` of a case directory, None when the case has none.

    The format is the case's (:func:`~cobre_mpi_io.system.case018.case_format`).

    Raises
    ------
    SchemaError
        Every problem of ``config.json``, each naming the field.
    IoError
        The file exists but cannot be read.
    """
    case = Path(case)
    if not (case / _REL).exists():
        return None
    ld = CaseReader(case, *case_format(case))
    doc = ld.read_json(_REL, required=True)
    cc = read_config(ld, doc, ld.fmt) if not ld.problems else None
    if cc is None:
        raise problems_error(ld.problems, str(case), case=True)
    return cc
