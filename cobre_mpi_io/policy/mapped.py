"""Memory-mapped access to policy files: size and xxhash64 digests, verified read-only maps."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import xxhash

from ..errors import IoError, ManifestError, SerializationError
from .records import FileDigest

__all__ = ["file_digest"]

_MIN_SIZE = 12  # root offset, the smallest vtable, the smallest table


def file_digest(path: str | os.PathLike[str]) -> FileDigest:
    """Size and xxhash64 of a file, hashed through a read-only memory map.

    No copy: about 30 ms of CPU per 250 MB stage from the page cache here,
    against 50 ms reading it in chunks.  :class:`IoError` if unreadable.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return FileDigest(0, xxhash.xxh64(b"", seed=0).hexdigest())
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return FileDigest(size, xxhash.xxh64(mm, seed=0).hexdigest())
    except OSError as exc:
        raise IoError.from_os_error(p, exc) from exc


def _map(path: Path, expected: FileDigest | None) -> mmap.mmap:
    """Memory-map ``path`` read-only; with ``expected``, check its size and xxhash64 first."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if expected is not None and size != expected.bytes:
                raise ManifestError(str(path), f"{size} bytes, metadata.json records {expected.bytes}: "
                                    "the file is truncated or replaced")
            if size < _MIN_SIZE:
                raise SerializationError(str(path), f"file of {size} bytes is not a FlatBuffer")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    if expected is not None:
        got = xxhash.xxh64(mm, seed=0).hexdigest()
        if got != expected.xxhash64:
            raise ManifestError(str(path), f"xxhash64 {got}, metadata.json records {expected.xxhash64}: "
                                "the file is corrupt")
    return mm
