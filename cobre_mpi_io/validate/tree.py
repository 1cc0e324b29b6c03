"""Walking the output tree for ``validate``: every entry seen, links and special files refused, one directory open at a time."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Container
from pathlib import Path

from ..atomic import is_temp_name

__all__ = ["not_regular", "temp_or_unexpected", "walk"]


def not_regular(path: str | os.PathLike[str]) -> str | None:
    """Why the document at ``path`` must not be opened (None: a regular file, or nothing there).

    A FIFO where a manifest should be would block the reader forever, a
    link would take it outside the tree: both are a problem line instead.

    Parameters
    ----------
    path : path-like
        The document.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read: {exc}"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link (refused: readers would follow it)"
    return "not a regular file (a fifo, socket, device or directory where a file belongs: refused)"


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def walk(root: Path, classify: Callable[[str, str], tuple[bool, str | None]],
         report: Callable[[str, str], None], files: list[str] | None = None,
         known_files: Container[str] = frozenset(), known_dirs: Container[str] = frozenset()) -> int:
    """Walk ``root``, one directory open at a time; returns the number of entries seen.

    One ``scandir`` per directory entered, the entries' types from the
    directory itself (no ``stat`` per file), plain strings (no ``Path``
    per entry), and ``classify`` asked only about entries not ``known``:
    40,000 entries in about 0.3 s.

    Parameters
    ----------
    root : Path
        The directory walked (never through a link).
    classify : callable
        ``classify(rel, kind) -> (enter, problem)`` for files and directories: whether to enter a
        directory, and what is wrong with the entry (None: nothing).
    report : callable
        ``report(rel, problem)``; links and special files are reported whatever ``classify`` says.
    files : list of str, optional
        Receives the relative path of every regular file seen (whatever ``classify`` says of it).
    known_files, known_dirs : container of str, optional
        Relative paths of regular files ``classify`` would accept and of directories it would enter
        (the manifest's partition files and directories): not asked about.  Any other kind of entry
        under such a name (a directory where a file is known, a link) is asked about or reported.
    """
    base = os.fspath(root)
    seen = 0
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(f"{base}/{rel_dir}" if rel_dir else base) as it:
                entries = list(it)
        except OSError as exc:
            report(rel_dir or ".", f"directory unreadable: {exc}")
            continue
        if len(entries) > 1:
            entries.sort(key=_name)
        prefix = f"{rel_dir}/" if rel_dir else ""
        subdirs: list[str] = []
        seen += len(entries)
        for entry in entries:
            rel = prefix + entry.name
            if rel in known_files and entry.is_file(follow_symlinks=False):
                if files is not None:
                    files.append(rel)
                continue
            if rel in known_dirs and entry.is_dir(follow_symlinks=False):
                subdirs.append(rel)
                continue
            kind = 0 if entry.is_file(follow_symlinks=False) else 1 if entry.is_dir(follow_symlinks=False) else \
                2 if entry.is_symlink() else 3
            if kind == 0:
                if files is not None:
                    files.append(rel)
                problem = classify(rel, "file")[1]
            elif kind == 1:
                enter, problem = classify(rel, "dir")
                if enter:
                    subdirs.append(rel)
            elif kind == 2:
                problem = "symbolic link (refused: readers would follow it; remove it)"
            else:
                problem = "not a regular file or directory (fifo, socket or device: refused)"
            if problem is not None:
                report(rel, problem)
        stack.extend(reversed(subdirs))
    return seen


def temp_or_unexpected(rel: str, kind: str) -> str:
    """The problem of an entry that is not part of the output: a stray temp, or unexpected."""
    name = rel.rsplit("/", 1)[-1]
    if is_temp_name(name):
        return "stray temp file (an interrupted write; --resume removes it)"
    if kind == "dir":
        if name.startswith("."):
            return "stray temp directory (an interrupted write)"
        return "unexpected directory (not part of the output)"
    return "unexpected file (not part of the output)"
