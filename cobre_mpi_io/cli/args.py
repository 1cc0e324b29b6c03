"""Argument types for the command line: numbers are checked while parsing.

Each is an ``argparse`` ``type=``: a bad value makes the parser print
``error: argument --scenarios: must be an integer >= 1, got '0'`` and exit
with status 2 before any work is done or anything is written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "int_in_range",
    "non_negative_float",
    "non_negative_int",
    "positive_int",
]


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def int_in_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An integer type accepting ``lo <= value`` (and ``value <= hi`` when given)."""
    what = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"

    def parse(text: str) -> int:
        value = _parse_int(text, what)
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its "invalid ... value" messages
    return parse


positive_int = int_in_range(1)
"""Integer >= 1 (counts: scenarios, repeats, stages ...)."""

non_negative_int = int_in_range(0)
"""Integer >= 0 (seeds, ranks, counts where 0 means "none")."""


def _float_type(strict: bool) -> Callable[[str], float]:
    what = "a finite number > 0" if strict else "a finite number >= 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (strict and value == 0):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


non_negative_float = _float_type(strict=False)
"""Finite float >= 0 (seconds)."""

"""Finite float > 0."""
