"""``validate`` of ``training/dictionaries/`` (SPEC §8): the JSON and CSV files read, their shape checked.

The dictionaries are small (kilobytes): rank 0 reads each once while
planning.  Their bytes are checked against the run journal like every
file's (:mod:`.journal`); this module checks what a reader of an output
without a journal relies on: ``codes.json`` and ``state_dictionary.json``
are JSON objects of the expected shape, ``entities.csv`` and
``variables.csv`` are CSV with the spec's header and a value for every
column of every row.  The code maps of ``codes.json`` become the domain of
the ``*_code`` columns under ``--deep``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..documents import parse_json_document
from ..formats import CODE_MEANINGS
from ..layout import TRAINING_DIR
from ..schemas import DEFAULT_FORMAT, NUMPY_DTYPES
from .plan import DICTIONARIES, Plan
from .tree import not_regular

__all__ = ["ENTITIES_HEADER", "VARIABLES_HEADER", "check_dictionaries"]

ENTITIES_HEADER: Final = ("entity_type_code", "entity_id", "name", "bus_id", "system_id")
VARIABLES_HEADER: Final = ("file", "column", "type", "unit", "description", "nullable")
_MAX_PROBLEMS: Final = 5


def _read(plan: Plan, directory: Path, name: str) -> bytes | None:
    """The bytes of ``directory/name`` (None, after a problem line, when it is not a readable regular file)."""
    rel = f"{DICTIONARIES}/{name}"
    why = not_regular(directory / name)
    if why is not None:
        plan.add(TRAINING_DIR, rel, why)
        return None
    try:
        return (directory / name).read_bytes()
    except FileNotFoundError:
        return None  # a missing dictionary is reported by the training plan (when the run is final)
    except OSError as exc:
        plan.add(TRAINING_DIR, rel, f"cannot be read: {exc}")
        return None


def _codes(plan: Plan, data: bytes, maps: Mapping[str, Any]) -> dict[str, frozenset[int]] | None:
    rel = f"{DICTIONARIES}/codes.json"
    try:
        doc = parse_json_document(data, rel)
    except Exception as exc:  # noqa: BLE001 - one line
        plan.add(TRAINING_DIR, rel, f"unreadable: {exc}")
        return None
    if not isinstance(doc, Mapping):
        plan.add(TRAINING_DIR, rel, f"not a JSON object (a {type(doc).__name__})")
        return None
    out: dict[str, frozenset[int]] = {}
    for name in maps:
        m = doc.get(name)
        if not isinstance(m, Mapping):
            plan.add(TRAINING_DIR, rel, f"{name}: missing or not an object of code -> label")
            continue
        bad = [k for k, v in m.items() if not (isinstance(k, str) and k.lstrip("-").isdigit() and isinstance(v, str))]
        if bad:
            plan.add(TRAINING_DIR, rel, f"{name}: entries {bad[:3]} are not \"integer\": \"label\"")
            continue
        out[name] = frozenset(int(k) for k in m)
    return out


def _csv(plan: Plan, name: str, data: bytes, header: tuple[str, ...]) -> list[list[str]] | None:
    rel = f"{DICTIONARIES}/{name}"
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        plan.add(TRAINING_DIR, rel, f"unreadable: not UTF-8 CSV ({exc})")
        return None
    if not rows or tuple(rows[0]) != header:
        plan.add(TRAINING_DIR, rel, f"header {rows[0] if rows else []} differs from the spec's {list(header)}")
        return None
    wrong = [i + 2 for i, r in enumerate(rows[1:]) if len(r) != len(header)]
    if wrong:
        plan.add(TRAINING_DIR, rel, f"{len(wrong)} row(s) without exactly {len(header)} values (line(s) "
                                    f"{', '.join(map(str, wrong[:_MAX_PROBLEMS]))})")
        return None
    return rows[1:]


def _entities(plan: Plan, rows: list[list[str]], codes: Mapping[str, frozenset[int]]) -> None:
    rel = f"{DICTIONARIES}/entities.csv"
    kinds = codes.get("entity_type")
    seen: set[tuple[str, str]] = set()
    problems: list[str] = []
    for line, r in enumerate(rows, start=2):
        code, eid = r[0], r[1]
        if not code.lstrip("-").isdigit() or not eid.lstrip("-").isdigit():
            problems.append(f"line {line}: entity_type_code and entity_id must be integers, got {code!r}, {eid!r}")
        elif kinds is not None and int(code) not in kinds:
            problems.append(f"line {line}: entity_type_code {code} is not in codes.json's entity_type")
        elif (code, eid) in seen:
            problems.append(f"line {line}: entity ({code}, {eid}) listed twice")
        seen.add((code, eid))
        for col, v in zip(ENTITIES_HEADER[3:], r[3:], strict=True):
            if v and not v.lstrip("-").isdigit():
                problems.append(f"line {line}: {col} {v!r} is not an integer")
    for msg in problems[:_MAX_PROBLEMS]:
        plan.add(TRAINING_DIR, rel, msg)


def _variables(plan: Plan, rows: list[list[str]]) -> None:
    rel = f"{DICTIONARIES}/variables.csv"
    types = set(NUMPY_DTYPES.values()) if plan.training_format == DEFAULT_FORMAT else None  # Cobre's own names
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line, r in enumerate(rows, start=2):
        if types is not None and r[2] not in types:
            problems.append(f"line {line}: type {r[2]!r} is not one of {sorted(types)}")
        if r[5] not in ("true", "false"):
            problems.append(f"line {line}: nullable {r[5]!r} is not true or false")
        if (r[0], r[1]) in seen:
            problems.append(f"line {line}: column {r[1]!r} of {r[0]} listed twice")
        seen.add((r[0], r[1]))
    for msg in problems[:_MAX_PROBLEMS]:
        plan.add(TRAINING_DIR, rel, msg)


def check_dictionaries(train: Path, plan: Plan) -> None:
    """Check the dictionaries of ``train`` (``OUT/training``) that are present; set ``plan.codes``.

    Parameters
    ----------
    train : Path
        The ``training/`` directory.
    plan : Plan
        Receives the problems and the code maps (the package's own when
        ``codes.json`` is absent or unreadable).
    """
    d = train / DICTIONARIES
    maps = CODE_MEANINGS[plan.training_format]  # name -> {label: code}
    plan.codes = {k: frozenset(int(c) for c in v.values()) for k, v in maps.items()}
    if not d.is_dir() or d.is_symlink():
        return
    data = _read(plan, d, "codes.json")
    codes = _codes(plan, data, maps) if data is not None else None
    if codes is not None:
        plan.codes.update(codes)
    data = _read(plan, d, "state_dictionary.json")
    if data is not None:
        try:
            doc: Any = parse_json_document(data, f"{DICTIONARIES}/state_dictionary.json")
        except Exception as exc:  # noqa: BLE001 - one line
            plan.add(TRAINING_DIR, f"{DICTIONARIES}/state_dictionary.json", f"unreadable: {exc}")
        else:
            if not isinstance(doc, Mapping):
                plan.add(TRAINING_DIR, f"{DICTIONARIES}/state_dictionary.json",
                         f"not a JSON object (a {type(doc).__name__})")
    data = _read(plan, d, "entities.csv")
    rows = _csv(plan, "entities.csv", data, ENTITIES_HEADER) if data is not None else None
    if rows is not None:
        _entities(plan, rows, codes if codes is not None else plan.codes)
    data = _read(plan, d, "variables.csv")
    rows = _csv(plan, "variables.csv", data, VARIABLES_HEADER) if data is not None else None
    if rows is not None:
        _variables(plan, rows)
