"""The reading primitives of case loading: a JSON reader that collects every problem.

:class:`CaseReader` reads the files of one case directory and records each
problem (file, entity, field, message) instead of stopping at the first;
:func:`convert` is its value check (a number where a number belongs, never
converted from a string or a boolean; NaN and infinities refused).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import IoError
from .checks import SystemProblem

__all__ = ["DATED_FILES", "CaseReader", "convert", "short", "type_name"]

_INT32_MAX: Final = 2**31 - 1
DATED_FILES: Final = ("system/buses.json", "system/thermals.json", "system/lines.json", "system/hydros.json")
"""Cobre 0.18: the entity files whose entries carry ``operational_start_date``."""
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def type_name(v: Any) -> str:
    """How a JSON value is named in a problem (``a string``, ``null``, ``a number``)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), "null" if v is None else "a number" if isinstance(v, (int, float)) else type(v).__name__)


class CaseReader:
    """Reads a case, collecting every problem instead of stopping at the first.

    Parameters
    ----------
    case : Path
        The case directory.
    fmt : str, default "cobre-0.5"
        The case's input format (``"cobre-0.5"`` or ``"cobre-0.18"``).
    reason : str or None
        Why the case is read as Cobre 0.18 (named in problems about 0.5.x fields).

    Notes
    -----
    In every method, ``rel`` is the file relative to the case directory,
    ``entity``/``label`` the entity as named in problems (``hydro 3``) and
    fields are dotted as in the file.
    """

    def __init__(self, case: Path, fmt: str = "cobre-0.5", reason: str | None = None) -> None:
        self.case = case
        self.fmt = fmt
        self.reason = reason  # why the case is read as Cobre 0.18
        self.problems: list[SystemProblem] = []
        self.incomplete: set[str] = set()
        self.seen: dict[str, set[int]] = {}
        self.consequences: set[tuple[str, str | None, str | None]] = set()  # not reported by the system checks

    @property
    def v018(self) -> bool:
        """Whether the case is in the Cobre 0.18 input format."""
        return self.fmt == "cobre-0.18"

    def removed_in_018(self, rel: str, entity: str | None, field: str, instead: str) -> None:
        """Record a Cobre 0.5.x field found in a Cobre 0.18 case.

        Parameters
        ----------
        rel, entity, field : str
            Where it is (``entity`` None for a file-level field).
        instead : str
            What 0.18 does instead (``"spells it num_openings"``).
        """
        self.add(rel, entity, field, f"a Cobre 0.5.x field, not in the Cobre 0.18 format this case is in "
                 f"({self.reason}); 0.18 {instead}")

    def add(self, file: str, entity: str | None, field: str | None, message: str) -> None:
        """Record one problem.

        Parameters
        ----------
        file, entity, field, message : str
            As in :class:`~cobre_mpi_io.system.checks.SystemProblem` (``entity`` and ``field`` may be None).
        """
        self.problems.append(SystemProblem(file, entity, field, message))

    # ----------------------------------------------------------------- files
    def read_json(self, rel: str, *, required: bool) -> Any:
        """The parsed document, or None (missing optional file, or a problem recorded)."""
        path = self.case / rel
        if not path.exists():
            if required:
                self.add(rel, None, None, "required case file is missing")
            return None
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            self.add(rel, None, None, "is a directory, not a JSON file")
            return None
        except OSError as exc:
            raise IoError.from_os_error(path, exc) from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.add(rel, None, None, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}")
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.add(rel, None, None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits, nesting too deep
            self.add(rel, None, None, f"not valid JSON: {type(exc).__name__}: {str(exc)[:200]}")
        return None

    def items(self, rel: str, key: str, attr: str, *, required: bool = True,
              list_required: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """The entries of the top-level list ``key`` of file ``rel`` that are objects, with their positions.

        Parameters
        ----------
        rel, key : str
            The file and its list.
        attr : str
            The System attribute (or the file), marked incomplete on any problem.
        required : bool
            Whether the file must exist.
        list_required : bool
            Whether the list must be there (else a missing or null list is empty).
        """
        before = len(self.problems)
        doc = self.read_json(rel, required=required)
        out = []
        if doc is None:
            pass
        elif not isinstance(doc, dict):
            self.add(rel, None, None, f"expected a top-level object with a list {key!r}, got {type_name(doc)}")
        elif doc.get(key) is None and not list_required:
            pass
        elif not isinstance(doc.get(key), list):
            self.add(rel, None, key, f"expected a list, got {type_name(doc[key])}" if key in doc
                     else "missing required top-level list")
        else:
            for i, it in enumerate(doc[key]):
                if isinstance(it, dict):
                    out.append((i, it))
                else:
                    self.add(rel, f"{key}[{i}]", None, f"expected an object, got {type_name(it)}")
        if len(self.problems) > before:
            self.incomplete.add(attr)
        return out

    # ---------------------------------------------------------------- values
    def get(self, rel: str, entity: str | None, item: dict[str, Any], dotted: str, kind: str = "float", *,
            required: bool = True, default: Any = None, prefix: str = "") -> Any:
        """The value at ``dotted`` converted to ``kind`` (``float``, ``int``, ``str``), or ``default``.

        A missing or null optional field is ``default``; anything else wrong
        is a problem (recorded, the field named ``prefix + dotted``) and ``default``.

        Parameters
        ----------
        rel, entity : str
            Where the value is (``entity`` None for a file-level field).
        item : dict
            The object holding the value.
        dotted : str
            Its path in ``item`` (``reservoir.max_storage_hm3``).
        kind : {"float", "int", "str"}
            What it must be.
        required : bool
            Whether a missing or null value is a problem.
        default : object
            The value when missing or wrong.
        prefix : str
            Prepended to ``dotted`` in problems (``unit_groups[0].``).
        """
        cur: Any = item
        parts = dotted.split(".")
        for k, part in enumerate(parts):
            if not isinstance(cur, dict):
                self.add(rel, entity, prefix + ".".join(parts[:k]), f"expected an object, got {type_name(cur)}")
                return default
            if cur.get(part) is None:
                if required:
                    self.add(rel, entity, prefix + dotted, "missing required field")
                return default
            cur = cur[part]
        ok, value = convert(cur, kind)
        if not ok:
            self.add(rel, entity, prefix + dotted, value)
            return default
        return value

    def start_date(self, rel: str, label: str, it: dict[str, Any]) -> None:
        """Check Cobre 0.18's required ``operational_start_date`` (ISO ``YYYY-MM-DD``).

        Parameters
        ----------
        rel, label : str
            The file and the entity.
        it : dict
            The entity's entry.
        """
        v = it.get("operational_start_date")
        if v is None:
            self.add(rel, label, "operational_start_date", "missing required field (Cobre 0.18: the ISO date "
                     "YYYY-MM-DD the entity enters service)")
            return
        ok = isinstance(v, str) and _ISO_DATE.fullmatch(v) is not None
        if ok:
            try:
                datetime.date.fromisoformat(v)
            except ValueError:
                ok = False
        if not ok:
            self.add(rel, label, "operational_start_date", f"not an ISO date YYYY-MM-DD: {short(v)}")

    def entity_id(self, rel: str, key: str, i: int, item: dict[str, Any]) -> int | None:
        """The id of entry ``i`` of the list ``key``, or None (problem recorded).

        Parameters
        ----------
        rel, key : str
            The file and its list.
        i : int
            The entry's position.
        item : dict
            The entry.
        """
        ident: int | None = self.get(rel, f"{key}[{i}]", item, "id", "int")
        if ident is not None and not 0 <= ident <= _INT32_MAX:
            self.add(rel, f"{key}[{i}]", "id", f"id {short(ident)} outside 0..{_INT32_MAX}")
            return None
        return ident

    def common(self, rel: str, key: str, what: str, i: int, it: dict[str, Any], attr: str,
               bus: bool = True) -> tuple[str, dict[str, Any]] | None:
        """Label and the fields every entity has; None when its id is unusable (entity left out).

        Parameters
        ----------
        rel, key : str
            The file and its list.
        what : str
            The kind as named in labels (``hydro``).
        i : int
            The entry's position.
        it : dict
            The entry.
        attr : str
            The System attribute, marked incomplete when the id is unusable or repeated.
        bus : bool
            Whether the entity has a required ``bus_id``.
        """
        ident = self.entity_id(rel, key, i, it)
        if ident is None:
            self.incomplete.add(attr)
            return None
        seen = self.seen.setdefault(attr, set())
        if ident in seen:  # reported by the system checks; what refers to this kind is then not checked
            self.incomplete.add(attr)
        seen.add(ident)
        label = f"{what} {ident}"
        d: dict[str, Any] = {
            "id": ident,
            "name": self.get(rel, label, it, "name", "str", required=False, default=f"{what}_{ident}"),
            "entry_stage_id": self.get(rel, label, it, "entry_stage_id", "int", required=False),
            "exit_stage_id": self.get(rel, label, it, "exit_stage_id", "int", required=False),
        }
        if bus:
            d["bus_id"] = self.get(rel, label, it, "bus_id", "int")
        if self.v018 and rel in DATED_FILES:
            self.start_date(rel, label, it)
        return label, d

    def entities(self, rel: str, key: str, what: str, attr: str, *, required: bool = True,
                 bus: bool = True) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(label, entry, common fields)`` of each usable entry of the list ``key`` of ``rel``.

        :meth:`items` then :meth:`common` on each entry; entries whose id is
        unusable are left out (the problem is recorded).

        Parameters
        ----------
        rel, key, what, attr : str
            As in :meth:`common`.
        required : bool
            Whether the file must exist.
        bus : bool
            Whether the entities have a required ``bus_id``.
        """
        for i, it in self.items(rel, key, attr, required=required):
            c = self.common(rel, key, what, i, it, attr, bus=bus)
            if c is not None:
                yield c[0], it, c[1]


def convert(v: Any, kind: str) -> tuple[bool, Any]:
    """(True, converted) or (False, why not)."""
    if kind == "str":
        return (True, v) if isinstance(v, str) else (False, f"expected a string, got {type_name(v)} {v!r}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        noun = "an integer" if kind == "int" else "a number"
        return False, f"expected {noun}, got {type_name(v)} {short(v)}"
    if isinstance(v, float) and not math.isfinite(v):
        return False, f"{v} is not allowed: numbers must be finite (null means no limit where one is optional)"
    if kind == "int":
        if isinstance(v, float) and not v.is_integer():
            return False, f"expected an integer, got {v!r}"
        return True, int(v)
    try:
        return True, float(v)
    except OverflowError:
        return False, f"number too large for float64: {short(v)}"


def short(v: Any) -> str:
    """``repr(v)``, cut to 60 characters."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
