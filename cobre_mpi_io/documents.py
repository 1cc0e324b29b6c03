"""JSON documents of the output tree: one strict parser and one declarative schema check.

:func:`parse_json_document` / :func:`read_json_document` parse every
manifest, ``metadata.json`` and policy metadata (no ``NaN``/``Infinity``, no
number that overflows, bounded nesting); :func:`check_document` walks a
parsed document against a schema built from the nodes below (:class:`Int`,
:class:`Str`, :class:`Obj`, ...) and raises one
:class:`~cobre_mpi_io.errors.ManifestError` naming the file and the field
path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .atomic import read_regular
from .errors import IoError, ManifestError

__all__ = [
    "INT_MAX",
    "Anything",
    "Bool",
    "Int",
    "MapOf",
    "Node",
    "Num",
    "Obj",
    "Opt",
    "RelPath",
    "Seq",
    "Str",
    "check_document",
    "field_error",
    "parse_json_document",
    "read_json_document",
]

# ------------------------------------------------------------------ schema check
# A small declarative check of the JSON documents of the output tree (manifests, metadata.json, policy
# metadata): a schema is a tree of the nodes below; ``check_document`` walks a parsed document against
# it and raises one ManifestError naming the file and the field path (``failures[2].rank: expected
# int, got str``).  Objects keep the keys they do not describe (forward compatible); every described
# key is checked.  Every ``from_dict`` of a manifest type and ``metadata.json`` go through it, so a
# document that parses is one the code can use without a TypeError later.  Field paths are built
# only when a check fails (each container adds its segment while the error unwinds), so the success
# path over 10^5 file entries does no string work.

INT_MAX: Final = 2**63 - 1
"""Largest integer a document may hold (int64, the widest integer of the Parquet files it describes)."""


class _Mismatch(Exception):
    """Internal: a field that does not match its schema; ``segments`` of its path, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        """Add the segment of the enclosing container (``.name``, ``["key"]``, ``[i]``)."""
        self.segments.append(segment)
        return self

    @property
    def path(self) -> str:
        return "".join(reversed(self.segments)).removeprefix(".")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name_segment(key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f".{key}"
    return f"[{json.dumps(key) if isinstance(key, str) else _show(key)}]"


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Mismatch("not valid UTF-8 text (lone surrogate)") from None
    return value


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) in ``lo..hi``."""

    lo: int = 0
    hi: int = INT_MAX

    def check(self, value: Any) -> int:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch(f"expected int, got {_type_name(value)}")
        if value < self.lo:
            raise _Mismatch(f"expected int >= {self.lo}, got {_show(value)}")
        if value > self.hi:
            raise _Mismatch(f"expected int <= {self.hi}, got {_show(value)}")
        return value


@dataclass(frozen=True)
class Num:
    """A finite number (int or float, not a bool), at least ``lo`` when given."""

    lo: float | None = None

    def check(self, value: Any) -> float | int:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(f"expected number, got {_type_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Mismatch(f"expected a finite number, got {value!r}")
        if isinstance(value, int) and abs(value) > INT_MAX:
            raise _Mismatch(f"number out of range: {_show(value)}")
        if self.lo is not None and value < self.lo:
            raise _Mismatch(f"expected number >= {self.lo}, got {_show(value)}")
        return value


@dataclass(frozen=True)
class Str:
    """A string: one of ``choices`` when given, matching ``pattern`` (described by ``what``) when given."""

    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    what: str = ""

    def check(self, value: Any) -> str:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, str):
            raise _Mismatch(f"expected str, got {_type_name(value)}")
        if self.choices and value not in self.choices:
            raise _Mismatch(f"expected one of {', '.join(self.choices)}; got {_show(value)}")
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise _Mismatch(f"expected {self.what or self.pattern.pattern}, got {_show(value)}")
        return _utf8(value)


_REL_PATH: Final = re.compile(r"(?!\.\.?(?:/|$))[^/\\\0]+(?:/(?!\.\.?(?:/|$))[^/\\\0]+)*")


@dataclass(frozen=True)
class RelPath:
    """A relative POSIX path inside the document's directory: non-empty components, none ``.``/``..``,
    no leading ``/``, no ``\\`` or NUL."""

    def check(self, value: Any) -> str:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, str):
            raise _Mismatch(f"expected a relative path (str), got {_type_name(value)}")
        if _REL_PATH.fullmatch(value) is None:
            raise _Mismatch(f"expected a relative path below the directory, got {_show(value)}")
        return _utf8(value)


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""

    def check(self, value: Any) -> bool:
        """``value`` if it matches, else :class:`_Mismatch`."""
        if not isinstance(value, bool):
            raise _Mismatch(f"expected bool, got {_type_name(value)}")
        return value


@dataclass(frozen=True)
class Anything:
    """Any JSON value (free-form content, e.g. a configuration snapshot)."""

    def check(self, value: Any) -> Any:
        """``value``."""
        return value


@dataclass(frozen=True)
class Opt:
    """``null`` or ``node``."""

    node: Node

    def check(self, value: Any) -> Any:
        """``value`` (checked by ``node`` unless null), else :class:`_Mismatch`."""
        return None if value is None else self.node.check(value)


@dataclass(frozen=True)
class Seq:
    """A list of ``item`` (parsed to a tuple); its items distinct when ``unique``, non-empty when ``nonempty``."""

    item: Node
    unique: bool = False
    nonempty: bool = False

    def check(self, value: Any) -> tuple[Any, ...]:
        """The checked items as a tuple, else :class:`_Mismatch`."""
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"expected list, got {_type_name(value)}")
        if self.nonempty and not value:
            raise _Mismatch("expected a non-empty list, got []")
        check = self.item.check
        out = []
        for i, v in enumerate(value):
            try:
                out.append(check(v))
            except _Mismatch as exc:
                raise exc.at(f"[{i}]") from None
        if self.unique:
            seen: set[Any] = set()
            for i, v in enumerate(out):
                if v in seen:
                    raise _Mismatch(f"duplicate {_show(v)}").at(f"[{i}]")
                seen.add(v)
        return tuple(out)


@dataclass(frozen=True)
class Obj:
    """An object with the described ``fields`` (those in ``optional`` may be absent); other keys are kept."""

    fields: Mapping[str, Node] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    def check(self, value: Any) -> dict[str, Any]:
        """A dict of the checked fields plus the undescribed ones, else :class:`_Mismatch`."""
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {_type_name(value)}")
        out = dict(value)
        for name, node in self.fields.items():
            if name in value:
                try:
                    out[name] = node.check(value[name])
                except _Mismatch as exc:
                    raise exc.at(_name_segment(name)) from None
            elif name not in self.optional:
                raise _Mismatch("missing").at(_name_segment(name))
        return out


@dataclass(frozen=True)
class MapOf:
    """An object used as a map: every key checked by ``key``, every value by ``value``."""

    key: Node
    value: Node

    def check(self, value: Any) -> dict[str, Any]:
        """The checked map, else :class:`_Mismatch`."""
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {_type_name(value)}")
        check_key, check_value = self.key.check, self.value.check
        out: dict[str, Any] = {}
        for k, v in value.items():
            try:
                check_key(k)
                out[k] = check_value(v)
            except _Mismatch as exc:
                raise exc.at(f"[{json.dumps(k) if isinstance(k, str) else _show(k)}]") from None
        return out


Node = Int | Num | Str | RelPath | Bool | Anything | Opt | Seq | Obj | MapOf
"""A schema node: anything with ``check(value)`` returning the checked value or raising."""


def check_document(schema: Node, document: Any, where: str) -> Any:
    """Check a parsed JSON ``document`` against ``schema``; return the checked value.

    Lists come back as tuples; objects as dicts holding their undescribed keys too.

    Parameters
    ----------
    schema : Node
        The expected shape.
    document : Any
        The parsed document (or a ``to_dict`` result).
    where : str
        The file (or manifest kind) named in the error.

    Raises
    ------
    ManifestError
        Naming ``where``, the field path and what is wrong.
    """
    try:
        return schema.check(document)
    except _Mismatch as exc:
        raise ManifestError(where, f"{exc.path}: {exc.message}" if exc.segments else exc.message) from None


def field_error(where: str, path: str, message: str) -> ManifestError:
    """The error of a document field: ``manifest error (<where>): <path>: <message>``.

    Parameters
    ----------
    where : str
        The file (or manifest kind) the document was read from.
    path : str
        The field's path in the document, e.g. ``"scenarios.completed"`` or
        ``"partitions_written[3]"``.
    message : str
        What is wrong with the field's value.

    Returns
    -------
    ManifestError
        The error, for the caller to raise.
    """
    return ManifestError(where, f"{path}: {message}")




class _NotFinite(ValueError):
    """Internal: a JSON number that is not a finite double (``1e400``, ``NaN``, ``Infinity``)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str) -> Any:
    raise _NotFinite(text)


def parse_json_document(data: bytes | str, where: str) -> Any:
    """Parse JSON text of the output tree with bounded numbers.

    Non-finite numbers (``NaN``, ``Infinity``, or a literal such as
    ``1e400`` that overflows a double) and integers too long to convert are
    refused, as is nesting deeper than the interpreter can parse.

    Raises
    ------
    ManifestError
        Naming ``where`` when the text is not valid JSON or holds such a number.
    """
    try:
        return json.loads(data, parse_float=_finite_float, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise ManifestError(where, f"number {_show(str(exc))} is not a finite double") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(where, f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise ManifestError(where, "not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond int's digit limit
        raise ManifestError(where, f"not valid JSON: {exc}") from exc


def read_json_document(path: Path, manifest: str, *, root: str | Path | None = None) -> Any:
    """Read and parse a JSON document of the output tree (:func:`parse_json_document`).

    The file is opened without blocking and must be a regular file
    (:func:`~cobre_mpi_io.atomic.open_regular`): a FIFO, device or
    directory at its path is refused at once, never waited on.

    Parameters
    ----------
    path : Path
        The document.
    manifest : str
        What the document is (named in errors; usually ``str(path)``).
    root : path-like, optional
        A symbolic link at ``path`` must resolve inside this directory
        (default: the directory holding ``path``).

    Returns
    -------
    Any
        The parsed JSON value.

    Raises
    ------
    ManifestError
        Naming ``manifest`` (the file) when it is missing, not valid JSON or
        holds a non-finite number.
    IoError
        When it cannot be read, or is not a regular file (cause
        ``"not a regular file"``).
    """
    try:
        text = read_regular(path, root=root)
    except FileNotFoundError as exc:
        raise ManifestError(manifest, f"{path} does not exist") from exc
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    return parse_json_document(text, manifest if manifest == str(path) else f"{manifest}, {path}")



