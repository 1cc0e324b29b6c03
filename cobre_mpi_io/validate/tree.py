"""Walking the output tree for ``validate``: every entry seen, links and special files refused, one directory open at a time."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path

from ..atomic import is_temp_name

__all__ = ["temp_or_unexpected", "walk"]


def _scan(root: Path) -> Generator[tuple[str, str], bool, None]:
    """``(relative path, kind)`` of every entry below ``root``; kind is file, dir, symlink, special.

    Directories are entered only when they are real directories (never
    through a link) and only when the caller's generator is resumed with
    ``True`` from :meth:`send`; one directory is open at a time.
    """
    base = os.fspath(root)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(base, rel_dir) if rel_dir else base) as it:
                entries = sorted((e.name, e.is_symlink(), e.is_dir(follow_symlinks=False),
                                  e.is_file(follow_symlinks=False)) for e in it)
        except OSError as exc:
            yield rel_dir or ".", f"unreadable: {exc}"
            continue
        subdirs: list[str] = []
        for name, is_link, is_dir, is_file in entries:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            kind = "symlink" if is_link else "dir" if is_dir else "file" if is_file else "special"
            enter = yield rel, kind
            if enter and kind == "dir":
                subdirs.append(rel)
        stack.extend(reversed(subdirs))


def walk(root: Path, classify: Callable[[str, str], tuple[bool, str | None]],
          report: Callable[[str, str], None]) -> int:
    """Walk ``root``, one directory open at a time; returns the number of entries seen.

    Parameters
    ----------
    root : Path
        The directory walked (never through a link).
    classify : callable
        ``classify(rel, kind) -> (enter, problem)`` for files and directories: whether to enter a
        directory, and what is wrong with the entry (None: nothing).
    report : callable
        ``report(rel, problem)``; links and special files are reported whatever ``classify`` says.
    """
    seen = 0
    gen = _scan(root)
    try:
        rel, kind = next(gen)
        while True:
            seen += 1
            enter = False
            if kind == "symlink":
                report(rel, "symbolic link (refused: readers would follow it; remove it)")
            elif kind == "special":
                report(rel, "not a regular file or directory (fifo, socket or device: refused)")
            elif kind.startswith("unreadable"):
                report(rel, f"directory {kind}")
            else:
                enter, problem = classify(rel, kind)
                if problem is not None:
                    report(rel, problem)
            rel, kind = gen.send(enter)
    except StopIteration:
        pass
    return seen


def temp_or_unexpected(rel: str, kind: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if is_temp_name(name):
        return "stray temp file (an interrupted write; --resume removes it)"
    if kind == "dir":
        if name.startswith("."):
            return "stray temp directory (an interrupted write)"
        return "unexpected directory (not part of the output)"
    return "unexpected file (not part of the output)"
