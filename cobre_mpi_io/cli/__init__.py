"""The ``cobre-mpi-io`` command line: demo, validate, report and one bench module per ``bench`` subcommand.

Nothing in the core imports this package."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
