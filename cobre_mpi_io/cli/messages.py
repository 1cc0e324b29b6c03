"""The command line's failure messages: what happened once, where, and the exact command to continue.

Three pieces, used by :mod:`cobre_mpi_io.cli.main`:

- :func:`describe_error` renders an exception as one sentence: an operating-system error
  (``[Errno 17] File exists: '/x'``) becomes what it means for the path (``/x already exists``);
- :func:`continue_command` is the full command line that continues a run that stopped (the
  original one with ``--resume``, without the fault-injection options), or ``None`` when the output
  directory holds no run to continue;
- :func:`where` names this process: ``rank 1 (host node07)``.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["continue_command", "describe_error", "output_is_a_file", "where"]

# What an errno means for the path it happened on: "{path} ..." sentences.
_ERRNO_SENTENCES: Final[dict[int, str]] = {
    errno.EEXIST: "{path} already exists",
    errno.ENOENT: "{path} does not exist",
    errno.ENOTDIR: "a part of the path {path} is a file, not a directory",
    errno.EISDIR: "{path} is a directory, where a file was expected",
    errno.EACCES: "permission denied: this user may not write or read {path}",
    errno.EPERM: "operation not permitted on {path}",
    errno.EROFS: "{path} is on a read-only filesystem",
    errno.ENOSPC: "disk full: no space left on the device for {path}",
    errno.EDQUOT: "disk full: the disk quota is exceeded writing {path}",
    errno.EFBIG: "disk full: {path} would exceed the maximum file size (ulimit -f)",
    errno.EMFILE: "too many open files while opening {path} (raise ulimit -n)",
    errno.ENAMETOOLONG: "the path {path} is too long",
    errno.ENOTEMPTY: "{path} is not empty",
    errno.EXDEV: "{path} is on another filesystem than its destination",
    errno.EIO: "the device reported an input/output error on {path}",
}

# "I/O error (cause) on PATH: [Errno N] Text: 'PATH'" (an IoError from an OSError) and a bare
# "[Errno N] Text: 'PATH'" (an OSError's own str).
_IO_ERROR: Final = re.compile(r"I/O error \(([^)]*)\) on (.+?): \[Errno (\d+)\] [^:\n]*(?:: '[^'\n]*')?(?:: '[^'\n]*')?")
_ERRNO_TEXT: Final = re.compile(r"\[Errno (\d+)\] ([^:\n]*)(?:: '([^'\n]*)')?(?:: '[^'\n]*')?")

_INJECTION_OPTIONS: Final = ("--fail-rank", "--fail-after")  # the demo's fault injection: not part of the run


def _sentence(code: int, path: str, fallback: str) -> str:
    template = _ERRNO_SENTENCES.get(code)
    text = fallback or os.strerror(code)
    if not path:
        return text
    return template.format(path=path) if template is not None else f"{text} ({path})"


def describe_error(exc: BaseException) -> str:
    """``exc`` as one sentence: operating-system errors say what they mean for the path.

    Parameters
    ----------
    exc : BaseException
        Any exception; an ``OSError`` (or an ``OutputError`` whose message carries one,
        e.g. an ``IoError`` agreed across the ranks) is rewritten, the rest is ``str(exc)``
        (or the exception's type when it has no message).

    Returns
    -------
    str
        The message, without a trailing period.
    """
    if isinstance(exc, OSError) and not hasattr(exc, "kind") and exc.errno is not None:
        path = exc.filename if exc.filename is not None else ""
        text = _sentence(exc.errno, str(path), exc.strerror or "")
        if exc.filename2 is not None:
            text += f" (to {exc.filename2})"
        return text
    text = str(exc).strip() or type(exc).__name__
    text = _IO_ERROR.sub(lambda m: _sentence(int(m.group(3)), m.group(2), ""), text)
    return _ERRNO_TEXT.sub(lambda m: _sentence(int(m.group(1)), m.group(3) or "", m.group(2)), text).rstrip(".")


def where(rank: int, size: int) -> str:
    """``rank R (host H)`` under a launcher with several ranks, else ``host H``."""
    host = socket.gethostname()
    return f"rank {rank} (host {host})" if size > 1 else f"host {host}"


def output_is_a_file(args: argparse.Namespace) -> str | None:
    """The usage error when ``--output`` names something that is not a directory, else ``None``."""
    out = getattr(args, "output", None)
    if args.command != "demo" or out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        return (f"--output {out} is a file, not a directory: give the directory the run writes into "
                "(it is created when missing)")
    return None


def _holds_run(out: Path) -> bool:
    """True when ``out`` holds (part of) a run: its journal, claim or a manifest."""
    return any((out / p).exists() for p in ("_journal", "_claim.json", "simulation/_manifest.json",
                                           "training/_manifest.json"))


def _program() -> list[str]:
    """How this command was started: the script as given, or ``python -m cobre_mpi_io``."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name.startswith("cobre-mpi-io"):
        return [script]
    return [sys.executable, "-m", "cobre_mpi_io"]


def _launcher(size: int) -> list[str]:
    """The launcher prefix that starts ``size`` ranks again (``srun`` inside a Slurm step)."""
    if size <= 1:
        return []
    if os.environ.get("SLURM_STEP_ID") is not None and os.environ.get("SLURM_PROCID") is not None:
        return ["srun"]
    return ["mpiexec", "-n", str(size)]


def continue_command(args: argparse.Namespace, argv: Sequence[str], size: int,
                     error: BaseException | None = None) -> str | None:
    """The exact command that continues the stopped run, or ``None`` when there is none to continue.

    The original command line with ``--resume`` added (and the demo's fault-injection options
    ``--fail-rank``/``--fail-after`` removed), behind the launcher that started ``size`` ranks.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (only ``demo`` runs are continued).
    argv : sequence of str
        The arguments as given (without the program name).
    size : int
        The number of ranks of the job.
    error : exception, optional
        Why it stopped: a refusal at start (another run holds the directory, a resume of another
        run) has nothing to continue.

    Returns
    -------
    str or None
        A shell command line (quoted with :func:`shlex.join`).
    """
    if getattr(args, "command", None) != "demo" or not _holds_run(Path(args.output)):
        return None
    if error is not None:
        text = str(error)
        if "_claim.json" in text or (args.resume and getattr(error, "kind", None) == "manifest"):
            return None
    kept: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in _INJECTION_OPTIONS:
            skip = True
            continue
        if a.split("=", 1)[0] in _INJECTION_OPTIONS:
            continue
        kept.append(a)
    if "--resume" not in kept:
        kept.append("--resume")
    return shlex.join([*_launcher(size), *_program(), *kept])
